"""Format adapters: each turns one real-world layout into canonical records (docs/data.md, "Records").

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


# Public benchmark files that camelid does not ship (their licences and sizes vary): where to download them.
DOWNLOADS = {
    "mt-bench": "https://raw.githubusercontent.com/lm-sys/FastChat/main/fastchat/llm_judge/data/mt_bench/"
                "question.jsonl (MT-Bench's 80 questions)",
    "arena-hard": "question.jsonl of github.com/lmarena/arena-hard-auto (data/arena-hard-v0.1/)",
}


def where_to_get(fmt: str) -> str:
    """'. Get it from URL' for a format whose public file is not shipped; '' otherwise."""
    url = DOWNLOADS.get(ALIASES.get(fmt, fmt))
    return f". It is not shipped with camelid: download it from {url}" if url else ""


def get_adapter(name: str) -> Adapter:
    """The adapter for a format name (or alias); DataError listing the known names otherwise."""
    adapter = ADAPTERS.get(ALIASES.get(name, name))
    if adapter is None:
        raise DataError(f"unknown data format {name!r}: use one of toy, auto, {', '.join(ADAPTERS)}")
    return adapter


def detect_format(row: dict, where: str = "", *, cli: bool = False) -> str:
    """The format whose keys the row has; DataError naming the keys when none fits.

    ``cli``: the spec came from the command line, so the hint names its syntax (FORMAT:PATH, --column), not
    pipelines.yaml's keys.
    """
    keys = {str(k) for k in row}
    for name in _DETECT_ORDER:
        if ADAPTERS[name].detect(keys):
            return name
    loc = f"{where}: " if where else ""
    if cli:
        how = (f"name it as FORMAT:PATH (e.g. xstest:prompts.csv; FORMAT one of {', '.join(ADAPTERS)}) or map "
               "your columns with --column FIELD=COLUMN")
    else:
        how = f"name it with `format:` (one of {', '.join(ADAPTERS)}) or map your columns with `columns:`"
    raise DataError(f"{loc}cannot detect the data format from the keys {sorted(keys)}: {how}")


__all__ = ["ADAPTERS", "KINDS", "Adapter", "Ctx", "Dropped", "Record", "detect_format", "get_adapter",
           "where_to_get"]
