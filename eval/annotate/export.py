"""Turn stored labels into canonical `PreferencePair` records, and the admin page's statistics."""

from __future__ import annotations

import hashlib
import json
import time
from collections import defaultdict
from pathlib import Path

from camelid.data.records import RATINGS, PreferencePair
from camelid.errors import CamelidError
from camelid.eval.annotate.agreement import agreement_report, majority
from camelid.eval.annotate.db import AnnotationDB

MODES = ("majority", "per-annotator")


def _record(pair: dict, preferred: str, rating: str, a_safe: bool | None, b_safe: bool | None,
            rid: str) -> PreferencePair:
    a, b = pair["response_a"], pair["response_b"]
    chosen, rejected = (a, b) if preferred == "a" else (b, a)
    chosen_safe, rejected_safe = (a_safe, b_safe) if preferred == "a" else (b_safe, a_safe)
    meta = pair["meta"]
    return PreferencePair(prompt=pair["prompt"], chosen=chosen, rejected=rejected, rating=rating,
                          chosen_safe=chosen_safe, rejected_safe=rejected_safe, category=meta.get("category"),
                          source=meta.get("source") or "annotate", id=rid)


def median_strength(strengths: list[str]) -> str:
    """Median of Llama 2 strengths; with an even count, the weaker of the two middle ones."""
    ranks = sorted(RATINGS.index(s) for s in strengths)
    return RATINGS[ranks[len(ranks) // 2]]


def _majority_bool(values: list[bool]) -> bool | None:
    m = majority(values)
    return None if m is None else bool(m)


def export_records(db: AnnotationDB, mode: str = "majority", min_votes: int = 1) -> tuple[list[PreferencePair], dict]:
    """Records plus a summary ``{n_pairs, n_labels, n_ties_dropped, ...}``.

    majority: one record per pair with >= ``min_votes`` labels; chosen = the side most annotators
    preferred (pairs where the vote ties are dropped), rating = median strength of the annotators who
    picked that side, safety = majority per response (None on a tie).
    per-annotator: one record per label, id ``<pair id>/<annotator>``.
    """
    if mode not in MODES:
        raise CamelidError(f"--mode must be one of {', '.join(MODES)}, got {mode!r}")
    pairs = {p["id"]: p for p in db.pairs()}
    labels = db.labels()
    by_pair: dict[int, list[dict]] = defaultdict(list)
    for lab in labels:
        by_pair[lab["pair_id"]].append(lab)
    rid = lambda pid: str(pairs[pid]["meta"].get("id") or f"annotate-{pid}")  # noqa: E731

    records, ties, too_few = [], 0, 0
    for pid in sorted(by_pair):
        labs, pair = by_pair[pid], pairs[pid]
        if mode == "per-annotator":
            records += [_record(pair, lab["preferred"], lab["strength"], lab["a_safe"], lab["b_safe"],
                                f"{rid(pid)}/{lab['annotator']}") for lab in labs]
            continue
        if len(labs) < min_votes:
            too_few += 1
            continue
        side = majority([lab["preferred"] for lab in labs])
        if side is None:
            ties += 1
            continue
        strength = median_strength([lab["strength"] for lab in labs if lab["preferred"] == side])
        records.append(_record(pair, side, strength, _majority_bool([lab["a_safe"] for lab in labs]),
                               _majority_bool([lab["b_safe"] for lab in labs]), rid(pid)))
    summary = {"mode": mode, "n_pairs": len(records), "n_labels": len(labels),
               "n_annotators": len({lab["annotator"] for lab in labels}),
               "n_ties_dropped": ties, "n_below_min_votes": too_few,
               "fleiss_kappa": agreement_report(labels)["fleiss_kappa"]}
    return records, summary


def to_jsonl(records: list[PreferencePair]) -> str:
    return "".join(json.dumps(r.to_dict(), ensure_ascii=False) + "\n" for r in records)


def publish(text: str, summary: dict, name: str, registry_root: Path, db_path: Path, min_votes: int) -> str:
    """Publish ``pairs.jsonl`` as a ``dataset`` artifact; returns its ref (e.g. ``prefs@v1``)."""
    try:
        from camelid.registry import Registry
    except ImportError as e:
        raise CamelidError("the registry (camelid.registry) is not available in this install") from e
    reg = Registry(Path(registry_root))
    config = {"source": "camelid annotate", "mode": summary["mode"], "min_votes": min_votes,
              "database": str(db_path)}
    fingerprint = hashlib.sha256(text.encode()).hexdigest()
    with reg.publish(name, kind="dataset", config=config, inputs={},
                     data_fingerprints={"pairs.jsonl": fingerprint}) as pub:
        (Path(pub.dir) / "pairs.jsonl").write_text(text, encoding="utf-8")
        for key in ("n_pairs", "n_labels", "n_annotators", "n_ties_dropped", "fleiss_kappa"):
            pub.metrics[key] = summary[key]
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
    labels = db.labels()
    return {"counts": db.counts(), "throughput": throughput(labels, now), "agreement": agreement_report(labels),
            "annotators": [{"name": u.name, "admin": u.is_admin} for u in db.users()]}
