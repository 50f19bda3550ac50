"""`camelid init`: train the toy tokenizer, build the tiny Llama of the profile, publish base/vN.

Also scores the untrained model on held-out toy prompts with the oracle: the floor every stage
must beat. Stages call `ensure_base` so a fresh registry works without running init by hand.
"""

from __future__ import annotations

import time

from camelid.cli_common import is_first_process, resolve, stage_parser
from camelid.config import PipelineConfig
from camelid.log import get_logger
from camelid.registry import Artifact, Registry, config_hash

log = get_logger("init")


def run_init(cfg: PipelineConfig, registry: Registry, *, force: bool = False) -> Artifact:
    """The stage: build and publish the toy base; every process of a launch returns the same artifact.

    Under `accelerate launch` / torchrun only the main process builds (training a tokenizer N times
    is waste, and N publishers would make N versions); the others wait for its ref.
    """
    from accelerate.utils import broadcast_object_list

    from camelid.models import process_state

    state = process_state(cfg.device)
    ref = [None]
    if state.is_main_process:
        ref = [build_base(cfg, registry, force=force, world_size=state.num_processes).ref]
    if state.num_processes > 1:
        broadcast_object_list(ref)  # the other processes wait here for the main one
    return registry.resolve(ref[0])


def build_base(cfg: PipelineConfig, registry: Registry, *, force: bool = False, world_size: int = 1) -> Artifact:
    """Build and publish base/vN in this process alone (or return the up-to-date one unless ``force``)."""
    from camelid.data.toyworld import ToyWorld, evaluate
    from camelid.models import build_tiny_llama, count_parameters, generate, train_tokenizer

    tb = cfg.toy_base
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
        model.save_pretrained(pub.dir / "model", safe_serialization=True)
        tokenizer.save_pretrained(pub.dir / "model")
    log.info("published %s in %.1fs", pub.artifact.ref, time.perf_counter() - t0)
    return pub.artifact


run = run_init  # the name `camelid run` calls (camelid.stages)


def ensure_base(cfg: PipelineConfig, registry: Registry, ref: str) -> None:
    """If ``ref`` names the toy base and the registry has none yet, build it (what a new user expects).

    No collective calls: the stages call this on their main process only, while the others wait.
    """
    name = ref.partition("@")[0]
    if name == cfg.toy_base.output and not registry.versions(name):
        log.info("%s not in the registry yet: running `camelid init` first", name)
        from camelid.models import process_state

        build_base(cfg, registry, world_size=process_state(cfg.device).num_processes)




def main(argv: list[str]) -> int:
    p = stage_parser("camelid init", "Build the toy tokenizer + tiny Llama base model and publish it.")
    p.add_argument("--force", action="store_true", help="publish a new version even if one is up to date")
    args = p.parse_intermixed_args(argv)
    cfg, registry = resolve(args)
    art = run_init(cfg, registry, force=args.force)
    if is_first_process():  # every process gets the artifact; one prints it
        print(art.ref)
    return 0
