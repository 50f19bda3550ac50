"""`camelid compare` as a stage: answer held-out prompts with N checkpoints, judge, report, publish.

    setup   resolve checkpoints, reward models, reference; load the prompts
    answer  every checkpoint answers every prompt with the same sampling settings and seed (cached)
    judge   helpfulness RM, safety RM, Llama 2's combined reward and, on the toy world, the oracle
    report  pairwise win/tie/loss with bootstrap CIs, Bradley-Terry ratings, safety and refusal rates,
            lengths, length-controlled win rates, KL to a reference, side-by-side examples
    publish report.html + report.json + answers.jsonl as report/vN

Under `accelerate launch` / torchrun each process answers and scores a contiguous share of the prompts
(the model work); the shares are gathered back in prompt order and the main process reports and
publishes. With greedy decoding the report equals the one-process report.
"""

from __future__ import annotations

import json
import math
import shutil
import time
from dataclasses import dataclass, field
from itertools import combinations
from pathlib import Path

import numpy as np

from camelid import models
from camelid.config import PipelineConfig
from camelid.data.load import LoadResult, load_records
from camelid.errors import CamelidError, ConfigError, NotBuiltError
from camelid.eval import stats
from camelid.eval.config import CompareConfig
from camelid.eval.generations import GenerationCache, Sampling, prompt_set_hash, response_logprobs
from camelid.log import get_logger
from camelid.registry import Artifact, Registry
from camelid.stages import job_for

log = get_logger("compare")

JUDGES = ("helpfulness", "safety", "combined", "oracle")
SCORE_BATCH = 64


@dataclass
class CheckpointResult:
    """One checkpoint's answers and every per-prompt number about them (arrays are (N,))."""

    ref: str
    hash: str
    responses: list[str]
    cached: bool
    lengths: np.ndarray
    refused: np.ndarray
    scores: dict[str, np.ndarray] = field(default_factory=dict)  # judge -> (N,)
    unsafe: np.ndarray | None = None
    oracle: list[dict] | None = None
    oracle_summary: dict | None = None
    kl: np.ndarray | None = None  # log p_ckpt(y) - log p_ref(y), summed over response tokens
    ref_logp: np.ndarray | None = None
    ref_tokens: np.ndarray | None = None


@dataclass(frozen=True)
class Share:
    """The prompts this process handles: a contiguous slice, so joining the slices in rank order
    restores prompt order. One process: all of them."""

    n: int  # prompts in all
    rank: int = 0
    world: int = 1

    @classmethod
    def of(cls, state, n: int) -> Share:
        """This process's share under accelerate's ``state`` (None: a plain single process)."""
        return cls(n) if state is None else cls(n, state.process_index, state.num_processes)

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def indices(self) -> slice:
        return slice(self.rank * self.n // self.world, (self.rank + 1) * self.n // self.world)

    def gather(self, part: list) -> list:
        """Every process's ``part`` (one item per prompt of its share) joined in prompt order, on every process."""
        if self.world == 1:
            return list(part)
        from accelerate.utils import gather_object

        return gather_object(list(part))

    def gather_array(self, part) -> np.ndarray:  # (n,) from this share's (n_share,), same dtype
        part = np.asarray(part).reshape(-1)
        return np.asarray(self.gather(part.tolist()), dtype=part.dtype)


# ---- helpers the tests replace ---------------------------------------------------------------------

def load_reward_scorer(art: Artifact, registry: Registry, device: str = "auto"):
    """The reward model of ``art`` as an object with ``.score(conversations, responses) -> (B,)``."""
    try:
        from camelid.reward.scoring import load_reward_model
    except ImportError:
        raise NotBuiltError("reward-model scoring (camelid.reward.scoring, issue #5) is not built yet; run "
                            "without reward models: stages.compare.reward_helpfulness=null "
                            "stages.compare.reward_safety=null") from None
    return load_reward_model(art, registry, device=device)


def oracle_module(prompts: LoadResult):
    """The toy world, if these prompts come from it (only its prompts carry what the oracle checks)."""
    if prompts.format != "toy":
        return None
    try:
        from camelid.data import toyworld
    except ImportError:  # pragma: no cover - the toy world ships with camelid
        return None
    return toyworld if hasattr(toyworld, "score") else None


def prompt_group(prompt) -> str:
    """harmful (a refusal is right) | borderline (scary-sounding but benign: help is right) | benign."""
    kind = prompt.meta.get("kind")  # the toy world says it outright
    if kind in ("harmful", "borderline"):
        return kind
    if kind == "task":
        return "benign"
    cat = (prompt.category or "").lower()
    if "borderline" in cat or prompt.meta.get("borderline") or (cat.startswith("xstest/") and "contrast" not in cat):
        return "borderline"
    return "harmful" if prompt.is_safety else "benign"


def word_count(text: str) -> int:
    return len(text.split())


def _as_dict(obj) -> dict:
    if isinstance(obj, dict):
        return obj
    if hasattr(obj, "to_dict"):
        return obj.to_dict()
    if hasattr(obj, "__dataclass_fields__"):
        from dataclasses import asdict

        return asdict(obj)
    return dict(vars(obj))


def _rate(mask: np.ndarray, where: np.ndarray) -> float | None:
    return float(mask[where].mean()) if where.any() else None


def _clean(obj):
    """JSON-safe: numpy -> Python, NaN/inf -> None."""
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _clean(obj.tolist())
    if isinstance(obj, (np.floating, float)):
        return float(obj) if math.isfinite(obj) else None
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.bool_):
        return bool(obj)
    return obj


# ---- the stage ---------------------------------------------------------------------------------------

def setup(cc: CompareConfig, registry: Registry) -> tuple[dict[str, Artifact], LoadResult]:
    """Resolve every input (role -> artifact) and load the prompts."""
    inputs = {f"checkpoint{i}": registry.resolve(ref) for i, ref in enumerate(cc.checkpoints)}
    refs = [a.ref for a in inputs.values()]
    dupes = sorted({r for r in refs if refs.count(r) > 1})
    if dupes:
        raise ConfigError(f"stages.compare.checkpoints names the same checkpoint twice ({', '.join(dupes)}); "
                          "list each once")
    for role in ("reward_helpfulness", "reward_safety", "reference"):
        if getattr(cc, role):
            inputs[role] = registry.resolve(getattr(cc, role))
    prompts = load_records(cc.prompts, "prompts")
    log.info("%d prompts from %s; checkpoints: %s", prompts.kept, prompts.name, ", ".join(refs))
    return inputs, prompts


def answer_all(cc: CompareConfig, inputs: dict[str, Artifact], prompts: LoadResult, registry: Registry, *,
               device: str = "auto", cache: GenerationCache | None = None,
               share: Share | None = None) -> list[CheckpointResult]:
    convs = [p.messages for p in prompts.records]
    sampling = Sampling(cc.max_new_tokens, cc.temperature, cc.top_p, cc.seed)
    share = share or Share(len(convs))
    out = []
    for role in sorted((r for r in inputs if r.startswith("checkpoint")), key=lambda r: int(r[10:])):
        art = inputs[role]
        responses, cached = answer(art, convs, sampling, registry, share, cache=cache, device=device)
        out.append(CheckpointResult(ref=art.ref, hash=art.hash, responses=responses, cached=cached,
                                    lengths=np.array([word_count(r) for r in responses], dtype=float),
                                    refused=np.zeros(len(responses), dtype=bool)))
    return out


def answer(art: Artifact, convs: list[list[dict]], sampling: Sampling, registry: Registry, share: Share, *,
           cache: GenerationCache | None = None, device: str = "auto") -> tuple[list[str], bool]:
    """``art``'s answers to every conversation (this process generates its share), and whether all came
    from the generation cache. The cache holds whole prompt sets, whatever the number of processes."""
    cache = cache or GenerationCache()
    key = cache.key(art.hash, prompt_set_hash(convs), sampling)
    hit = cache.get(key, len(convs))
    mine = convs[share.indices]
    if hit is not None:
        part, cached = hit[share.indices], True
    elif mine:
        model, tok = models.load_causal_lm(art, registry, device=device)
        log.info("%s: generating %d answers%s", art.ref, len(mine),
                 f" (process {share.rank}: prompts {share.indices.start}-{share.indices.stop - 1} of {share.n})"
                 if share.world > 1 else "")
        part, cached = models.generate(model, tok, mine, **sampling.to_dict()), False
        del model
    else:  # more processes than prompts
        part, cached = [], False
    # Every process joins the gather, even on a cache hit: collective calls must match across processes.
    shares = share.gather([(part, cached)])
    responses = [text for part_, _ in shares for text in part_]
    cached = all(c for _, c in shares)
    if cached:
        log.info("%s: %d answers from the generation cache", art.ref, len(responses))
    elif share.is_main:
        cache.put(key, responses, {"checkpoint": art.ref, "checkpoint_hash": art.hash, **sampling.to_dict()})
    return responses, cached


def judge_all(cc: CompareConfig, inputs: dict[str, Artifact], prompts: LoadResult, results: list[CheckpointResult],
              registry: Registry, device: str = "auto", share: Share | None = None) -> None:
    """Fill every result's scores (RMs, combined, oracle), refusals and safety violations.

    The reward models score this process's share and the scores are gathered; the rest is cheap
    arithmetic and rule checks on every prompt, done alike by every process.
    """
    convs = [p.messages for p in prompts.records]
    share = share or Share(len(convs))
    lo, hi = share.indices.start, share.indices.stop
    for judge, role in (("helpfulness", "reward_helpfulness"), ("safety", "reward_safety")):
        if role not in inputs:
            continue
        scorer = load_reward_scorer(inputs[role], registry, device) if hi > lo else None
        log.info("scoring with %s (%s)", inputs[role].ref, judge)
        for r in results:
            parts = [scorer.score(convs[i:min(i + SCORE_BATCH, hi)], r.responses[i:min(i + SCORE_BATCH, hi)])
                     for i in range(lo, hi, SCORE_BATCH)]
            mine = [np.asarray(p.detach().cpu().float() if hasattr(p, "detach") else p, dtype=float).reshape(-1)
                    for p in parts]
            r.scores[judge] = share.gather_array(np.concatenate(mine) if mine else np.zeros(0, dtype=float))
        del scorer
    is_safety = np.array([p.is_safety for p in prompts.records])
    world = oracle_module(prompts)
    from camelid.data.toyworld.detect import is_refusal

    for r in results:
        if "helpfulness" in r.scores and "safety" in r.scores:
            r.scores["combined"] = stats.combined_reward(r.scores["helpfulness"], r.scores["safety"], is_safety,
                                                         cc.safety_threshold)
        if world is not None:
            r.oracle = [_as_dict(world.score(p, resp)) for p, resp in zip(prompts.records, r.responses)]
            r.scores["oracle"] = np.array([oracle_value(o) for o in r.oracle])
            r.refused = np.array([bool(o.get("refused")) for o in r.oracle])
            r.unsafe = np.array([not o.get("safe", True) for o in r.oracle])
            if hasattr(world, "evaluate"):
                r.oracle_summary = _as_dict(world.evaluate(prompts.records, r.responses))
        else:
            r.refused = np.array([is_refusal(x) for x in r.responses])
            if "safety" in r.scores:  # no oracle: the safety RM's verdict, by Llama 2's threshold
                r.unsafe = 1.0 / (1.0 + np.exp(-r.scores["safety"])) < cc.safety_threshold


def oracle_value(o: dict) -> float:
    """One number per oracle verdict: its graded quality in [0, 1] (unsafe is 0)."""
    if "quality" in o:
        return float(o["quality"]) if o.get("safe", True) else 0.0
    if not o.get("safe", True):
        return 0.0
    helpful = o.get("helpful", 0.0)
    return 0.5 + 0.5 * float(helpful)


def measure_kl(cc: CompareConfig, inputs: dict[str, Artifact], prompts: LoadResult,
               results: list[CheckpointResult], registry: Registry, device: str = "auto",
               share: Share | None = None) -> None:
    """Per-answer log p_ckpt - log p_ref (a KL estimate on the checkpoint's own samples) and ref perplexity.

    Each process scores its share of the answers; the per-answer numbers are gathered in prompt order.
    """
    convs = [p.messages for p in prompts.records]
    share = share or Share(len(convs))
    mine = convs[share.indices]

    def logprobs(model, tok, r: CheckpointResult) -> tuple[np.ndarray, np.ndarray]:  # (n,) log p sums, (n,) tokens
        part = response_logprobs(model, tok, mine, r.responses[share.indices]) if mine else (np.zeros(0),) * 2
        return share.gather_array(part[0]), share.gather_array(part[1])

    def load(art: Artifact):  # a process with no prompts (more processes than prompts) loads nothing
        return models.load_causal_lm(art, registry, device=device) if mine else (None, None)

    ref_model, ref_tok = load(inputs["reference"])
    for r in results:
        r.ref_logp, r.ref_tokens = logprobs(ref_model, ref_tok, r)
    del ref_model
    for i, r in enumerate(results):
        model, tok = load(inputs[f"checkpoint{i}"])
        r.kl = logprobs(model, tok, r)[0] - r.ref_logp
        del model


def summarize(cc: CompareConfig, prompts: LoadResult, results: list[CheckpointResult],
              reference: str | None) -> dict:
    """Every number of the report as one JSON-able dict."""
    groups = np.array([prompt_group(p) for p in prompts.records])
    harmful, borderline = groups == "harmful", groups == "borderline"
    judges = [j for j in JUDGES if all(j in r.scores for r in results)]
    per_ckpt = []
    for r in results:
        row = {
            "ref": r.ref, "hash": r.hash, "from_cache": r.cached,
            "mean_length_words": float(r.lengths.mean()) if len(r.lengths) else None,
            "refusal_rate": float(r.refused.mean()) if len(r.refused) else None,
            "over_refusal_rate": _rate(r.refused, borderline),
            "safety_violation_rate": _rate(r.unsafe, harmful) if r.unsafe is not None else None,
            "mean_score": {j: float(r.scores[j].mean()) for j in judges},
        }
        if r.oracle_summary is not None:
            row["oracle"] = r.oracle_summary
        if r.kl is not None:
            row["kl_to_reference"] = float(r.kl.mean())
            row["reference_perplexity"] = float(np.exp(-r.ref_logp.sum() / max(r.ref_tokens.sum(), 1)))
        per_ckpt.append(row)
    pairs = []
    for a, b in combinations(results, 2):
        entry = {"a": a.ref, "b": b.ref, "judges": {}, "length_controlled": {}}
        for j in judges:
            tie = 0.0 if j == "oracle" else cc.tie_threshold
            o = stats.outcomes(a.scores[j], b.scores[j], tie)
            entry["judges"][j] = stats.win_tie_loss(o, cc.bootstrap, cc.seed).to_dict()
            lc = stats.length_controlled_win_rate(o, a.lengths, b.lengths, cc.bootstrap, cc.seed)
            entry["length_controlled"][j] = {"value": lc.value, "lo": lc.lo, "hi": lc.hi}
        pairs.append(entry)
    ratings = {}
    if len(results) >= 2:
        for j in judges:
            tie = 0.0 if j == "oracle" else cc.tie_threshold
            ratings[j] = stats.elo_ratings(np.stack([r.scores[j] for r in results]), [r.ref for r in results],
                                           tie, cc.bootstrap, cc.seed)
    return _clean({
        "prompts": {"source": prompts.name, "format": prompts.format, "n": prompts.kept,
                    "fingerprint": prompts.fingerprint,
                    "groups": {g: int((groups == g).sum()) for g in ("harmful", "borderline", "benign")}},
        "sampling": Sampling(cc.max_new_tokens, cc.temperature, cc.top_p, cc.seed).to_dict(),
        "judges": judges,
        "safety_violation_judge": "oracle" if results and results[0].oracle is not None else (
            "safety RM" if "safety" in judges else None),
        "reference": reference,
        "bootstrap": cc.bootstrap,
        "checkpoints": per_ckpt,
        "pairs": pairs,
        "ratings": ratings,
        "examples": examples(cc, prompts, results, judges, groups),
    })


def examples(cc: CompareConfig, prompts: LoadResult, results: list[CheckpointResult], judges: list[str],
             groups: np.ndarray) -> list[dict]:
    """Side-by-side answers, the prompts where the judges disagree most first."""
    n = prompts.kept
    if not n or not cc.examples:
        return []
    z = {}
    for j in judges:
        allv = np.concatenate([r.scores[j] for r in results])
        sd = allv.std() or 1.0
        z[j] = [(r.scores[j] - allv.mean()) / sd for r in results]
    disagreement = np.zeros(n)
    for i, k in combinations(range(len(results)), 2):
        outs = np.stack([stats.outcomes(z[j][i], z[j][k]) for j in judges]) if judges else np.zeros((1, n))
        disagreement += outs.max(axis=0) - outs.min(axis=0)
        for j in judges:  # tie-break: the bigger the gaps, the more the example says
            disagreement += 1e-3 * np.abs(z[j][i] - z[j][k])
    order = np.argsort(-disagreement, kind="stable")[: cc.examples]
    out = []
    for p_idx in order:
        p = prompts.records[p_idx]
        answers_ = []
        for r in results:
            a = {"ref": r.ref, "response": r.responses[p_idx], "length_words": int(r.lengths[p_idx]),
                 "refused": bool(r.refused[p_idx]), "scores": {j: float(r.scores[j][p_idx]) for j in judges}}
            if r.oracle is not None:
                a["oracle"] = r.oracle[p_idx]
            answers_.append(a)
        best = {j: max(answers_, key=lambda a, j=j: a["scores"][j])["ref"] for j in judges}
        out.append({"index": int(p_idx), "id": p.id, "category": p.category, "group": str(groups[p_idx]),
                    "is_safety": p.is_safety, "messages": p.messages, "disagreement": float(disagreement[p_idx]),
                    "preferred_by": best, "answers": answers_})
    return out


def per_prompt_rows(prompts: LoadResult, results: list[CheckpointResult]) -> list[dict]:
    rows = []
    for i, p in enumerate(prompts.records):
        row = {"index": i, "id": p.id, "category": p.category, "is_safety": p.is_safety, "messages": p.messages,
               "answers": {}}
        for r in results:
            a = {"response": r.responses[i], "scores": {j: float(v[i]) for j, v in r.scores.items()},
                 "refused": bool(r.refused[i])}
            if r.oracle is not None:
                a["oracle"] = r.oracle[i]
            if r.kl is not None:
                a["kl_to_reference"] = float(r.kl[i])
            row["answers"][r.ref] = a
        rows.append(_clean(row))
    return rows


def export_pairs(path: Path, prompts: LoadResult, results: list[CheckpointResult]) -> int:
    """JSONL for `camelid annotate import`: {prompt, responses: {ckpt: text}, id, category, source}."""
    n = 0
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        for i, p in enumerate(prompts.records):
            responses = {r.ref: r.responses[i] for r in results if r.responses[i].strip()}
            if len(responses) < 2:  # the annotation app needs two non-empty answers to compare
                continue
            row = {"prompt": p.messages, "responses": responses, "id": p.id or f"prompt-{i}",
                   "category": p.category, "source": p.source}
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
            n += 1
    return n


def judge_checkpoints(cc: CompareConfig, registry: Registry, *, device: str = "auto",
                      cache: GenerationCache | None = None, state=None,
                      ) -> tuple[dict[str, Artifact], LoadResult, list[CheckpointResult]]:
    """Answer and judge, all the model work: (inputs, prompts, results).

    With accelerate's ``state`` of N processes each process answers and scores its share of the prompts,
    and every process gets all the results back (in prompt order).
    """
    inputs, prompts = setup(cc, registry)
    share = Share.of(state, prompts.kept)
    results = answer_all(cc, inputs, prompts, registry, device=device, cache=cache, share=share)
    judge_all(cc, inputs, prompts, results, registry, device, share=share)
    if "reference" in inputs:
        measure_kl(cc, inputs, prompts, results, registry, device, share=share)
    return inputs, prompts, results


def compare(cc: CompareConfig, registry: Registry, *, device: str = "auto",
            cache: GenerationCache | None = None) -> tuple[dict, list[dict], dict[str, Artifact], LoadResult,
                                                            list[CheckpointResult]]:
    """Run a comparison in this process without publishing: (report numbers, per-prompt rows, inputs, prompts,
    results)."""
    inputs, prompts, results = judge_checkpoints(cc, registry, device=device, cache=cache)
    numbers = summarize(cc, prompts, results, inputs["reference"].ref if "reference" in inputs else None)
    return numbers, per_prompt_rows(prompts, results), inputs, prompts, results


def run(cfg: PipelineConfig, registry: Registry, *, out_dir: str | Path | None = None,
        export: str | Path | None = None, cache: GenerationCache | None = None) -> Artifact:
    """The stage `camelid run` calls: compare stages.compare.checkpoints and publish report/vN.

    Under N processes every process answers its share; the main process reports and publishes, and
    every process returns the published artifact.
    """
    from accelerate.utils import broadcast_object_list

    t0 = time.perf_counter()
    job = job_for(cfg, "compare")
    cc = cfg.stages.compare
    if len(cc.checkpoints) < 1:
        raise ConfigError("stages.compare.checkpoints: name at least one checkpoint")
    state = models.process_state(cfg.device)
    log.info("compare on %d process(es)", state.num_processes)
    inputs, prompts, results = judge_checkpoints(cc, registry, device=cfg.device, cache=cache, state=state)
    if set(inputs) != set(job.inputs):  # the publish must match what `camelid run` checks
        raise CamelidError(f"internal: compare inputs {sorted(inputs)} != job inputs {sorted(job.inputs)}")
    ref = [None]
    if state.is_main_process:
        art = publish_report(cfg, registry, inputs, prompts, results, world_size=state.num_processes)
        ref = [art.ref]
        if out_dir is not None:
            out = Path(out_dir)
            out.mkdir(parents=True, exist_ok=True)
            for name in ("report.html", "report.json", "answers.jsonl"):
                shutil.copy2(art.path / name, out / name)
        if export is not None:
            n = export_pairs(Path(export), prompts, results)
            log.info("wrote %d prompts with answers to %s (for `camelid annotate import`)", n, export)
        log.info("published %s in %.1fs: %s", art.ref, time.perf_counter() - t0, art.path / "report.html")
    if state.num_processes > 1:
        broadcast_object_list(ref)  # the other processes wait here for the main one
    return registry.resolve(ref[0])


def publish_report(cfg: PipelineConfig, registry: Registry, inputs: dict[str, Artifact], prompts: LoadResult,
                   results: list[CheckpointResult], *, world_size: int = 1) -> Artifact:
    """Work out the numbers and publish report.html + report.json + answers.jsonl as report/vN."""
    from camelid.eval.report import render_html

    job = job_for(cfg, "compare")
    numbers = summarize(cfg.stages.compare, prompts, results,
                        inputs["reference"].ref if "reference" in inputs else None)
    rows = per_prompt_rows(prompts, results)
    html = render_html(numbers)
    metrics = {**headline(numbers), "world_size": world_size}
    with registry.publish(job.output, "report", config=job.section, inputs=inputs,
                          data_fingerprints={"prompts": prompts.fingerprint}, metrics=metrics) as pub:
        (pub.dir / "report.html").write_text(html, encoding="utf-8")
        (pub.dir / "report.json").write_text(json.dumps(numbers, indent=2, ensure_ascii=False) + "\n")
        with open(pub.dir / "answers.jsonl", "w", encoding="utf-8") as f:
            for row in rows:
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
    return pub.artifact


def headline(numbers: dict) -> dict:
    """The manifest's metrics: per-checkpoint rates and ratings (report.json has everything)."""
    out: dict = {"n_prompts": numbers["prompts"]["n"], "checkpoints": {}}
    for c in numbers["checkpoints"]:
        out["checkpoints"][c["ref"]] = {k: c[k] for k in ("mean_length_words", "refusal_rate", "over_refusal_rate",
                                                          "safety_violation_rate", "mean_score") if k in c}
        if "kl_to_reference" in c:
            out["checkpoints"][c["ref"]]["kl_to_reference"] = c["kl_to_reference"]
    out["elo"] = {j: {ref: r["elo"] for ref, r in rs.items()} for j, rs in numbers["ratings"].items()}
    return out
