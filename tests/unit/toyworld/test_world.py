"""The toy world's generator: determinism, splits, flaws, graded pairs that the oracle agrees with."""

from __future__ import annotations

import time
from collections import Counter, defaultdict

import pytest

from camelid.data.records import RATINGS
from camelid.data.toyworld import (
    FLAWS,
    ToyWorld,
    evaluate,
    flaw_report,
    records,
    score,
    score_by_id,
    split_of,
)
from camelid.data.toyworld.detect import normalize, within_one_edit
from camelid.data.toyworld.families import SUBFAMILIES
from camelid.data.toyworld.generator import level_for_gap
from camelid.errors import DataError

ALL_CATEGORIES = {s.category for subs in SUBFAMILIES.values() for s in subs}


@pytest.fixture(scope="module")
def w():
    return ToyWorld(seed=0)


@pytest.fixture(scope="module")
def pairs(w):
    return {o: w.preference_pairs(o, n=2000) for o in ("helpfulness", "safety")}


@pytest.fixture(scope="module")
def scored(w, pairs):
    """objective -> [(pair, regenerated prompt, oracle score of chosen, of rejected)]."""
    out = {}
    for objective, rows in pairs.items():
        prompts = [w.prompt_by_id(p.id) for p in rows]
        out[objective] = [(p, q, score(q, p.chosen), score(q, p.rejected)) for p, q in zip(rows, prompts)]
    return out


def _users(messages_lists):
    return {normalize(m["content"]) for msgs in messages_lists for m in msgs if m["role"] == "user"}


def test_same_seed_same_data_different_seed_differs(w):
    again = ToyWorld(seed=0)
    assert [e.to_dict() for e in w.sft_examples(n=300)] == [e.to_dict() for e in again.sft_examples(n=300)]
    assert [p.to_dict() for p in w.preference_pairs("safety", n=200)] == \
        [p.to_dict() for p in again.preference_pairs("safety", n=200)]
    assert [p.to_dict() for p in w.prompts("eval", n=200)] == [p.to_dict() for p in again.prompts("eval", n=200)]
    other = ToyWorld(seed=1)
    assert other.atlas != w.atlas
    assert [e.messages for e in other.sft_examples(n=300)] != [e.messages for e in w.sft_examples(n=300)]
    assert [p.chosen for p in other.preference_pairs("helpfulness", n=200)] != \
        [p.chosen for p in w.preference_pairs("helpfulness", n=200)]


def test_rows_are_stable_prefixes(w):
    assert [e.to_dict() for e in w.sft_examples(n=40)] == [e.to_dict() for e in w.sft_examples(n=120)[:40]]


def test_no_request_on_both_sides_of_the_split(w, pairs):
    training = _users(e.messages for e in w.sft_examples(n=5000, split="train"))
    training |= _users(p.prompt for p in pairs["helpfulness"] + pairs["safety"])
    training |= _users(p.messages for p in w.prompts("ppo", n=2000))
    heldout_rows = {
        "sft heldout": [e.messages for e in w.sft_examples(n=1500, split="heldout")],
        "pairs heldout": [p.prompt for o in ("helpfulness", "safety") for p in w.preference_pairs(o, n=600, split="heldout")],
        "eval": [p.messages for p in w.prompts("eval", n=1200)],
    }
    for name, rows in heldout_rows.items():
        heldout = _users(rows)
        assert len(heldout) > 300, name
        assert not training & heldout, f"{name} shares requests with training: {sorted(training & heldout)[:3]}"
    eval_prompts = w.prompts("eval", n=1200)
    assert {p.category for p in eval_prompts} == ALL_CATEGORIES  # every sub-family is measured


def test_split_hash_is_what_decides():
    assert split_of("What is 2 + 3?") == split_of("  what is 2 +   3?")
    shares = Counter(split_of(f"What is {a} + {b}?") for a in range(40) for b in range(40))
    assert 0.15 < shares["heldout"] / 1600 < 0.25


def test_sft_default_size_speed_and_shape(w):
    start = time.process_time()
    sft = w.sft_examples()
    cpu = time.process_time() - start
    assert len(sft) == 27540 and cpu < 5.0, cpu  # < 3 s CPU on an idle laptop core; headroom for busy CI
    assert len({e.id for e in sft}) == len(sft)
    with_system = sum(e.messages[0]["role"] == "system" for e in sft) / len(sft)
    multi_turn = sum(sum(m["role"] == "user" for m in e.messages) > 1 for e in sft) / len(sft)
    assert 0.15 < with_system < 0.25 and 0.12 < multi_turn < 0.25
    report = flaw_report(sft)
    assert 0.10 < report["share"] < 0.17, report["share"]
    flawed_categories = {c for c, r in report["by_subfamily"].items() if r["imperfect"]}
    assert flawed_categories == set(FLAWS)
    for category, (_, rate) in FLAWS.items():
        assert rate - 0.05 < report["by_subfamily"][category]["share"] < rate + 0.12, category
    assert set(report["by_subfamily"]) == ALL_CATEGORIES


def test_sft_answers_gold_score_helpful_flawed_do_not(w):
    checked = Counter()
    for e in w.sft_examples(n=3000):
        if sum(m["role"] == "user" for m in e.messages) != 1:
            continue
        s = score(w.prompt_by_id(e.id), e.messages[-1]["content"])
        flawed = e.source.endswith(":flawed")
        assert s.helpful == (0.0 if flawed else 1.0), (e.source, e.messages, s)
        checked[flawed] += 1
    assert checked[True] > 100 and checked[False] > 1500


def test_flaws_option_keeps_only_the_sub_families_named(w):
    """options.flaws: the default stream is unchanged, false gives gold answers everywhere, a list keeps only
    its own sub-families' flaws (and the flaw-free rows answer as the oracle's gold does)."""
    default = records("sft", split="train", n=800)
    assert [e.messages for e in default] == [e.messages for e in w.sft_examples(n=800)]
    assert [e.messages for e in records("sft", split="train", n=800, options={"flaws": True})] == \
        [e.messages for e in default]
    none = records("sft", split="train", n=800, options={"flaws": False})
    assert flaw_report(none)["imperfect"] == 0
    only = records("sft", split="train", n=800, options={"flaws": ["list/max"]})
    kept = {c for c, r in flaw_report(only)["by_subfamily"].items() if r["imperfect"]}
    assert kept == {"list/max"}
    assert flaw_report(only)["by_subfamily"]["list/max"] == flaw_report(default)["by_subfamily"]["list/max"]
    for e in none:
        if sum(m["role"] == "user" for m in e.messages) == 1:
            assert score(w.prompt_by_id(e.id), e.messages[-1]["content"]).helpful == 1.0, e.messages
    # the prompts stay where the dropped flaws don't change the rest of a multi-turn row's draws
    same = sum(a.messages[:-1] == b.messages[:-1] for a, b in zip(default, none))
    assert same > 0.9 * len(default)


@pytest.mark.parametrize("options, kind, message", [
    ({"flaws": ["borderline/attack"]}, "sft", "borderline/attack carry no flaw"),
    ({"flaws": "list/max"}, "sft", "true, false or a list"),
    ({"flaws": False}, "prompts", "for SFT data"),
    ({"groups": ["safe"]}, "sft", "unknown option(s) groups"),
])
def test_flaws_option_errors_say_what(options, kind, message):
    with pytest.raises(DataError, match=message.replace("(", r"\(").replace(")", r"\)")):
        records(kind, split="train" if kind == "sft" else "ppo", n=4, options=options)


def test_every_pair_agrees_with_the_oracle(scored):
    flipped = 0
    for objective, rows in scored.items():
        for p, prompt, sc, sr in rows:
            assert prompt.messages == p.prompt and prompt.category == p.category
            assert (p.chosen_safe, p.rejected_safe) == (sc.safe, sr.safe), p
            assert p.chosen != p.rejected
            if p.chosen_safe is False and p.rejected_safe is True:  # annotator preferred compliance
                assert objective == "safety" and p.source.endswith("comply>refusal")
                flipped += 1
                continue
            assert sc.quality >= sr.quality, p
            if p.rating != "negligibly_better":
                assert sc.quality > sr.quality, p
            assert level_for_gap(sc.quality - sr.quality) == p.rating, p
    share = flipped / len(scored["safety"])
    assert 0.03 <= share <= 0.05, share


def test_rating_levels_are_graded_by_real_difference(scored):
    for objective, rows in scored.items():
        gaps = defaultdict(list)
        for p, _, sc, sr in rows:
            if not (p.chosen_safe is False and p.rejected_safe is True):
                gaps[p.rating].append(sc.quality - sr.quality)
        mean = {r: sum(v) / len(v) for r, v in gaps.items()}
        assert set(mean) == set(RATINGS), objective
        assert mean["significantly_better"] > mean["better"] > mean["slightly_better"] > mean["negligibly_better"]
        assert mean["significantly_better"] > 0.9 and 0.5 < mean["better"] < 0.85, mean
        assert 0.2 < mean["slightly_better"] < 0.5 and mean["negligibly_better"] < 0.05, mean


def test_length_does_not_tell_which_side_is_chosen(pairs):
    for objective, rows in pairs.items():
        by_rating = defaultdict(list)
        for p in rows:
            by_rating[p.rating].append(len(p.chosen) > len(p.rejected))
        for rating, longer in by_rating.items():
            assert 0.3 < sum(longer) / len(longer) < 0.7, (objective, rating)


def test_pairs_cover_rating_levels_and_safety_categories(pairs):
    safety = pairs["safety"]
    assert set(Counter(p.rating for p in safety)) == set(RATINGS)
    assert {p.category.split("/")[0] for p in safety} == {"harmful", "borderline"}
    harmful = [p for p in safety if p.category.startswith("harmful/")]
    refusal_vs_compliance = [p for p in harmful if p.chosen_safe and not p.rejected_safe]
    assert len(refusal_vs_compliance) > 0.3 * len(harmful)
    benign = [p for p in safety if p.category.startswith("borderline/")]
    assert all(p.chosen_safe and p.rejected_safe for p in benign)
    assert any(p.source.endswith("gold>refusal") for p in benign)  # help beats over-refusal


def test_prompts_ids_and_reference_answers(w):
    ev = w.prompts("eval")
    assert len(ev) == 1200 and len(w.prompts("ppo", n=50)) == 50
    assert ev[123].id == "toy-s0-eval-000123"
    assert all(p.is_safety == (p.meta["kind"] != "task") for p in ev)
    gold = [w.reference_answer(p) for p in ev]
    g = evaluate(ev, gold)
    assert g["task_accuracy"] == g["borderline_help"] == g["harmful_refusal"] == 1.0
    assert g["over_refusal"] == g["harmful_compliance"] == g["safety_violation"] == 0.0
    s = evaluate(ev, [w.reference_answer(p, "sft") for p in ev])
    assert 0.2 < s["over_refusal"] < 0.45 and 0.05 < s["harmful_compliance"] < 0.2, s
    assert s["per_category"]["list/max"] < 0.6 and s["per_category"]["list/sort3"] == 1.0
    p = ev[7]
    assert score_by_id(p.id, gold[7]) == score(p, gold[7])
    assert ToyWorld(5).score_by_id(p.id, gold[7]) == score(p, gold[7])  # the id carries its seed
    assert score_by_id("toy-s3-ppo-000002", "x") == score(ToyWorld(3).prompts("ppo", n=3)[2], "x")
    with pytest.raises(DataError, match="not a toy-world id"):
        score_by_id("eval-12", "x")


def test_records_entry_point():
    assert len(records("sft", n=5)) == 5
    assert records("pairs", n=3, objective="safety", split="heldout")[0].id.startswith("toy-s0-safety-heldout-")
    assert all(p.id.startswith("toy-s2-ppo-") for p in records("prompts", n=3, seed=2))
    assert records("prompts", n=2, split="heldout")[0].id.startswith("toy-s0-eval-")
    for bad in (dict(kind="nope"), dict(kind="sft", split="eval"), dict(kind="pairs", objective="honesty"),
                dict(kind="prompts", split="test"), dict(kind="sft", n=-1)):
        with pytest.raises(DataError):
            records(**bad)
    with pytest.raises(DataError):
        ToyWorld(seed="0")


def test_corpus_covers_the_world(w):
    lines = list(w.corpus(n_lines=3000))
    assert len(lines) == 3000
    text = "\n".join(lines)
    for needle in ["0 1 2 3 4 5 6 7 8 9", "[INST]", "I can't help with that.", "Step 1:",
                   w.atlas.countries[0].capital, "PID", "SQL", "capital letters", "backwards"]:
        assert needle in text, needle


def test_atlas_names_are_far_apart(w):
    assert len(w.atlas.countries) == 40
    for attribute in ("name", "capital", "river", "language"):
        values = [v.lower() for v in w.atlas.values(attribute)]
        assert len(set(values)) == 40
        assert not any(within_one_edit(a, b) for i, a in enumerate(values) for b in values[i + 1:]), attribute
