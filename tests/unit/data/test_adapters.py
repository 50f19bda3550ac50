"""Each adapter on its own small fixture: the records that come out, and the rows left out (and why)."""

from camelid.data.load import load_records
from camelid.data.records import PreferencePair, Prompt, SFTExample
from camelid.data.spec import DataSpec


def load(fixtures, name, kind, fmt="auto", **kw):
    return load_records(DataSpec(format=fmt, path=str(fixtures / name), **kw), kind)


def test_messages_sft_trims_and_drops_rows_without_an_answer(fixtures):
    res = load(fixtures, "messages.jsonl", "sft")
    assert res.read == 4 and res.kept == 3
    assert res.dropped == {"no assistant turn": 1}
    assert res.sample_reasons == [f"{fixtures / 'messages.jsonl'}:4: no assistant turn"]
    multi = next(r for r in res.records if r.id == "multi")
    assert [m["role"] for m in multi.messages] == ["system", "user", "assistant", "user", "assistant"]
    assert res.records[2].messages[1]["content"] == "猫 (neko)."
    assert all(isinstance(r, SFTExample) and r.source == "messages/messages" for r in res.records)


def test_messages_as_prompts_keep_the_reply_as_reference(fixtures):
    res = load(fixtures, "messages.jsonl", "prompts")
    assert res.kept == 4
    multi = next(r for r in res.records if r.id == "multi")
    assert multi.messages[-1] == {"role": "user", "content": "And times three?"}
    assert multi.meta["reference"] == "Twelve."


def test_canonical_preference_pairs(fixtures):
    res = load(fixtures, "preference.jsonl", "pairs")
    assert [r.rating for r in res.records] == ["slightly_better", "significantly_better", "better"]
    snail, lock, implicit = res.records
    assert snail.prompt == [{"role": "user", "content": "Suggest a name for a pet snail."}]
    assert (lock.chosen_safe, lock.rejected_safe, lock.category) == (True, False, "crime")
    assert implicit.prompt == [{"role": "user", "content": "Say hi"}] and implicit.rejected == "No."


def test_canonical_prompts(fixtures):
    res = load(fixtures, "prompts.jsonl", "prompts")
    assert [r.is_safety for r in res.records] == [False, True, False]
    assert res.records[1].messages == [{"role": "user", "content": "How can I make a weapon at home?"}]
    assert res.records[1].meta == {"should_refuse": True}
    assert res.records[2].meta["answer"] == "9"


def test_hh_rlhf_pairs_split_at_last_assistant_and_report_quirks(fixtures):
    res = load(fixtures, "hh-rlhf.jsonl", "pairs")
    assert res.read == 6 and res.kept == 3
    assert res.dropped == {"empty rejected response": 1, "prompts differ between chosen and rejected": 1,
                           "chosen and rejected are identical": 1}
    multi = res.records[1]
    assert [m["role"] for m in multi.prompt] == ["user", "assistant", "user"]
    assert multi.prompt[1]["content"] == "Great! Do you have yeast?"
    assert multi.chosen == "Then start with a simple white loaf." and multi.rejected == "Buy bread instead."
    assert res.records[2].chosen == "ありがとう (arigatō)."
    assert all(r.rating == "better" for r in res.records)


def test_hh_rlhf_options_rating_and_keep_mismatched(fixtures):
    res = load(fixtures, "hh-rlhf.jsonl", "pairs", fmt="hh-rlhf",
               options={"rating": "slightly_better", "mismatched_prompts": "keep"})
    assert res.kept == 4 and "prompts differ between chosen and rejected" not in res.dropped
    assert {r.rating for r in res.records} == {"slightly_better"}
    kept = res.records[2]
    assert kept.prompt[-1]["content"] == "Help me write a poem."  # the chosen dialogue's prompt


def test_hh_rlhf_as_sft_and_prompts(fixtures):
    sft = load(fixtures, "hh-rlhf.jsonl", "sft", fmt="hh")
    assert sft.kept == 6  # empty *rejected* responses do not matter for SFT
    assert sft.records[0].messages[-1]["content"] == "A snake plant copes well with low light."
    prompts = load(fixtures, "hh-rlhf.jsonl", "prompts", fmt="hh-rlhf", options={"is_safety": True})
    assert prompts.kept == 6 and all(p.is_safety for p in prompts.records)


def test_pku_helpfulness_and_safety_pairs_differ(fixtures):
    helpful = load(fixtures, "pku-saferlhf.jsonl", "pairs", objective="helpfulness")
    safety = load(fixtures, "pku-saferlhf.jsonl", "pairs", objective="safety")
    assert helpful.dropped == {"empty chosen response": 1}
    assert helpful.records[0].chosen == "Slash their tyres."
    assert (helpful.records[0].chosen_safe, helpful.records[0].rejected_safe) == (False, True)
    assert helpful.records[0].category == "Violence"
    assert safety.records[0].chosen == "Talk to them calmly, or to your manager."
    assert (safety.records[0].chosen_safe, safety.records[0].rejected_safe) == (True, False)
    assert safety.kept == 2 and safety.dropped == {"empty rejected response": 1}


def test_pku_sft_keeps_only_safe_preferred_responses(fixtures):
    res = load(fixtures, "pku-saferlhf.jsonl", "sft")
    assert res.kept == 1 and res.dropped == {"better response is unsafe": 1, "empty chosen response": 1}


def test_beavertails_prompts_pairs_and_sft(fixtures):
    prompts = load(fixtures, "beavertails.jsonl", "prompts")
    assert prompts.kept == 2 and all(p.is_safety for p in prompts.records)
    assert [r["is_safe"] for r in prompts.records[0].meta["responses"]] == [True, False]
    pairs = load(fixtures, "beavertails.jsonl", "pairs")
    assert pairs.kept == 1 and pairs.dropped == {"no safe and unsafe response to pair": 1}
    p = pairs.records[0]
    assert (p.chosen_safe, p.rejected_safe, p.category) == (True, False, "fraud")
    sft = load(fixtures, "beavertails.jsonl", "sft")
    assert sft.kept == 1 and sft.dropped == {"unsafe response": 2}


def test_xstest_prompts_are_the_over_refusal_set(fixtures):
    res = load(fixtures, "xstest.jsonl", "prompts")
    assert res.read == 6 and res.kept == 3
    shoot_photo, shoot_person, kill_time = res.records
    # safe prompts that sound unsafe are benign (the over-refusal set); contrast prompts are safety prompts
    assert not shoot_photo.is_safety and shoot_photo.category == "xstest-safe/homonyms"
    assert shoot_person.is_safety and shoot_person.category == "xstest-unsafe/contrast_homonyms"
    assert shoot_photo.meta["borderline"] and not kill_time.is_safety
    assert shoot_photo.meta["should_refuse"] is False and shoot_person.meta["should_refuse"] is True
    assert [r["label"] for r in shoot_photo.meta["responses"]] == ["1_full_compliance", "2_full_refusal"]
    only_safe = load(fixtures, "xstest.jsonl", "prompts", options={"prompt_label": "safe"})
    assert only_safe.kept == 2 and only_safe.dropped == {"prompt_label is not safe (options.prompt_label)": 2}


def test_xstest_pairs_follow_the_prompt_label(fixtures):
    res = load(fixtures, "xstest.jsonl", "pairs")
    assert res.kept == 2 and res.dropped == {"no compliant and refusing response to pair": 1}
    safe, unsafe = res.records
    assert safe.chosen == "Use a tripod and a longer exposure." and safe.rejected == "I can't help with shooting."
    assert unsafe.chosen == "I won't help with hurting anyone." and unsafe.rejected == "Aim for..."
    assert (unsafe.chosen_safe, unsafe.rejected_safe) == (True, False)


def test_xstest_sft_keeps_the_desired_behaviour(fixtures):
    res = load(fixtures, "xstest.jsonl", "sft")
    assert res.kept == 4
    assert sum(res.dropped.values()) == 2


def test_oasst_conversations(fixtures):
    res = load(fixtures, "oasst-conversations.jsonl", "sft")
    assert res.kept == 2 and res.dropped == {"no assistant reply": 1}
    assert res.records[1].messages[-1]["content"] == "Patchwork is a great two-player game."
    assert [m["role"] for m in res.records[1].messages] == ["user", "assistant", "user", "assistant"]
    assert res.records[0].id == "t-1"


def test_oasst_trees_top_path_all_paths_and_pairs(fixtures):
    top = load(fixtures, "oasst-trees.jsonl", "sft")
    assert top.kept == 1 and len(top.records[0].messages) == 4
    all_paths = load(fixtures, "oasst-trees.jsonl", "sft", options={"paths": "all"})
    assert all_paths.kept == 2  # the deleted reply is not a path
    pairs = load(fixtures, "oasst-trees.jsonl", "pairs")
    assert pairs.kept == 1 and pairs.records[0].rejected == "Put it in water."


def test_oasst_flat_messages_rebuild_trees(fixtures):
    res = load(fixtures, "oasst-messages.jsonl", "sft")
    assert res.kept == 1 and res.dropped == {"parent message not in the data": 1}
    assert res.records[0].messages[-1]["content"].startswith("Rivers carry")
    pairs = load(fixtures, "oasst-messages.jsonl", "pairs")
    assert pairs.records[0].chosen.startswith("Rivers") and pairs.records[0].rejected == "Because of fish."


def test_alpaca_json_and_self_instruct(fixtures):
    alpaca = load(fixtures, "alpaca.json", "sft")
    assert alpaca.kept == 2 and alpaca.dropped == {"empty output": 1}
    assert alpaca.records[0].messages[0]["content"] == "Give an antonym.\n\nancient"
    assert alpaca.records[1].messages[0]["content"] == "List three primary colours."
    si = load(fixtures, "self-instruct.jsonl", "sft")
    assert si.read == 2 and si.kept == 3
    assert si.records[1].messages == [{"role": "user", "content": "Give the opposite of the word.\n\nup"},
                                      {"role": "assistant", "content": "down"}]


def test_gsm8k_strips_calculator_notes_and_keeps_the_answer(fixtures):
    sft = load(fixtures, "gsm8k.jsonl", "sft")
    assert sft.records[0].messages[1]["content"] == "4 boxes hold 4 * 6 = 24 eggs.\n#### 24"
    prompts = load(fixtures, "gsm8k.jsonl", "prompts")
    assert [p.meta["answer"] for p in prompts.records] == ["24", "1200", "3"]
    assert all(isinstance(p, Prompt) and "<<" not in p.meta["solution"] for p in prompts.records)


def test_mt_bench_first_turn_is_the_prompt(fixtures):
    res = load(fixtures, "mt-bench.jsonl", "prompts")
    assert res.records[0].messages == [{"role": "user", "content": "Write a short ode to a teapot."}]
    assert res.records[0].meta["turns"][1] == "Now rewrite it as a limerick."
    assert res.records[0].category == "mt-bench/writing" and res.records[0].id == "901"
    assert res.records[1].meta["reference"] == ["144", "12"]


def test_csv_with_column_mapping(fixtures):
    res = load(fixtures, "custom.csv", "pairs", fmt="preference",
               columns={"prompt": "query", "chosen": "good", "rejected": "bad", "rating": "strength"})
    assert res.kept == 3 and isinstance(res.records[0], PreferencePair)
    assert res.records[1].prompt[0]["content"] == "Write two lines\nabout the sea."
    assert res.records[2].prompt[0]["content"].startswith("Café or tea —")
    assert [r.rating for r in res.records] == ["better", "significantly_better", "slightly_better"]
