"""The two jobs a round adds to the existing stages: sample answer pairs, and label them.

    round-sample   answers-r<r>   two answers per new prompt from the latest policy, at two temperatures
                                  (eval/annotate/importers.py's sampler), as A/B rows for the annotation app
    round-label    pairs-r<r>     the labels: simulated annotators (camelid.data.toyworld.annotator) or people
                                  write the annotation database's labels table, and `camelid annotate export`'s
                                  majority rule turns it into preference pairs the reward stage reads

They are jobs of the round stage (camelid.rounds.stage), so the one driver runs them (skip-if-up-to-date,
run folders, lineage); only `camelid round` makes them, because their settings depend on the round.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict

from camelid.data.records import Prompt
from camelid.data.spec import DataSpec
from camelid.errors import DataError
from camelid.log import get_logger
from camelid.stage import Recipe

log = get_logger("round")
ANSWERS_FILE = "answers.jsonl"  # A/B rows: {prompt, response_a, response_b, meta}
PAIRS_FILE = "pairs.jsonl"      # preference pairs (the reward stage reads them through `registry:`)


class SampleSettings(BaseModel):
    """What one round's pair sampling reads (built by camelid.rounds.plan, published as the job's config)."""

    model_config = ConfigDict(extra="forbid")
    round: int
    output: str
    prompts: DataSpec        # n = offset + pairs_per_round: the round keeps the records from `offset` on
    offset: int
    temperatures: tuple[float, float]
    top_p: float
    max_new_tokens: int
    seed: int
    tries: int


class LabelSettings(BaseModel):
    """What one round's labelling reads: rounds.annotation's settings for this round, with its database path."""

    model_config = ConfigDict(extra="forbid")
    round: int
    output: str
    mode: Literal["simulated", "human"]
    annotators: int
    flip: float
    jitter: float
    safety_flip: float
    seed: int
    db: str                  # human: the round's resolved database; simulated: "" (labels go to the run folder)


class SampleRecipe(Recipe):
    """The round-sample job: setup (the round's new prompts) -> train (two answers per prompt: sampling is this
    job's work) -> evaluate (how good both temperatures' answers are) -> publish the annotation app's A/B rows.
    One process does it all; the driver hands the others its artifact."""

    def run(self):
        return super().run() if self.ctx.is_main else None

    def setup(self) -> None:
        self.settings: SampleSettings = self.ctx.section
        self.prompts = round_prompts(self.settings)

    def train(self) -> None:
        self.items = sample_items(self.ctx, self.settings, self.prompts)

    def evaluate(self) -> None:
        s, items, prompts = self.settings, self.items, self.prompts
        self.ctx.run_dir.mkdir(parents=True, exist_ok=True)
        self.metrics = {"round": s.round, "prompts": len(prompts), "pairs": len(items),
                        "identical_dropped": len(prompts) - len(items), **answer_quality(items)}
        log.info("round %d: %d pairs from %d prompts (%d dropped: both answers the same in %d tries)", s.round,
                 len(items), len(prompts), self.metrics["identical_dropped"], s.tries)

    def publish(self):
        text = "".join(json.dumps(it, ensure_ascii=False) + "\n" for it in self.items)
        with self.ctx.publish(metrics=self.metrics) as pub:
            (pub.dir / ANSWERS_FILE).write_text(text, encoding="utf-8")
        return pub.artifact


def round_prompts(s: SampleSettings) -> list[Prompt]:
    """The round's new prompts: records offset .. offset + pairs_per_round of the prompt source."""
    from camelid.data.load import load_records

    records = load_records(s.prompts, "prompts").records[s.offset:]
    if not records:
        raise DataError(f"rounds.prompts: no prompts left after offset {s.offset} for round {s.round} "
                        f"({s.prompts.path or s.prompts.format} has fewer); lower rounds.prompt_offset or "
                        "rounds.pairs_per_round, or give a larger prompt source")
    return records


def sample_items(ctx, s: SampleSettings, prompts: list[Prompt]) -> list[dict]:
    """A/B rows for the annotation queue, in prompt order; each keeps its prompt record (the oracle reads it).

    A prompt whose two answers came out the same is sampled again with the next seed, up to ``s.tries`` times.
    """
    from camelid.eval.annotate.importers import items_from_checkpoints

    found: dict[int, dict] = {}
    todo = list(range(len(prompts)))
    for attempt in range(s.tries):
        items, _ = items_from_checkpoints([ctx.inputs["policy"].ref], [prompts[i] for i in todo],
                                          registry_root=ctx.registry.root, temperatures=s.temperatures,
                                          top_p=s.top_p, max_new_tokens=s.max_new_tokens, seed=s.seed + 1000 * attempt)
        remaining = iter(todo)
        for it in items:  # items keep prompt order, leaving out those whose two answers were the same
            i = next(j for j in remaining if prompts[j].messages == it["prompt"])
            it["meta"].update(round=s.round, prompt_record=prompts[i].to_dict(), attempt=attempt + 1)
            found[i] = it
        todo = [i for i in todo if i not in found]
        if not todo:
            break
    return [found[i] for i in sorted(found)]


def answer_quality(items: list[dict]) -> dict:
    """The oracle's summary of each temperature's answers (toy prompts only): how good the policy's samples are."""
    from camelid.data.toyworld import all_toy_prompts, evaluate

    prompts = [Prompt.from_dict(it["meta"]["prompt_record"]) for it in items]
    if not all_toy_prompts(prompts):
        return {}
    out = {}
    for side in ("a", "b"):
        summary = evaluate(prompts, [it[f"response_{side}"] for it in items])
        out[f"oracle_{side}"] = {k: summary[k] for k in ("quality", "task_accuracy", "harmful_refusal",
                                                         "over_refusal")}
    return out


class LabelRecipe(Recipe):
    """The round-label job: setup (the round's answer pairs, its annotation database) -> train (simulated
    annotators label them; people already have) -> evaluate (the majority label per pair, their counts) ->
    publish the preference pairs. One process does it all."""

    def run(self):
        return super().run() if self.ctx.is_main else None

    def setup(self) -> None:
        from camelid.rounds.annotation import open_db, read_items

        ctx = self.ctx
        s = self.settings = ctx.section
        self.items = read_items(ctx.inputs["answers"])
        ctx.run_dir.mkdir(parents=True, exist_ok=True)
        if s.mode == "simulated":
            self.db = open_db(ctx.run_dir / "annotations.sqlite", fresh=True)
            self.db.add_pairs(self.items, k=s.annotators)
        else:
            self.db = open_db(Path(s.db))

    def train(self) -> None:
        from camelid.rounds.annotation import label_simulated

        if self.settings.mode == "simulated":
            label_simulated(self.db, self.settings)

    def evaluate(self) -> None:
        from camelid.eval.annotate.export import export_records

        s, db = self.settings, self.db
        self.records, self.summary = export_records(db, "majority")
        if not self.records:
            raise DataError(f"round {s.round}: no labelled pairs in {db.path} yet; label them in the annotation "
                            f"app (`camelid annotate serve --db {db.path}`), then run `camelid round --continue`")

    def publish(self):
        from camelid.eval.annotate.export import to_jsonl

        s: LabelSettings = self.settings
        records, summary = self.records, self.summary
        metrics = {"round": s.round, "annotation": s.mode, "answer_pairs": len(self.items),
                   "ratings": dict(Counter(r.rating for r in records)), **summary}
        with self.ctx.publish(metrics=metrics) as pub:
            (pub.dir / PAIRS_FILE).write_text(to_jsonl(records), encoding="utf-8")
        log.info("round %d: %d labelled pairs (%d labels, %s)", s.round, len(records), summary["n_labels"], s.mode)
        return pub.artifact
