"""`camelid config [--profile P] [key=value ...]`: print the resolved configuration, or list profiles."""

from __future__ import annotations

import yaml

from camelid.cli_common import resolve, stage_parser
from camelid.config import list_profiles


def main(argv: list[str]) -> int:
    p = stage_parser("camelid config", "Print the resolved configuration (profile + overrides applied).")
    p.add_argument("--profiles", action="store_true", help="list the profiles and exit")
    args = p.parse_intermixed_args(argv)
    if args.profiles:
        for name, desc in list_profiles(args.config).items():
            print(f"{name:<14} {desc}")
        return 0
    cfg, _ = resolve(args)
    print(yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False, width=110), end="")
    return 0
