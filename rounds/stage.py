"""The round stage's declaration: the three jobs `camelid round` adds to the other stages' jobs.

    round-sample   answers-r<r>    a dataset: two answers per new prompt from the latest policy
    round-label    pairs-r<r>      a dataset: those pairs labelled (simulated annotators or people)
    rounds-report  rounds-report   a report across rounds

Their settings depend on the round (camelid.rounds.plan makes them), so ``jobs(cfg)`` offers none to
`camelid run`; the stage's command is `camelid round` (camelid.rounds.cmd), which runs them between each round's
reward, rs / ppo and compare jobs. Its section is the top-level `rounds:` of pipelines.yaml.
"""

from __future__ import annotations

from camelid.stage import JobSpec, Stage
from camelid.stages import policy_kinds

SAMPLE = JobSpec("round-sample", kind="dataset", recipe="camelid.rounds.pairs:SampleRecipe")
LABEL = JobSpec("round-label", kind="dataset", recipe="camelid.rounds.pairs:LabelRecipe")
REPORT = JobSpec("rounds-report", kind="report", recipe="camelid.rounds.report:ReportRecipe")


class RoundStage(Stage):
    name = "round"
    help = "Iterative rounds: pairs -> annotation -> both RMs -> rs/ppo -> compare"
    config_model = "camelid.rounds.config:RoundsConfig"
    config_key = "rounds"
    job_specs = (SAMPLE, LABEL, REPORT)

    def jobs(self, cfg):
        return []  # made per round by camelid.rounds.plan, from what the earlier rounds published

    def sample_job(self, cfg, settings, policy: str):
        """Round ``settings.round``'s answer pairs from ``policy`` (settings: camelid.rounds.pairs.SampleSettings)."""
        return self.make_job(cfg, settings, spec=SAMPLE.name, name=f"round-sample-r{settings.round}",
                             inputs={"policy": policy}, input_kinds={"policy": policy_kinds()}, where="rounds")

    def label_job(self, cfg, settings, answers: str):
        """Round ``settings.round``'s labels of ``answers`` (settings: camelid.rounds.pairs.LabelSettings)."""
        return self.make_job(cfg, settings, spec=LABEL.name, name=f"round-label-r{settings.round}",
                             inputs={"answers": answers}, input_kinds={"answers": ("dataset",)},
                             where="rounds.annotation")

    def report_job(self, cfg, progress):
        """The report across the rounds of ``progress`` (camelid.rounds.cmd.Progress)."""
        from camelid.rounds.report import ReportSettings, report_inputs

        inputs, kinds = report_inputs(progress)
        settings = ReportSettings(output=cfg.rounds.report_output, rounds=len(progress.policies))
        return self.make_job(cfg, settings, spec=REPORT.name, inputs=inputs, input_kinds=kinds, where="rounds")

    def main(self, argv: list[str]) -> int:
        from camelid.rounds.cmd import main

        return main(argv)


STAGE = RoundStage()
