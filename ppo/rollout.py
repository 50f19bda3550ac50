"""Batched sampling from the policy (KV cache, left padding) and log-probs of response tokens."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class Rollout:
    sequences: torch.Tensor       # (B, T) prompt (left-padded) + response (right-padded after EOS)
    attention_mask: torch.Tensor  # (B, T) 1 on real prompt tokens and on response tokens up to EOS
    action_mask: torch.Tensor     # (B, A) 1 on response tokens up to and including the first EOS
    logprobs: torch.Tensor        # (B, A) log-probs of the sampled tokens under the sampling policy
    truncated: torch.Tensor       # (B,) bool: no EOS within max_new_tokens


def encode_prompts(tokenizer, conversations: list[list[dict]], max_prompt_length: int | None = None,
                   ) -> list[list[int]]:
    """Token ids of each conversation with the generation prompt; overlong prompts keep their end."""
    ids = []
    for conv in conversations:
        text = tokenizer.apply_chat_template(conv, tokenize=False, add_generation_prompt=True)
        tok = tokenizer(text, add_special_tokens=False)["input_ids"]
        if max_prompt_length and len(tok) > max_prompt_length:
            tok = tok[-max_prompt_length:]
        ids.append(tok)
    return ids


def left_pad(ids: list[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, P) input ids and attention mask, padded on the left (what decoder-only generation needs)."""
    width = max(len(x) for x in ids)
    input_ids = torch.full((len(ids), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(ids), width), dtype=torch.long)
    for i, x in enumerate(ids):
        if x:
            input_ids[i, width - len(x):] = torch.tensor(x, dtype=torch.long)
            mask[i, width - len(x):] = 1
    return input_ids, mask


def response_mask(responses: torch.Tensor, eos_id: int | list[int]) -> torch.Tensor:
    """(B, A) 1 up to and including the first stop token of each row (all 1 if there is none).

    ``eos_id``: the token or tokens that end a response (camelid.models.stop_token_ids). Whatever follows
    the first one is padding, even when the pad token IS the eos (SmolLM2: both <|im_end|>).
    """
    is_eos = torch.isin(responses, torch.as_tensor(eos_id, device=responses.device)).long()
    after_eos = (is_eos.cumsum(-1) - is_eos) > 0
    return (~after_eos).long()


def position_ids(attention_mask: torch.Tensor) -> torch.Tensor:
    """(B, T) positions counting only real tokens, so left padding does not shift them."""
    return (attention_mask.long().cumsum(-1) - 1).clamp(min=0)


def gather_logprobs(logits: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    """log softmax(logits)[token]: (B, A, V), (B, A) -> (B, A), in fp32."""
    logp = torch.log_softmax(logits.float(), dim=-1)
    return logp.gather(-1, tokens.unsqueeze(-1)).squeeze(-1)


@torch.no_grad()
def sample(model, input_ids: torch.Tensor, attention_mask: torch.Tensor, *, eos_id: int | list[int], pad_id: int,
           max_new_tokens: int, temperature: float = 1.0, top_p: float = 1.0) -> Rollout:
    """Sample one response per prompt; log-probs come from the generation logits (no second forward).

    The log-probs are those of the tempered distribution softmax(logits / temperature) before top-p:
    the distribution PPO optimises. Greedy decoding when temperature == 0 (log-probs at T=1). ``eos_id``: the
    token(s) that end a response; the first one is the response's last action (it gets the score).
    """
    was_training = model.training
    model.eval()
    sampling = temperature > 0
    try:
        out = model.generate(
            input_ids=input_ids, attention_mask=attention_mask, max_new_tokens=max_new_tokens,
            do_sample=sampling, temperature=temperature if sampling else None,
            top_p=top_p if sampling else None, eos_token_id=eos_id, pad_token_id=pad_id,
            return_dict_in_generate=True, output_logits=True, use_cache=True,
            **({"top_k": 0} if sampling else {}),  # no top-k truncation unless asked (HF defaults to 50)
        )
    finally:
        model.train(was_training)
    prompt_len = input_ids.shape[1]
    responses = out.sequences[:, prompt_len:]  # (B, A)
    logits = torch.stack(out.logits, dim=1)  # (B, A, V) raw logits of each generated step
    if sampling and temperature != 1.0:
        logits = logits / temperature
    action_mask = response_mask(responses, eos_id)
    logprobs = gather_logprobs(logits, responses) * action_mask
    truncated = ~torch.isin(responses, torch.as_tensor(eos_id, device=responses.device)).any(-1)
    return Rollout(
        sequences=out.sequences,
        attention_mask=torch.cat([attention_mask, action_mask], dim=1),
        action_mask=action_mask,
        logprobs=logprobs,
        truncated=truncated,
    )


def action_logits(model, sequences: torch.Tensor, attention_mask: torch.Tensor, num_actions: int,
                  temperature: float = 1.0) -> torch.Tensor:
    """Logits that predicted each response token: (B, T) -> (B, A, V), divided by the temperature."""
    out = model(input_ids=sequences, attention_mask=attention_mask, position_ids=position_ids(attention_mask),
                use_cache=False)
    logits = out.logits[:, -num_actions - 1:-1]
    if temperature > 0 and temperature != 1.0:
        logits = logits / temperature
    return logits


def sequence_logprobs(model, sequences: torch.Tensor, attention_mask: torch.Tensor, num_actions: int,
                      temperature: float = 1.0) -> torch.Tensor:
    """log pi(a_t | s_t) of the last ``num_actions`` tokens of each sequence. (B, T) -> (B, A)"""
    logits = action_logits(model, sequences, attention_mask, num_actions, temperature)
    return gather_logprobs(logits, sequences[:, -num_actions:])
