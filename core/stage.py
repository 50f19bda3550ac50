"""The stage skeleton: what a stage declares, and the one driver that runs every stage.

A stage (torchtune's recipe idea) declares its config section, the jobs it makes of a config (reward: one
per objective), each job's inputs with the artifact kinds they must be, the shared settings it reads
(hashed into its artifacts) and the keys that may change on `--resume`. Its ``run(ctx)`` does
setup -> train -> evaluate -> publish and nothing else. The driver (``execute``) does the plumbing that
every stage used to do by hand:

- checks the output name, local data files and input kinds before any training step;
- resolves the inputs (building the toy base first when an input names it and the registry has none);
- picks the run folder and applies the fresh-or-resume policy (``camelid.runs``);
- records the common metrics (seconds, world size, resumed-from) in the published manifest;
- broadcasts the main process's published ref, so every process returns the same artifact.

A new stage is its own folder plus one line in ``camelid.stages.STAGES``.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from camelid.errors import ConfigError, DataError
from camelid.log import get_logger
from camelid.registry import Artifact, Publication, Registry, validate_name

log = get_logger("stage")

@dataclass
class Job:
    """One run of a stage: what it publishes, from which inputs, with which settings."""

    stage: str                          # registered stage name (sft, reward, ...)
    name: str                           # display / run-folder name, e.g. reward-safety
    output: str                         # registry name it publishes
    section: dict                       # resolved config section
    inputs: dict[str, str]              # role -> ref
    input_kinds: dict[str, tuple[str, ...]] = field(default_factory=dict)  # role -> allowed kinds
    shared: dict[str, Any] = field(default_factory=dict)  # shared settings it reads: name -> value
    options: dict = field(default_factory=dict)  # per-invocation options that are not settings (objective, force)
    settings: Any = None                # the typed section it was made from (a recipe reads this, not cfg.stages.x)
    where: str = ""                     # its dotted config path, for messages (stages.sft, stages.rs.finetune)

    @property
    def config(self) -> dict:
        """What is published as the artifact's config and hashed: the section plus the shared settings read."""
        return {**self.section, "shared": dict(sorted(self.shared.items()))} if self.shared else self.section


class Stage:
    """Base class of a stage declaration. Subclasses set the class attributes and implement jobs() and run()."""

    name: ClassVar[str]                       # CLI command and `stages.<name>` section
    kind: ClassVar[str]                       # artifact kind it publishes
    help: ClassVar[str]                       # one line for `camelid --help`
    description: ClassVar[str] = ""           # the CLI's longer description
    config_model: ClassVar[Any] = None        # pydantic model of `stages.<name>` (built-in stages: StagesConfig)
    shared: ClassVar[tuple[str, ...]] = ()    # names of `shared.*` settings it reads
    resume_keys: ClassVar[frozenset[str]] = frozenset()  # section keys that may change on --resume
    checkpoint_marker: ClassVar[str | None] = None  # file that marks a complete checkpoint-N folder (None: no resume)

    def jobs(self, cfg) -> list[Job]:
        raise NotImplementedError

    def run(self, ctx: StageContext) -> Artifact | None:
        """setup -> train -> evaluate -> publish; returns the artifact on the main process (None elsewhere)."""
        raise NotImplementedError

    # ---- CLI hooks (optional) ----
    def add_arguments(self, parser) -> None:
        """Stage-specific CLI flags."""

    def prepare_args(self, args) -> None:
        """Adjust parsed arguments before the config is loaded (e.g. split positional refs from overrides)."""

    def select(self, cfg, args) -> tuple[Any, list[Job]]:
        """The (config, jobs) a CLI call runs; default: every job of the stage."""
        return cfg, self.jobs(cfg)

    def report(self, art: Artifact, args) -> None:
        """What the CLI prints after a job (first process only)."""
        print(art.ref)

    # ---- helpers for jobs() ----
    def make_job(self, cfg, section, *, name: str | None = None, inputs: dict[str, str],
                 input_kinds: dict[str, tuple[str, ...]] | None = None, options: dict | None = None,
                 where: str | None = None) -> Job:
        return Job(stage=self.name, name=name or self.name, output=section.output,
                   section=section.model_dump(mode="json"), inputs=inputs,
                   input_kinds=input_kinds or {}, shared={k: getattr(cfg.shared, k) for k in self.shared},
                   options=dict(options or {}), settings=section, where=where or f"stages.{self.name}")


@dataclass
class StageContext:
    """What the driver hands a stage's run(): resolved inputs, run folder, resume point, process state."""

    cfg: Any                     # PipelineConfig
    registry: Registry
    job: Job
    stage: Stage
    inputs: dict[str, Artifact]  # role -> resolved artifact
    run_dir: Path
    checkpoint: Path | None      # the checkpoint to resume from (None: a fresh start)
    state: Any                   # accelerate PartialState
    started: float = field(default_factory=time.perf_counter)

    @property
    def section(self):
        """The job's typed config section (default: cfg.stages.<stage name>)."""
        return self.job.settings if self.job.settings is not None else getattr(self.cfg.stages, self.stage.name)

    @property
    def is_main(self) -> bool:
        return self.state.is_main_process

    def common_metrics(self) -> dict:
        return {"seconds": round(time.perf_counter() - self.started, 1), "world_size": self.state.num_processes,
                "resumed_from": self.checkpoint.name if self.checkpoint else None}

    @contextlib.contextmanager
    def publish(self, *, data_fingerprints: dict | None = None, metrics: dict | None = None
                ) -> Iterator[Publication]:
        """Publish job.output with this job's config and inputs (main process only); adds the common metrics."""
        with self.registry.publish(self.job.output, self.stage.kind, config=self.job.config, inputs=self.inputs,
                                   data_fingerprints=data_fingerprints, metrics=metrics) as pub:
            yield pub
            pub.metrics.update(self.common_metrics())


# ---- the driver ------------------------------------------------------------------------------------------

def check_before_training(cfg, job: Job) -> None:
    """Everything a job needs that can be checked without loading a model: fail now, not after training."""
    validate_name(job.output, f"{job.stage} output name")
    from camelid.data.adapters.sources import BUILTIN, builtin_file
    from camelid.data.spec import DataSpec

    settings = job.settings if job.settings is not None else getattr(cfg.stages, job.stage, None)
    for key, spec in _data_specs(settings, job.where or f"stages.{job.stage}"):
        if isinstance(spec, DataSpec) and (spec.path or "").startswith(BUILTIN):  # shipped with camelid
            try:
                builtin_file(spec.path)
            except DataError as e:
                raise ConfigError(f"{key}.path: {e}") from None
        elif isinstance(spec, DataSpec) and spec.path and not _remote(spec.path):
            path = Path(spec.path).expanduser()
            if not path.is_absolute() and cfg.config_path is not None and not path.exists():
                path = cfg.config_path.parent / path
            if not path.exists():
                from camelid.data.adapters import where_to_get

                raise ConfigError(f"{key}.path: {spec.path} does not exist (checked before training; fix the path "
                                  f"in pipelines.yaml or with a key=value override){where_to_get(spec.format)}")


def _remote(path: str) -> bool:
    return path.startswith(("hf:", "registry:")) or "://" in path


def _data_specs(node, where: str):
    """(dotted key, DataSpec) for every data spec in a config section, however nested."""
    from pydantic import BaseModel

    from camelid.data.spec import DataSpec

    if isinstance(node, DataSpec):
        yield where, node
    elif isinstance(node, BaseModel):
        for name in type(node).model_fields:
            yield from _data_specs(getattr(node, name), f"{where}.{name}")
    elif isinstance(node, list):
        for i, item in enumerate(node):
            yield from _data_specs(item, f"{where}[{i}]")


def resolve_inputs(cfg, registry: Registry, job: Job, state) -> dict[str, Artifact]:
    """Resolve every input ref and check its kind; builds the toy base first if an input names it."""
    from camelid.init_cmd import ensure_base

    if state.is_main_process:
        for ref in job.inputs.values():
            ensure_base(cfg, registry, ref)
    state.wait_for_everyone()
    inputs = {}
    for role, ref in job.inputs.items():
        art = registry.resolve(ref)
        kinds = job.input_kinds.get(role)
        if kinds and not art.external and art.kind not in kinds:
            raise ConfigError(f"{job.where or 'stages.' + job.stage}: input {role}={ref!r} is a {art.kind} artifact ({art.ref}); "
                              f"it must be one of: {', '.join(kinds)}")
        inputs[role] = art
    return inputs


def context_for(cfg, registry: Registry, job: Job, *, resume: bool = False) -> StageContext:
    """Everything before a stage's run(): checks, inputs, run folder and resume point."""
    from camelid.models import process_state
    from camelid.runs import choose_run
    from camelid.stages import get_stage

    stage = get_stage(job.stage)
    check_before_training(cfg, job)
    state = process_state(cfg.device)
    inputs = resolve_inputs(cfg, registry, job, state)
    run_dir, checkpoint = choose_run(cfg, stage, job, inputs, resume=resume, state=state)
    if checkpoint is not None:  # a damaged or unsafe file is one line naming it, not torch.load's traceback
        from camelid.run_guards import check_resume_checkpoint

        check_resume_checkpoint(checkpoint)
    return StageContext(cfg=cfg, registry=registry, job=job, stage=stage, inputs=inputs, run_dir=run_dir,
                        checkpoint=checkpoint, state=state)


def execute(cfg, registry: Registry, job: Job, *, resume: bool = False) -> Artifact:
    """Run one job end to end and return its published artifact, the same on every process."""
    if resume:
        done = already_complete(cfg, registry, job)
        if done is not None:
            return done
    from camelid.run_lock import after_publish, held_run

    with held_run(cfg, registry, job) as published:  # one trainer per run folder; the others wait
        if published is not None:
            return published
        ctx = context_for(cfg, registry, job, resume=resume)
        from camelid.run_guards import stopped_by_full_disk

        with stopped_by_full_disk(ctx):  # a full disk: which stage stopped, what was kept, how to resume
            art = share_artifact(registry, ctx.stage.run(ctx), ctx.state)
        after_publish(ctx)  # keep_checkpoints: the last checkpoint by default
    return art


def already_complete(cfg, registry: Registry, job: Job) -> Artifact | None:
    """--resume of a run that finished: its artifact (published from these settings and inputs), else None.

    Resuming it would continue past its last step and publish again; a resumable key changed (more
    max_steps or iterations) changes the config hash, so that run does continue.
    """
    from camelid.models import process_state
    from camelid.registry import config_hash
    from camelid.stages import get_stage

    if get_stage(job.stage).checkpoint_marker is None:  # nothing to resume: --resume reruns it
        return None
    check_before_training(cfg, job)
    inputs = resolve_inputs(cfg, registry, job, process_state(cfg.device))
    done = registry.find_matching(job.output, config_hash(job.config), inputs)
    if done is not None:
        log.info("[%s] --resume: already complete: %s was published from these settings and inputs; nothing "
                 "to resume (raise max_steps/epochs/iterations to train further, or drop --resume to train it "
                 "again from the start)", job.name, done.ref)
    return done


def up_to_date(registry: Registry, job: Job) -> Artifact | None:
    """The published artifact of this job's config and exact inputs, if there is one (`camelid run`'s skip rule)."""
    from camelid.registry import config_hash

    inputs = {role: registry.resolve(ref) for role, ref in job.inputs.items()}
    return registry.find_matching(job.output, config_hash(job.config), inputs)


def run_job(cfg, registry: Registry, name: str, *, resume: bool = False) -> Artifact:
    """Run the job called ``name`` (sft, reward-safety, ppo, ...) of ``cfg``: for tests, benches and scripts."""
    from camelid.stages import job_for

    return execute(cfg, registry, job_for(cfg, name), resume=resume)


def share_artifact(registry: Registry, art: Artifact | None, state) -> Artifact:
    """The main process's published artifact, on every process (the others wait for it here)."""
    ref = [art.ref if art is not None else None]
    if state.num_processes > 1:
        from accelerate.utils import broadcast_object_list

        broadcast_object_list(ref)
    if ref[0] is None:
        raise RuntimeError("internal: the main process returned no artifact")
    return art if art is not None and art.ref == ref[0] else registry.resolve(ref[0])


def stage_main(name: str, argv: list[str]) -> int:
    """The CLI of every stage: shared arguments + the stage's own, then execute each selected job."""
    from camelid.cli_common import is_first_process, resolve, stage_parser
    from camelid.stages import get_stage

    stage = get_stage(name)
    p = stage_parser(f"camelid {name}", stage.description or stage.help, resume=stage.checkpoint_marker is not None)
    stage.add_arguments(p)
    args = p.parse_intermixed_args(argv)  # options may follow key=value overrides
    stage.prepare_args(args)
    cfg, registry = resolve(args)
    cfg, jobs = stage.select(cfg, args)
    for job in jobs:
        art = execute(cfg, registry, job, resume=bool(getattr(args, "resume", False)))
        if is_first_process():  # every process gets the artifact; one prints it
            stage.report(art, args)
    return 0
