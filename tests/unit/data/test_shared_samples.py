"""Optional: every adapter on the real-data samples in <repo>/../shared/data (skipped when absent).

Run `pytest tests/unit/data/test_shared_samples.py -s` (or this file with python) to print read/kept/
dropped-by-reason for each sample and record kind.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

SHARED = Path(__file__).resolve().parents[3].parent / "shared" / "data"
# (sample file, format, options); the format is also auto-detected and must agree.
SAMPLES = [
    ("hh-rlhf/helpful-base-sample.jsonl", "hh-rlhf", {}),
    ("hh-rlhf/harmless-base-sample.jsonl", "hh-rlhf", {"is_safety": True}),
    ("xstest/responses-sample.jsonl", "xstest", {}),
    ("self-instruct/seed-tasks-sample.jsonl", "self-instruct", {}),
    ("gsm8k/test-sample.jsonl", "gsm8k", {}),
    ("oasst/conversations-sample.jsonl", "oasst", {}),
    ("mt-bench/question.jsonl", "mt-bench", {}),
]
# oasst conversation rows carry no ranked alternatives, so no pairs
NO_PAIRS = {"oasst"}


def cases():
    from camelid.data.adapters import get_adapter

    for name, fmt, options in SAMPLES:
        for kind in get_adapter(fmt).kinds:
            if not (kind == "pairs" and fmt in NO_PAIRS):
                yield name, fmt, options, kind


def report(name: str, fmt: str, options: dict, kind: str):
    from camelid.data.load import load_records, resolve_format
    from camelid.data.spec import DataSpec

    spec = DataSpec(format=fmt, path=str(SHARED / name), options=options, on_error="skip")
    assert resolve_format(spec.model_copy(update={"format": "auto"})) == fmt
    res = load_records(spec, kind, allow_empty=True)
    drops = ", ".join(f"{r}: {c}" for r, c in res.dropped.most_common()) or "-"
    print(f"{name:40} {kind:8} read {res.read:4}  kept {res.kept:4}  dropped: {drops}")
    return res


@pytest.mark.skipif(not SHARED.is_dir(), reason=f"no real-data samples at {SHARED}")
@pytest.mark.parametrize("name, fmt, options, kind", list(cases()) if SHARED.is_dir() else [])
def test_shared_sample(name, fmt, options, kind):
    res = report(name, fmt, options, kind)
    assert res.errors == 0, res.sample_reasons
    assert res.kept > 0
    assert sum(res.dropped.values()) <= res.read // 2, res.dropped


if __name__ == "__main__":
    if not SHARED.is_dir():
        sys.exit(f"skipped: no real-data samples at {SHARED}")
    for case in cases():
        report(*case)
