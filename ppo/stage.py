"""The PPO stage's declaration: its roles and their kinds, the shared threshold, resumable keys."""

from __future__ import annotations

from camelid.stage import Stage

POLICY_KINDS = ("base", "sft", "ppo", "rs")


class PPOStage(Stage):
    name = "ppo"
    kind = "ppo"
    help = "PPO against the combined helpfulness/safety reward"
    description = ("PPO with the combined helpfulness/safety reward (Llama 2); publishes stages.ppo.output/vN. "
                   "`camelid ppo --resume stages.ppo.iterations=300` continues a run for more iterations.")
    shared = ("safety_threshold",)
    resume_keys = frozenset({"iterations", "save_every", "eval_every", "eval_batch_size", "report_to",
                             "early_stopping_patience"})
    checkpoint_marker = "state.json"

    def jobs(self, cfg):
        p = cfg.stages.ppo
        inputs = {"policy": p.policy, "reward_helpfulness": p.reward_helpfulness, "reward_safety": p.reward_safety}
        kinds = {"policy": POLICY_KINDS, "reward_helpfulness": ("reward",), "reward_safety": ("reward",)}
        if not p.critic_free:  # grpo, rloo, reinforce++ have no value model: value_init is not even resolved
            inputs["value_init"] = p.value_init
            kinds["value_init"] = ("reward", *POLICY_KINDS)  # a causal LM gets a fresh value head
        if p.reference:
            inputs["reference"], kinds["reference"] = p.reference, POLICY_KINDS
        return [self.make_job(cfg, p, inputs=inputs, input_kinds=kinds)]

    def run(self, ctx):
        from camelid.ppo.recipe import run

        return run(ctx)


STAGE = PPOStage()
