"""Turn stored labels into canonical `PreferencePair` records, and the admin page's statistics."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from camelid.data.records import RATINGS, PreferencePair
from camelid.errors import CamelidError
from camelid.eval.annotate.agreement import agreement_report, majority
from camelid.eval.annotate.db import AnnotationDB

MODES = ("majority", "per-annotator")


@dataclass
class AnnotatedPair(PreferencePair):
    """A canonical preference pair plus the annotators' free-text notes on it (readers of plain
    `PreferencePair` rows ignore the extra key)."""

    notes: list[dict] = field(default_factory=list)  # [{"annotator": name, "note": text}], oldest first


def _notes(labs: list[dict]) -> list[dict]:
    return [{"annotator": lab["annotator"], "note": lab["note"]} for lab in labs if lab["note"]]


def _record(pair: dict, preferred: str, rating: str, a_safe: bool | None, b_safe: bool | None,
            rid: str, labs: list[dict]) -> AnnotatedPair:
    a, b = pair["response_a"], pair["response_b"]
    chosen, rejected = (a, b) if preferred == "a" else (b, a)
    chosen_safe, rejected_safe = (a_safe, b_safe) if preferred == "a" else (b_safe, a_safe)
    meta = pair["meta"]
    return AnnotatedPair(prompt=pair["prompt"], chosen=chosen, rejected=rejected, rating=rating,
                         chosen_safe=chosen_safe, rejected_safe=rejected_safe, category=meta.get("category"),
                         source=meta.get("source") or "annotate", id=rid, notes=_notes(labs))


def median_strength(strengths: list[str]) -> str:
    """Median of Llama 2 strengths; with an even count, the weaker of the two middle ones."""
    ranks = sorted(RATINGS.index(s) for s in strengths)
    return RATINGS[ranks[len(ranks) // 2]]


def _majority_bool(values: list[bool]) -> bool | None:
    m = majority(values)
    return None if m is None else bool(m)


def export_records(db: AnnotationDB, mode: str = "majority", min_votes: int | None = 1
                   ) -> tuple[list[AnnotatedPair], dict]:
    """Records plus a summary ``{n_pairs, n_labels, n_ties_dropped, ...}``, all from one snapshot.

    majority: one record per pair with >= ``min_votes`` labels (None: the pair's own k, what its import
    asked for); chosen = the side most annotators preferred (pairs where the vote ties are dropped),
    rating = median strength of the annotators who picked that side, safety = majority per response (None
    on a tie), notes = every annotator's note. ``n_below_k`` counts exported pairs short of their k.
    per-annotator: one record per label (with its own note), id ``<pair id>/<annotator>``.
    """
    if mode not in MODES:
        raise CamelidError(f"--mode must be one of {', '.join(MODES)}, got {mode!r}")
    with db.snapshot() as snap:  # pairs and labels from the same moment, however busy the app is
        pairs = {p["id"]: p for p in snap.pairs()}
        labels = snap.labels()
    by_pair: dict[int, list[dict]] = defaultdict(list)
    for lab in labels:
        by_pair[lab["pair_id"]].append(lab)
    rid = lambda pid: str(pairs[pid]["meta"].get("id") or f"annotate-{pid}")  # noqa: E731

    records, ties, too_few, below_k = [], 0, 0, 0
    for pid in sorted(by_pair):
        labs, pair = by_pair[pid], pairs[pid]
        if mode == "per-annotator":
            records += [_record(pair, lab["preferred"], lab["strength"], lab["a_safe"], lab["b_safe"],
                                f"{rid(pid)}/{lab['annotator']}", [lab]) for lab in labs]
            continue
        if len(labs) < (pair["k"] if min_votes is None else min_votes):
            too_few += 1
            continue
        side = majority([lab["preferred"] for lab in labs])
        if side is None:
            ties += 1
            continue
        below_k += len(labs) < pair["k"]
        strength = median_strength([lab["strength"] for lab in labs if lab["preferred"] == side])
        records.append(_record(pair, side, strength, _majority_bool([lab["a_safe"] for lab in labs]),
                               _majority_bool([lab["b_safe"] for lab in labs]), rid(pid), labs))
    summary = {"mode": mode, "n_pairs": len(records), "n_labels": len(labels),
               "n_annotators": len({lab["annotator"] for lab in labels}),
               "n_ties_dropped": ties, "n_below_min_votes": too_few, "n_below_k": below_k,
               "fleiss_kappa": agreement_report(labels)["fleiss_kappa"]}
    return records, summary


def to_jsonl(records: list[PreferencePair]) -> str:
    return "".join(json.dumps(r.to_dict(), ensure_ascii=False) + "\n" for r in records)


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to a temporary file beside ``path``, fsync it, then rename it over ``path``: a full
    disk or a crash midway leaves the previous file whole and no temporary file behind."""
    path = Path(path)
    existed = path.exists()
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        with open(tmp, "x", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        if isinstance(e, OSError):
            kept = f"{path} is unchanged" if existed else f"{path} was not created"
            raise CamelidError(f"could not write {path}: {e.strerror or e}; {kept}") from e
        raise
    with contextlib.suppress(OSError):  # make the rename itself durable; the file is in place either way
        fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def publish(text: str, summary: dict, name: str, registry_root: Path, db_path: Path, min_votes: int | str) -> str:
    """Publish ``pairs.jsonl`` as a ``dataset`` artifact; returns its ref (e.g. ``prefs@v1``)."""
    try:
        from camelid.registry import Registry
    except ImportError as e:
        raise CamelidError("the registry (camelid.registry) is not available in this install") from e
    reg = Registry(Path(registry_root))
    config = {"source": "camelid annotate", "mode": summary["mode"], "min_votes": min_votes,
              "database": str(db_path)}
    fingerprint = hashlib.sha256(text.encode()).hexdigest()
    try:
        with reg.publish(name, kind="dataset", config=config, inputs={},
                         data_fingerprints={"pairs.jsonl": fingerprint}) as pub:
            (Path(pub.dir) / "pairs.jsonl").write_text(text, encoding="utf-8")
            for key in ("n_pairs", "n_labels", "n_annotators", "n_ties_dropped", "fleiss_kappa"):
                pub.metrics[key] = summary[key]
    except OSError as e:  # a full disk, a quota, a read-only registry: the staged files are already gone
        raise CamelidError(f"could not publish {name} to {reg.root}: {e.strerror or e}; nothing was published "
                           f"(the registry is unchanged); free some space and run the export again") from e
    return pub.artifact.ref


def throughput(labels: list[dict], now: float | None = None, days: int = 7) -> dict:
    """Labels per annotator: total, last hour, last 24 h, per UTC day and per hour of the last 24 h."""
    now = time.time() if now is None else now
    out: dict[str, dict] = {}
    for lab in labels:
        t = out.setdefault(lab["annotator"], {"total": 0, "last_hour": 0, "last_24h": 0, "per_day": {},
                                              "per_hour": {}, "median_seconds": None, "_secs": []})
        t["total"] += 1
        age = now - lab["created"]
        t["last_hour"] += age < 3600
        if age < 86400:
            t["last_24h"] += 1
            hour = time.strftime("%Y-%m-%d %H:00", time.gmtime(lab["created"]))
            t["per_hour"][hour] = t["per_hour"].get(hour, 0) + 1
        if age < days * 86400:
            day = time.strftime("%Y-%m-%d", time.gmtime(lab["created"]))
            t["per_day"][day] = t["per_day"].get(day, 0) + 1
        if lab.get("seconds") is not None:
            t["_secs"].append(lab["seconds"])
    for t in out.values():
        secs = sorted(t.pop("_secs"))
        t["median_seconds"] = round(secs[len(secs) // 2], 1) if secs else None
    return out


def admin_stats(db: AnnotationDB, now: float | None = None) -> dict:
    with db.snapshot() as snap:  # counts, labels and users from the same moment
        labels, counts, users = snap.labels(), snap.counts(), snap.users()
    return {"counts": counts, "throughput": throughput(labels, now), "agreement": agreement_report(labels),
            "annotators": [{"name": u.name, "admin": u.is_admin} for u in users]}
