"""Every stage's LoRA comes from LoraSettings.peft_config; the reward model's trains its score head whole."""

from __future__ import annotations

from camelid.data.spec import DataSpec
from camelid.reward.config import RewardModelConfig
from camelid.reward.recipe import peft_config


def _rm(**kw) -> RewardModelConfig:
    return RewardModelConfig(output="rm-x", data=DataSpec(format="toy", objective="helpfulness"), **kw)


def test_the_reward_models_lora_adapts_the_backbone_and_trains_the_head_whole():
    c = peft_config(_rm(mode="lora", lora={"r": 4, "alpha": 8, "dropout": 0.1, "target_modules": ["q_proj", "v_proj"]}))
    assert (c.r, c.lora_alpha, c.lora_dropout, set(c.target_modules)) == (4, 8, 0.1, {"q_proj", "v_proj"})
    assert c.task_type == "SEQ_CLS" and c.modules_to_save == ["score"]


def test_a_full_fine_tune_has_no_peft_config():
    assert peft_config(_rm()) is None
