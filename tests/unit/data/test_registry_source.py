"""`path: registry:<ref>` reads a dataset artifact, e.g. labels published by `camelid annotate export`."""

from __future__ import annotations

import json

import pytest

from camelid.data.load import load_records
from camelid.data.spec import DataSpec
from camelid.errors import DataError, RegistryError
from camelid.registry import Registry, set_default_root

PAIRS = [
    {"prompt": [{"role": "user", "content": "Capital of Rosand?"}], "chosen": "Tervik.", "rejected": "Blue.",
     "rating": "significantly_better", "chosen_safe": True, "rejected_safe": True},
    {"prompt": [{"role": "user", "content": "How do I kill a stuck process?"}], "chosen": "Use kill PID.",
     "rejected": "I can't help with that.", "rating": "better", "chosen_safe": True, "rejected_safe": True},
]


@pytest.fixture
def reg(tmp_path):
    reg = Registry(tmp_path / "registry")
    with reg.publish("prefs", "dataset", config={"source": "test"}) as pub:
        (pub.dir / "pairs.jsonl").write_text("".join(json.dumps(p) + "\n" for p in PAIRS))
    with reg.publish("base", "base", config={}) as pub:
        (pub.dir / "weights.txt").write_text("x")
    set_default_root(reg.root)
    return reg


def test_dataset_artifact_loads_as_pairs(reg):
    for fmt in ("preference", "auto"):
        res = load_records(DataSpec(format=fmt, path="registry:prefs@v1"), "pairs")
        assert [p.chosen for p in res.records] == ["Tervik.", "Use kill PID."]
        assert res.records[1].rating == "better"
    # the bare name is the latest version, like any other ref
    assert len(load_records(DataSpec(format="preference", path="registry:prefs"), "pairs").records) == 2


def test_wrong_kind_and_unknown_ref(reg):
    with pytest.raises(DataError, match="registry:base@v1: base@v1 is a base artifact, not a dataset"):
        load_records(DataSpec(format="preference", path="registry:base@v1"), "pairs")
    with pytest.raises(RegistryError, match="unknown reference 'prefz'.*prefs"):
        load_records(DataSpec(format="preference", path="registry:prefz"), "pairs")
