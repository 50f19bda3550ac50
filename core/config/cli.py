"""`camelid config [--profile P] [--explain [KEY_PREFIX]] [key=value ...]`: print the resolved configuration
(bare YAML, or each key with its value and help text), or list profiles."""

from __future__ import annotations

import json
import textwrap
from collections.abc import Iterator

import yaml
from pydantic import BaseModel

from camelid.config import list_profiles
from camelid.config.args import resolve, stage_parser
from camelid.errors import ConfigError


def explained(model: BaseModel, prefix: str = "", help_: str = "") -> Iterator[tuple[str, object, str]]:
    """(dotted key, value, help text) for every setting under ``model``; list items are keyed by index
    (``stages.sft.data.0.path``), as overrides name them."""
    fields = type(model).model_fields
    for name, field in fields.items():
        if not field.exclude:
            yield from _explain_value(getattr(model, name), f"{prefix}{name}", field.description or "")


def _explain_value(value, key: str, desc: str) -> Iterator[tuple[str, object, str]]:
    if isinstance(value, BaseModel):
        yield from explained(value, key + ".", desc)
    elif isinstance(value, list) and value and all(isinstance(v, BaseModel) for v in value):
        for i, item in enumerate(value):
            yield from explained(item, f"{key}.{i}.", desc)
    else:
        yield key, value, desc or ""


def _show(value) -> str:
    if isinstance(value, BaseModel):
        value = value.model_dump(mode="json")
    return json.dumps(value, default=str, ensure_ascii=False)


def explain(cfg, key_prefix: str = "") -> str:
    """Each resolved key under ``key_prefix`` with its value and its pydantic field's description."""
    rows = [(k, v, d) for k, v, d in explained(cfg)
            if not key_prefix or k == key_prefix or k.startswith(key_prefix.rstrip(".") + ".")]
    if not rows:
        raise ConfigError(f"config --explain {key_prefix}: no setting starts with {key_prefix!r} "
                          "(e.g. stages.sft, stages.ppo.kl_coef, shared)")
    out = []
    for key, value, desc in rows:
        out.append(f"{key} = {_show(value)}")
        if desc:
            out += textwrap.wrap(desc, width=106, initial_indent="    ", subsequent_indent="    ")
    return "\n".join(out)


def main(argv: list[str]) -> int:
    p = stage_parser("camelid config", "Print the resolved configuration (profile + overrides applied).")
    p.add_argument("--profiles", action="store_true", help="list the profiles and exit")
    p.add_argument("--explain", nargs="?", const="", default=None, metavar="KEY_PREFIX",
                   help="print each key with its value and help text (only those under KEY_PREFIX, e.g. stages.sft)")
    args = p.parse_intermixed_args(argv)
    if args.profiles:
        for name, desc in list_profiles(args.config).items():
            print(f"{name:<14} {desc}")
        return 0
    if args.explain and "=" in args.explain:  # `--explain stages.sft.lr=1`: an override, not a prefix
        args.overrides.append(args.explain)
        args.explain = ""
    cfg, _ = resolve(args)
    if args.explain is not None:
        print(explain(cfg, args.explain))
        return 0
    print(yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False, width=110), end="")
    return 0
