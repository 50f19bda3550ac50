"""`camelid data validate|stats|preview SPEC`: check, describe and show a data source.

SPEC is `toy` (the built-in toy world), a file or folder (format detected from the first row),
`FORMAT:PATH` (e.g. `hh-rlhf:data/hh.jsonl`), `hf:<dataset id>` or `builtin:<file>` (shipped with camelid).
"""

from __future__ import annotations

import argparse
import statistics
import sys
from collections import Counter
from pathlib import Path

from camelid.data.adapters import ADAPTERS, ALIASES, KINDS, get_adapter
from camelid.data.adapters.sources import BUILTIN
from camelid.data.load import LoadResult, load_records, resolve_format
from camelid.data.mixture import content_key, prompt_key
from camelid.data.records import PreferencePair, Prompt, SFTExample
from camelid.data.spec import DataSpec
from camelid.errors import ConfigError, DataError


def parse_spec(text: str, args: argparse.Namespace) -> DataSpec:
    """`toy` | PATH | FORMAT:PATH | hf:ID -> DataSpec with the command-line options applied."""
    fmt, path = "auto", text
    if text == "toy":
        fmt, path = "toy", None
    elif ":" in text and not text.startswith(("hf:", BUILTIN)):
        prefix, rest = text.split(":", 1)
        if prefix in ADAPTERS or prefix in ALIASES or prefix == "auto":
            fmt, path = (get_adapter(prefix).name if prefix != "auto" else "auto"), rest
        elif not Path(text).expanduser().exists() and Path(rest).expanduser().exists():
            get_adapter(prefix)  # raises: unknown data format, listing the known ones
    if path and not path.startswith(("hf:", BUILTIN)) and not Path(path).expanduser().exists():
        raise DataError(f"{path}: no such file or folder (SPEC is `toy`, a path, FORMAT:PATH or hf:ID; "
                        f"formats: {', '.join(ADAPTERS)})")
    options = {}
    for item in args.option or []:
        key, sep, value = item.partition("=")
        if not sep:
            raise DataError(f"--option {item!r}: expected key=value")
        options[key] = _option_value(key, value)
    columns = {}
    for item in args.column or []:
        key, sep, value = item.partition("=")
        if not sep:
            raise DataError(f"--column {item!r}: expected FIELD=COLUMN")
        columns[key] = value
    return DataSpec(format=fmt, path=path, split=args.split, n=args.n, seed=args.seed, objective=args.objective,
                    on_error=args.on_error, options=options, columns=columns,
                    max_chars=args.max_chars or None).on_command_line()


def _option_value(key: str, value: str):
    """An --option value read as safe YAML (no tags that build objects); a problem is one line naming it."""
    from camelid.yaml_load import load_yaml

    try:
        return load_yaml(value, f"--option {key}", lines=False)
    except ConfigError as e:
        raise DataError(f"{e}; write a plain value (a number, true/false or text)") from None


def _load(args: argparse.Namespace) -> tuple[DataSpec, str, LoadResult]:
    spec = parse_spec(args.spec, args)
    kind = args.kind
    if kind is None:
        fmt = resolve_format(spec, cli=True)
        kind = "sft" if fmt == "toy" else get_adapter(fmt).kinds[0]
    return spec, kind, load_records(spec, kind, allow_empty=True, cli=True)


# ---- validate --------------------------------------------------------------------------------------

def _print_drops(result: LoadResult, out) -> None:
    for note in result.notes:
        print(f"note: {note}", file=out)
    if result.dropped:
        print("dropped:", file=out)
        for reason, count in result.dropped.most_common():
            print(f"  {count:>7}  {reason}", file=out)
    if result.sample_reasons:
        print("sample reasons:", file=out)
        for line in result.sample_reasons:
            print(f"  {line[:300]}", file=out)


def cmd_validate(args: argparse.Namespace) -> int:
    spec, kind, result = _load(args)
    print(f"{result.name} ({result.format}, {kind}): read {result.read}, kept {result.kept}, "
          f"dropped {sum(result.dropped.values())}, invalid {result.errors}")
    _print_drops(result, sys.stdout)
    if result.oversized:
        rows = "row has" if result.oversized == 1 else "rows have"
        print(f"warning: {result.oversized} {rows} a field over {spec.max_chars:,} characters (max_chars): a row "
              "that long reaches the tokenizer whole; check it, or pass --max-chars N if it is meant to be",
              file=sys.stderr)
    if not result.records:
        print("error: no usable records", file=sys.stderr)
        return 1
    if result.errors:
        print(f"{result.errors} invalid rows: fix them, or train without them with on_error: skip on this source "
              "in pipelines.yaml", file=sys.stderr)
        return 1
    print(f"ok  fingerprint {result.fingerprint[:16]}")
    return 0


# ---- stats -----------------------------------------------------------------------------------------

def record_text(record) -> str:
    """The text a model would read for this record, in the chat template."""
    from camelid.chat import render

    if isinstance(record, PreferencePair):
        return render([*record.prompt, {"role": "assistant", "content": record.chosen}])
    if isinstance(record, SFTExample):
        return render(record.messages)
    return render(record.messages, add_generation_prompt=True)


def _lengths(records, tokenizer_path: str | None) -> tuple[list[int], str]:
    texts = [record_text(r) for r in records]
    if tokenizer_path:
        from transformers import AutoTokenizer

        try:
            tok = AutoTokenizer.from_pretrained(tokenizer_path, local_files_only=True)
        except Exception as e:
            raise DataError(f"--tokenizer {tokenizer_path}: cannot load a tokenizer there ({e})") from None
        return [len(tok(t, add_special_tokens=False)["input_ids"]) for t in texts], f"tokens ({tokenizer_path})"
    return [len(t.split()) for t in texts], "whitespace words (a proxy; --tokenizer PATH for real tokens)"


def histogram(values: list[int], width: int = 40) -> list[str]:
    """Power-of-two bins as text bars."""
    if not values:
        return ["  (no records)"]
    edges = [0, 8]
    while edges[-1] <= max(values):
        edges.append(edges[-1] * 2)
    counts = [sum(lo <= v < hi for v in values) for lo, hi in zip(edges, edges[1:])]
    peak = max(counts)
    return [f"  {lo:>6}-{hi - 1:<6} {c:>7}  {'#' * max(1 if c else 0, round(width * c / peak))}"
            for lo, hi, c in zip(edges, edges[1:], counts)]


def _counts(title: str, counter: Counter, out, top: int = 20) -> None:
    if not counter:
        return
    print(f"by {title}:", file=out)
    for key, count in counter.most_common(top):
        print(f"  {count:>7}  {key}", file=out)
    if len(counter) > top:
        print(f"  ... {len(counter) - top} more", file=out)


def _empty_fields(records) -> Counter:
    empty: Counter = Counter()
    for r in records:
        msgs = r.prompt if isinstance(r, PreferencePair) else r.messages
        for m in msgs:
            if not m["content"].strip():
                empty[f"{'prompt' if isinstance(r, PreferencePair) else 'messages'}[].content ({m['role']})"] += 1
        if getattr(r, "category", "x") in (None, ""):
            empty["category"] += 1
        if not r.source:
            empty["source"] += 1
    return empty


def cmd_stats(args: argparse.Namespace) -> int:
    spec, kind, result = _load(args)
    out = sys.stdout
    records = result.records
    print(f"{result.name} ({result.format}, {kind}): read {result.read}, kept {result.kept}, "
          f"dropped {sum(result.dropped.values())}, invalid {result.errors}", file=out)
    for name, weight, available, used in result.mixture:
        print(f"  source {name}: weight {weight:g}, {available} available, {used} used", file=out)
    _counts("source", Counter(r.source for r in records), out)
    _counts("category", Counter(getattr(r, "category", None) or "(none)" for r in records), out)
    if kind == "prompts":
        _counts("is_safety", Counter(str(r.is_safety) for r in records), out)
        _counts("safety category", Counter(r.category or "(none)" for r in records if r.is_safety), out)
    if kind == "pairs":
        _counts("rating", Counter(r.rating for r in records), out)
        _counts("safety labels (chosen_safe/rejected_safe)",
                Counter(f"{r.chosen_safe}/{r.rejected_safe}" for r in records), out)
        _counts("safety category (pairs with an unsafe response)",
                Counter(r.category or "(none)" for r in records if False in (r.chosen_safe, r.rejected_safe)), out)
        _counts("is_safety (any unsafe response)", Counter(str(False in (r.chosen_safe, r.rejected_safe))
                                                           for r in records), out)
    lengths, unit = _lengths(records, args.tokenizer)
    if lengths:
        q = statistics.quantiles(lengths, n=20) if len(lengths) > 1 else [lengths[0]] * 19
        print(f"length in {unit}: min {min(lengths)}, mean {statistics.mean(lengths):.1f}, "
              f"p50 {statistics.median(lengths):g}, p95 {q[18]:.0f}, max {max(lengths)}", file=out)
        print("\n".join(histogram(lengths)), file=out)
    dup = len(records) - len({content_key(r) for r in records})
    prompts = Counter(prompt_key(r) for r in records)
    print(f"duplicates: {dup} records repeat an earlier one (normalised text); "
          f"{sum(1 for c in prompts.values() if c > 1)} prompts occur more than once", file=out)
    empty = _empty_fields(records)
    print("empty fields: " + (", ".join(f"{k}: {v}" for k, v in empty.most_common()) or "none"), file=out)
    _print_drops(result, out)
    return 0


# ---- preview ---------------------------------------------------------------------------------------

def cmd_preview(args: argparse.Namespace) -> int:
    from camelid.chat import render

    spec, kind, result = _load(args)
    rule = "-" * 78
    for i, r in enumerate(result.records[: args.preview_n]):
        head = f"[{i}] {r.source} id={r.id}"
        if isinstance(r, PreferencePair):
            head += f" rating={r.rating} category={r.category} safe={r.chosen_safe}/{r.rejected_safe}"
            body = (f"{render(r.prompt, add_generation_prompt=True)}\n--- chosen:\n{r.chosen}\n"
                    f"--- rejected:\n{r.rejected}")
        elif isinstance(r, Prompt):
            head += f" is_safety={r.is_safety} category={r.category}"
            body = render(r.messages, add_generation_prompt=True)
            if r.meta:
                body += "\n--- meta: " + ", ".join(f"{k}={_short(v)}" for k, v in r.meta.items())
        else:
            body = render(r.messages)
        print(f"{rule}\n{head}\n{body}")
    print(f"{rule}\n{min(args.preview_n, result.kept)} of {result.kept} records "
          f"(read {result.read}, dropped {sum(result.dropped.values())})")
    return 0


def _short(value, limit: int = 80) -> str:
    text = " ".join(str(value).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="camelid data", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    helps = {"validate": "check every row; exit 1 if any is invalid",
             "stats": "counts, length histogram, duplicates, empty fields, dropped rows",
             "preview": "show records rendered with the chat template"}
    for name, help_ in helps.items():
        p = sub.add_parser(name, help=help_, description=help_)
        p.add_argument("spec", help="toy | PATH | FORMAT:PATH | hf:ID | builtin:FILE")
        p.add_argument("--kind", choices=KINDS, help="record kind (default: the format's natural kind)")
        p.add_argument("--split", help="toy: train/heldout/ppo/eval; hf: the split name")
        p.add_argument("--objective", choices=("helpfulness", "safety"), help="which pairs (toy, PKU-SafeRLHF)")
        if name == "preview":
            p.add_argument("--n", "-n", dest="preview_n", type=int, default=5, help="how many records (default 5)")
            p.set_defaults(n=None)
        else:
            p.add_argument("--n", dest="n", type=int, help="use at most N records")
        p.add_argument("--seed", type=int, default=0)
        p.add_argument("--on-error", choices=("raise", "skip"), default="raise" if name == "preview" else "skip",
                       help="bad rows: stop, or count them (default for validate/stats: skip)")
        p.add_argument("--option", action="append", metavar="KEY=VALUE", help="adapter option, e.g. rating=slightly_better")
        p.add_argument("--column", action="append", metavar="FIELD=COLUMN", help="map a column to a canonical field")
        p.add_argument("--max-chars", type=int, default=DataSpec.model_fields["max_chars"].default, metavar="N",
                       help="a row with a text field longer than N characters is a bad row (0: no limit; "
                            "default %(default)s)")
        if name == "stats":
            p.add_argument("--tokenizer", help="tokenizer folder for real token counts")
    return parser


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    try:
        return {"validate": cmd_validate, "stats": cmd_stats, "preview": cmd_preview}[args.command](args)
    except BrokenPipeError:  # `camelid data stats ... | head`
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
