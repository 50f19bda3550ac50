"""`camelid reward [--objective helpfulness|safety] [--resume] [key=value ...]`."""

from __future__ import annotations

from camelid.cli_common import is_first_process, resolve, stage_parser
from camelid.reward.recipe import OBJECTIVES


def main(argv: list[str]) -> int:
    p = stage_parser("camelid reward",
                     "Train Llama 2-style reward models (margin loss by rating) and publish rm-<objective>/vN. "
                     "Without --objective, trains every objective in stages.reward.objectives.", resume=True)
    p.add_argument("--objective", choices=OBJECTIVES, action="append",
                   help="which reward model to train (repeatable; default: stages.reward.objectives)")
    args = p.parse_intermixed_args(argv)  # options may come after key=value overrides
    cfg, registry = resolve(args)

    from camelid.reward.recipe import run

    for objective in args.objective or cfg.stages.reward.objectives:
        art = run(cfg, registry, objective=objective, resume=args.resume)
        if is_first_process():  # every rank gets the artifact; one prints it
            print(art.ref)
    return 0
