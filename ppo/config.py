"""Typed config of the PPO stage (`stages.ppo`)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from camelid.data.spec import DataSpec
from camelid.training.settings import LoraSettings, OptimSettings


class PPOLoraConfig(LoraSettings):
    """The policy's and value model's adapters."""

    dropout: float = Field(0.0, ge=0, lt=1, description="Dropout on the LoRA path (0 keeps old/new log-probs equal).")


Advantage = Literal["gae", "grpo", "rloo", "reinforce++", "reinforce++-baseline"]
CRITIC_FREE = frozenset({"grpo", "rloo", "reinforce++", "reinforce++-baseline"})  # no value model
PER_PROMPT = frozenset({"grpo", "rloo", "reinforce++-baseline"})  # need samples_per_prompt >= 2


class PPOConfig(OptimSettings):

    policy: str = Field("sft", description="Initial policy (registry ref / path / hf:<id>).")
    reference: str | None = Field(None, description="Frozen KL reference (default: the policy's initial weights).")
    reward_helpfulness: str = Field("rm-helpfulness", description="Helpfulness reward model ref.")
    reward_safety: str = Field("rm-safety", description="Safety reward model ref.")
    value_init: str = Field("rm-helpfulness", description="Value model initialisation (a reward model ref; "
                            "advantage: gae only).")
    output: str = Field("ppo", description="Registry name to publish under.")
    prompts: DataSpec | list[DataSpec] = Field(default_factory=lambda: DataSpec(format="toy", split="ppo"),
                                               description="Rollout prompts, one spec or a weighted list (mixture); "
                                               "each carries is_safety.")
    eval_prompts: DataSpec | None = Field(default_factory=lambda: DataSpec(format="toy", split="eval", n=200),
                                          description="Held-out prompts for early stopping and the final eval.")
    mode: Literal["full", "lora"] = Field("full", description="Full or LoRA (reference = base with adapters off).")
    lora: PPOLoraConfig = Field(default_factory=PPOLoraConfig, description="LoRA settings (mode: lora).")
    advantage: Advantage = Field(
        "gae", description="Advantage estimator (camelid.ppo.advantages): gae = PPO with a value model (Llama 2); "
        "grpo = (r - group mean) / group std, KL as a k3 loss term (Shao et al. 2024); rloo = r - mean of the other "
        "samples' rewards, KL in the reward (Ahmadian et al. 2024); reinforce++ = KL-penalised token returns, "
        "whitened over the batch (Hu 2025); reinforce++-baseline = the same after subtracting each prompt's mean "
        "score. All but gae are critic-free: no value model is built, loaded, checkpointed or trained.")
    samples_per_prompt: int = Field(
        1, gt=0, description="Responses sampled per prompt: each iteration takes rollout_batch_size / n distinct "
        "prompts, n times each (grpo, rloo, reinforce++-baseline need n >= 2: their baseline is the other samples).")
    label_penalty: float | None = Field(
        None, ge=0, description="Subtract this from the combined score (raw, before whitening) of a response on the "
        "wrong side of its prompt's own label (camelid.eval.refusal.on_label: no refusal of a harmful prompt, a "
        "refusal of a borderline one; unlabelled prompts untouched): a rule-based term next to the reward models, "
        "for a safety RM that rates some compliance above a refusal (rs's label_filter is the same rule). null: off.")
    kl_coef: float = Field(0.01, gt=0, description="beta: per-token KL penalty to the reference (Llama 2: 0.01); "
                           "with grpo the weight of the k3 KL loss term.")
    kl_estimator: Literal["k1", "k3"] = Field("k1", description="KL estimator in the reward (Schulman's k1 or k3); "
                                              "grpo's KL loss term is always k3, as in the paper.")
    gamma: float = Field(1.0, gt=0, le=1, description="Discount (gae and reinforce++ returns).")
    lam: float = Field(0.95, ge=0, le=1, description="GAE lambda.")
    clip_range: float = Field(0.2, gt=0, description="PPO policy ratio clip.")
    value_clip: float = Field(0.2, gt=0, description="Value loss clip.")
    vf_coef: float = Field(0.1, ge=0, description="Value loss weight.")
    entropy_coef: float = Field(0.0, ge=0, description="Entropy bonus weight (0: off, as in Llama 2).")
    learning_rate: float = Field(1e-6, gt=0, description="Policy LR, constant (Llama 2: 1e-6).")
    value_learning_rate: float | None = Field(None, description="Value LR (default: learning_rate).")
    value_warmup: int = Field(
        0, ge=0, description="First iterations that train only the value model (OpenRLHF's freezing_actor_steps). "
        "The value model starts as a reward model on its own scale; until it has learned the combined reward's "
        "per-prompt baseline, advantages follow the reward's scale (e.g. the safety RM's on safety prompts). "
        "Ignored (with a log line) by the critic-free estimators, which have no value model.")
    adam_betas: tuple[float, float] = Field((0.9, 0.95), description="AdamW betas (Llama 2: 0.9, 0.95).")
    adam_eps: float = Field(1e-5, gt=0, description="AdamW eps (Llama 2: 1e-5).")
    max_grad_norm: float = Field(1.0, gt=0, description="Gradient clipping (Llama 2: 1.0).")
    iterations: int = Field(200, gt=0, description="PPO iterations (rollout + optimisation).")
    rollout_batch_size: int = Field(64, gt=0, description="Prompts per iteration (Llama 2: 512).")
    minibatch_size: int = Field(16, gt=0, description="Minibatch size for PPO updates (Llama 2: 64).")
    ppo_epochs: int = Field(1, gt=0, description="Passes over each rollout batch.")
    temperature: float = Field(1.0, ge=0, description="Sampling temperature for rollouts.")
    top_p: float = Field(1.0, gt=0, le=1, description="Nucleus sampling.")
    max_new_tokens: int = Field(64, gt=0, description="Max response length.")
    max_prompt_length: int = Field(512, gt=0, description="Longer prompts keep their last tokens.")
    eval_batch_size: int = Field(64, gt=0, description="Prompts per generation batch in held-out evaluation.")
    activation_checkpointing: bool = Field(
        False, description="Recompute the policy's and value model's activations in the backward pass: less "
        "memory for long responses, about a third more training compute.")
    save_every: int = Field(20, gt=0, description="Checkpoint every N iterations.")
    eval_every: int = Field(20, gt=0, description="Evaluate on eval_prompts every N iterations.")
    early_stopping_patience: int | None = Field(
        None, description="Stop after N evals without a better held-out combined reward, and publish the best "
        "policy seen (null: run all iterations, publish the last).")

    @property
    def critic_free(self) -> bool:
        """No value model: the advantage comes from the rewards alone (grpo, rloo, reinforce++)."""
        return self.advantage in CRITIC_FREE

    @property
    def value_only_iterations(self) -> int:
        """Iterations that train the value model alone: value_warmup, or 0 without a value model."""
        return 0 if self.critic_free else self.value_warmup

    @model_validator(mode="after")
    def _samples_per_prompt_fit(self) -> PPOConfig:
        n = self.samples_per_prompt
        if self.advantage in PER_PROMPT and n < 2:
            raise ValueError(f"advantage {self.advantage} compares each response with the other responses to its "
                             "prompt: set samples_per_prompt to 2 or more (e.g. 4)")
        if self.rollout_batch_size % n:
            raise ValueError(f"rollout_batch_size ({self.rollout_batch_size}) must be a multiple of "
                             f"samples_per_prompt ({n}): each iteration samples rollout_batch_size / n prompts n times")
        return self

    @model_validator(mode="after")
    def _warmup_leaves_policy_iterations(self) -> PPOConfig:
        if self.value_only_iterations >= self.iterations:
            raise ValueError(f"value_warmup ({self.value_warmup}) must be below iterations ({self.iterations}): "
                             "the policy would never be trained")
        return self
