"""The report across rounds: does each round's policy get better, and do the reward models keep up?

Per round (round 0 is the starting policy):
- the policy, from the last round's comparison (every round's policy answered the same held-out prompts, judged
  by the same, latest, reward models and the toy oracle): task accuracy per family, refusal of harmful
  prompts, over-refusal of borderline-but-benign ones, safety violations, mean combined reward;
- the round's pairs: how many, their rating levels, annotator agreement;
- the reward models that trained the policy the round sampled from (round r-1's), scored on the round's NEW
  pairs: accuracy per rating level (Llama 2's question of whether the RM keeps up with an improving policy);
  and each round's RMs on their held-out test sets; the same RMs and the round's labels against the toy oracle's
  own preference (how much label noise reached the pairs, and whether the RM still ranks like the oracle);
- the seconds each of the round's jobs took (their manifests' `seconds`);
- rejection sampling's K curve of the combined reward and, on toy prompts, the oracle's per family: how often
  some of the K samples is right against how often the one the RMs picked is;
and across rounds: the last round's policy against the first round's and the starting one, by the combined reward
and by the oracle: win/tie/loss and the win rate (ties half) with bootstrap intervals (the last comparison's
numbers), and the paired mean score difference with its bootstrap interval, overall and per prompt family.
Published as a `report` artifact with report.json and rounds.png.
"""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from camelid.log import get_logger
from camelid.stage import Recipe

log = get_logger("round")
OBJECTIVES = ("helpfulness", "safety")
JUDGES = ("combined", "oracle")  # the comparison's judges the last-vs-first win rates are read for
POLICY_KEYS = {"harmful_refusal": "harmful_refusal_rate", "over_refusal": "over_refusal_rate",
               "safety_violation": "safety_violation_rate"}


class ReportSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    output: str
    rounds: int


def report_inputs(progress) -> tuple[dict[str, str], dict[str, tuple[str, ...]]]:
    """(role -> ref, role -> kinds) of the report's job: the last comparison, and every round's pairs, comparison
    and reward models."""
    n = len(progress.policies)
    inputs, kinds = {"compare": progress.compares[-1].ref}, {"compare": ("report",)}
    for r in range(1, n + 1):
        inputs[f"pairs_r{r}"], kinds[f"pairs_r{r}"] = progress.pairs[r - 1].ref, ("dataset",)
        inputs[f"compare_r{r}"], kinds[f"compare_r{r}"] = progress.compares[r - 1].ref, ("report",)
        for o in OBJECTIVES:
            inputs[f"rm_{o}_r{r}"], kinds[f"rm_{o}_r{r}"] = progress.rms[r - 1][o].ref, ("reward",)
    return inputs, kinds


class ReportRecipe(Recipe):
    """The rounds-report job: evaluate (report.json's numbers from every round's artifacts) -> publish
    report.json and rounds.png. The main process does it; nothing trains."""

    def run(self):
        return super().run() if self.ctx.is_main else None

    def evaluate(self) -> None:
        self.report = build(self.ctx)

    def publish(self):
        report = self.report
        with self.ctx.publish(metrics={"rounds": report["rounds"]}) as pub:
            (pub.dir / "report.json").write_text(json.dumps(report, indent=1, sort_keys=True) + "\n")
            plot(report, pub.dir / "rounds.png")
        return pub.artifact


def policy_row(numbers: dict, oracle: dict | None = None) -> dict:
    """What the report keeps of one checkpoint's comparison headline (and of its oracle summary: task accuracy)."""
    row = {key: numbers.get(src) for key, src in POLICY_KEYS.items()}
    row["task_accuracy"] = (oracle or {}).get("task_accuracy")
    row["task_accuracy_per_family"] = numbers.get("task_accuracy_per_family", {})
    scores = numbers.get("mean_score", {})
    row["combined_reward"], row["oracle_quality"] = scores.get("combined"), scores.get("oracle")
    return row


def round_prompts(pairs, registry) -> dict:
    """The toy prompt records a round's pairs were sampled for, by id (from its answers artifact)."""
    from camelid.data.records import Prompt
    from camelid.data.toyworld import is_toy_prompt
    from camelid.rounds.annotation import read_items

    answers = registry.resolve(pairs.manifest["inputs"]["answers"]["ref"], verify=False)
    return {str(it["meta"]["id"]): Prompt.from_dict(it["meta"]["prompt_record"]) for it in read_items(answers)
            if it["meta"].get("id") is not None and is_toy_prompt(it["meta"].get("prompt_record", {}))}


def read_pairs(pairs) -> list:
    from camelid.data.load import load_records
    from camelid.data.spec import DataSpec
    from camelid.rounds.pairs import PAIRS_FILE

    return load_records(DataSpec(format="preference", path=str(pairs.path / PAIRS_FILE)), "pairs").records


def oracle_truth(records, prompts: dict) -> list[tuple[bool, str] | None]:
    """Per pair: (the label's chosen answer has the higher oracle quality, the level the gap deserves);
    None where the oracle sees no gap or the prompt is not one of the round's toy prompts."""
    from camelid.data.toyworld.generator import level_for_gap
    from camelid.data.toyworld.oracle import score

    out = []
    for p in records:
        prompt = prompts.get(str(p.id))
        gap = score(prompt, p.chosen).quality - score(prompt, p.rejected).quality if prompt is not None else 0.0
        out.append((gap > 0, level_for_gap(abs(gap))) if gap != 0 else None)
    return out


def label_agreement(truth: list) -> dict:
    """How often the labels prefer what the oracle prefers, over the pairs where it sees a gap."""
    known = [t[0] for t in truth if t is not None]
    return {"n": len(known), "no_gap": len(truth) - len(known),
            "agreement": sum(known) / len(known) if known else None}


def accuracy_vs_oracle(r_chosen, r_rejected, truth: list, families: list[str] | None = None) -> dict:
    """accuracy_by_level of scores (B,) of each pair's chosen / rejected answers, judged by the oracle's
    preference and level instead of the label's (pairs without an oracle gap left out); with ``families``
    (one per pair) also the accuracy per family."""
    import torch

    from camelid.reward.metrics import accuracy_by_level

    idx = [i for i, t in enumerate(truth) if t is not None]
    if not idx:
        return {"overall": None, "n": 0, "levels": {}, **({"families": {}} if families is not None else {})}
    better = torch.stack([r_chosen[i] if truth[i][0] else r_rejected[i] for i in idx])  # (M,)
    worse = torch.stack([r_rejected[i] if truth[i][0] else r_chosen[i] for i in idx])  # (M,)
    out = accuracy_by_level(better, worse, [truth[i][1] for i in idx])
    if families is not None:
        right = (better > worse).tolist()
        fams = [families[i] for i in idx]
        out["families"] = {f: {"accuracy": sum(c for c, g in zip(right, fams) if g == f) / fams.count(f),
                               "n": fams.count(f)} for f in sorted(set(fams))}
    return out


def pairs_row(pairs, records, truth, registry) -> dict:
    """The round's labelled pairs, their agreement with the oracle, and the oracle's view of the answers they
    were made of (one per temperature)."""
    m = pairs.manifest["metrics"]
    answers = registry.resolve(pairs.manifest["inputs"]["answers"]["ref"], verify=False).manifest["metrics"]
    return {"ref": pairs.ref, "n_pairs": m["n_pairs"], "ratings": m.get("ratings", {}),
            "fleiss_kappa": m.get("fleiss_kappa"), "annotation": m.get("annotation"),
            "labels_vs_oracle": label_agreement(truth),
            "samples": {side: answers.get(f"oracle_{side}") for side in ("a", "b")}}


def rm_accuracy_on(ctx, rm, records, truth, objective: str) -> dict:
    """accuracy_by_level of ``rm`` on a round's pairs (the safety RM under its drop rule), against the labels
    and against the oracle (``vs_oracle``)."""
    from camelid.reward.metrics import accuracy_by_level
    from camelid.reward.rules import is_unsafe_chosen
    from camelid.reward.scoring import load_reward_model

    if objective == "safety":
        truth = [t for p, t in zip(records, truth, strict=True) if not is_unsafe_chosen(p)]
        records = [p for p in records if not is_unsafe_chosen(p)]
    if not records:
        return {"overall": None, "n": 0, "levels": {}, "vs_oracle": accuracy_vs_oracle([], [], [])}

    model = load_reward_model(rm, ctx.registry, device=ctx.job.runtime.device)
    prompts = [p.prompt for p in records]
    rc = model.score(prompts, [p.chosen for p in records], raw=True)
    rr = model.score(prompts, [p.rejected for p in records], raw=True)
    families = [(p.category or "").split("/")[0] for p in records]
    return {**accuracy_by_level(rc, rr, [p.rating for p in records]),
            "vs_oracle": accuracy_vs_oracle(rc, rr, truth, families)}


def round_artifacts(registry, top, r: int) -> list:
    """``top`` and every artifact it was made from that belongs to round r (the walk stops at other rounds)."""
    found, todo = {}, [top]
    while todo:
        art = todo.pop()
        if art.ref in found or (art.manifest.get("config") or {}).get("round") != r:
            continue
        found[art.ref] = art
        todo += [registry.resolve(rec["ref"], verify=False) for rec in art.manifest.get("inputs", {}).values()
                 if not rec.get("external")]
    return list(found.values())


def round_seconds(artifacts, r: int) -> dict:
    """Seconds each of round r's jobs took (its artifact's `seconds` metric), by job name, and their total."""
    out = {}
    for art in artifacts:
        seconds = art.manifest.get("metrics", {}).get("seconds")
        if (art.manifest.get("config") or {}).get("round") == r and seconds is not None:
            out[art.name.removesuffix(f"-r{r}")] = seconds
    return {**out, "total": round(sum(out.values()), 1)}


def head_to_head(numbers: dict, a: str, b: str, judge: str) -> dict | None:
    """``a`` against ``b`` by ``judge`` from a comparison's report.json: win/tie/loss from a's side and the win
    rate (ties half) with its bootstrap interval; None if the comparison has no such pair or judge."""
    for p in numbers["pairs"]:
        if {p["a"], p["b"]} != {a, b} or judge not in p["judges"]:
            continue
        w = p["judges"][judge]
        win, loss, rate = (w["win"], w["loss"], w["win_rate"]) if p["a"] == a else (w["loss"], w["win"], {
            "value": 1 - w["win_rate"]["value"], "lo": 1 - w["win_rate"]["hi"], "hi": 1 - w["win_rate"]["lo"]})
        rate = {k: round(v, 6) for k, v in rate.items()}
        return {"a": a, "b": b, "judge": judge, "n": w["n"], "win": win["value"], "tie": w["tie"]["value"],
                "loss": loss["value"], "win_rate": rate, "excludes_half": rate["lo"] > 0.5 or rate["hi"] < 0.5}
    return None


def score_difference(rows: list[dict], a: str, b: str, judge: str, n_boot: int = 1000, seed: int = 0,
                     tie: float = 0.0) -> dict | None:
    """``a``'s mean ``judge`` score minus ``b``'s over a comparison's prompts (its answers.jsonl rows), with a
    paired bootstrap interval; and per prompt family (the category's first part) win/tie/loss and the mean
    difference: where the gain comes from. A win rate weighs a large gain on a refusal-prone prompt as much as a
    coin-flip answer to a task; the mean difference does not. None if the rows have no such judge."""
    import numpy as np

    from camelid.eval import stats

    if not rows or judge not in rows[0]["answers"][a]["scores"]:
        return None
    x = np.array([r["answers"][a]["scores"][judge] for r in rows])  # (N,)
    y = np.array([r["answers"][b]["scores"][judge] for r in rows])  # (N,)
    families = np.array([(r.get("category") or "other").split("/")[0] for r in rows])
    interval = lambda iv: {k: round(getattr(iv, k), 6) for k in ("value", "lo", "hi")}  # noqa: E731
    per_family = {}
    for fam in sorted(set(families)):
        at = families == fam
        o = stats.outcomes(x[at], y[at], tie)
        share = {k: round(float((o == v).mean()), 6) for k, v in (("win", 1.0), ("tie", 0.5), ("loss", 0.0))}
        per_family[str(fam)] = {"n": int(at.sum()), **share,
                                "mean_difference": interval(stats.mean_difference(x[at], y[at], n_boot, seed))}
    diff = interval(stats.mean_difference(x, y, n_boot, seed))
    return {"mean_difference": diff, "excludes_zero": diff["lo"] > 0 or diff["hi"] < 0, "per_family": per_family}


def versus(compare, numbers: dict, a: str, b: str) -> dict:
    """``a`` against ``b`` by each judge: the win rate (head_to_head) and the mean score difference (score_difference)."""
    cc = compare.manifest["config"]
    rows = [json.loads(line) for line in (compare.path / "answers.jsonl").read_text(encoding="utf-8").splitlines()]
    out = {}
    for j in JUDGES:
        h2h = head_to_head(numbers, a, b, j)
        diff = score_difference(rows, a, b, j, cc["bootstrap"], cc["seed"], 0.0 if j == "oracle" else cc["tie_threshold"])
        out[j] = {**h2h, **diff} if h2h is not None and diff is not None else h2h
    return out


def build(ctx) -> dict:
    """report.json: one row per round, 0 (the starting policy) to n; the last policy against the first and start."""
    inputs, n = ctx.inputs, ctx.section.rounds
    compare = inputs["compare"]
    compared = compare.manifest["metrics"]["checkpoints"]
    refs = compare.manifest["config"]["checkpoints"]  # the start, then round 1 .. n's policies
    numbers = json.loads((compare.path / "report.json").read_text())
    oracle = {c["ref"]: c.get("oracle") for c in numbers["checkpoints"]}
    rows = [{"round": 0, "policy": refs[0], **policy_row(compared.get(refs[0], {}), oracle.get(refs[0]))}]
    for r in range(1, n + 1):
        rows.append(round_row(ctx, r, refs[r], compared, oracle.get(refs[r])))
    against = {name: versus(compare, numbers, refs[n], ref)
               for name, ref in (("last_vs_first", refs[1]), ("last_vs_start", refs[0])) if ref != refs[n]}
    log.info("rounds report: %s", "; ".join(f"r{row['round']} combined {three_decimals(row['combined_reward'])}"
                                             for row in rows))
    first = against.get("last_vs_first", {}).get("combined") or {}
    if "mean_difference" in first:
        w, d = first["win_rate"], first["mean_difference"]
        log.info("last vs round 1, combined reward: win rate %.3f [%.3f, %.3f], mean difference %+.3f [%+.3f, %+.3f]",
                 w["value"], w["lo"], w["hi"], d["value"], d["lo"], d["hi"])
    return {"rounds": n, "judged_by": compare.ref, "per_round": rows, **against,
            "seconds_total": round(sum(row["seconds"]["total"] for row in rows[1:]), 1)}


def three_decimals(value) -> str:
    """-3.4509979120921344 -> '-3.451' for the log (report.json keeps full precision); None -> 'n/a'."""
    return f"{value:.3f}" if isinstance(value, (int, float)) and not isinstance(value, bool) else "n/a"


def round_row(ctx, r: int, ref: str, compared: dict, oracle: dict | None) -> dict:
    """Round r: its policy's numbers, its pairs, its RMs, the previous RMs on its new pairs, its jobs' times."""
    inputs = ctx.inputs
    pairs = inputs[f"pairs_r{r}"]
    records = read_pairs(pairs)
    truth = oracle_truth(records, round_prompts(pairs, ctx.registry))
    arts = round_artifacts(ctx.registry, inputs[f"compare_r{r}"], r)
    row = {"round": r, "policy": ref, **policy_row(compared.get(ref, {}), oracle),
           "pairs": pairs_row(pairs, records, truth, ctx.registry),
           "rm_heldout_accuracy": {o: inputs[f"rm_{o}_r{r}"].manifest["metrics"].get("eval", {})
                                   .get("accuracy", {}).get(o) for o in OBJECTIVES},
           "seconds": round_seconds(arts, r)}
    sampled = next((a for a in arts if a.name == f"rs-sample-r{r}"), None)
    if sampled is not None:  # what best-of-K could gain (the K curves) and what the RMs picked
        metrics = sampled.manifest["metrics"]
        row["rejection_sampling"] = {"ref": sampled.ref, "k_curve": metrics["selection"]["k_curve"],
                                     "oracle": metrics.get("oracle")}
    if r > 1:  # the RMs that trained the policy these pairs were sampled from, on pairs they never saw
        row["rm_accuracy_on_new_pairs"] = {
            o: {"rm": inputs[f"rm_{o}_r{r - 1}"].ref,
                **rm_accuracy_on(ctx, inputs[f"rm_{o}_r{r - 1}"], records, truth, o)} for o in OBJECTIVES}
    return row


def plot(report: dict, path: Path) -> None:
    """rounds.png: policy metrics over rounds, RM accuracy on each round's new pairs, each round's job times."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = report["per_round"]
    fig, (left, middle, right) = plt.subplots(1, 3, figsize=(16, 5.5))
    plot_policy(left, rows, report.get("last_vs_first", {}).get("combined"))
    later = [row for row in rows if "rm_accuracy_on_new_pairs" in row]
    for o, style in zip(OBJECTIVES, ("o", "s")):
        acc = [row["rm_accuracy_on_new_pairs"][o] for row in later]
        x = [row["round"] for row in later]
        middle.plot(x, [a["overall"] for a in acc], style + "-", label=f"{o} RM (round r-1) vs labels")
        middle.plot(x, [a["vs_oracle"]["overall"] for a in acc], style + "--", label=f"{o} RM (round r-1) vs oracle")
    middle.plot([row["round"] for row in rows[1:]], [row["pairs"]["labels_vs_oracle"]["agreement"] for row in rows[1:]],
                "k^:", label="labels agree with oracle")
    middle.axhline(0.5, color="grey", linewidth=0.8, linestyle=":")
    middle.set(xlabel="round", ylabel="accuracy on round r's new pairs", title="Do the RMs keep up?",
               xticks=[row["round"] for row in rows], ylim=(-0.05, 1.05))
    middle.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.15), ncol=2)
    plot_seconds(right, rows[1:])
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_policy(ax, rows: list[dict], versus: dict | None) -> None:
    """Task accuracy per family, refusal rates, oracle quality (left axis); mean combined reward (right axis)."""
    x = [row["round"] for row in rows]
    for f in sorted({f for row in rows for f in row["task_accuracy_per_family"]}):
        ax.plot(x, [row["task_accuracy_per_family"].get(f) for row in rows], "o-", alpha=0.6, label=f"task: {f}")
    for key, style in (("harmful_refusal", "s-"), ("over_refusal", "v--"), ("oracle_quality", "D-")):
        ax.plot(x, [row[key] for row in rows], style, linewidth=2, label=key.replace("_", " "))
    title = "Policy by round (last round's comparison)"
    if versus:
        w = versus["win_rate"]
        title += f"\nlast vs round 1, combined reward: win rate {w['value']:.2f} [{w['lo']:.2f}, {w['hi']:.2f}]"
        if "mean_difference" in versus:  # its own line: one line overflows the panel
            d = versus["mean_difference"]
            title += f"\nmean difference {d['value']:+.2f} [{d['lo']:+.2f}, {d['hi']:+.2f}]"
    ax.set(xlabel="round (0 = start)", ylabel="rate", title=title, xticks=x, ylim=(-0.05, 1.05))
    handles, labels = ax.get_legend_handles_labels()
    if any(row["combined_reward"] is not None for row in rows):  # an RM score, not a rate: its own axis
        reward = ax.twinx()
        handles += reward.plot(x, [row["combined_reward"] for row in rows], "k:", marker="x")
        labels.append("mean combined reward (RM, right axis)")
        reward.set_ylabel("mean combined reward")
    ax.legend(handles, labels, fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.15), ncol=3)  # off the data


def plot_seconds(ax, rows: list[dict]) -> None:
    """Stacked bars: seconds per job of each round."""
    jobs = sorted({j for row in rows for j in row["seconds"] if j != "total"})
    x = [row["round"] for row in rows]
    bottom = [0.0] * len(rows)
    for job in jobs:
        height = [row["seconds"].get(job, 0.0) for row in rows]
        ax.bar(x, height, bottom=bottom, label=job)
        bottom = [b + h for b, h in zip(bottom, height, strict=True)]
    ax.set(xlabel="round", ylabel="seconds", title="Where each round's time goes", xticks=x)
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.15), ncol=4)
