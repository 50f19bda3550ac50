"""Format adapters: each turns one real-world layout into canonical records (DESIGN.md §4).

`ADAPTERS` maps a format name to its `Adapter`; `detect_format(row)` guesses the name from the keys of
a file's first row (the order below settles overlaps, e.g. canonical pairs before HH-RLHF).
"""

from __future__ import annotations

from camelid.data.adapters import chat, hh, instructions, oasst, safety, xstest
from camelid.data.adapters.base import KINDS, Adapter, Ctx, Dropped, Record
from camelid.errors import DataError

ADAPTERS: dict[str, Adapter] = {
    a.name: a for a in [*chat.ADAPTERS, *hh.ADAPTERS, *safety.ADAPTERS, *xstest.ADAPTERS, *oasst.ADAPTERS, *instructions.ADAPTERS]
}
# Detection order: the more specific layout first (canonical pairs have chosen/rejected like HH-RLHF).
_DETECT_ORDER = ["preference", "hh-rlhf", "pku-saferlhf", "xstest", "beavertails", "oasst", "prompts",
                 "messages", "self-instruct", "alpaca", "gsm8k", "arena-hard", "mt-bench"]
assert sorted(_DETECT_ORDER) == sorted(ADAPTERS), "every adapter needs a place in the detection order"
# Alternative spellings people use for the same layouts.
ALIASES = {"hh": "hh-rlhf", "anthropic-hh": "hh-rlhf", "pku": "pku-saferlhf", "saferlhf": "pku-saferlhf",
           "pku-safe-rlhf": "pku-saferlhf", "chat": "messages", "sharegpt": "messages", "pairs": "preference",
           "openassistant": "oasst", "oasst1": "oasst", "oasst2": "oasst", "selfinstruct": "self-instruct",
           "mtbench": "mt-bench", "arenahard": "arena-hard", "arena-hard-auto": "arena-hard"}


def get_adapter(name: str) -> Adapter:
    """The adapter for a format name (or alias); DataError listing the known names otherwise."""
    adapter = ADAPTERS.get(ALIASES.get(name, name))
    if adapter is None:
        raise DataError(f"unknown data format {name!r}: use one of toy, auto, {', '.join(ADAPTERS)}")
    return adapter


def detect_format(row: dict, where: str = "") -> str:
    """The format whose keys the row has; DataError naming the keys when none fits."""
    keys = {str(k) for k in row}
    for name in _DETECT_ORDER:
        if ADAPTERS[name].detect(keys):
            return name
    loc = f"{where}: " if where else ""
    raise DataError(f"{loc}cannot detect the data format from the keys {sorted(keys)}: name it with "
                    f"`format:` (one of {', '.join(ADAPTERS)}) or map your columns with `columns:`")


__all__ = ["ADAPTERS", "KINDS", "Adapter", "Ctx", "Dropped", "Record", "detect_format", "get_adapter"]
