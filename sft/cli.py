"""`camelid sft`: supervised fine-tuning of the pipeline's base model; publishes sft/vN."""

from __future__ import annotations

from camelid.cli_common import resolve, stage_parser


def main(argv: list[str]) -> int:
    p = stage_parser("camelid sft", "Supervised fine-tuning (Llama 2 recipe on TRL's SFTTrainer); "
                     "publishes the model into the registry as sft/vN (stages.sft.output).", resume=True)
    args = p.parse_intermixed_args(argv)
    cfg, registry = resolve(args)
    from camelid.sft.recipe import run

    artifact = run(cfg, registry, resume=args.resume)
    if artifact is not None:  # rank 0 of a distributed run, or a single process
        print(artifact.ref)
    return 0
