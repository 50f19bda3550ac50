"""`camelid rs`: Llama 2's rejection sampling (RLHF-V1..V4), as two jobs.

    rs-sample   setup    load the prompts, the policy and both reward models
                sample   per batch of prompts: K answers (plus the greedy answer when a margin is set),
                         scored by both RMs and combined by camelid.reward.combined (the scorer ppo uses);
                         each finished batch is a checkpoint in the run folder, so --resume skips it
                select   the best of K per prompt, the margin, the K curve (camelid.rs.sampling)
                publish  kept.jsonl (chat conversations) as a dataset artifact, the statistics as metrics
    rs          the SFT recipe (loss on answers only) on the kept answers, from the policy; publishes rs/vN
                with the selection statistics

Under accelerate / torchrun each process samples a contiguous share of the batches (eval/share.py); the
rows are gathered in prompt order and the main process selects and publishes.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import time
from pathlib import Path

import numpy as np

from camelid.errors import ConfigError, DataError
from camelid.log import get_logger
from camelid.registry import Artifact
from camelid.rs.config import KEPT_FORMAT, RSConfig
from camelid.rs.sampling import select, selection_stats
from camelid.sft.recipe import SFTRecipe
from camelid.stage import Recipe, StageContext

log = get_logger("rs")
KEPT_FILE = "kept.jsonl"      # the dataset artifact's only data file (a `registry:` path reads every one)
BATCH_FILE = "samples.json"   # a sampling checkpoint's rows: every answer and score of one batch
CHECKPOINT_PREFIX = "checkpoint-"


class RejectionSampler(Recipe):
    """The rs-sample job: setup -> train (sample K answers per prompt, scored) -> evaluate (select the best, the
    statistics) -> publish (kept.jsonl)."""

    def __init__(self, ctx: StageContext):
        self.ctx = ctx
        self.settings: RSConfig = ctx.section  # the typed stages.rs section
        self.threshold = ctx.job.shared["safety_threshold"]
        self.seconds = {"generate": 0.0, "score": 0.0}

    # ---- setup ------------------------------------------------------------------------------------
    def setup(self) -> None:
        from camelid.data.load import load_records
        from camelid.models import load_causal_lm
        from camelid.reward.combined import load_combined_scorer

        ctx, sc = self.ctx, self.settings
        self.prompts = load_records(sc.prompts, "prompts")
        if not self.prompts.records:
            raise DataError(f"{ctx.job.where}.prompts: no prompts ({self.prompts.summary()})")
        log.info("prompts %s", self.prompts.summary())
        runtime = ctx.job.runtime
        self.policy, self.tokenizer = load_causal_lm(ctx.inputs["policy"], precision=sc.precision,
                                                     device=runtime.device,
                                                     trust_remote_code=runtime.trust_remote_code)
        self.rewards = load_combined_scorer(ctx.inputs["reward_helpfulness"], ctx.inputs["reward_safety"],
                                            ctx.registry, threshold=self.threshold, device=runtime.device,
                                            precision=sc.precision)

    # ---- sample -----------------------------------------------------------------------------------
    def train(self) -> None:
        """Sampling is this job's main loop: every process's rows, in prompt order."""
        self.rows = self.sample()

    def sample(self) -> list[dict]:
        """This process's batches (read back from checkpoints where done), then every process's rows in order."""
        from camelid.eval.share import Share

        records, bs = self.prompts.records, self.settings.batch_size
        n_batches = -(-len(records) // bs)
        share = Share.of(self.ctx.state, n_batches)
        mine = range(n_batches)[share.indices]
        rows, self.resumed_batches = [], 0
        for b in mine:
            batch = records[b * bs:(b + 1) * bs]
            done = self._read_batch(b, batch)
            if done is not None:
                self.resumed_batches += 1
                log.info("batch %d/%d: read back from its checkpoint", b + 1, n_batches)
            else:
                done = self._sample_batch(b, batch)
                self._write_batch(b, done)
                log.info("batch %d/%d: %d prompts x %d answers", b + 1, n_batches, len(batch), self.settings.k)
            rows += done
        self.resumed_batches = sum(share.gather([self.resumed_batches]))  # over every process
        return share.gather(rows)

    def _sample_batch(self, b: int, prompts: list) -> list[dict]:
        from camelid.models import generate

        sc, k = self.settings, self.settings.k
        conversations = [p.messages for p in prompts]
        repeated = [c for c in conversations for _ in range(k)]  # prompt-major: answers of prompt i at i*k..
        t0 = time.perf_counter()
        # One seed per batch: a batch's answers are the same whichever process samples it, resumed or not.
        answers = generate(self.policy, self.tokenizer, repeated, max_new_tokens=sc.max_new_tokens,
                           temperature=sc.temperature, top_p=sc.top_p, seed=sc.seed + b, batch_size=len(repeated))
        current = None
        if sc.margin is not None:  # the policy's current answer: greedy
            current = generate(self.policy, self.tokenizer, conversations, max_new_tokens=sc.max_new_tokens,
                               batch_size=len(conversations))
        self.seconds["generate"] += time.perf_counter() - t0
        t0 = time.perf_counter()
        rh, rs, rcomb, used = self._score(repeated, answers, [p.is_safety for p in prompts for _ in range(k)])
        current_rc = [None] * len(prompts)
        if current is not None:
            current_rc = self._score(conversations, current, [p.is_safety for p in prompts])[2].tolist()
        else:
            current = [None] * len(prompts)
        self.seconds["score"] += time.perf_counter() - t0
        rows = []
        for i, p in enumerate(prompts):
            s = slice(i * k, (i + 1) * k)
            rows.append({"index": b * sc.batch_size + i, "id": p.id, "messages": p.messages,
                         "is_safety": bool(p.is_safety), "answers": answers[s], "rh": rh[s].tolist(),
                         "rs": rs[s].tolist(), "rc": rcomb[s].tolist(), "used_safety": used[s].tolist(),
                         "current": current[i], "current_rc": current_rc[i]})
        return rows

    def _score(self, conversations: list, answers: list[str], is_safety: list[bool]):
        """(Rh, Rs, Rc, used safety) per answer, each (B,), by the combined scorer ppo uses."""
        s = self.rewards.score(conversations, answers, is_safety)
        return s.helpfulness, s.safety, s.combined, s.used_safety

    # ---- sampling checkpoints: one folder per finished batch ----------------------------------------
    def _batch_dir(self, b: int) -> Path:
        return self.ctx.run_dir / f"{CHECKPOINT_PREFIX}{b + 1}"

    @property
    def _marker(self) -> str:
        """The file the job declares as a complete checkpoint's (written last, so the driver's resume finds it)."""
        return self.ctx.job.spec.checkpoint_marker

    def _read_batch(self, b: int, prompts: list) -> list[dict] | None:
        """A finished batch's rows, if this run has it (the driver cleared the folder unless --resume)."""
        folder = self._batch_dir(b)
        if not (folder / self._marker).is_file():
            return None
        rows = json.loads((folder / BATCH_FILE).read_text())
        if [r["messages"] for r in rows] != [p.messages for p in prompts]:
            raise ConfigError(f"--resume: the prompts of batch {b + 1} differ from its checkpoint in {folder} "
                              f"({self.ctx.job.where}.prompts changed); drop --resume to sample afresh")
        return rows

    def _write_batch(self, b: int, rows: list[dict]) -> None:
        """Write the batch under a hidden name, then rename: a kill never leaves a half checkpoint."""
        final = self._batch_dir(b)
        tmp = final.with_name(f".{final.name}.{os.getpid()}.tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        (tmp / BATCH_FILE).write_text(json.dumps(rows, ensure_ascii=False))
        (tmp / self._marker).write_text(json.dumps({"global_step": b + 1, "batch": b, "prompts": len(rows)}))
        shutil.rmtree(final, ignore_errors=True)
        os.replace(tmp, final)

    # ---- select and publish -------------------------------------------------------------------------
    def evaluate(self) -> None:
        """Main process: the best answer per prompt, the selection statistics (K curve, oracle), the kept rows."""
        if not self.ctx.is_main:
            return
        sc, rows = self.settings, self.rows
        rewards = np.array([r["rc"] for r in rows])  # (N, K)
        current = np.array([r["current_rc"] for r in rows]) if sc.margin is not None else None  # (N,)
        eligible = current_eligible = None
        if sc.label_filter:
            eligible, current_eligible = label_eligibility(self.prompts.records, rows)
        chosen = select(rewards, [r["answers"] for r in rows], current, sc.margin, eligible, current_eligible)
        stats = selection_stats(rewards, chosen, current, np.array([r["used_safety"] for r in rows]))
        log.info("mean reward %.4f, best of %d %.4f; K curve %s; kept %d of %d prompts", stats["mean_reward"],
                 sc.k, stats["mean_best_of_k"], stats["k_curve"], stats["kept"], stats["prompts"])
        if sc.label_filter:
            log.info("label_filter: %d prompts picked a lower-rewarded sample on the right side of their label, "
                     "%d had none", stats["switched_by_label"], stats["dropped_off_label"])
        self.metrics = {"selection": stats, "oracle": oracle_view(self.prompts.records, rows, chosen.index),
                        "resumed_batches": self.resumed_batches,
                        "generate_seconds": round(self.seconds["generate"], 1),
                        "score_seconds": round(self.seconds["score"], 1)}
        candidates = training_rows(rows, chosen, keep_current=sc.below_margin == "current")
        kept = above_floor(candidates, sc.min_reward)
        stats["kept_current"] = sum(1 for r in kept if r["meta"]["sample"] is None)
        if sc.min_reward is not None:
            stats["dropped_below_min_reward"] = len(candidates) - len(kept)
        stats["rows"] = len(kept)
        log.info("training rows: %d (%d current answers below the margin, %s under min_reward)", len(kept),
                 stats["kept_current"], stats.get("dropped_below_min_reward", "none"))
        self.kept = kept

    def publish(self) -> Artifact | None:
        """Main process: kept.jsonl as a dataset artifact, with the statistics as metrics."""
        if not self.ctx.is_main:
            return None
        with self.ctx.publish(data_fingerprints={"prompts": self.prompts.fingerprint}, metrics=self.metrics) as pub:
            with open(pub.dir / KEPT_FILE, "w", encoding="utf-8") as f:
                for row in self.kept:
                    f.write(json.dumps(row, ensure_ascii=False) + "\n")
        return pub.artifact


def oracle_view(prompts: list, rows: list[dict], chosen) -> dict | None:
    """On toy prompts, the oracle's best-of-K per family against the reward's picks (None without an oracle)."""
    from camelid.data.toyworld.oracle import is_toy_prompt, score
    from camelid.rs.sampling import oracle_selection

    # Only the toy world's prompts have an oracle; in a mixture (toy + real wording) it sees the toy ones.
    keep = [i for i, row in enumerate(rows) if is_toy_prompt(prompts[row["index"]])]
    if not keep:
        return None
    records, rows, chosen = [prompts[rows[i]["index"]] for i in keep], [rows[i] for i in keep], [chosen[i] for i in keep]
    scores = [[score(p, answer) for answer in row["answers"]] for p, row in zip(records, rows, strict=True)]
    correct = [[float(bool(s.correct)) for s in per_prompt] for per_prompt in scores]  # (N, K)
    return oracle_selection(correct, chosen, [per_prompt[0].category.split("/")[0] for per_prompt in scores])


def label_eligibility(prompts: list, rows: list[dict]) -> tuple[np.ndarray, np.ndarray]:
    """(N, K) and (N,) bool: which samples, and which current answers, are on the right side of their prompt's own
    label (stages.rs.label_filter): a refusal for a harmful prompt, not a refusal for a borderline one; every
    answer of an unlabelled or task prompt. ``rows`` are in ``prompts``' order (the sampled rows)."""
    from camelid.eval.refusal import on_label

    eligible = np.array([[on_label(p, a) for a in row["answers"]] for p, row in zip(prompts, rows)], dtype=bool)
    current = np.array([row["current"] is None or on_label(p, row["current"]) for p, row in zip(prompts, rows)],
                       dtype=bool)
    return eligible, current


def training_rows(rows: list[dict], chosen, keep_current: bool = False, min_reward: float | None = None) -> list[dict]:
    """The fine-tune's rows, in prompt order: each kept prompt's best sample; with ``keep_current``, each prompt
    below the margin adds its current (greedy) answer instead (``meta.sample`` None), unless that is empty; with
    ``min_reward``, only rows whose answer's combined reward is at least that."""
    out = []
    for i, row in enumerate(rows):
        if chosen.keep[i]:
            out.append(_kept_row(row, int(chosen.index[i])))
        elif keep_current and chosen.below_margin[i] and (row["current"] or "").strip():
            out.append(_kept_row(row, None))
    return above_floor(out, min_reward)


def above_floor(rows: list[dict], min_reward: float | None) -> list[dict]:
    """The rows whose answer's combined reward is at least ``min_reward`` (all of them for None)."""
    return rows if min_reward is None else [r for r in rows if r["meta"]["reward"] >= min_reward]


def _kept_row(row: dict, j: int | None) -> dict:
    """A chat-messages row (prompt + sample j, or the current answer for None) for the SFT recipe, with where it
    came from in ``meta``."""
    if j is None:
        answer, meta = row["current"], {"reward": row["current_rc"], "rh": None, "rs": None, "used_safety": None}
    else:
        answer, meta = row["answers"][j], {"reward": row["rc"][j], "rh": row["rh"][j], "rs": row["rs"][j],
                                           "used_safety": row["used_safety"][j]}
    out = {"messages": [*row["messages"], {"role": "assistant", "content": answer}],
           "meta": {"prompt_index": row["index"], "sample": j, **meta, "is_safety": row["is_safety"],
                    "current_reward": row["current_rc"]}}
    if row["id"] is not None:
        out["id"] = row["id"]
    return out


class RSFinetune(SFTRecipe):
    """The rs job: the SFT recipe, from the policy, on exactly the kept answers of its `samples` input."""

    def __init__(self, ctx: StageContext):
        selection, ctx = self._on_kept_answers(ctx)
        super().__init__(ctx)
        self.metrics["selection"] = selection

    @staticmethod
    def _on_kept_answers(ctx: StageContext) -> tuple[dict, StageContext]:
        """(the samples' selection statistics, ctx whose section trains on their kept.jsonl)."""
        from camelid.data.spec import DataSpec

        samples = ctx.inputs["samples"]
        kept = samples.path / KEPT_FILE
        selection = samples.manifest.get("metrics", {}).get("selection")
        if not kept.is_file() or selection is None:
            raise DataError(f"{samples.ref} holds no {KEPT_FILE} with selection statistics: it was not made by "
                            "`camelid rs`; set stages.rs.samples_output to the name rs-sample publishes under")
        if selection.get("rows", selection["kept"]) == 0:
            raise DataError(f"{samples.ref} kept no answers ({selection['dropped_below_margin']} below the margin, "
                            f"{selection['dropped_empty']} empty, {selection.get('dropped_below_min_reward', 0)} under "
                            f"min_reward, {selection.get('dropped_off_label', 0)} with no answer on the right side "
                            "of the prompt's label): lower stages.rs.margin or stages.rs.min_reward, turn off "
                            "stages.rs.label_filter, or raise stages.rs.k")
        # Pinned to the file of the very version the driver resolved and hashed as this job's input, rather than
        # `registry:<name>`, which names the latest version of whatever registry is the process default.
        settings = ctx.section.model_copy(update={"data": DataSpec(format=KEPT_FORMAT, path=str(kept))})
        return selection, dataclasses.replace(ctx, job=ctx.job.replace(settings=settings))
