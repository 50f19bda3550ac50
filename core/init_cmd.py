"""`camelid init`: train the toy tokenizer, build the tiny Llama of the profile, publish base/vN.

Also scores the untrained model on held-out toy prompts with the oracle: the floor every stage
must beat. Stages call `ensure_base` so a fresh registry works without running init by hand.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from camelid.log import get_logger
from camelid.registry import Artifact, Registry, config_hash
from camelid.stage import Job, JobSpec, Recipe, Runtime, Stage

if TYPE_CHECKING:  # the config is built from the stage declarations, this one included
    from camelid.config import PipelineConfig, ToyBaseConfig

log = get_logger("init")


def run_init(cfg: PipelineConfig, registry: Registry, *, force: bool = False) -> Artifact:
    """Build and publish the toy base through the stage driver; every process of a launch gets the same one.

    Under `accelerate launch` / torchrun only the main process builds (training a tokenizer N times
    is waste, and N publishers would make N versions); the others wait for its ref.
    """
    from camelid.stage import execute

    return execute(cfg, registry, STAGE.job(cfg, force=force))


def build_base(tb: ToyBaseConfig, registry: Registry, *, force: bool = False, world_size: int = 1) -> Artifact:
    """Build and publish base/vN of ``tb`` (the config's toy_base) in this process alone (or return the
    up-to-date one unless ``force``)."""
    from camelid.data.toyworld import ToyWorld, evaluate
    from camelid.models import build_tiny_llama, count_parameters, generate, save_model, train_tokenizer

    section = tb.model_dump(mode="json")
    if not force:
        existing = registry.find_matching(tb.output, config_hash(section), {})
        if existing is not None:
            log.info("%s is up to date (same config); use --force to build a new version", existing.ref)
            return existing
    t0 = time.perf_counter()
    world = ToyWorld(seed=tb.seed)
    tokenizer = train_tokenizer(world.corpus(n_lines=tb.tokenizer_lines), tb.vocab_size)
    model = build_tiny_llama(tb, tokenizer)
    n_params = count_parameters(model)
    log.info("tokenizer: %d tokens; model: %.2fM parameters (%d layers, hidden %d)",
             len(tokenizer), n_params / 1e6, tb.num_layers, tb.hidden_size)
    # world_size: processes in the launch that published this (one of them built it), as the other stages record
    metrics: dict = {"parameters": n_params, "vocab_size": len(tokenizer), "world_size": world_size}
    if tb.eval_prompts:
        prompts = world.prompts(split="eval", n=tb.eval_prompts)
        answers = generate(model, tokenizer, [p.messages for p in prompts], max_new_tokens=32)
        floor = evaluate(prompts, answers)
        metrics["oracle"] = floor
        log.info("untrained model on %d held-out prompts (the floor): %s", len(prompts),
                 ", ".join(f"{k}={v:.3f}" for k, v in floor.items() if isinstance(v, float)))
    with registry.publish(tb.output, "base", config=section, metrics=metrics) as pub:
        save_model(pub.dir, model, tokenizer)
    log.info("published %s in %.1fs", pub.artifact.ref, time.perf_counter() - t0)
    return pub.artifact


@dataclass(frozen=True)
class InitOptions:
    force: bool = False  # publish a new version even if one is up to date


class InitStage(Stage):
    name = "init"
    help = "Train the toy tokenizer, build the tiny base model, publish base/vN"
    description = "Build the toy tokenizer + tiny Llama base model and publish it."
    job_specs = (JobSpec("init", kind="base", policy=True,  # an untrained chat model is still a policy
                         recipe="camelid.init_cmd:BuildBase"),)

    def job(self, cfg: PipelineConfig, *, force: bool = False) -> Job:
        tb = cfg.toy_base  # a core section (toy_base), not a stage's
        return Job(stage=self.name, spec=self.spec(), name=self.name, output=tb.output,
                   settings=tb.model_copy(deep=True), section=tb.model_dump(mode="json"), inputs={},
                   runtime=Runtime.of(cfg), options=InitOptions(force=force), where="toy_base")

    def jobs(self, cfg: PipelineConfig) -> list[Job]:
        # Only when a job of the pipeline reads the toy base; real profiles start from an imported or Hub model.
        from camelid.stages import get_stage

        reads = (ref for name in cfg.pipeline if name != self.name for job in get_stage(name).jobs(cfg)
                 for ref in job.inputs.values())
        if not any(ref.partition("@")[0] == cfg.toy_base.output for ref in reads):
            return []
        return [self.job(cfg, force=True)]

    def add_arguments(self, parser) -> None:
        parser.add_argument("--force", action="store_true", help="publish a new version even if one is up to date")

    def select(self, cfg: PipelineConfig, args) -> list[Job]:
        return [self.job(cfg, force=args.force)]


class BuildBase(Recipe):
    """The init job: the main process builds and publishes the toy base (build_base does all four steps: training
    the tokenizer, building the model, scoring it on held-out prompts, publishing)."""

    def publish(self) -> Artifact | None:
        ctx = self.ctx
        if not ctx.is_main:
            return None
        return build_base(ctx.section, ctx.registry, force=ctx.job.options.force, world_size=ctx.state.num_processes)


STAGE = InitStage()


def ensure_base(cfg: PipelineConfig, registry: Registry, ref: str) -> None:
    """If ``ref`` names the toy base and the registry has none yet, build it (what a new user expects).

    No collective calls: the stages call this on their main process only, while the others wait.
    """
    name = ref.partition("@")[0]
    if name == cfg.toy_base.output and not registry.versions(name):
        log.info("%s not in the registry yet: running `camelid init` first", name)
        from camelid.models import process_state

        build_base(cfg.toy_base, registry, world_size=process_state(cfg.device).num_processes)


