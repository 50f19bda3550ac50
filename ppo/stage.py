"""The PPO stage's declaration: its roles and their kinds, the shared threshold, resumable keys."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from camelid.stage import JobSpec, Stage
from camelid.stages import policy_kinds

if TYPE_CHECKING:
    from camelid.ppo.config import PPOConfig


@dataclass(frozen=True)
class PPOOptions:
    """Per-invocation hooks that are not settings (tests, benches)."""

    # f(trainer, metrics) after each iteration; one may raise camelid.ppo.trainer.StopTraining to end the run
    callbacks: tuple[Callable, ...] = ()


class PPOStage(Stage):
    name = "ppo"
    help = "PPO against the combined helpfulness/safety reward"
    description = ("PPO with the combined helpfulness/safety reward (Llama 2); publishes stages.ppo.output/vN. "
                   "`camelid ppo --resume stages.ppo.iterations=300` continues a run for more iterations.")
    config_model = "camelid.ppo.config:PPOConfig"
    shared = ("safety_threshold",)
    job_specs = (JobSpec("ppo", kind="ppo", checkpoint_marker="state.json", policy=True,
                         resume_keys=frozenset({"iterations", "save_every", "eval_every", "eval_batch_size",
                                                "report_to", "early_stopping_patience"}),
                         recipe="camelid.ppo.recipe:PPORecipe"),)

    def job(self, cfg, p: PPOConfig, options: PPOOptions | None = None):
        """The job of section ``p`` (stages.ppo, or a round's copy)."""
        policies = policy_kinds()
        inputs = {"policy": p.policy, "reward_helpfulness": p.reward_helpfulness, "reward_safety": p.reward_safety}
        kinds = {"policy": policies, "reward_helpfulness": ("reward",), "reward_safety": ("reward",)}
        if not p.critic_free:  # grpo, rloo, reinforce++ have no value model: value_init is not even resolved
            inputs["value_init"] = p.value_init
            kinds["value_init"] = ("reward", *policies)  # a causal LM gets a fresh value head
        if p.reference:
            inputs["reference"], kinds["reference"] = p.reference, policies
        return self.make_job(cfg, p, inputs=inputs, input_kinds=kinds, options=options or PPOOptions())

    def jobs(self, cfg):
        return [self.job(cfg, cfg.stages.ppo)]


STAGE = PPOStage()
