"""`camelid compare --prompts SPEC`: the data CLI's spec syntax, plus toy:SPLIT."""

from __future__ import annotations

import pytest

from camelid.data.spec import DataSpec
from camelid.errors import DataError
from camelid.eval.compare_stage import parse_prompts

XSTEST = "tests/fixtures/data/xstest-upstream"


def test_format_and_path_become_a_spec(repo):
    spec = parse_prompts(f"xstest:{repo / XSTEST}/xstest_prompts.csv", 5, None)
    assert spec == DataSpec(format="xstest", path=f"{repo / XSTEST}/xstest_prompts.csv", n=5)
    assert parse_prompts(f"auto:{repo / XSTEST}", None, None).format == "auto"
    assert parse_prompts(str(repo / XSTEST), None, None) == DataSpec(format="auto", path=str(repo / XSTEST))


def test_toy_specs_keep_their_defaults():
    assert parse_prompts("toy", None, None) == DataSpec(format="toy", split="eval", n=200)
    assert parse_prompts("toy:ppo", 7, None) == DataSpec(format="toy", split="ppo", n=7)


def test_an_unknown_format_is_blamed_not_the_path(repo):
    with pytest.raises(DataError, match=r"unknown data format 'xstst'.*xstest"):
        parse_prompts(f"xstst:{repo / XSTEST}/xstest_prompts.csv", None, None)


def test_a_missing_path_is_blamed(repo, tmp_path):
    with pytest.raises(DataError, match=r"no such file or folder"):
        parse_prompts(f"xstest:{tmp_path / 'missing.csv'}", None, None)
