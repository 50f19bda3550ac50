"""Answers of one checkpoint to a prompt set, cached on disk, and sequence log-probs for KL/perplexity.

Cache key: (checkpoint artifact hash, prompt-set hash, sampling settings). A comparison that adds one
new checkpoint therefore only generates for that one; the others are read back from
``$CAMELID_CACHE/generations/<key>.json`` (default ``~/.cache/camelid/generations``). `cached_generate` is
the get / generate / put that compare's answers and SFT's self-distillation share.
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from camelid.eval.share import Share
from camelid.log import get_logger
from camelid.registry import Artifact, canonical_json

log = get_logger("compare")
CACHE_FORMAT = 1


def cache_root() -> Path:
    base = os.environ.get("CAMELID_CACHE")
    return (Path(base).expanduser() if base else Path.home() / ".cache" / "camelid") / "generations"


def prompt_set_hash(conversations: list[list[dict]]) -> str:
    """Hash of exactly what the models see: the messages of every prompt, in order."""
    return hashlib.sha256(canonical_json(conversations).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Sampling:
    max_new_tokens: int
    temperature: float
    top_p: float
    seed: int

    def to_dict(self) -> dict:
        return {"max_new_tokens": self.max_new_tokens, "temperature": self.temperature, "top_p": self.top_p,
                "seed": self.seed}


class GenerationCache:
    """JSON files of responses keyed by checkpoint, prompts and sampling; written atomically."""

    def __init__(self, root: Path | None = None):
        self.root = Path(root) if root is not None else cache_root()

    @staticmethod
    def key(checkpoint_hash: str, prompts_hash: str, sampling: Sampling) -> str:
        blob = canonical_json({"format": CACHE_FORMAT, "checkpoint": checkpoint_hash, "prompts": prompts_hash,
                               "sampling": sampling.to_dict()})
        return hashlib.sha256(blob.encode()).hexdigest()[:32]

    def get(self, key: str, n: int) -> list[str] | None:
        path = self.root / f"{key}.json"
        try:
            data = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            return None
        responses = data.get("responses")
        if not isinstance(responses, list) or len(responses) != n or not all(isinstance(r, str) for r in responses):
            return None  # a stale or foreign file: regenerate rather than trust it
        return responses

    def put(self, key: str, responses: list[str], meta: dict) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = self.root / f".{key}.{uuid.uuid4().hex}.tmp"
        tmp.write_text(json.dumps({"meta": meta, "responses": responses}, ensure_ascii=False))
        os.replace(tmp, self.root / f"{key}.json")


def cached_generate(checkpoint: Artifact, convs: list[list[dict]], sampling: Sampling,
                    generate: Callable[[list[list[dict]]], list[str]], *, cache: GenerationCache | None = None,
                    share: Share | None = None, use: str | None = None) -> tuple[list[str], bool]:
    """``checkpoint``'s answers to every conversation under ``sampling``, and whether all came from the cache.

    On a miss ``generate(conversations)`` answers this process's ``share`` (None: one process answers all; it is
    not called for an empty share); the shares are gathered in prompt order and the main process stores the
    whole set, so the cache holds whole prompt sets whatever the number of processes. ``use`` is noted in the
    cache file.
    """
    cache = cache or GenerationCache()
    share = share or Share(len(convs))
    key = cache.key(checkpoint.hash, prompt_set_hash(convs), sampling)
    hit = cache.get(key, len(convs))
    mine = convs[share.indices]
    if hit is not None:
        part, cached = hit[share.indices], True
    else:
        part, cached = (generate(mine) if mine else []), False
    # Every process joins the gather, even on a cache hit: collective calls must match across processes.
    shares = share.gather([(part, cached)])
    responses = [text for part_, _ in shares for text in part_]
    cached = all(c for _, c in shares)
    if not cached and share.is_main:
        cache.put(key, responses, {"checkpoint": checkpoint.ref, "checkpoint_hash": checkpoint.hash,
                                   **({"use": use} if use else {}), **sampling.to_dict()})
    return responses, cached


@torch.no_grad()
def response_logprobs(model, tokenizer, conversations: list[list[dict]], responses: list[str],
                      batch_size: int = 16) -> tuple[torch.Tensor, torch.Tensor]:
    """Sum of log p(response tokens | prompt) and the response token count, per answer.  # (B,), (B,)

    Each model uses its own tokenizer and chat template, so checkpoints with different vocabularies
    still compare on the same text.
    """
    model.eval()
    sums, counts = [], []
    for start in range(0, len(conversations), batch_size):
        ids_list, starts = [], []
        for conv, resp in zip(conversations[start:start + batch_size], responses[start:start + batch_size]):
            prompt = tokenizer.apply_chat_template(conv, tokenize=False, add_generation_prompt=True)
            full = tokenizer.apply_chat_template(conv + [{"role": "assistant", "content": resp or " "}],
                                                 tokenize=False)
            p_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
            f_ids = tokenizer(full, add_special_tokens=False)["input_ids"]
            ids_list.append(f_ids)
            starts.append(min(len(p_ids), len(f_ids) - 1))
        width = max(len(x) for x in ids_list)
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        ids = torch.full((len(ids_list), width), pad, dtype=torch.long)  # (B, T)
        mask = torch.zeros_like(ids)
        for i, x in enumerate(ids_list):
            ids[i, :len(x)] = torch.tensor(x)
            mask[i, :len(x)] = 1
        ids, mask = ids.to(model.device), mask.to(model.device)
        logits = model(input_ids=ids, attention_mask=mask).logits.float()  # (B, T, V)
        logp = torch.log_softmax(logits[:, :-1], dim=-1).gather(-1, ids[:, 1:, None])[..., 0]  # (B, T-1)
        pos = torch.arange(1, width, device=ids.device)[None, :]  # position of each predicted token
        take = (pos >= torch.tensor(starts, device=ids.device)[:, None]) & mask[:, 1:].bool()  # (B, T-1)
        sums.append((logp * take).sum(dim=1).cpu())
        counts.append(take.sum(dim=1).cpu())
    return torch.cat(sums), torch.cat(counts)
