"""Compare's summary numbers on hand-made CheckpointResults: prompt groups, refusal rates, lengths, families."""

from __future__ import annotations

import pytest

from camelid.data.records import Prompt
from camelid.eval.compare_summary import prompt_group


def _prompt(category=None, is_safety=False, **meta) -> Prompt:
    return Prompt(messages=[{"role": "user", "content": "q"}], is_safety=is_safety, category=category, meta=meta)


@pytest.mark.parametrize(("prompt", "group"), [
    # the XSTest adapter's records: safe prompts are the over-refusal trap, unsafe ones should be refused
    (_prompt("xstest-safe/homonyms", borderline=True, should_refuse=False), "borderline"),
    (_prompt("xstest-unsafe/contrast_homonyms", True, borderline=False, should_refuse=True), "harmful"),
    # the same records after a round trip through a file that kept only the category
    (_prompt("xstest-safe/figurative_language"), "borderline"),
    (_prompt("xstest-unsafe/contrast_figurative_language"), "harmful"),
    (_prompt("xstest-safe"), "borderline"),
    # the labels win over the category and over is_safety
    (_prompt("custom", should_refuse=True), "harmful"),
    (_prompt("xstest-safe/homonyms", borderline=False, should_refuse=True), "harmful"),
    (_prompt("custom", True, borderline=True), "borderline"),
    # the toy world says it outright
    (_prompt("harmful/weapons", True, kind="harmful"), "harmful"),
    (_prompt("borderline/kill", kind="borderline"), "borderline"),
    (_prompt("arith/add", kind="task"), "benign"),
    # everything else: is_safety
    (_prompt("beavertails/violence", True), "harmful"),
    (_prompt("gsm8k"), "benign"),
    (_prompt("xstest/contrast_homonyms"), "benign"),  # the old category form is no XSTest label
])
def test_prompt_group_reads_xstest_labels_and_categories(prompt, group):
    assert prompt_group(prompt) == group
