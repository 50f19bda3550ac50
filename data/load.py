"""Load canonical records from data specs: one source, or a weighted mixture of several.

    result = load_records(DataSpec(format="hh-rlhf", path="hh.jsonl"), "pairs")
    result.records, result.read, result.kept, result.dropped, result.sample_reasons, result.fingerprint

Bad rows raise `DataError` naming file:line, adapter and field; with ``on_error: skip`` they are
counted under ``dropped`` (reason "invalid ...") with sample messages instead. Rows an adapter leaves
out on purpose (empty responses, mismatched HH prompts) are always counted, never silently lost.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from camelid.data.adapters import KINDS, Ctx, Dropped, Record, detect_format, get_adapter
from camelid.data.adapters.base import KindError
from camelid.data.adapters.sources import SUFFIXES, read_rows
from camelid.data.records import PreferencePair, Prompt, SFTExample
from camelid.data.spec import DataSpec
from camelid.errors import DataError

MAX_SAMPLES_PER_REASON = 3
MAX_SAMPLES = 12
# What to tell a user who can change the behaviour: pipelines.yaml keys, or `camelid data` flags (cli=True).
_HINTS = {False: {"skip": "set on_error: skip", "max_chars": "raise max_chars"},
          True: {"skip": "pass --on-error skip", "max_chars": "pass a larger --max-chars"}}
_RECORD_TYPES = {"sft": SFTExample, "pairs": PreferencePair, "prompts": Prompt}


@dataclass
class LoadResult:
    """Records of one kind plus an account of everything read and left out."""

    kind: str
    records: list[Record] = field(default_factory=list)
    read: int = 0  # raw rows read (a toy source counts the records it generated)
    dropped: Counter = field(default_factory=Counter)  # reason -> count
    sample_reasons: list[str] = field(default_factory=list)  # "file:line: reason", a few per reason
    errors: int = 0  # rows that were invalid (only non-zero with on_error: skip)
    oversized: int = 0  # of those, rows with a text field over the spec's max_chars
    notes: list[str] = field(default_factory=list)  # things worth knowing about how the data was read
    sources: list[LoadResult] = field(default_factory=list)  # per-spec results of a mixture
    mixture: list[tuple[str, float, int, int]] = field(default_factory=list)  # (source, weight, available, used)
    name: str = ""  # the source name (records' `source`) or "mixture"
    format: str = ""

    @property
    def kept(self) -> int:
        return len(self.records)

    @property
    def fingerprint(self) -> str:
        """sha256 over the records' canonical JSON, in order: equal data <=> equal fingerprint."""
        h = hashlib.sha256(self.kind.encode())
        for r in self.records:
            h.update(json.dumps(r.to_dict(), sort_keys=True, ensure_ascii=False).encode("utf-8"))
            h.update(b"\n")
        return h.hexdigest()

    def drop(self, reason: str, where: str = "", detail: str = "", n: int = 1) -> None:
        self.dropped[reason] += n
        if self.dropped[reason] <= MAX_SAMPLES_PER_REASON and len(self.sample_reasons) < MAX_SAMPLES:
            msg = detail or reason
            self.sample_reasons.append(f"{where}: {msg}" if where and not msg.startswith(where) else msg)

    def summary(self) -> str:
        drops = ", ".join(f"{k}: {v}" for k, v in self.dropped.most_common()) or "none"
        notes = "".join(f"; note: {n}" for n in self.notes)
        return (f"{self.name or 'data'}: read {self.read}, kept {self.kept}, dropped {sum(self.dropped.values())} "
                f"({drops}){notes}")


def _short_reason(err: DataError) -> str:
    msg = str(err)
    for marker, reason in (("malformed JSON", "malformed JSON"), ("invalid UTF-8", "bad UTF-8"),
                           ("gzip data ends early", "truncated gzip"), ("over max_chars", "over max_chars")):
        if marker in msg:
            return f"invalid: {reason}"
    m = re.search(r"field '([^']+)'", msg)
    if not m:
        return "invalid row"
    return "invalid: field '" + re.sub(r"\[\d+\]", "[]", m.group(1)) + "'"


def _apply_columns(row: dict, columns: dict[str, str], where: str, cli: bool = False) -> dict:
    if not columns:
        return row
    out = dict(row)
    for canonical, column in columns.items():
        if column not in row:
            by = f"--column {canonical}={column}" if cli else "`columns`"
            raise DataError(f"{where}: column '{column}' (mapped to '{canonical}' by {by}) is not in the row; "
                            f"it has: {', '.join(sorted(map(str, row)))}")
        out[canonical] = row[column]
    return out


def source_name(spec: DataSpec, fmt: str) -> str:
    if spec.options.get("source"):
        return str(spec.options["source"])
    path = spec.path or ""
    if path.startswith("hf:"):
        return f"{fmt}/{path[3:]}"
    name = Path(path).name
    for suffix in SUFFIXES:
        if name.lower().endswith(suffix):
            name = name[: -len(suffix)]
    return f"{fmt}/{name}"


def resolve_format(spec: DataSpec, cli: bool = False) -> str:
    """The adapter name a spec will use (reads the first row for ``format: auto``); ``cli`` as in load_one."""
    if spec.format in GENERATED:
        return spec.format
    if spec.format != "auto":
        return get_adapter(spec.format).name
    if not spec.path:
        raise DataError("format 'auto' needs a `path`")
    first_error = None
    for where, row in read_rows(spec.path, spec.split, spec.options.get("hf_config")):
        if isinstance(row, dict):
            return detect_format(_apply_columns(row, spec.columns, where, cli), where, cli=cli)
        first_error = first_error or row
    # Every row was unreadable: the first one's reason (a JSON array on line 1, bad JSON, bad UTF-8) says more.
    if isinstance(first_error, DataError):
        raise first_error
    raise DataError(f"{spec.path}: no readable row to detect the format from")


def _load_toy(spec: DataSpec, kind: str) -> LoadResult:
    try:
        from camelid.data import toyworld

        generate = toyworld.records
    except (ImportError, AttributeError):
        raise DataError("format 'toy': the toy world (camelid.data.toyworld.records) is not available in this "
                        "build; use a data file instead") from None
    split = spec.split or ("ppo" if kind == "prompts" else "train")
    records = list(generate(kind, split=split, n=spec.n, seed=spec.seed, objective=spec.objective,
                            options=spec.options))
    return LoadResult(kind=kind, records=records, read=len(records), name=f"toy/{split}", format="toy")


def _load_real(spec: DataSpec, kind: str) -> LoadResult:
    """camelid's built-in real-wording sets (camelid.data.realworld): ``real`` and the ``knowledge`` check."""
    from camelid.data import realworld

    if spec.format == "knowledge":
        if kind != "prompts":
            raise DataError("format 'knowledge' (the general-knowledge check) gives prompts only: it is for "
                            "evaluation, never for training")
        if spec.options:
            raise DataError(f"format 'knowledge' takes no options, got {', '.join(map(str, spec.options))}")
        records = realworld.knowledge_prompts(spec.n)
        return LoadResult(kind=kind, records=records, read=len(records), name="knowledge", format="knowledge")
    split = spec.split or "train"
    records = list(realworld.records(kind, split=split, n=spec.n, seed=spec.seed, objective=spec.objective,
                                     options=spec.options))
    return LoadResult(kind=kind, records=records, read=len(records), name=f"real/{split}", format="real")


# Formats generated by camelid itself (no path): the toy world and the real-wording sets.
GENERATED = {"toy": _load_toy, "real": _load_real, "knowledge": _load_real}


def _handle_error(result: LoadResult, spec: DataSpec, where: str, adapter: str, err: DataError,
                  cli: bool = False) -> None:
    if isinstance(err, KindError):
        raise DataError(f"{where}: {err}") from None
    msg = str(err)
    if not msg.startswith(where):
        msg = f"{where}: {adapter} adapter: {msg}"
    if spec.on_error == "raise":
        raise DataError(f"{msg} ({_HINTS[cli]['skip']} to drop bad rows and get a report instead)") from None
    result.errors += 1
    result.drop(_short_reason(err), where, msg)


def oversized(record: Record, limit: int) -> tuple[str, int] | None:
    """The first text field of ``record`` longer than ``limit`` characters, as (field, length); else None."""
    if isinstance(record, PreferencePair):
        fields = [(f"prompt[{i}].content", m["content"]) for i, m in enumerate(record.prompt)]
        fields += [("chosen", record.chosen), ("rejected", record.rejected)]
    else:
        fields = [(f"messages[{i}].content", m["content"]) for i, m in enumerate(record.messages)]
    return next(((name, len(value)) for name, value in fields if len(value) > limit), None)


def _keep(result: LoadResult, spec: DataSpec, fmt: str, record: Record, where: str, cli: bool) -> None:
    """Keep a record unless a text field is over ``spec.max_chars`` (a bad row: raise or count it).

    One huge row would otherwise reach the tokenizer whole (a 50 MB row took 20 GB of memory in SFT).
    """
    big = oversized(record, spec.max_chars) if spec.max_chars else None
    if big is None:
        result.records.append(record)
        return
    err = DataError(f"field '{big[0]}': {big[1]:,} characters, over max_chars={spec.max_chars:,} "
                    f"({_HINTS[cli]['max_chars']} if rows this long are meant to be)")
    _handle_error(result, spec, where or f"{spec.path}: record {record.id}", fmt, err, cli)
    result.oversized += 1


def _take(result: LoadResult, spec: DataSpec, fmt: str, outputs: Any, items: list, where: str, cli: bool) -> None:
    for out in outputs:
        if isinstance(out, Dropped):
            result.drop(out.reason, out.where or where, out.detail, n=out.n)
        elif isinstance(out, Record):
            _keep(result, spec, fmt, out, where, cli)
        else:
            items.append((where, out))


def load_one(spec: DataSpec, kind: str, *, cli: bool = False) -> LoadResult:
    """Records of one spec (no dedup, no weighting); ``spec.n`` keeps the first n.

    ``cli``: word the hints in error messages as `camelid data` flags instead of pipelines.yaml keys.
    """
    if kind not in KINDS:
        raise DataError(f"unknown record kind {kind!r}: use one of {', '.join(KINDS)}")
    # A spec written on a command line (camelid data, compare --prompts) gets FORMAT:PATH / --column hints.
    on_cli = cli or spec.from_cli
    if spec.format in GENERATED:
        return GENERATED[spec.format](spec, kind)
    fmt = resolve_format(spec, on_cli)
    adapter = get_adapter(fmt)
    if kind not in adapter.kinds:
        raise DataError(f"format '{fmt}' cannot produce {kind} records; it gives: {', '.join(adapter.kinds)}")
    ctx = Ctx(adapter=fmt, kind=kind, source=source_name(spec, fmt), options=dict(spec.options),
              objective=spec.objective)
    if kind == "pairs":
        ctx.rating()  # a bad options.rating is a config error: say so once, before any row
    result = LoadResult(kind=kind, name=ctx.source, format=fmt)
    if adapter.note is not None and (note := adapter.note(ctx)):
        result.notes.append(note)
    items: list[tuple[str, Any]] = []
    for index, (where, row) in enumerate(read_rows(spec.path, spec.split, spec.options.get("hf_config"))):
        result.read += 1
        if isinstance(row, DataError):
            _handle_error(result, spec, where, fmt, row, cli)
            continue
        ctx.where, ctx.index = where, index
        try:
            _take(result, spec, fmt, adapter.convert(_apply_columns(row, spec.columns, where, on_cli), ctx), items,
                  where, cli)
        except Dropped as d:
            result.drop(d.reason, where, d.detail, n=d.n)
        except DataError as e:
            _handle_error(result, spec, where, fmt, e, cli)
    if items:
        if adapter.combine is None or kind not in adapter.combine_kinds:
            raise AssertionError(f"adapter {fmt} returned non-records for kind {kind}")
        try:
            _take(result, spec, fmt, adapter.combine(items, ctx), [], "", cli)
        except DataError as e:
            raise DataError(f"{spec.path}: {fmt} adapter: {e}") from None
        result.notes += ctx.notes  # e.g. how many rows a joining adapter merged, so read vs kept adds up
    if spec.n is not None and len(result.records) > spec.n:
        result.drop(f"beyond n={spec.n}", spec.path or "", n=len(result.records) - spec.n)
        result.records = result.records[: spec.n]
    return result


def load_records(spec: DataSpec | list[DataSpec], kind: str, *, allow_empty: bool = False,
                 cli: bool = False) -> LoadResult:
    """Load one spec, or mix several (weights, cross-source dedup: see camelid.data.mixture)."""
    specs = spec if isinstance(spec, list) else [spec]
    if not specs:
        raise DataError("no data specs given")
    if len(specs) == 1:
        result = load_one(specs[0], kind, cli=cli)
    else:
        from camelid.data.mixture import mix

        result = mix([(s, load_one(s, kind, cli=cli)) for s in specs], kind)
    expected = _RECORD_TYPES[kind]
    for r in result.records[:1]:
        if not isinstance(r, expected):
            raise DataError(f"{result.name}: expected {expected.__name__} records for kind {kind}, "
                            f"got {type(r).__name__}")
    if not result.records and not allow_empty:
        samples = "; ".join(result.sample_reasons[:3])
        raise DataError(f"no {kind} records left: {result.summary()}" + (f". e.g. {samples}" if samples else ""))
    return result
