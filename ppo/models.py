"""The four roles PPO needs: policy (+ frozen reference), value model, and the two reward models.

Full mode: separate copies of policy and reference. LoRA mode: one copy of the SFT weights with a
trainable adapter; the reference is the same model with the adapter disabled (`policy_reference`).
The value model is a reward model whose scalar head is applied at every position. The two reward
models and Llama 2's rule are `camelid.reward.combined`'s scorer (calibrated scores, the RMs' own chat rendering).
"""

from __future__ import annotations

import contextlib

import torch
from torch import nn

from camelid.log import get_logger
from camelid.models import device_for, hub_errors, pick_precision, torch_dtype
from camelid.registry import Artifact
from camelid.reward.scoring import score_head

log = get_logger("ppo")


class ValueModel(nn.Module):
    """Per-token values V(s_t) from a sequence-classification model (backbone + scalar head)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model  # AutoModelForSequenceClassification (num_labels=1), possibly LoRA-wrapped

    def _parts(self) -> tuple[nn.Module, nn.Module]:
        inner = self.model
        if hasattr(inner, "get_base_model"):  # peft: the wrapped model, adapters still active
            inner = inner.get_base_model()
        return getattr(inner, inner.base_model_prefix), score_head(inner)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, position_ids: torch.Tensor,
                ) -> torch.Tensor:
        """(B, T) -> (B, T) value of the state ending at each position."""
        backbone, head = self._parts()
        hidden = backbone(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids,
                          use_cache=False).last_hidden_state  # (B, T, H)
        return head(hidden).squeeze(-1).float()


def _dtype(precision: str, device: torch.device) -> torch.dtype:
    return torch_dtype(pick_precision(precision, device))


def load_causal(path_or_art: str | Artifact, *, precision: str, device: torch.device):
    from transformers import AutoModelForCausalLM

    art = path_or_art
    path = art.model_path if isinstance(art, Artifact) else str(art)
    ctx = hub_errors(art) if isinstance(art, Artifact) else contextlib.nullcontext()
    with ctx:
        model = AutoModelForCausalLM.from_pretrained(path, dtype=_dtype(precision, device), use_safetensors=True)
    return model.to(device)


def load_value(path_or_art: str | Artifact, *, precision: str, device: torch.device, pad_token_id: int,
               ) -> ValueModel:
    from transformers import AutoModelForSequenceClassification

    art = path_or_art
    path = art.model_path if isinstance(art, Artifact) else str(art)
    ctx = hub_errors(art) if isinstance(art, Artifact) else contextlib.nullcontext()
    with ctx:
        model = AutoModelForSequenceClassification.from_pretrained(
            path, num_labels=1, dtype=_dtype(precision, device), use_safetensors=True)
    if model.config.pad_token_id is None:
        model.config.pad_token_id = pad_token_id
    return ValueModel(model.to(device))


def add_lora(model: nn.Module, lora, *, task_type: str, modules_to_save: list[str] | None = None) -> nn.Module:
    """Wrap ``model`` with a trainable LoRA adapter (peft); only adapter (and saved) weights train."""
    from peft import get_peft_model

    return get_peft_model(model, lora.peft_config(task_type, modules_to_save))


__all__ = ["ValueModel", "add_lora", "device_for", "load_causal", "load_value"]
