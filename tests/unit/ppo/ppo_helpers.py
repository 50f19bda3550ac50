"""Helpers shared by the PPO unit tests (imported by path, like tests/stages/ppo_fixtures.py)."""

from __future__ import annotations

from types import SimpleNamespace

import torch

from camelid.ppo.rollout import left_pad

PAD, EOS = 0, 2
CPU = SimpleNamespace(device=torch.device("cpu"), num_processes=1, process_index=0, is_main_process=True,
                      gather=lambda t: t, wait_for_everyone=lambda: None, backward=lambda loss: loss.backward(),
                      clip_grad_norm_=torch.nn.utils.clip_grad_norm_)


def padded_batch(prompts: list[list[int]], responses: list[list[int]], width: int):
    """(sequences, attention_mask, action_mask): left-padded prompts, responses right-padded to ``width``."""
    ids, mask = left_pad(prompts, PAD)
    resp = torch.full((len(responses), width), PAD)
    amask = torch.zeros((len(responses), width), dtype=torch.long)
    for i, r in enumerate(responses):
        resp[i, :len(r)] = torch.tensor(r)
        amask[i, :len(r)] = 1
    return torch.cat([ids, resp], 1), torch.cat([mask, amask], 1), amask


class FixedScorer:
    """A reward model stand-in: the i-th response of a batch gets scores[i]."""

    def __init__(self, scores: list[float]):
        self.scores = scores

    def score(self, conversations, responses):
        return torch.tensor(self.scores[:len(responses)])


def tiny_chat_models(*, loud_eos: bool = False):
    """(tokenizer, policy, reference, value): 2-layer toy Llamas on a 300-token tokenizer; the reference has
    other weights (so the KL is not ~0). ``loud_eos``: a louder EOS row, so a random policy ends some answers."""
    from transformers import LlamaForSequenceClassification

    from camelid.config import ToyBaseConfig
    from camelid.models import build_tiny_llama, train_tokenizer
    from camelid.ppo.models import ValueModel

    tok = train_tokenizer([f"[INST] question {i} [/INST] answer {i * 7}" for i in range(50)], 300)
    cfg = ToyBaseConfig(vocab_size=300, hidden_size=32, intermediate_size=64, num_layers=2, num_heads=2,
                        max_position_embeddings=128, seed=0)
    policy = build_tiny_llama(cfg, tok)
    if loud_eos:
        with torch.no_grad():
            policy.get_output_embeddings().weight[tok.eos_token_id] *= 40
    reference = build_tiny_llama(cfg.model_copy(update={"seed": 1}), tok)
    seqcls = LlamaForSequenceClassification(policy.config.__class__(**{**policy.config.to_dict(), "num_labels": 1}))
    return tok, policy, reference.eval(), ValueModel(seqcls)
