"""Load a published reward model and score (prompt, response) batches: the one loader of every stage.

    rm = load_reward_model("rm-safety", registry)
    scores = rm.score([[{"role": "user", "content": "hi"}]], ["Hello!"])   # (B,) calibrated

Responses are rendered with the model's chat template exactly as in training (prompt messages +
one assistant turn), and the stored calibration (calibration.json) is applied unless raw=True.
Both RMs and Llama 2's rule together: camelid.reward.combined.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from camelid.errors import CamelidError
from camelid.registry import Artifact, Registry
from camelid.reward import calibration

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

# The scalar head of a sequence-classification model: Llama, Qwen, SmolLM2... name it `score`, BERT-likes
# `classifier`, TRL's value-head models `v_head`.
HEAD_NAMES = ("score", "classifier", "v_head")


def score_head(model) -> torch.nn.Module:
    """The scalar head of a sequence-classification model (through DDP/accelerate and peft wrappers)."""
    inner = getattr(model, "module", model)
    if hasattr(inner, "get_base_model"):  # peft: the head is a ModulesToSaveWrapper, its trained copy active
        inner = inner.get_base_model()
    for name in HEAD_NAMES:
        if hasattr(inner, name):
            return getattr(inner, name)
    raise CamelidError(f"{type(inner).__name__} has no scalar head named one of {HEAD_NAMES}: not a "
                       "sequence-classification model")


def render(tokenizer: PreTrainedTokenizerBase, conversation: list[dict], response: str) -> str:
    """The text an RM scores: the prompt messages plus ``response`` as the assistant turn."""
    return tokenizer.apply_chat_template([*conversation, {"role": "assistant", "content": response}],
                                         tokenize=False)


def tokenize(tokenizer: PreTrainedTokenizerBase, conversation: list[dict], response: str) -> list[int]:
    # The chat template writes BOS itself; add_special_tokens would double it on Llama tokenizers.
    return tokenizer(render(tokenizer, conversation, response), add_special_tokens=False)["input_ids"]


def tokenization_key(tokenizer: PreTrainedTokenizerBase) -> str | None:
    """A digest of everything `tokenize` reads: the tokenizer's model, normaliser and pre-tokeniser, its special
    tokens and chat template. Equal keys: the same (conversation, response) gives the same ids. None for a
    tokenizer without a `tokenizers` backend (then nothing is shared)."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        return None
    spec = json.loads(backend.to_str())
    spec.pop("padding", None)  # padding and truncation settings do not change a text's ids
    spec.pop("truncation", None)
    spec["chat_template"] = tokenizer.chat_template
    spec["special"] = {k: str(getattr(tokenizer, k, None)) for k in ("bos_token", "eos_token", "unk_token")}
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()


def distinct_pad(tokenizer: PreTrainedTokenizerBase) -> PreTrainedTokenizerBase:
    """A reward model's tokenizer: its pad token made distinct from eos where they are the same; returns it.

    transformers reads a sequence-classification score at the last token that is not config.pad_token_id.
    When pad == eos (SmolLM2: both <|im_end|>) a row that ends with its eos (the llama2 template closes every
    answer with one) would be read one token early, before the eos. Such tokenizers pad with their unk token
    instead, which a chat template never writes. The reward stage calls this before training (TRL's
    RewardTrainer copies the tokenizer's pad id into the model's config) and publishes the tokenizer with it.
    """
    pad, eos, unk = tokenizer.pad_token_id, tokenizer.eos_token_id, tokenizer.unk_token_id
    if pad is not None and pad == eos and unk is not None and unk not in (eos, tokenizer.bos_token_id):
        tokenizer.pad_token = tokenizer.unk_token
    return tokenizer


def _padded(rows: list[list[int]], pad: int, side: str, device) -> dict[str, torch.Tensor]:
    """input_ids and attention_mask (b, T), padded with ``pad`` on ``side``."""
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, r in enumerate(rows):
        cols = slice(width - len(r), width) if side == "left" else slice(0, len(r))
        ids[i, cols], mask[i, cols] = torch.tensor(r, dtype=torch.long), 1
    return {"input_ids": ids.to(device), "attention_mask": mask.to(device)}


@torch.no_grad()
def raw_scores(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, ids: list[list[int]], *,
               batch_size: int = 32) -> torch.Tensor:
    """(N,) float32 scores of pre-tokenized sequences, batched by length, padded on the tokenizer's side.

    Padded with the model's own config.pad_token_id (what it was trained with, see `distinct_pad`), so the
    score is read where training read it.
    """
    was_training = model.training
    model.eval()
    out = torch.empty(len(ids), dtype=torch.float32)
    order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
    pad = model.config.pad_token_id if model.config.pad_token_id is not None else tokenizer.pad_token_id
    try:
        for start in range(0, len(order), batch_size):
            idx = order[start:start + batch_size]
            enc = _padded([ids[i] for i in idx], pad, tokenizer.padding_side, model.device)
            logits = model(**enc, use_cache=False).logits  # (b, 1)
            out[idx] = logits[:, 0].float().cpu()
    finally:
        model.train(was_training)
    return out


@dataclass
class RewardModel:
    """A sequence-classification RM (num_labels=1), its tokenizer and its calibration."""

    model: PreTrainedModel
    tokenizer: PreTrainedTokenizerBase
    calibration: dict = field(default_factory=calibration.identity)
    max_length: int | None = None
    ref: str = ""

    def score(self, conversations: list[list[dict]], responses: list[str], *, raw: bool = False,
              batch_size: int = 32) -> torch.Tensor:
        """(B,) calibrated scores of responses[i] as the answer to conversations[i] (raw=True: uncalibrated)."""
        return self.score_ids(self.encode(conversations, responses), raw=raw, batch_size=batch_size)

    def encode(self, conversations: list[list[dict]], responses: list[str]) -> list[list[int]]:
        """Token ids of each rendered (conversation, response), untruncated: what `score_ids` takes."""
        if len(conversations) != len(responses):
            raise ValueError(f"{len(conversations)} conversations but {len(responses)} responses")
        return [tokenize(self.tokenizer, c, r) for c, r in zip(conversations, responses, strict=True)]

    def score_ids(self, ids: list[list[int]], *, raw: bool = False, batch_size: int = 32) -> torch.Tensor:
        """(B,) scores of token ids from `encode` (this RM's or one that `shares_tokenization` with it)."""
        if self.max_length:  # the score is read at the last token, so keep the end of long inputs
            ids = [x[-self.max_length:] for x in ids]
        scores = raw_scores(self.model, self.tokenizer, ids, batch_size=batch_size)
        return scores if raw else calibration.apply(scores, self.calibration)

    @cached_property
    def tokenization(self) -> str | None:
        return tokenization_key(self.tokenizer)

    def shares_tokenization(self, other: RewardModel) -> bool:
        """Whether ``other.encode`` gives the ids this RM's `encode` would (one tokenization serves both)."""
        return other.tokenizer is self.tokenizer or (self.tokenization is not None
                                                     and self.tokenization == other.tokenization)


def _fp32_head(model) -> None:
    """Score in fp32 even when the body runs in bf16/fp16: a bf16 output near 17 has a spacing of 0.125,
    which on the H100 rounded 64 different answers to one score. The head is one row of weights."""
    head = getattr(model, "score", None)
    if head is None or head.weight.dtype == torch.float32:
        return
    head.float()
    head.register_forward_pre_hook(lambda module, args: tuple(a.float() for a in args))


def load_reward_model(ref: str | Artifact, registry: Registry | None = None, *, device: str | torch.device = "auto",
                      precision: str = "auto") -> RewardModel:
    """Load a reward model (registry ref, version folder or model path), frozen and ready to score.

    ``device``: a setting (auto, cpu, cuda) or a torch.device (PPO's cuda:<local rank> under accelerate).
    """
    from transformers import AutoModelForSequenceClassification

    from camelid.models import (
        device_for,
        hub_errors,
        load_tokenizer,
        pick_precision,
        resolve_model,
        torch_dtype,
    )

    art = ref if isinstance(ref, Artifact) else resolve_model(ref, registry or Registry("./registry"))
    if not art.external and art.kind != "reward":
        raise CamelidError(f"{art.ref} is a {art.kind} artifact, not a reward model; train one with `camelid reward`")
    dev = device if isinstance(device, torch.device) else device_for(device)
    tok = load_tokenizer(art)
    with hub_errors(art):
        model = AutoModelForSequenceClassification.from_pretrained(
            art.model_path, num_labels=1, dtype=torch_dtype(pick_precision(precision, dev)), use_safetensors=True)
    if model.config.pad_token_id is None:
        model.config.pad_token_id = tok.pad_token_id
    _fp32_head(model)
    if art.external == "hub":
        cal = calibration.identity()
    elif art.external == "path":  # the model/ folder itself or the version folder holding it
        here = Path(art.model_path)
        cal = calibration.load(here if (here / calibration.FILENAME).is_file() else here.parent)
    else:
        cal = calibration.load(art.path)
    max_length = art.manifest.get("config", {}).get("max_length")
    model.requires_grad_(False)
    return RewardModel(model=model.to(dev).eval(), tokenizer=tok, calibration=cal, max_length=max_length,
                       ref=art.ref)
