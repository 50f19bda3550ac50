"""Cache processed (tokenized) datasets under a hash of everything that shapes them.

    key = cache_key(spec, tokenizer=tok, chat_template=template, extra={"max_length": 512})
    ds = cached(key, lambda: build_tokenized_dataset(...))

The key covers the data spec(s), the tokenizer (name + a hash of its vocabulary and special tokens),
the chat template text, the camelid version plus a hash of camelid.data's source, and ``extra``
(whatever else the caller's processing depends on). Entries live in
``$CAMELID_CACHE/datasets/<key>`` (default ``~/.cache/camelid/datasets/<key>``) and are written to a
temporary folder first, then renamed into place, so a crash never leaves half an entry visible.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import uuid
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Any

from camelid.data.spec import DataSpec
from camelid.errors import DataError

_KEY = re.compile(r"^[0-9a-f]{16,64}$")
_DONE = ".camelid-complete"


def cache_root() -> Path:
    base = os.environ.get("CAMELID_CACHE")
    return (Path(base).expanduser() if base else Path.home() / ".cache" / "camelid") / "datasets"


def tokenizer_fingerprint(tokenizer: Any) -> dict:
    """Name + sha256 of the vocabulary and special tokens (two tokenizers with one name can differ)."""
    if tokenizer is None:
        return {"name": None}
    vocab = tokenizer.get_vocab() if hasattr(tokenizer, "get_vocab") else {}
    h = hashlib.sha256(json.dumps(sorted(vocab.items()), ensure_ascii=False).encode("utf-8"))
    special = getattr(tokenizer, "special_tokens_map", {}) or {}
    h.update(json.dumps(special, sort_keys=True, default=str).encode())
    return {"name": getattr(tokenizer, "name_or_path", type(tokenizer).__name__), "vocab": h.hexdigest()}


@lru_cache(maxsize=1)
def code_version() -> str:
    """camelid's version + a hash of the data package source, so local edits invalidate entries."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        ver = version("camelid")
    except PackageNotFoundError:  # pragma: no cover - running from an uninstalled tree
        ver = "0+unknown"
    h = hashlib.sha256()
    for path in sorted(Path(__file__).parent.rglob("*.py")):
        h.update(path.relative_to(Path(__file__).parent).as_posix().encode())
        h.update(path.read_bytes())
    return f"{ver}+{h.hexdigest()[:12]}"


def cache_key(spec: DataSpec | list[DataSpec], *, tokenizer: Any = None, chat_template: str | None = None,
              code: str | None = None, extra: dict | None = None) -> str:
    """A 32-hex-digit key for the processed form of ``spec``."""
    specs = spec if isinstance(spec, list) else [spec]
    payload = {
        "specs": [s.model_dump(mode="json") for s in specs],
        "tokenizer": tokenizer_fingerprint(tokenizer),
        "chat_template": chat_template,
        "code": code if code is not None else code_version(),
        "extra": extra or {},
    }
    blob = json.dumps(payload, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:32]


def cached(key: str, build_fn: Callable[[], Any], *, root: Path | None = None):
    """Load the `datasets.Dataset` stored under ``key``, or build, store (atomically) and return it."""
    import datasets

    if not _KEY.match(key):
        raise DataError(f"invalid cache key {key!r}: expected hex digits from cache_key()")
    root = root or cache_root()
    final = root / key
    if (final / _DONE).exists():
        return datasets.load_from_disk(str(final))
    ds = build_fn()
    if not isinstance(ds, datasets.Dataset):
        raise TypeError(f"build_fn must return a datasets.Dataset, got {type(ds).__name__}")
    root.mkdir(parents=True, exist_ok=True)
    tmp = root / f".tmp-{key}-{uuid.uuid4().hex[:8]}"
    try:
        ds.save_to_disk(str(tmp))
        (tmp / _DONE).write_text(json.dumps({"key": key, "rows": len(ds)}))
        if final.exists() and not (final / _DONE).exists():
            shutil.rmtree(final, ignore_errors=True)  # a stale entry from an older, non-atomic writer
        try:
            os.rename(tmp, final)
        except OSError:
            if not (final / _DONE).exists():  # not "someone else finished first": a real problem
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    # read back from the cache so the first run behaves like later ones (memory-mapped, same fingerprint)
    return datasets.load_from_disk(str(final))
