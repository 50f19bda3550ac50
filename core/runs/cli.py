"""`camelid run`: run the pipeline's stages in order, skipping those already up to date.

A stage is up to date when the registry holds an artifact of its output name built from the same
config hash and from inputs with the same content hashes. Within one run, a stage's inputs are pinned
to the versions the earlier stages produced (not whatever `latest` is).

Under `accelerate launch` / torchrun every process runs this loop: each stage shares its work among the
processes and one publishes; all take the same skip decisions because they look only once every
process has finished the stage before.
"""

from __future__ import annotations

import difflib
import time

from camelid.config.args import resolve, stage_parser
from camelid.errors import ConfigError
from camelid.log import get_logger
from camelid.stage import ensure, up_to_date
from camelid.stages import jobs

log = get_logger("run")


def main(argv: list[str]) -> int:
    p = stage_parser("camelid run", "Run the pipeline stages in order, skipping up-to-date ones.", resume=True)
    p.add_argument("--force", action="store_true", help="rebuild every stage even if up to date")
    p.add_argument("--only", action="append", default=None, metavar="JOB",
                   help="run only these jobs or stages of the pipeline (e.g. sft, reward-safety); repeatable")
    p.add_argument("--dry-run", action="store_true", help="say what would run, run nothing")
    args = p.parse_intermixed_args(argv)
    cfg, registry = resolve(args)
    plan = jobs(cfg)
    if args.only:
        check_only(cfg, plan, args.only)
        plan = [j for j in plan if j.name in args.only or j.stage in args.only]
    from camelid.models import process_state

    state = process_state("cpu" if args.dry_run else cfg.device)  # a dry run says what would run on any machine
    log.info("profile %s, registry %s, %d process(es): %s", cfg.profile, registry.root, state.num_processes,
             " -> ".join(j.name for j in plan))
    t_all = time.perf_counter()
    would_run: set[str] = set()  # --dry-run: outputs a real run would (re)build; jobs reading them run too
    for i, job in enumerate(plan):
        _sync(state, i)
        if args.dry_run:
            dry_run(cfg, registry, job, force=args.force, would_run=would_run)
        else:
            ensure(cfg, job, registry=registry, resume=args.resume, force=args.force)
    log.info("pipeline done in %.1fs", time.perf_counter() - t_all)
    return 0


def check_only(cfg, plan: list, only: list[str]) -> None:
    """Every --only name is a job (or stage) of this pipeline; else one line saying what it is instead."""
    from camelid.stages import STAGES, get_stage

    scheduled = [n for j in plan for n in (j.name, j.stage)]
    for name in only:
        if name in scheduled:
            continue
        stage = next((s for s in STAGES if name == s or name in (j.name for j in get_stage(s).jobs(cfg))), None)
        if stage is not None:
            raise ConfigError(f"--only {name}: not in the pipeline of profile {cfg.profile} "
                              f"({', '.join(cfg.pipeline)}); run `camelid {stage}` on its own, or add it with "
                              f"pipeline=[{', '.join([*cfg.pipeline, stage])}]")
        known = list(dict.fromkeys(scheduled))
        near = difflib.get_close_matches(name, known, n=1)
        hint = f" (did you mean {near[0]!r}?)" if near else ""
        raise ConfigError(f"--only {name}: no such job{hint}; the pipeline's jobs: {', '.join(known)}")


def dry_run(cfg, registry, job, *, force: bool, would_run: set[str]) -> None:
    """--dry-run: say whether ``job`` is up to date or would run, and what would stop it before training (a
    missing data file), as a warning. ``would_run``: the outputs a real run would rebuild; jobs reading them
    would run too."""
    from camelid.stage import check_before_training

    stale_input = any(ref.split("@")[0] in would_run for ref in job.inputs.values())
    done = None if force or stale_input else up_to_date(registry, job)
    if done is not None:
        registry.pin(job.output, done.version)
        log.info("[%s] up to date: %s", job.name, done.ref)
        return
    log.info("[%s] would run -> %s", job.name, job.output)
    try:
        check_before_training(cfg, job)
    except ConfigError as e:
        log.warning("[%s] would stop before training: %s", job.name, e)
    would_run.add(job.output)


def _sync(state, stage: int) -> None:
    """Before the next stage of a multi-process launch: every process caught up.

    Stages must leave the process group alive (no Accelerator.end_training(), which destroys it): the
    next stage's collectives need it.
    """
    if state.num_processes == 1:
        return
    import torch.distributed as dist

    if not dist.is_initialized():
        raise RuntimeError(f"stage {stage}: the process group was destroyed by the stage before; "
                           "a stage must not call Accelerator.end_training()")
    state.wait_for_everyone()
