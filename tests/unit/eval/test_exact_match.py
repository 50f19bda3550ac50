"""Exact match for prompts with reference answers (GSM8K final numbers, multiple-choice letters, accepted
answers), and compare reporting it next to the lm-eval results published on each checkpoint."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from camelid.data.records import Prompt
from camelid.eval.exact_match import exact_match, final_number, is_match, picked_letter, references

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "data"


def _p(**meta) -> Prompt:
    return Prompt(messages=[{"role": "user", "content": "q"}], meta=meta)


@pytest.mark.parametrize("response,ok", [
    ("4 boxes hold 4 * 6 = 24 eggs.\n#### 24", True),
    ("So the answer is 24.", True),
    ("I think 23, no wait, 24", True),          # the last number is the answer
    ("24 eggs? No: 25.", False),
    ("#### 24\nCheck: 6 + 6 + 6 + 6 = 24 (not 25)", True),  # after ####, its first number
    ("twenty-four", False),
    ("", False),
])
def test_gsm8k_final_number(response, ok):
    assert is_match(response, ["24"]) is ok


def test_numbers_compare_as_numbers():
    assert is_match("She saves $1,200.", ["1200"])
    assert is_match("1200.0", ["1,200"])
    assert final_number("-3 degrees") == -3
    assert not is_match("12000", ["1200"])


@pytest.mark.parametrize("response,letter", [
    ("B", "B"), ("(C) Paris", "C"), ("A. Berlin", "A"), ("The answer is D.", "D"), ("Answer: (b)", "B"),
    ("I am not sure", None), ("Because of the rain", None),
])
def test_multiple_choice_letter(response, letter):
    assert picked_letter(response) == letter
    assert is_match(response, ["B"]) is (letter == "B")


def test_text_answers_use_the_knowledge_check_match():
    assert is_match("Paris, of course.", ["paris"])
    assert not is_match("Lyon.", ["paris"])


def test_references_and_rate():
    prompts = [_p(answer="24", solution="..."), _p(answers=["paris", "Paris, France"]), _p(kind="task"), _p()]
    assert references(prompts[0]) == ["24"] and references(prompts[1]) == ["paris", "Paris, France"]
    assert references(prompts[2]) is None and references(prompts[3]) is None
    assert exact_match(prompts, ["#### 24", "Rome", "x", "y"]) == {"exact_match": 0.5, "n": 2}
    assert exact_match(prompts[2:], ["x", "y"]) is None


def test_gsm8k_adapter_prompts_carry_the_final_number():
    from camelid.data.load import load_records
    from camelid.data.spec import DataSpec

    prompts = load_records(DataSpec(format="gsm8k", path=str(FIXTURES / "gsm8k.jsonl")), "prompts").records
    assert [references(p) for p in prompts] == [["24"], ["1200"], ["3"]]
    assert exact_match(prompts, ["#### 24", "1,200 dollars", "4"]) == {"exact_match": 2 / 3, "n": 3}


def test_compare_reports_exact_match_and_lm_eval_results(micro, one_torch_thread):
    from camelid.stage import run_job

    cfg, registry = micro()
    base = registry.resolve("base")
    with registry.publish("base2", "base", config={"copy": "base"}) as pub:  # a second checkpoint to compare
        shutil.copytree(base.path / "model", pub.dir / "model")
    with registry.publish("eval-base", "eval", config={"tasks": ["t"]}, inputs={"model": base},
                          metrics={"tasks": {"toy_mc": {"acc": 0.25}}}) as pub:
        (pub.dir / "results.json").write_text("{}")
    cfg, registry = micro("stages.compare.checkpoints=[base, base2]", "stages.compare.reward_helpfulness=null",
                          "stages.compare.reward_safety=null", "stages.compare.max_new_tokens=4",
                          f"stages.compare.prompts={{format: gsm8k, path: {FIXTURES / 'gsm8k.jsonl'}, split: null}}")
    art = run_job(cfg, registry, "compare")
    numbers = json.loads((art.path / "report.json").read_text())
    rows = {c["ref"]: c for c in numbers["checkpoints"]}
    answers = [json.loads(line) for line in (art.path / "answers.jsonl").read_text().splitlines()]
    for ref in ("base@v1", "base2@v1"):
        expected = sum(is_match(a["answers"][ref]["response"], references(_p(answer=ans)))
                       for a, ans in zip(answers, ["24", "1200", "3"])) / 3
        assert rows[ref]["exact_match"] == expected and rows[ref]["exact_match_n"] == 3
        assert art.manifest["metrics"]["checkpoints"][ref]["exact_match"] == expected
    # found by content: base2 holds base's very files, so base's lm-eval results are base2's too
    assert numbers["benchmarks"]["checkpoints"] == {"base@v1": {"toy_mc": {"acc": 0.25}},
                                                   "base2@v1": {"toy_mc": {"acc": 0.25}}}
    assert numbers["benchmarks"]["sources"] == {"base@v1": ["eval-base@v1"], "base2@v1": ["eval-base@v1"]}
    assert art.manifest["metrics"]["benchmarks"]["checkpoints"]["base@v1"]["toy_mc"]["acc"] == 0.25
    html = (art.path / "report.html").read_text()
    assert "<h2>Exact match</h2>" in html and "<h2>Benchmarks (lm-eval)</h2>" in html and "eval-base@v1" in html

    from camelid.eval.compare_extras import headline_lines

    lines = headline_lines(art)
    assert any(line.startswith("exact match  base@v1:") for line in lines)
    assert "lm-eval  base@v1: toy_mc acc 0.250" in lines
