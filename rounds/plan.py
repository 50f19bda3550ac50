"""The jobs of round r: copies of the stage sections with what the round decides filled in.

Each builder re-validates the stage's section with the round's settings on top and asks the stage for the job
of that copy; a job carries everything its recipe reads, so it runs with the pipeline's own config.

Every ref a round hands on is pinned (``name@vN``), so each job's config hash names the exact pairs, reward
models and policy it was built from, and a rerun skips exactly the jobs whose inputs did not change. Every
job's published config carries ``round``.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ValidationError

from camelid.config import deep_merge, format_validation_error
from camelid.data.spec import DataSpec
from camelid.errors import ConfigError
from camelid.registry import Artifact
from camelid.rounds.pairs import LabelSettings, SampleSettings
from camelid.stage import Job
from camelid.stages import get_stage


def with_round(job: Job, r: int) -> Job:
    """The job with ``round`` in its published (and hashed) config, and in its name (its run folder, logs)."""
    return job.replace(section={**job.section, "round": r}, name=f"{job.name}-r{r}")


def derive(model: type[BaseModel], section: BaseModel, where: str, overrides: dict, updates: dict,
           exclude: dict | None = None) -> BaseModel:
    """``section`` (at ``where``, e.g. stages.reward.safety) re-validated with the rounds' overrides of it, then
    the round's own settings, on top."""
    raw = deep_merge(deep_merge(section.model_dump(mode="json", exclude=exclude), overrides), updates)
    try:
        return model.model_validate(raw)
    except ValidationError as e:
        source = f"rounds.overrides.{where.removeprefix('stages.')} (a round's copy of {where})"
        raise ConfigError(format_validation_error(e, model, source)) from None


# ---- pairs: sample, then label ---------------------------------------------------------------------------

def sample_job(cfg, r: int, policy: str) -> Job:
    ro = cfg.rounds
    offset = ro.prompt_offset + (r - 1) * ro.pairs_per_round
    settings = SampleSettings(
        round=r, output=f"answers-r{r}", prompts=ro.prompts.model_copy(update={"n": offset + ro.pairs_per_round}),
        offset=offset, temperatures=ro.temperatures, top_p=ro.top_p, max_new_tokens=ro.max_new_tokens,
        seed=ro.seed + r, tries=ro.sample_tries)
    return get_stage("round").sample_job(cfg, settings, policy)


def human_db(cfg, r: int) -> Path:
    """Round r's annotation database (human mode): rounds.annotation.db, relative to runs_dir/rounds."""
    path = Path(cfg.rounds.annotation.db.replace("{round}", str(r))).expanduser()
    return path if path.is_absolute() else cfg.runs_path() / "rounds" / path


def label_job(cfg, r: int, answers: str) -> Job:
    a = cfg.rounds.annotation
    settings = LabelSettings(round=r, output=f"pairs-r{r}", mode=a.mode, annotators=a.annotators, flip=a.flip,
                             jitter=a.jitter, safety_flip=a.safety_flip, seed=a.seed,
                             db=str(human_db(cfg, r)) if a.mode == "human" else "")
    return get_stage("round").label_job(cfg, settings, answers)


# ---- reward models on every round's pairs so far --------------------------------------------------------

def _specs(data) -> list[DataSpec]:
    return list(data) if isinstance(data, list) else [data]


def weighted(specs: list[DataSpec], total: int) -> list[dict]:
    """``specs`` with their weights scaled to sum to ``total`` (their records): a mixture drops none of them.

    camelid.data.mixture keeps shares exactly without repeating records, so weights must follow sizes for every
    source to be used whole next to the rounds' pairs.
    """
    scale = total / sum(s.weight for s in specs)
    return [s.model_copy(update={"weight": s.weight * scale}).model_dump(mode="json") for s in specs]


def base_size(data) -> int:
    """How many pairs an RM's own ``data`` gives (what its share of the mixture must be)."""
    from camelid.data.load import load_records

    return load_records(data, "pairs").kept


def rm_data(cfg, objective: str, pairs: list[Artifact], sizes: dict[str, int]) -> list[dict]:
    """What ``objective``'s RM of a round trains on: its own data (rounds.base_data) + the rounds' ``pairs``."""
    rm = getattr(cfg.stages.reward, objective)
    data = weighted(_specs(rm.data), sizes[objective]) if cfg.rounds.base_data else []
    return data + [DataSpec(format="preference", path=f"registry:{p.ref}", weight=p.manifest["metrics"]["n_pairs"])
                   .model_dump(mode="json") for p in pairs]


def with_pairs(job: Job, pairs: list[Artifact]) -> Job:
    """The rounds' pairs as inputs too: lineage shows them, and a relabelled round retrains on them."""
    return job.replace(inputs={**job.inputs, **{f"pairs_r{i}": p.ref for i, p in enumerate(pairs, 1)}},
                       input_kinds={**job.input_kinds,
                                    **{f"pairs_r{i}": ("dataset",) for i in range(1, len(pairs) + 1)}})


def reward_job(cfg, r: int, objective: str, pairs: list[Artifact], sizes: dict[str, int]) -> Job:
    """``objective``'s RM of round r: its own data (rounds.base_data) + the pairs of rounds 1..r."""
    rm = getattr(cfg.stages.reward, objective)
    where = f"stages.reward.{objective}"
    section = derive(type(rm), rm, where, cfg.rounds.overrides.get("reward", {}).get(objective, {}),
                     {"output": f"rm-{objective}-r{r}", "data": rm_data(cfg, objective, pairs, sizes)})
    return with_round(with_pairs(get_stage("reward").job(cfg, objective, section), pairs), r)


# ---- policy update and comparison -----------------------------------------------------------------------

def rs_jobs(cfg, r: int, policy: str, rms: dict[str, Artifact]) -> list[Job]:
    """rs-sample-r<r> and rs-r<r>: best-of-K from the policy by this round's RMs, then the fine-tune."""
    rs = cfg.stages.rs
    section = derive(type(rs), rs, "stages.rs", cfg.rounds.overrides.get("rs", {}),
                     {"policy": policy, "reward_helpfulness": rms["helpfulness"].ref,
                      "reward_safety": rms["safety"].ref, "output": f"rs-r{r}", "samples_output": f"rs-sample-r{r}",
                      "seed": rs.seed + r},
                     exclude={"finetune": {"model", "output", "data"}})  # derived from policy/output again
    return [with_round(job, r) for job in get_stage("rs").jobs_for(cfg, section)]


def ppo_job(cfg, r: int, policy: str, rms: dict[str, Artifact]) -> Job:
    ppo = cfg.stages.ppo
    section = derive(type(ppo), ppo, "stages.ppo", cfg.rounds.overrides.get("ppo", {}),
                     {"policy": policy, "reward_helpfulness": rms["helpfulness"].ref,
                      "reward_safety": rms["safety"].ref, "value_init": rms["helpfulness"].ref,
                      "output": f"ppo-r{r}"})
    return with_round(get_stage("ppo").job(cfg, section), r)


def dpo_job(cfg, r: int, policy: str, pairs: list[Artifact], sizes: dict[str, int]) -> Job:
    """dpo-r<r>: DPO from the policy on the pairs this round's safety RM trains on (its data + pairs-r1..r<r>);
    stages.dpo's mix_data is mixed in at its mix_share, as in a one-off `camelid dpo`. No RM is read."""
    dpo = cfg.stages.dpo
    section = derive(type(dpo), dpo, "stages.dpo", cfg.rounds.overrides.get("dpo", {}),
                     {"policy": policy, "output": f"dpo-r{r}", "data": rm_data(cfg, "safety", pairs, sizes)})
    return with_round(with_pairs(get_stage("dpo").job(cfg, section), pairs), r)


def compare_job(cfg, r: int, checkpoints: list[str], rms: dict[str, Artifact]) -> Job:
    """The round's policy against the starting policy and every earlier round's, judged by this round's RMs."""
    c = cfg.stages.compare
    section = derive(type(c), c, "stages.compare", cfg.rounds.overrides.get("compare", {}),
                     {"checkpoints": checkpoints, "reward_helpfulness": rms["helpfulness"].ref,
                      "reward_safety": rms["safety"].ref, "output": f"compare-r{r}"})
    return with_round(get_stage("compare").job(cfg, section), r)
