"""Mixtures of several sources, cross-source dedup, and a held-out split by prompt.

Weights are relative shares: with weights 3 and 1, three quarters of the mixture come from the first
source. No record is repeated to reach a share, so the mixture is the largest one that keeps the
shares exactly: the source that runs out first sets the size, and the others are subsampled (with
each spec's ``seed``; the left-out records are counted under "not sampled (mixture weights)").
"""

from __future__ import annotations

import hashlib
import random
import re
import unicodedata

from camelid.data.adapters import Record
from camelid.data.load import LoadResult
from camelid.data.records import PreferencePair, Prompt, SFTExample
from camelid.data.spec import DataSpec


def normalise(text: str) -> str:
    """Case-, width- and whitespace-insensitive form used for dedup and prompt hashing."""
    return re.sub(r"\s+", " ", unicodedata.normalize("NFKC", text)).strip().casefold()


def prompt_messages(record: Record) -> list[dict]:
    if isinstance(record, PreferencePair):
        return record.prompt
    if isinstance(record, SFTExample):
        last_user = max(i for i, m in enumerate(record.messages) if m["role"] == "user") \
            if any(m["role"] == "user" for m in record.messages) else 0
        return record.messages[: last_user + 1]
    return record.messages


def content_key(record: Record) -> str:
    """Normalised prompt + response text: two records with the same key are duplicates."""
    if isinstance(record, PreferencePair):
        parts = [m["content"] for m in record.prompt] + [record.chosen, record.rejected]
    elif isinstance(record, SFTExample | Prompt):
        parts = [m["content"] for m in record.messages]
    else:  # pragma: no cover - Record is closed
        raise TypeError(type(record))
    return "\x1f".join(normalise(p) for p in parts)


def prompt_key(record: Record) -> str:
    """The opening of the conversation (system + first user turn): what the held-out split groups by."""
    msgs = prompt_messages(record)
    opening = []
    for m in msgs:
        opening.append(normalise(m["content"]))
        if m["role"] == "user":
            break
    return "\x1f".join(opening)


def dedup(records: list[Record]) -> tuple[list[Record], int]:
    """Drop exact (normalised) duplicates, keeping the first; -> (records, number dropped)."""
    seen: set[str] = set()
    out = []
    for r in records:
        key = content_key(r)
        if key not in seen:
            seen.add(key)
            out.append(r)
    return out, len(records) - len(out)


def heldout_split(records: list[Record], fraction: float, seed: int = 0) -> tuple[list[Record], list[Record]]:
    """-> (train, heldout), assigned by a hash of the prompt so no prompt lands on both sides.

    The assignment of a prompt depends only on (prompt, seed), so it is stable when data is added.
    """
    if not 0 <= fraction <= 1:
        raise ValueError(f"fraction must be in [0, 1], got {fraction}")
    train, heldout = [], []
    for r in records:
        digest = hashlib.sha256(f"{seed}\x1e{prompt_key(r)}".encode()).digest()
        (heldout if int.from_bytes(digest[:8], "big") / 2**64 < fraction else train).append(r)
    return train, heldout


def shares(weights: list[float], sizes: list[int]) -> list[int]:
    """How many records each source contributes so counts follow the weights without repeats."""
    live = [w if size else 0.0 for w, size in zip(weights, sizes)]  # an empty source takes no share
    if not any(live):
        return [0] * len(sizes)
    fractions = [w / sum(live) for w in live]
    total = min(size / f for size, f in zip(sizes, fractions) if f)  # the first source to run out sets it
    return [min(size, int(round(f * total))) for size, f in zip(sizes, fractions)]


def mix(parts: list[tuple[DataSpec, LoadResult]], kind: str) -> LoadResult:
    """Combine loaded sources: drop records seen in an earlier source, then sample by weight."""
    result = LoadResult(kind=kind, name="mixture", format="mixture", sources=[p for _, p in parts])
    seen: set[str] = set()
    kept_per_source: list[list[Record]] = []
    for _, part in parts:
        result.read += part.read
        result.errors += part.errors
        result.oversized += part.oversized
        result.notes.extend(f"{part.name}: {n}" for n in part.notes)
        result.dropped.update(part.dropped)
        result.sample_reasons.extend(part.sample_reasons[: 12 - len(result.sample_reasons)])
        fresh, keys = [], set()
        for r in part.records:
            key = content_key(r)
            if key in seen:
                result.drop("duplicate of a record in an earlier source", part.name, n=1)
            else:
                fresh.append(r)
                keys.add(key)
        seen |= keys
        kept_per_source.append(fresh)
    counts = shares([s.weight for s, _ in parts], [len(k) for k in kept_per_source])
    for (spec, part), records, count in zip(parts, kept_per_source, counts):
        if count < len(records):
            idx = sorted(random.Random(spec.seed).sample(range(len(records)), count))
            result.drop("not sampled (mixture weights)", part.name, n=len(records) - count)
            records = [records[i] for i in idx]
        result.records.extend(records)
        result.mixture.append((part.name, spec.weight, part.kept, len(records)))
    cut = sum(len(k) - c for k, c in zip(kept_per_source, counts))
    if cut:  # say which source set the size: a weight above its rows left after dedup cuts every other source
        _, i = min((len(k) / spec.weight, i) for i, ((spec, _), k) in enumerate(zip(parts, kept_per_source)) if k)
        (spec, part), n = parts[i], len(kept_per_source[i])
        dups = len(part.records) - n
        result.notes.append(
            f"{part.name} set the mixture's size: {n} rows"
            f"{f' ({dups} dropped as duplicates of an earlier source)' if dups else ''} for weight {spec.weight:g}, so "
            f"{cut} rows of the other sources were not sampled, to keep the weights' proportions")
    return result
