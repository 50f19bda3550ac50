"""Where rows come from: local JSONL/JSON/Parquet/CSV files, folders of them, ``hf:<id>``, ``registry:<ref>``
and ``builtin:<file>`` (a data file shipped with camelid in camelid/data/seed, found from any directory).

`read_rows` yields ``(where, row)`` with ``where`` = "file:line" (or "file[item]", "file:row N"); a
row that cannot be read at all (bad JSON, bad UTF-8) comes as ``(where, DataError)`` so the loader can
stop or, with ``on_error: skip``, count it and go on.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import re
import zlib
from collections.abc import Iterator
from pathlib import Path

from camelid.errors import DataError

SUFFIXES = (".jsonl", ".jsonl.gz", ".json", ".parquet", ".csv")
RowOrError = tuple[str, "dict | DataError"]
_LFS_POINTER = b"version https://git-lfs.github.com/spec/"
_GZIP_MAGIC = b"\x1f\x8b"
BUILTIN = "builtin:"
SEED_DIR = Path(__file__).resolve().parent.parent / "seed"  # camelid.data's seed/ folder (package data)


def _suffix(path: Path) -> str:
    name = path.name.lower()
    return next((s for s in SUFFIXES if name.endswith(s)), path.suffix.lower())


def _utf8_error(path: Path, data: bytes, e: UnicodeDecodeError, base: int = 0, line: int | None = None) -> DataError:
    line = line if line is not None else data[: e.start].count(b"\n") + 1
    return DataError(f"{path}:{line}: invalid UTF-8 at byte offset {base + e.start} ({e.reason}); "
                     "re-save the file as UTF-8")


def check_file(path: Path) -> None:
    """Say what a file is when it is not what its name says: a Git LFS pointer, gzip data or not."""
    with open(path, "rb") as f:
        head = f.read(256)
    if head.startswith(_LFS_POINTER):
        size = re.search(rb"\nsize (\d+)", head)
        raise DataError(f"{path}: is a Git LFS pointer ({int(size.group(1)) if size else '?'} bytes of data), not the "
                        "data itself: run `git lfs pull` in its repository, or download the file directly")
    named_gz = path.name.lower().endswith(".gz")
    if named_gz and head and not head.startswith(_GZIP_MAGIC):
        raise DataError(f"{path}: is not gzip data although its name ends in .gz: rename it without .gz")
    if not named_gz and head.startswith(_GZIP_MAGIC):
        fix = f"rename it to {path.name}.gz" if _suffix(path) == ".jsonl" else "decompress it (gunzip)"
        raise DataError(f"{path}: is gzip-compressed data, but its name does not end in .gz: {fix}")


def _numbered_lines(path: Path) -> Iterator[tuple[int, bytes | DataError]]:
    """(line number, raw line) of a file; a gzip stream that breaks off ends with a DataError."""
    if not path.name.lower().endswith(".gz"):
        with open(path, "rb") as f:
            yield from enumerate(f, 1)
        return
    lineno = 0
    try:
        with gzip.open(path, "rb") as f:
            for lineno, raw in enumerate(f, 1):
                yield lineno, raw
    except (EOFError, gzip.BadGzipFile, zlib.error) as e:
        yield lineno + 1, DataError(f"{path}:{lineno + 1}: the gzip data ends early or is corrupt after line {lineno} "
                                    f"({e}): the file is truncated; download it again")


def _read_jsonl(path: Path) -> Iterator[RowOrError]:
    offset, seen = 0, False
    for lineno, raw in _numbered_lines(path):
        where = f"{path}:{lineno}"
        if isinstance(raw, DataError):
            seen = True
            yield where, raw
            continue
        base, offset = offset, offset + len(raw)
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            seen = True
            yield where, _utf8_error(path, raw, e, base, lineno)
            continue
        if lineno == 1:
            line = line.lstrip("\ufeff")
        if not line.strip():
            continue
        seen = True
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            yield where, DataError(f"{where}: malformed JSON: {e.msg} (column {e.colno})")
            continue
        if not isinstance(row, dict):
            yield where, DataError(f"{where}: line {lineno} is {_json_kind(row)}, not an object: each line must be "
                                   "one JSON object")
            continue
        yield where, row
    if not seen:
        raise DataError(f"{path}: file is empty (no rows): check the path, or that the export finished")


def _json_kind(value) -> str:
    """'a JSON array' / 'a JSON string' ...: what a JSONL line holds instead of an object."""
    names = {list: "array", str: "string", bool: "boolean", int: "number", float: "number", type(None): "null"}
    return f"a JSON {names.get(type(value), type(value).__name__)}"


def iter_jsonl(path: Path) -> Iterator[tuple[str, dict]]:
    """(file:line, row) per JSON-object line; the first bad line (JSON, UTF-8, not an object) raises."""
    for where, row in _read_jsonl(Path(path)):
        if isinstance(row, DataError):
            raise row
        yield where, row


def _read_json(path: Path) -> Iterator[RowOrError]:
    data = path.read_bytes()
    if not data.strip():
        raise DataError(f"{path}: file is empty (no rows)")
    try:
        doc = json.loads(data.decode("utf-8-sig"))
    except UnicodeDecodeError as e:
        raise _utf8_error(path, data, e) from None
    except json.JSONDecodeError as e:
        raise DataError(f"{path}:{e.lineno}: malformed JSON: {e.msg} (column {e.colno})") from None
    if isinstance(doc, dict):  # {"data": [...]}, {"train": [...]} or one record
        lists = [v for v in doc.values() if isinstance(v, list)]
        doc = doc.get("data", doc.get("rows", lists[0] if len(lists) == 1 else [doc]))
    if not isinstance(doc, list):
        raise DataError(f"{path}: expected a JSON list of rows (or an object holding one)")
    if not doc:
        raise DataError(f"{path}: file is empty (the list has no rows)")
    for i, row in enumerate(doc):
        where = f"{path}[{i}]"
        yield where, row if isinstance(row, dict) else DataError(f"{where}: a row must be an object, got "
                                                                 f"{type(row).__name__}")


def _read_csv(path: Path) -> Iterator[RowOrError]:
    data = path.read_bytes()
    try:
        content = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise _utf8_error(path, data, e) from None
    reader = csv.reader(io.StringIO(content, newline=""))
    header = next(reader, None)
    if not header:
        raise DataError(f"{path}: file is empty (no header row)")
    n, start = 0, reader.line_num + 1
    for cells in reader:
        # a quoted cell can span lines: name the line the record starts on, where an editor should go
        where, start = f"{path}:{start}", reader.line_num + 1
        if not cells:  # a blank line
            continue
        n += 1
        if len(cells) > len(header):
            yield where, DataError(f"{where}: row has more cells than the header has columns")
            continue
        yield where, dict(zip(header, cells))  # a short row lacks its last columns (reported as missing)
    if not n:
        raise DataError(f"{path}: file is empty (a header but no rows)")


def _read_parquet(path: Path) -> Iterator[RowOrError]:
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except Exception as e:  # pyarrow raises several types for a bad file
        raise DataError(f"{path}: not a readable Parquet file ({type(e).__name__}: {e})") from None
    if table.num_rows == 0:
        raise DataError(f"{path}: file is empty (no rows)")
    for i, row in enumerate(table.to_pylist()):
        yield f"{path}:row {i + 1}", row


_READERS = {".jsonl": _read_jsonl, ".jsonl.gz": _read_jsonl, ".json": _read_json, ".csv": _read_csv,
            ".parquet": _read_parquet}


def files_in(path: Path) -> list[Path]:
    """The data files a path names: itself, or the supported files under a folder (sorted)."""
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file() and _suffix(p) in _READERS
                       and not any(part.startswith(".") for part in p.relative_to(path).parts))
        if not files:
            raise DataError(f"{path}: folder has no {'/'.join(SUFFIXES)} files")
        return files
    if not path.exists():
        raise DataError(f"{path}: no such file or folder")
    if _suffix(path) not in _READERS:
        raise DataError(f"{path}: unsupported file type; use one of {', '.join(SUFFIXES)}")
    return [path]


def read_hf(dataset_id: str, split: str | None, config: str | None = None) -> Iterator[RowOrError]:
    import datasets

    try:
        ds = datasets.load_dataset(dataset_id, config, split=split or "train")
    except Exception as e:  # offline, unknown id, missing split, gated...: all user-fixable
        msg = str(e).splitlines()[0][:200] if str(e) else ""
        raise DataError(f"could not load Hugging Face dataset {dataset_id!r} (split {split or 'train'!r}): "
                        f"{type(e).__name__}: {msg}. If the Hub is unreachable from here, download the files "
                        f"elsewhere and point `path:` at a local .jsonl/.parquet file or folder") from None
    for i, row in enumerate(ds):
        yield f"hf:{dataset_id}[{i}]", dict(row)


def builtin_file(path: str) -> Path:
    """The file ``path`` = ``builtin:<name>`` names: one of the data files shipped in camelid.data's seed folder."""
    name = path.removeprefix(BUILTIN)
    available = sorted(p.name for p in SEED_DIR.glob("*") if p.is_file() and _suffix(p) in _READERS)
    if name not in available:
        raise DataError(f"{BUILTIN}{name}: no such built-in data file; use one of: "
                        f"{', '.join(BUILTIN + a for a in available) or 'none (this install ships none)'}")
    return SEED_DIR / name


def read_rows(path: str, split: str | None = None, hf_config: str | None = None) -> Iterator[RowOrError]:
    """Rows of a file, folder, ``hf:<id>``, ``registry:<ref>`` or ``builtin:<file>``, in order."""
    if path.startswith("hf:"):
        yield from read_hf(path[3:], split, hf_config)
        return
    if path.startswith("registry:"):  # a dataset artifact, e.g. annotations from `camelid annotate export`
        yield from read_registry_dataset(path[len("registry:"):])
        return
    if path.startswith(BUILTIN):
        yield from _read_file(builtin_file(path))
        return
    for file in files_in(Path(path).expanduser()):
        yield from _read_file(file)


def _read_file(file: Path) -> Iterator[RowOrError]:
    check_file(file)
    yield from _READERS[_suffix(file)](file)


def read_registry_dataset(ref: str) -> Iterator[RowOrError]:
    """Rows of every data file of a registry ``dataset`` artifact (its manifest aside)."""
    from camelid.registry import default_registry

    art = default_registry().resolve(ref)
    if art.external or art.kind != "dataset":
        raise DataError(f"registry:{ref}: {art.ref} is a {art.kind or art.external} artifact, not a dataset")
    for file in files_in(art.path):
        if file.name != "manifest.json":
            yield from _read_file(file)
