"""The stage skeleton: what a stage declares, and the one driver that runs every stage.

A stage (torchtune's recipe idea) declares, in one place (its ``stage.py``):

- its config model, which core places at ``stages.<name>`` (or the top-level key ``config_key``);
- each job it runs (``JobSpec``): the artifact kind the job publishes, the file that marks a complete
  checkpoint of its run, whether its artifact is a chat policy (accepted wherever a policy goes), the
  section keys that may change on ``--resume``, and its recipe;
- the jobs it makes of a config (reward: one per objective; rs: sample then fine-tune), each carrying a
  typed, frozen view of everything its recipe reads: the section, the shared settings, the runtime
  settings (device, remote code, attention kernel) and the stage's own typed options;
- the shared settings it reads (hashed into its artifacts).

Core builds the config's stage sections, the registry's artifact kinds and the set of policy kinds from
these declarations (``camelid.stages``); it imports no stage. A job's recipe (a ``Recipe``) reads as
setup -> train -> evaluate -> publish and does nothing else. The driver (``execute``) does the plumbing:

- checks the output name, local data files and input kinds before any training step;
- resolves the inputs (building the toy base first when an input names it and the registry has none);
- picks the run folder and applies the fresh-or-resume policy (``camelid.runs``);
- records the common metrics (seconds, world size, resumed-from) in the published manifest;
- broadcasts the main process's published ref, so every process returns the same artifact.

A new stage is its own folder plus one line in ``camelid.stages.STAGES``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from camelid.errors import ConfigError, DataError
from camelid.log import get_logger
from camelid.registry import Artifact, Publication, Registry, validate_name

log = get_logger("stage")


@dataclass(frozen=True)
class JobSpec:
    """One job of a stage as the stage declares it: what it publishes and how a run of it resumes."""

    name: str                                   # the job's name (jobs of one spec may add a suffix: reward-safety)
    kind: str                                   # artifact kind it publishes (the registry accepts the declared ones)
    checkpoint_marker: str | None = None        # file that marks a complete checkpoint-N folder (None: no resume)
    policy: bool = False                        # its artifact is a chat policy: accepted wherever a policy goes
    resume_keys: frozenset[str] = frozenset()   # section keys that may change on --resume
    recipe: str = ""                            # "module:Class" of its Recipe (imported when the job runs)


@dataclass(frozen=True)
class Runtime:
    """The pipeline-wide settings a recipe reads: where it runs and how it loads models."""

    device: str = "auto"                        # auto | cpu | cuda
    trust_remote_code: bool = False
    attn_implementation: str | None = None      # training attention kernel (null: transformers' default)

    @classmethod
    def of(cls, cfg) -> Runtime:
        return cls(device=cfg.device, trust_remote_code=cfg.trust_remote_code,
                   attn_implementation=cfg.attn_implementation)


@dataclass(frozen=True)
class Job:
    """One run of a stage: what it publishes, from which inputs, with which settings. Recipes read only this."""

    stage: str                          # registered stage name (sft, reward, ...)
    spec: JobSpec                       # its declaration: kind, checkpoint marker, policy, resumable keys
    name: str                           # display / run-folder name, e.g. reward-safety
    output: str                         # registry name it publishes
    settings: Any                       # the typed section it was made from (a private copy)
    section: dict                       # what is published as its config and hashed (settings as JSON, + round)
    inputs: dict[str, str]              # role -> ref
    input_kinds: dict[str, tuple[str, ...]] = field(default_factory=dict)  # role -> allowed kinds
    shared: dict[str, Any] = field(default_factory=dict)  # shared settings it reads: name -> value
    runtime: Runtime = Runtime()        # device, remote code, attention kernel
    options: Any = None                 # the stage's typed per-invocation options (a frozen dataclass) or None
    where: str = ""                     # its dotted config path, for messages (stages.sft, stages.rs.finetune)

    @property
    def config(self) -> dict:
        """What is published as the artifact's config and hashed: the section plus the shared settings read."""
        return {**self.section, "shared": dict(sorted(self.shared.items()))} if self.shared else self.section

    def replace(self, **changes) -> Job:
        """A copy with ``changes`` (jobs are frozen: a round renames one, rs points its fine-tune at the samples)."""
        return dataclasses.replace(self, **changes)


class Stage:
    """Base class of a stage declaration. Subclasses set the class attributes and implement jobs() and run()."""

    name: ClassVar[str]                       # CLI command and the name of its section
    help: ClassVar[str]                       # one line for `camelid --help`
    description: ClassVar[str] = ""           # the CLI's longer description
    # Its section's pydantic model, or "module:Class" of it (imported only when a config is built, so that
    # `camelid --help` imports no pydantic); None: it has no section.
    config_model: ClassVar[Any] = None
    config_key: ClassVar[str | None] = None   # a top-level section key instead of `stages.<name>` (rounds)
    shared: ClassVar[tuple[str, ...]] = ()    # names of `shared.*` settings it reads
    job_specs: ClassVar[tuple[JobSpec, ...]] = ()  # every job it runs
    # A one-job stage may declare its job with these instead of job_specs (the job is named after the stage).
    kind: ClassVar[str | None] = None
    checkpoint_marker: ClassVar[str | None] = None
    policy: ClassVar[bool] = False
    resume_keys: ClassVar[frozenset[str]] = frozenset()
    recipe: ClassVar[str] = ""

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        if "job_specs" not in cls.__dict__ and cls.kind is not None:
            cls.job_specs = (JobSpec(cls.name, cls.kind, cls.checkpoint_marker, cls.policy, cls.resume_keys,
                                     cls.recipe),)

    def spec(self, name: str | None = None) -> JobSpec:
        """The declared job called ``name`` (default: the stage's only one)."""
        if name is None and len(self.job_specs) == 1:
            return self.job_specs[0]
        for spec in self.job_specs:
            if spec.name == name:
                return spec
        raise ConfigError(f"stage {self.name} declares no job {name!r}; its jobs: "
                          f"{', '.join(s.name for s in self.job_specs) or '(none)'}")

    def section_model(self):
        """Its config model (None: it has no section)."""
        model = self.config_model
        if isinstance(model, str):
            module, _, attr = model.partition(":")
            model = getattr(importlib.import_module(module), attr)
        return model

    def section_of(self, cfg):
        """Its typed section of a pipeline config."""
        return getattr(cfg, self.config_key) if self.config_key else getattr(cfg.stages, self.name)

    def jobs(self, cfg) -> list[Job]:
        raise NotImplementedError

    def run(self, ctx: StageContext) -> Artifact | None:
        """The job's recipe (its JobSpec names it): setup -> train -> evaluate -> publish; the artifact on the main
        process, None elsewhere."""
        if not ctx.job.spec.recipe:
            raise NotImplementedError(f"stage {self.name}: job {ctx.job.spec.name} declares no recipe")
        module, _, attr = ctx.job.spec.recipe.partition(":")
        return getattr(importlib.import_module(module), attr)(ctx).run()

    # ---- CLI hooks (optional) ----
    def main(self, argv: list[str]) -> int:
        """`camelid <name> ...`: by default the shared stage CLI (stage_main)."""
        return stage_main(self.name, argv)

    def add_arguments(self, parser) -> None:
        """Stage-specific CLI flags."""

    def prepare_args(self, args) -> None:
        """Adjust parsed arguments before the config is loaded (e.g. split positional refs from overrides)."""

    def select(self, cfg, args) -> list[Job]:
        """The jobs a CLI call runs; default: every job of the stage."""
        return self.jobs(cfg)

    def report(self, art: Artifact, args) -> None:
        """What the CLI prints after a job (first process only)."""
        print(art.ref)

    # ---- helpers for jobs() ----
    def make_job(self, cfg, section, *, spec: str | None = None, name: str | None = None, inputs: dict[str, str],
                 input_kinds: dict[str, tuple[str, ...]] | None = None, options: Any = None,
                 where: str | None = None, output: str | None = None, exclude: set[str] | None = None) -> Job:
        """A job of the declared job ``spec`` from ``section``: it publishes ``output`` (default: section.output),
        its config is the section without the keys in ``exclude``."""
        declared = self.spec(spec)
        return Job(stage=self.name, spec=declared, name=name or declared.name, output=output or section.output,
                   settings=section.model_copy(deep=True), section=section.model_dump(mode="json", exclude=exclude),
                   inputs=dict(inputs), input_kinds=dict(input_kinds or {}),
                   shared={k: getattr(cfg.shared, k) for k in self.shared}, runtime=Runtime.of(cfg),
                   options=options, where=where or (self.config_key or f"stages.{self.name}"))


class Recipe:
    """A job's recipe, read top to bottom as torchtune's are: setup() -> train() -> evaluate() -> publish(), then
    cleanup() whatever happened. A step a job has no use for stays empty (compare trains nothing); publish()
    returns the artifact on the main process and None on the others."""

    def __init__(self, ctx: StageContext):
        self.ctx = ctx

    def setup(self) -> None:
        """Load the data and models, build the trainer."""

    def train(self) -> None:
        """The job's main loop: training steps (rs-sample: sampling)."""

    def evaluate(self) -> None:
        """The held-out numbers the manifest records."""

    def publish(self) -> Artifact | None:
        raise NotImplementedError

    def cleanup(self) -> None:
        """Release what setup() opened (trackers), after publish() or a failure."""

    def run(self) -> Artifact | None:
        try:
            self.setup()
            self.train()
            self.evaluate()
            return self.publish()
        finally:
            self.cleanup()


@dataclass
class StageContext:
    """What the driver hands a stage's run(): resolved inputs, run folder, resume point, process state.

    A recipe reads its job (``ctx.job``, ``ctx.section``), never the pipeline config: ``cfg`` is the driver's.
    """

    cfg: Any                     # PipelineConfig (the driver's: run folders, keep_checkpoints, the profile)
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
        """The job's typed config section."""
        return self.job.settings

    @property
    def is_main(self) -> bool:
        return self.state.is_main_process

    def common_metrics(self) -> dict:
        return {"seconds": round(time.perf_counter() - self.started, 1), "world_size": self.state.num_processes,
                "resumed_from": self.checkpoint.name if self.checkpoint else None}

    @contextlib.contextmanager
    def publish(self, *, data_fingerprints: dict | None = None, metrics: dict | None = None
                ) -> Iterator[Publication]:
        """Publish job.output as the job's kind with its config and inputs (main process only); adds the
        common metrics."""
        with self.registry.publish(self.job.output, self.job.spec.kind, config=self.job.config, inputs=self.inputs,
                                   data_fingerprints=data_fingerprints, metrics=metrics) as pub:
            yield pub
            pub.metrics.update(self.common_metrics())


# ---- the driver ------------------------------------------------------------------------------------------

def check_before_training(cfg, job: Job) -> None:
    """Everything a job needs that can be checked without loading a model: fail now, not after training."""
    validate_name(job.output, f"{job.stage} output name")
    from camelid.data.adapters.sources import BUILTIN, builtin_file
    from camelid.data.spec import DataSpec

    for key, spec in _data_specs(job.settings, job.where or f"stages.{job.stage}"):
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
    run_dir, checkpoint = choose_run(cfg, job, inputs, resume=resume, state=state)
    if checkpoint is not None:  # a damaged or unsafe file is one line naming it, not torch.load's traceback
        from camelid.runs.guards import check_resume_checkpoint

        check_resume_checkpoint(checkpoint)
    return StageContext(cfg=cfg, registry=registry, job=job, stage=stage, inputs=inputs, run_dir=run_dir,
                        checkpoint=checkpoint, state=state)


def execute(cfg, registry: Registry, job: Job, *, resume: bool = False) -> Artifact:
    """Run one job end to end and return its published artifact, the same on every process."""
    if resume:
        done = already_complete(cfg, registry, job)
        if done is not None:
            return done
    from camelid.runs.lock import after_publish, held_run

    with held_run(cfg, registry, job) as published:  # one trainer per run folder; the others wait
        if published is not None:
            return published
        ctx = context_for(cfg, registry, job, resume=resume)
        from camelid.runs.guards import stopped_by_full_disk

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

    if job.spec.checkpoint_marker is None:  # nothing to resume: --resume reruns it
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


def ensure(cfg, job: Job, *, registry: Registry, resume: bool = False, force: bool = False) -> Artifact:
    """The job's artifact: the published one when up to date (unless ``force``), else run it; then pinned, so the
    jobs after it read exactly this version (`camelid run`'s and `camelid round`'s step)."""
    art = None if force else up_to_date(registry, job)
    if art is not None:
        log.info("[%s] up to date: %s", job.name, art.ref)
    else:
        log.info("[%s] running", job.name)
        t0 = time.perf_counter()
        art = execute(cfg, registry, job, resume=resume)
        log.info("[%s] published %s in %.1fs", job.name, art.ref, time.perf_counter() - t0)
    registry.pin(job.output, art.version)
    return art


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
    from camelid.config.args import is_first_process, resolve, stage_parser
    from camelid.stages import get_stage

    stage = get_stage(name)
    resumable = any(spec.checkpoint_marker for spec in stage.job_specs)
    p = stage_parser(f"camelid {name}", stage.description or stage.help, resume=resumable)
    stage.add_arguments(p)
    args = p.parse_intermixed_args(argv)  # options may follow key=value overrides
    stage.prepare_args(args)
    cfg, registry = resolve(args)
    for job in stage.select(cfg, args):
        art = execute(cfg, registry, job, resume=bool(getattr(args, "resume", False)))
        if is_first_process():  # every process gets the artifact; one prints it
            stage.report(art, args)
    return 0
