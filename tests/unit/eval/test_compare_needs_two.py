"""Issue #29: `camelid compare` with one checkpoint is an error (its usage says REF REF), not a report."""

from __future__ import annotations

from pathlib import Path

import pytest

from camelid.cli import main

REPO = Path(__file__).resolve().parents[3]


@pytest.mark.parametrize("refs", [["base"], ["stages.compare.checkpoints=[base]"]])
def test_compare_with_one_checkpoint_is_an_error(micro, tmp_path, capsys, refs):
    _, reg = micro()  # base@v1 exists: one checkpoint could be compared with nothing
    rc = main(["compare", *refs, "--config", str(REPO / "pipelines.yaml"), "--profile", "micro",
               "--registry", str(reg.root), f"runs_dir={tmp_path / 'runs'}", "--no-reward-models", "--n", "2"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and err == ("camelid compare: error: compare needs at least two checkpoints, got 1 (base): give "
                               "two or more REFs, e.g. `camelid compare base sft`")
    assert reg.names() == ["base"]  # no report published
