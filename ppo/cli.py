"""`camelid ppo`: PPO against Llama 2's combined helpfulness/safety reward; publishes ppo/vN.

    camelid ppo --profile tiny
    camelid ppo --profile tiny --resume stages.ppo.iterations=300
    accelerate launch --multi_gpu --num_processes 2 --num_machines 1 --mixed_precision no \\
        --dynamo_backend no -m camelid.cli ppo --profile micro      # 2 CPU processes (gloo)
"""

from __future__ import annotations

from camelid.cli_common import is_first_process, resolve, stage_parser


def main(argv: list[str]) -> int:
    p = stage_parser("camelid ppo", "PPO with the combined helpfulness/safety reward (Llama 2); "
                     "publishes stages.ppo.output/vN.", resume=True)
    args = p.parse_intermixed_args(argv)
    cfg, registry = resolve(args)
    from camelid.ppo.recipe import run

    art = run(cfg, registry, resume=args.resume)
    if is_first_process():  # every rank gets the artifact; one prints it
        print(art.ref)
    return 0
