"""Batched sampling from the policy (KV cache, left padding) and log-probs of response tokens.

Sampling needs left-padded prompts; the forwards after it (reference, value, training) run on packed rows
instead (`pack_rows`: each sequence's real tokens, several sequences per row, no padding between them), and
compute log-probs from the hidden states of the response positions only, in chunks of the vocabulary-sized
logits (`action_logprobs`): on a 49k vocabulary the (B, T, V) logits were the largest tensor of a forward.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.utils.checkpoint import checkpoint

from camelid.training.packing import pack

LOGPROB_CHUNK_BYTES = 64 * 2 ** 20  # fp32 logits per lm_head chunk: ~340 tokens at a 49k vocabulary


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
    action_mask = response_mask(responses, eos_id)
    # one step at a time: no (B, A, V) stack of the generation logits and no tempered copy of it
    t = temperature if sampling and temperature != 1.0 else 1.0
    logprobs = torch.stack([gather_logprobs(step if t == 1.0 else step / t, responses[:, i])
                            for i, step in enumerate(out.logits)], 1)
    logprobs = logprobs * action_mask
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


# ---- packed rows: the forwards after sampling -----------------------------------------------------------

@dataclass
class Rows:
    """A batch's sequences packed into rows (`camelid.training.packing.pack`), plus where each response token is read.

    Each sequence is its real prompt + response tokens; position ids restart at 0 at every sequence, which is
    how transformers reads packing when no attention mask is given (a block-diagonal causal mask).
    """

    input_ids: torch.Tensor     # (R, W) R <= B rows, W = camelid.training.packing.row_width (>= the longest sequence)
    position_ids: torch.Tensor  # (R, W) 0, 1, ... within each packed sequence (the padded layout's positions)
    real: torch.Tensor          # (R, W) bool: a real token (for counting; the model reads the position ids)
    action_row: torch.Tensor    # (B,) the row holding sequence b
    action_index: torch.Tensor  # (B, A) column whose output predicts response token t of sequence b

    @property
    def padding_share(self) -> float:
        return 1.0 - float(self.real.sum()) / self.real.numel()


def pack_rows(sequences: torch.Tensor, attention_mask: torch.Tensor, num_actions: int,
              width: int | None = None) -> Rows:
    """The real tokens of a (B, P + A) left-padded-prompt + right-padded-response batch, packed (`Rows`).

    Every real token sees the same tokens at the same positions as in the padded layout, so its outputs are the
    same up to float summation order. ``width``: the rows' width (default: `camelid.training.packing.row_width`).
    """
    packed = pack(sequences, attention_mask, width)
    mask = attention_mask.bool()
    width = packed.input_ids.shape[1]
    prompt_len = mask[:, :mask.shape[1] - num_actions].sum(-1, keepdim=True)  # (B, 1)
    steps = torch.arange(num_actions, device=mask.device)
    action_index = (packed.offset[:, None] + prompt_len - 1 + steps).clamp(max=width - 1)  # past the end: masked
    return Rows(packed.input_ids, packed.position_ids, packed.real, packed.row, action_index)


def last_hidden_states(model, rows: Rows) -> torch.Tensor:
    """(R, W, H) final (normed) hidden states of a causal LM, called through its own forward.

    Through ``model(...)`` (not ``model.model``) so DDP's gradient hooks and peft adapters see the call; the
    LM head then runs on one position per row only (logits_to_keep), the log-probs take it from here.
    """
    out = model(input_ids=rows.input_ids, position_ids=rows.position_ids, use_cache=False, output_hidden_states=-1,
                logits_to_keep=1)
    return out.hidden_states[-1]


def _output_head(model) -> torch.nn.Module:
    inner = getattr(model, "module", model)  # DDP / accelerate wrappers; peft forwards the attribute itself
    return inner.get_output_embeddings()


def _chunk_logprobs(head, hidden: torch.Tensor, tokens: torch.Tensor, temperature: float, entropy: bool,
                    entropy_grad: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """(n,) log-probs of ``tokens`` and (n,) entropies (or an empty tensor) from (n, H) hidden states."""
    logits = head(hidden).float()
    if temperature > 0 and temperature != 1.0:
        logits = logits / temperature
    logp = torch.log_softmax(logits, dim=-1)  # (n, V)
    picked = logp.gather(-1, tokens.unsqueeze(-1)).squeeze(-1)
    if not entropy:
        return picked, picked.new_empty(0)
    with torch.set_grad_enabled(entropy_grad and torch.is_grad_enabled()):
        return picked, -(logp.exp() * logp).sum(-1)


def action_logprobs(model, rows: Rows, tokens: torch.Tensor, action_mask: torch.Tensor, temperature: float = 1.0,
                    *, entropy: bool = False, entropy_grad: bool = False,
                    ) -> tuple[torch.Tensor, torch.Tensor | None]:
    """log pi(a_t | s_t) (B, A) of response ``tokens`` (B, A), 0 where ``action_mask`` is 0; and the entropy.

    The LM head runs only on real response positions, LOGPROB_CHUNK_BYTES of logits at a time. With gradients
    and more than one chunk, each chunk's logits are recomputed in the backward pass (checkpoint) instead of
    kept: the (tokens, V) logits never exist at once. ``entropy_grad``: the entropy joins the graph.
    """
    hidden = last_hidden_states(model, rows)  # (R, W, H)
    b_idx, t_idx = action_mask.nonzero(as_tuple=True)
    picked_hidden = hidden[rows.action_row[b_idx], rows.action_index[b_idx, t_idx]]  # (N, H)
    picked_tokens = tokens[b_idx, t_idx]  # (N,)
    head = _output_head(model)
    per_chunk = max(1, LOGPROB_CHUNK_BYTES // (4 * head.weight.shape[0]))
    recompute = torch.is_grad_enabled() and picked_hidden.shape[0] > per_chunk
    parts = []
    for start in range(0, picked_hidden.shape[0], per_chunk):
        args = (head, picked_hidden[start:start + per_chunk], picked_tokens[start:start + per_chunk], temperature,
                entropy, entropy_grad)
        parts.append(checkpoint(_chunk_logprobs, *args, use_reentrant=False) if recompute else _chunk_logprobs(*args))

    def spread(values: list[torch.Tensor]) -> torch.Tensor:  # (N,) -> (B, A), 0 off the mask
        flat = torch.cat(values) if values else hidden.new_zeros(0, dtype=torch.float32)
        return hidden.new_zeros(action_mask.shape, dtype=torch.float32).index_put((b_idx, t_idx), flat)

    return spread([p for p, _ in parts]), spread([e for _, e in parts]) if entropy else None


def action_values(value_model, rows: Rows) -> torch.Tensor:
    """V(s_t) before each response token: (B, A), from a ValueModel on packed rows."""
    values = value_model(rows.input_ids, None, rows.position_ids)  # (R, W); packing read from the positions
    return values[rows.action_row[:, None], rows.action_index]
