"""What the rs fine-tune trains on: kept best samples, and with below_margin: current the greedy answer of every
prompt whose best sample did not beat it by the margin (#14: the better answers alone taught SmolLM2 to 'help'
with harmful prompts)."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from camelid.rs.config import RSConfig
from camelid.rs.recipe import training_rows
from camelid.rs.sampling import select


def row(i: int, rc: list[float], current: str, current_rc: float) -> dict:
    k = len(rc)
    return {"index": i, "id": f"p{i}", "messages": [{"role": "user", "content": f"prompt {i}"}],
            "is_safety": i % 2 == 0, "answers": [f"s{i}.{j}" for j in range(k)], "rh": rc, "rs": rc, "rc": rc,
            "used_safety": [False] * k, "current": current, "current_rc": current_rc}


ROWS = [row(0, [0.0, 3.0], "greedy 0", 1.0),   # best 3.0 beats greedy by 2 > 1: the sample
        row(1, [1.2, 0.5], "greedy 1", 1.0),   # 0.2 above: below the margin
        row(2, [0.0, 0.1], "  ", 0.0),         # below the margin, and its greedy answer is empty
        row(3, [5.0, 0.0], "greedy 3", 3.5)]   # 1.5 above: the sample


def chosen():
    return select(np.array([r["rc"] for r in ROWS]), [r["answers"] for r in ROWS],
                  np.array([r["current_rc"] for r in ROWS]), margin=1.0)


def test_drop_trains_only_on_samples_that_beat_the_greedy_answer_by_the_margin():
    out = training_rows(ROWS, chosen())
    assert [(r["meta"]["prompt_index"], r["messages"][-1]["content"]) for r in out] == [(0, "s0.1"), (3, "s3.0")]
    assert out[0]["meta"]["reward"] == 3.0 and out[0]["meta"]["current_reward"] == 1.0


def test_current_adds_the_greedy_answer_of_prompts_below_the_margin_in_prompt_order():
    out = training_rows(ROWS, chosen(), keep_current=True)
    assert [(r["meta"]["prompt_index"], r["meta"]["sample"], r["messages"][-1]["content"]) for r in out] == [
        (0, 1, "s0.1"), (1, None, "greedy 1"), (3, 0, "s3.0")]  # prompt 2's greedy answer is empty: nothing
    current = out[1]
    assert current["messages"][:-1] == ROWS[1]["messages"] and current["messages"][-1]["role"] == "assistant"
    assert current["meta"]["reward"] == 1.0 and current["meta"]["rh"] is None and current["id"] == "p1"


def test_min_reward_keeps_only_answers_the_reward_rates_at_least_that_high():
    """The floor applies to samples and current answers alike: greedy 1 (1.0) and s0.1 (3.0) fall under 3.5."""
    out = training_rows(ROWS, chosen(), keep_current=True, min_reward=3.5)
    assert [(r["meta"]["prompt_index"], r["messages"][-1]["content"]) for r in out] == [(3, "s3.0")]
    assert [r["meta"]["prompt_index"] for r in training_rows(ROWS, chosen(), keep_current=True, min_reward=1.0)] == [
        0, 1, 3]  # at least: 1.0 stays


def test_below_margin_current_needs_a_margin():
    with pytest.raises(ValidationError, match="set stages.rs.margin"):
        RSConfig(below_margin="current")
    assert RSConfig(below_margin="current", margin=1.0).below_margin == "current"


def test_prompts_may_be_a_mixture_with_real_wording_safety_prompts():
    """Toy prompts plus the built-in real-wording safety set, tagged as safety prompts (its rows carry no
    is_safety, so the spec's option sets it): the combined reward scores them with the safety RM."""
    from camelid.data.load import load_records

    cfg = RSConfig(prompts=[{"format": "toy", "split": "ppo", "n": 8, "weight": 8},
                            {"format": "messages", "path": "builtin:real_safety_sft.jsonl", "weight": 8,
                             "options": {"is_safety": True}}], margin=1.0)
    loaded = load_records(cfg.prompts, "prompts")
    assert len(loaded.records) == 16
    real = [p for p in loaded.records if (p.id or "").startswith("real-safety/")]
    assert len(real) == 8 and all(p.messages[-1]["role"] == "user" for p in loaded.records)
    assert all(p.is_safety for p in real)


# stages.rs.label_filter (#25): the prompt's own label decides which side of a refusal a kept answer may be on.
REFUSE, HELP = "I can't help with that.", "Here is how to stop a stuck process: kill -9 <pid>."


def labelled_rows():
    from camelid.data.records import Prompt

    def prompt(i: int, meta: dict, category: str | None = None) -> Prompt:
        return Prompt(messages=[{"role": "user", "content": f"prompt {i}"}], is_safety=bool(meta) or bool(category),
                      category=category, meta=meta)

    prompts = [prompt(0, {"kind": "harmful"}),               # the RM likes the compliance best
               prompt(1, {"kind": "borderline"}),            # the RM likes the refusal best
               prompt(2, {"should_refuse": True}),           # every sample complies: dropped
               prompt(3, {}, category="xstest-safe/homonyms"),  # the greedy refusal sets no bar and is not kept
               prompt(4, {"kind": "task"})]                  # unlabelled for refusals: untouched
    rows = [{**row(0, [5.0, 2.0], REFUSE, 1.0), "answers": [HELP, REFUSE]},
            {**row(1, [4.0, 3.0], HELP, 2.5), "answers": [REFUSE, HELP]},
            {**row(2, [4.0, 3.0], HELP, 1.0), "answers": [HELP, HELP + " Also"]},
            {**row(3, [1.5, 0.5], REFUSE, 9.0), "answers": [HELP, REFUSE]},
            {**row(4, [0.5, 0.0], REFUSE, 0.0), "answers": [REFUSE, HELP]}]
    return prompts, rows


def test_label_filter_picks_the_best_sample_on_the_right_side_of_the_prompts_label():
    from camelid.rs.recipe import label_eligibility
    from camelid.rs.sampling import selection_stats

    prompts, rows = labelled_rows()
    eligible, current_ok = label_eligibility(prompts, rows)
    assert eligible.tolist() == [[False, True], [False, True], [False, False], [True, False], [True, True]]
    assert current_ok.tolist() == [True, True, False, False, True]
    rc, cur = np.array([r["rc"] for r in rows]), np.array([r["current_rc"] for r in rows])
    picked = select(rc, [r["answers"] for r in rows], cur, 0.0, eligible, current_ok)
    out = training_rows(rows, picked, keep_current=True)
    # 0: the refusal (2.0 > greedy 1.0); 1: the help 3.0 beats greedy 2.5; 2: dropped; 3: the help (the greedy
    # refusal's 9.0 sets no bar); 4: the task keeps its highest sample, a refusal, as without the filter.
    assert [(r["meta"]["prompt_index"], r["messages"][-1]["content"]) for r in out] == [
        (0, REFUSE), (1, HELP), (3, HELP), (4, REFUSE)]
    stats = selection_stats(rc, picked, cur)
    assert (stats["dropped_off_label"], stats["switched_by_label"], stats["kept"]) == (1, 2, 4)
    # Without the filter the reward's favourites win: the compliance on 0, the refusal on 1, the greedy on 3.
    plain = training_rows(rows, select(rc, [r["answers"] for r in rows], cur, 0.0), keep_current=True)
    assert [(r["meta"]["prompt_index"], r["messages"][-1]["content"]) for r in plain] == [
        (0, HELP), (1, REFUSE), (2, HELP), (3, REFUSE), (4, REFUSE)]


def test_label_filter_keeps_a_greedy_answer_on_the_right_side_below_the_margin():
    from camelid.rs.recipe import label_eligibility

    prompts, rows = labelled_rows()
    eligible, current_ok = label_eligibility(prompts, rows)
    rc, cur = np.array([r["rc"] for r in rows]), np.array([r["current_rc"] for r in rows])
    picked = select(rc, [r["answers"] for r in rows], cur, 1.0, eligible, current_ok)
    out = training_rows(rows, picked, keep_current=True)
    # 0: refusal 2.0 does not beat greedy refusal 1.0 by more than 1: the greedy refusal; 1: the help 3.0 is 0.5
    # above the greedy help: the greedy help; 4: 0.5 above greedy: the greedy (a task is unlabelled).
    assert [(r["meta"]["prompt_index"], r["meta"]["sample"], r["messages"][-1]["content"]) for r in out] == [
        (0, None, REFUSE), (1, None, HELP), (3, 0, HELP), (4, None, REFUSE)]
