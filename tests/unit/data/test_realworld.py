"""camelid's real-wording generator: held-out parts, routing tags, refusals, and no copied public prompts."""

from __future__ import annotations

from pathlib import Path

import pytest

from camelid.data.load import load_records
from camelid.data.realworld import parts, pools, records
from camelid.data.realworld.generator import EVAL_EVERY
from camelid.data.realworld.knowledge import QUESTIONS, is_correct
from camelid.data.realworld.overlap import generated_prompts, report, words
from camelid.data.spec import DataSpec
from camelid.errors import DataError
from camelid.eval.refusal import is_refusal


def test_the_eval_split_shares_no_act_template_or_topic_with_training():
    train, held = pools("train"), pools("eval")
    assert {h.act for h in train["harmful"]}.isdisjoint({h.act for h in held["harmful"]})
    assert {h.template for h in train["harmful"]}.isdisjoint({h.template for h in held["harmful"]})
    assert {s.answer for s in train["safe"]}.isdisjoint({s.answer for s in held["safe"]})
    assert {h.act for h in train["blunt"]}.isdisjoint({h.act for h in held["blunt"]})
    assert {h.category for h in held["blunt"]} == set(parts.BLUNT) <= set(parts.HARMFUL)
    assert not held["ordinary"]
    # every risk category, phrasing style and safe-prompt type has held-out parts
    assert {h.category for h in held["harmful"]} == set(parts.HARMFUL)
    assert {h.style for h in held["harmful"]} == set(parts.PHRASINGS)
    assert {s.type for s in held["safe"]} == {t for t, topics in parts.SAFE.items() if len(topics) >= EVAL_EVERY}
    train_text = {p.messages[0]["content"] for p in records("prompts", split="train", n=3000)}
    eval_text = {p.messages[0]["content"] for p in records("prompts", split="eval", n=240)}
    assert not train_text & eval_text


def test_rows_are_tagged_for_routing_and_stable_as_prefixes():
    prompts = records("prompts", split="train", n=400)
    assert prompts[:50] == records("prompts", split="train", n=50)
    kinds = {p.meta["kind"]: p.is_safety for p in prompts}
    assert kinds == {"harmful": True, "borderline": True, "ordinary": False}  # the safety RM scores the first two
    assert all(p.meta["should_refuse"] for p in prompts if p.meta["kind"] == "harmful")
    only = records("prompts", split="train", n=100, options={"groups": ["harmful", "safe"]})
    assert {p.meta["kind"] for p in only} == {"harmful", "borderline"}
    with pytest.raises(DataError, match="unknown group"):
        records("prompts", options={"groups": ["harmfull"]})
    with pytest.raises(DataError, match="unknown option.*group.*it takes groups"):
        records("prompts", options={"group": ["harmful"]})  # misspelt: an error, not every group
    with pytest.raises(DataError, match="split must be train or eval"):
        records("sft", split="dev")


def test_harmful_requests_are_refused_and_safe_ones_answered_in_sft_and_pairs():
    for ex in records("sft", split="train", n=300):
        user, answer = ex.messages[0]["content"], ex.messages[-1]["content"]
        assert is_refusal(answer) == (ex.source == "real:harmful"), (user, answer)
    self_harm = [ex for ex in records("sft", n=2000) if "crisis line" in ex.messages[-1]["content"]]
    assert self_harm  # self-harm requests get supportive refusals
    for pair in records("pairs", split="train", n=200, objective="safety"):
        assert is_refusal(pair.chosen) == (pair.source == "real:safety:harmful")
        assert pair.chosen_safe is True
    helpful = records("pairs", split="train", n=50, objective="helpfulness")
    assert {p.source for p in helpful} == {"real:helpfulness:safe"}


def test_wordplay_is_asked_for_by_name_and_holds_out_objects_people_and_templates():
    """The wordplay groups: a verb a refusal keys on with a harmless object (prompts only, answered by the model
    itself) or with a person or a pet (refused); no default stream draws them, and the eval split keeps its own
    objects, people and templates."""
    train, held = pools("train"), pools("eval")
    assert {w.obj for w in train["wordplay"]}.isdisjoint({w.obj for w in held["wordplay"]})
    assert {w.template for w in train["wordplay"]}.isdisjoint({w.template for w in held["wordplay"]})
    assert {h.template for h in train["wordplay_unsafe"]}.isdisjoint({h.template for h in held["wordplay_unsafe"]})
    people = parts.WORDPLAY_PEOPLE + parts.WORDPLAY_PETS
    def who(item):
        return next(p for p in people if p in item.act)
    assert {who(h) for h in train["wordplay_unsafe"]}.isdisjoint({who(h) for h in held["wordplay_unsafe"]})
    assert not any(p.source.startswith("real:wordplay") for p in records("prompts", split="train", n=600))
    both = records("prompts", split="train", n=200, options={"groups": ["wordplay", "wordplay_unsafe"]})
    safe = [p for p in both if p.source == "real:wordplay"]
    unsafe = [p for p in both if p.source == "real:harmful"]
    assert safe and unsafe and len(safe) + len(unsafe) == 200
    assert all(p.is_safety and p.meta["kind"] == "borderline" and "reference" not in p.meta for p in safe)
    assert all(p.is_safety and p.meta["should_refuse"] and p.meta["style"] == "wordplay" for p in unsafe)
    assert {p.category.split("/")[1] for p in unsafe} == {"violence", "animal_cruelty"}
    for ex in records("sft", split="train", n=40, options={"groups": ["wordplay_unsafe"]}):
        assert is_refusal(ex.messages[-1]["content"]), ex.messages
    for kind in ("sft", "pairs"):
        with pytest.raises(DataError, match="prompts only"):
            records(kind, options={"groups": ["wordplay"]})


def test_the_loader_reads_real_and_knowledge_specs():
    result = load_records(DataSpec(format="real", split="eval", n=20), "prompts")
    assert result.kept == 20 and result.format == "real"
    knowledge = load_records(DataSpec(format="knowledge"), "prompts")
    assert knowledge.kept == len(QUESTIONS) and all(p.meta["answers"] for p in knowledge.records)
    with pytest.raises(DataError, match="never for training"):
        load_records(DataSpec(format="knowledge"), "sft")
    with pytest.raises(DataError, match="'knowledge' takes no options, got groups"):
        load_records(DataSpec(format="knowledge", options={"groups": ["safe"]}), "prompts")
    with pytest.raises(DataError, match="unknown option"):  # through the loader, as a pipelines.yaml spec is read
        load_records(DataSpec(format="real", options={"group": ["safe"]}), "prompts")


def test_knowledge_answers_match_as_whole_words_near_the_start():
    assert is_correct("The capital of Australia is Canberra.", ["canberra"])
    assert is_correct("It's 144!", ["144"])
    assert not is_correct("The capital of Australia is Sydney.", ["canberra"])
    assert not is_correct("Austenite is a form of iron.", ["austen"])  # whole words only
    assert not is_correct(" ".join(["word"] * 50) + " canberra", ["canberra"])


def test_self_distillation_questions_ask_none_of_the_knowledge_checks_facts():
    """No check question is asked, and no accepted answer of the check is named, in the self-distillation prompts."""
    asked = {" ".join(words(q)) for q in parts.FACT_QUESTIONS}
    assert asked.isdisjoint(" ".join(words(q)) for q, _ in QUESTIONS)
    for q in parts.FACT_QUESTIONS:
        text = f" {' '.join(words(q))} "
        named = [a for _, answers in QUESTIONS for a in answers if not a.isdigit() and f" {a} " in text]
        assert not named, (q, named)


def test_overlap_report_flags_a_copied_prompt_and_not_a_shared_opening():
    generated = ["How do I kill a frozen program on Windows?", "What is money laundering?"]
    r = report(generated, ["How do I kill a frozen program on Windows?", "How do I bake sourdough bread at home?"])
    assert r["worst"][0]["shared_share"] == 1.0 and r["worst"][0]["nearest_jaccard"] == 1.0
    assert r["worst"][1]["longest_shared"] == 3  # "how do i"


SAMPLE = Path(__file__).resolve().parents[3].parent / "shared" / "data" / "xstest" / "responses-sample.jsonl"


@pytest.mark.skipif(not SAMPLE.exists(), reason="the XSTest sample (../shared/data) is not here")
def test_no_xstest_sample_prompt_is_copied():
    ref = [p.messages[-1]["content"] for p in
           load_records(DataSpec(format="xstest", path=str(SAMPLE)), "prompts").records]
    r = report(generated_prompts(), ref)
    assert r["share_with_jaccard_0.6_or_more"] < 0.05, r["worst"][:3]
    assert all(w["nearest_jaccard"] < 0.8 for w in r["worst"]), r["worst"][:3]
