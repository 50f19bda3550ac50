"""`camelid round`: Llama 2's iterative loop, round after round, skipping what is already up to date.

    round r   round-sample-r<r>   answers-r<r>        two answers per new prompt from the latest policy
              round-label-r<r>    pairs-r<r>          simulated labels, or people in the annotation app
              reward-*            rm-<objective>-r<r> each RM on its own data + pairs-r1 .. pairs-r<r>
              rs-sample, rs / ppo rs-r<r> / ppo-r<r>  the policy update (rounds.policy_update; dpo: dpo-r<r>)
              compare             compare-r<r>        the new policy against the start and every earlier round
    after the last round: the report across rounds (rounds-report)

It is the round stage's command (camelid.rounds.stage): like `camelid run` it orchestrates jobs -- the round
stage's own and the other stages' -- each run by the one stage driver through `camelid.stage.ensure` (`camelid
run`'s step too) and skipped when the registry already holds an artifact of the same config and inputs. A rerun
after a crash, or with more rounds, redoes only what changed. In human mode a round stops once its pairs are
queued; `--continue` exports the labels and goes on.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from camelid.config.args import resolve, stage_parser
from camelid.errors import RegistryError
from camelid.log import get_logger
from camelid.registry import Artifact, Registry
from camelid.reward.config import OBJECTIVES
from camelid.rounds import plan
from camelid.stage import ensure, up_to_date
from camelid.stages import get_stage

log = get_logger("round")


@dataclass
class Progress:
    """What the rounds so far have produced: the refs the next round builds on."""

    start: Artifact                                             # the policy round 1 samples from
    release: bool = False                                       # --continue: export the waiting round's labels
    policies: list[Artifact] = field(default_factory=list)      # round r's updated policy at index r-1
    pairs: list[Artifact] = field(default_factory=list)         # round r's labelled pairs at index r-1
    rms: list[dict[str, Artifact]] = field(default_factory=list)
    compares: list[Artifact] = field(default_factory=list)
    report: Artifact | None = None                              # the report across rounds

    @property
    def policy(self) -> Artifact:
        return self.policies[-1] if self.policies else self.start


def update_policy(cfg, registry: Registry, r: int, policy: Artifact, rms: dict[str, Artifact],
                  resume: bool, pairs: list[Artifact], sizes: dict[str, int]) -> Artifact:
    """Rejection sampling and/or PPO from ``policy`` against this round's RMs (rs+ppo: PPO starts from rs), or DPO
    from it on the rounds' ``pairs`` (the safety RM's training pairs), as rounds.policy_update says for round r."""
    steps = cfg.rounds.update_for(r).split("+")
    if "dpo" in steps:
        return ensure(cfg, plan.dpo_job(cfg, r, policy.ref, pairs, sizes), registry=registry, resume=resume)
    if "rs" in steps:
        for job in plan.rs_jobs(cfg, r, policy.ref, rms):
            policy = ensure(cfg, job, registry=registry, resume=resume)
    if "ppo" in steps:
        policy = ensure(cfg, plan.ppo_job(cfg, r, policy.ref, rms), registry=registry, resume=resume)
    return policy


def stop_for_people(cfg, r: int, answers: Artifact) -> None:
    """Human mode: queue round r's pairs in its annotation database, say where to label them, and stop."""
    from camelid.rounds.annotation import open_db, read_items

    db_path = plan.human_db(cfg, r)
    db = open_db(db_path)
    added, already = db.add_pairs(read_items(answers), k=cfg.rounds.annotation.annotators)
    counts = db.counts()
    print(f"round {r}: {added} pair(s) queued for labelling ({already} were already queued; "
          f"{counts['pairs']} in all, {counts['labels']} label(s) so far) in {db_path}\n"
          f"  serve:      camelid annotate serve --db {db_path}   ->  {cfg.rounds.annotation.url}\n"
          f"  annotators: camelid annotate add-user NAME --db {db_path}\n"
          f"  then:       camelid round --continue   (exports the labels and goes on)")


def run_round(cfg, registry: Registry, r: int, progress: Progress, *, resume: bool, sizes: dict[str, int]) -> bool:
    """Round r end to end; False when it stopped for people to label its pairs."""
    answers = ensure(cfg, plan.sample_job(cfg, r, progress.policy.ref), registry=registry, resume=resume)
    label = plan.label_job(cfg, r, answers.ref)
    if cfg.rounds.annotation.mode == "human" and up_to_date(registry, label) is None:
        if not progress.release:
            stop_for_people(cfg, r, answers)
            return False
        progress.release = False  # --continue releases the round whose labels were waiting, not the next
    progress.pairs.append(ensure(cfg, label, registry=registry))
    rms = {o: ensure(cfg, plan.reward_job(cfg, r, o, progress.pairs, sizes), registry=registry, resume=resume)
           for o in OBJECTIVES}
    progress.rms.append(rms)
    progress.policies.append(update_policy(cfg, registry, r, progress.policy, rms, resume, progress.pairs,
                                            sizes))
    checkpoints = [progress.start.ref] + [p.ref for p in progress.policies]
    progress.compares.append(ensure(cfg, plan.compare_job(cfg, r, checkpoints, rms), registry=registry))
    log.info("round %d done: policy %s, RMs %s", r, progress.policy.ref, ", ".join(a.ref for a in rms.values()))
    return True


def run_rounds(cfg, registry: Registry, *, cont: bool = False, resume: bool = False) -> Progress | None:
    """Every round of cfg.rounds; the progress when all finished, None when one stopped for labels."""
    try:
        start = registry.resolve(cfg.rounds.policy)
    except RegistryError as e:
        raise RegistryError(f"rounds.policy={cfg.rounds.policy!r}, the policy round 1 starts from: {e}. Train it "
                            "first (e.g. `camelid run --only init --only sft`) or point rounds.policy at a "
                            "model") from None
    if start.version:
        registry.pin(start.name, start.version)
    progress = Progress(start=start, release=cont)
    sizes = {o: plan.base_size(getattr(cfg.stages.reward, o).data) for o in OBJECTIVES} \
        if cfg.rounds.base_data else {}
    t0 = time.perf_counter()
    for r in range(1, cfg.rounds.n + 1):
        if not run_round(cfg, registry, r, progress, resume=resume, sizes=sizes):
            return None
    log.info("%d round(s) done in %.1fs: %s", cfg.rounds.n, time.perf_counter() - t0,
             " -> ".join([start.ref] + [p.ref for p in progress.policies]))
    progress.report = ensure(cfg, get_stage("round").report_job(cfg, progress), registry=registry)
    return progress


def main(argv: list[str]) -> int:
    p = stage_parser("camelid round", "Iterative rounds: pairs from the latest policy -> annotation -> both RMs "
                     "on all pairs so far -> rejection sampling and/or PPO -> compare with every earlier round.",
                     resume=True)
    p.add_argument("--continue", dest="cont", action="store_true",
                   help="human annotation: export the waiting round's labels from its annotation database and go on")
    args = p.parse_intermixed_args(argv)
    cfg, registry = resolve(args)
    progress = run_rounds(cfg, registry, cont=args.cont, resume=args.resume)
    if progress is not None:
        print(progress.report.path / "report.json")
        print(" -> ".join([progress.start.ref] + [a.ref for a in progress.policies]))
    return 0
