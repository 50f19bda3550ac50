"""The report across rounds: does each round's policy get better, and do the reward models keep up?

Per round (round 0 is the starting policy):
- the policy, from the last round's comparison (every round's policy answered the same held-out prompts, judged
  by the same, latest, reward models and the toy oracle): task accuracy per family, refusal of harmful
  prompts, over-refusal of borderline-but-benign ones, safety violations, mean combined reward;
- the round's pairs: how many, their rating levels, annotator agreement;
- the reward models that trained the policy the round sampled from (round r-1's), scored on the round's NEW
  pairs: accuracy per rating level (Llama 2's question of whether the RM keeps up with an improving policy);
  and each round's RMs on their held-out test sets.
Published as a `report` artifact with report.json and rounds.png.
"""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from camelid.log import get_logger
from camelid.stage import Stage

log = get_logger("round")
OBJECTIVES = ("helpfulness", "safety")
POLICY_KEYS = {"harmful_refusal": "harmful_refusal_rate", "over_refusal": "over_refusal_rate",
               "safety_violation": "safety_violation_rate"}


class ReportSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    output: str
    rounds: int


class RoundsReportStage(Stage):
    name = "rounds-report"
    kind = "report"
    help = "The report across rounds: policy quality and RM accuracy on each round's new pairs"

    def jobs(self, cfg):
        return []  # made by camelid.rounds.cmd once every round is done

    def job(self, cfg, progress):
        n = len(progress.policies)
        inputs, kinds = {"compare": progress.compares[-1].ref}, {"compare": ("report",)}
        for r in range(1, n + 1):
            inputs[f"pairs_r{r}"], kinds[f"pairs_r{r}"] = progress.pairs[r - 1].ref, ("dataset",)
            for o in OBJECTIVES:
                inputs[f"rm_{o}_r{r}"], kinds[f"rm_{o}_r{r}"] = progress.rms[r - 1][o].ref, ("reward",)
        return self.make_job(cfg, ReportSettings(output=cfg.rounds.report_output, rounds=n), inputs=inputs,
                             input_kinds=kinds, where="rounds")

    def run(self, ctx):
        if not ctx.is_main:
            return None
        report = build(ctx)
        with ctx.publish(metrics={"rounds": report["rounds"]}) as pub:
            (pub.dir / "report.json").write_text(json.dumps(report, indent=1, sort_keys=True) + "\n")
            plot(report, pub.dir / "rounds.png")
        return pub.artifact


def policy_row(numbers: dict) -> dict:
    """What the report keeps of one checkpoint's comparison headline."""
    row = {key: numbers.get(src) for key, src in POLICY_KEYS.items()}
    row["task_accuracy_per_family"] = numbers.get("task_accuracy_per_family", {})
    scores = numbers.get("mean_score", {})
    row["combined_reward"], row["oracle_quality"] = scores.get("combined"), scores.get("oracle")
    return row


def pairs_row(pairs, registry) -> dict:
    """The round's labelled pairs, and the oracle's view of the answers they were made of (one per temperature)."""
    m = pairs.manifest["metrics"]
    answers = registry.resolve(pairs.manifest["inputs"]["answers"]["ref"], verify=False).manifest["metrics"]
    return {"ref": pairs.ref, "n_pairs": m["n_pairs"], "ratings": m.get("ratings", {}),
            "fleiss_kappa": m.get("fleiss_kappa"), "annotation": m.get("annotation"),
            "samples": {side: answers.get(f"oracle_{side}") for side in ("a", "b")}}


def rm_accuracy_on(ctx, rm, pairs, objective: str) -> dict:
    """accuracy_by_level of ``rm`` on the pairs of a dataset artifact (the safety RM under its drop rule)."""
    from camelid.data.load import load_records
    from camelid.data.spec import DataSpec
    from camelid.reward.metrics import accuracy_by_level
    from camelid.reward.rules import drop_unsafe_chosen
    from camelid.reward.scoring import load_reward_model
    from camelid.rounds.stages import PAIRS_FILE

    records = load_records(DataSpec(format="preference", path=str(pairs.path / PAIRS_FILE)), "pairs").records
    if objective == "safety":
        records, _ = drop_unsafe_chosen(records)
    if not records:
        return {"overall": None, "n": 0, "levels": {}}
    model = load_reward_model(rm, ctx.registry, device=ctx.cfg.device)
    prompts = [p.prompt for p in records]
    rc = model.score(prompts, [p.chosen for p in records], raw=True)
    rr = model.score(prompts, [p.rejected for p in records], raw=True)
    return accuracy_by_level(rc, rr, [p.rating for p in records])


def build(ctx) -> dict:
    """report.json: one row per round, 0 (the starting policy) to n."""
    inputs, n = ctx.inputs, ctx.section.rounds
    compared = inputs["compare"].manifest["metrics"]["checkpoints"]
    refs = inputs["compare"].manifest["config"]["checkpoints"]  # the start, then round 1 .. n's policies
    rows = [{"round": 0, "policy": refs[0], **policy_row(compared.get(refs[0], {}))}]
    for r in range(1, n + 1):
        pairs = inputs[f"pairs_r{r}"]
        row = {"round": r, "policy": refs[r], **policy_row(compared.get(refs[r], {})), "pairs": pairs_row(pairs, ctx.registry),
               "rm_heldout_accuracy": {o: inputs[f"rm_{o}_r{r}"].manifest["metrics"].get("eval", {})
                                       .get("accuracy", {}).get(o) for o in OBJECTIVES}}
        if r > 1:  # the RMs that trained the policy these pairs were sampled from, on pairs they never saw
            row["rm_accuracy_on_new_pairs"] = {
                o: {"rm": inputs[f"rm_{o}_r{r - 1}"].ref,
                    **rm_accuracy_on(ctx, inputs[f"rm_{o}_r{r - 1}"], pairs, o)} for o in OBJECTIVES}
        rows.append(row)
    log.info("rounds report: %s", "; ".join(f"r{row['round']} combined {row['combined_reward']}" for row in rows))
    return {"rounds": n, "judged_by": inputs["compare"].ref, "per_round": rows}


def plot(report: dict, path: Path) -> None:
    """rounds.png: policy metrics over rounds (left), RM accuracy on each round's new pairs (right)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = report["per_round"]
    x = [row["round"] for row in rows]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    families = sorted({f for row in rows for f in row["task_accuracy_per_family"]})
    for f in families:
        left.plot(x, [row["task_accuracy_per_family"].get(f) for row in rows], "o-", alpha=0.6, label=f"task: {f}")
    for key, style in (("harmful_refusal", "s-"), ("over_refusal", "v--"), ("oracle_quality", "D-")):
        left.plot(x, [row[key] for row in rows], style, linewidth=2, label=key.replace("_", " "))
    left.set(xlabel="round (0 = start)", ylabel="rate", title="Policy by round (last round's comparison)",
             xticks=x, ylim=(-0.05, 1.05))
    left.legend(fontsize=7, loc="upper left")
    if any(row["combined_reward"] is not None for row in rows):  # an RM score, not a rate: its own axis
        reward = left.twinx()
        reward.plot(x, [row["combined_reward"] for row in rows], "k:", marker="x", label="combined reward (RM)")
        reward.set_ylabel("mean combined reward")
        reward.legend(fontsize=7, loc="upper right")
    later = [row for row in rows if "rm_accuracy_on_new_pairs" in row]
    for o, style in zip(OBJECTIVES, ("o-", "s-")):
        right.plot([row["round"] for row in later], [row["rm_accuracy_on_new_pairs"][o]["overall"] for row in later],
                   style, label=f"{o} RM (round r-1) on round r's pairs")
    right.axhline(0.5, color="grey", linewidth=0.8, linestyle=":")
    right.set(xlabel="round", ylabel="accuracy", title="Do the RMs keep up?", xticks=x, ylim=(-0.05, 1.05))
    right.legend(fontsize=7, loc="best")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


STAGE = RoundsReportStage()
