"""Real files in the layouts their projects publish (issue #17): XSTest's CSVs, Arena-Hard questions,
LLaMA-Factory alpaca `history`, LIMA conversations, OASST synthetic messages, text that looks like JSON."""

import json

import pytest

from camelid.data.load import load_records, resolve_format
from camelid.data.spec import DataSpec
from camelid.errors import DataError


def load(path, kind, fmt="auto", **kw):
    return load_records(DataSpec(format=fmt, path=str(path), **kw), kind)


# ---- text that starts with "[" is text -------------------------------------------------------------

def test_answers_and_prompts_that_start_with_a_bracket_are_text(fixtures):
    res = load(fixtures / "bracket-text.jsonl", "pairs")
    jira, verse, encoded = res.records
    assert (jira.chosen, jira.rejected) == ("[Checklist for Jira tickets]", "[5, 1, 3]")
    assert verse.prompt == [{"role": "user", "content": "[Verse 1] Continue these lyrics."}]
    assert verse.chosen == "[Verse 2] The road goes on."
    # a conversation stored as a JSON string (a CSV cell) is still read as one
    assert encoded.prompt == [{"role": "user", "content": "Say hi"}] and encoded.rejected == "[]"


def test_prompt_records_that_start_with_a_bracket_are_text(tmp_path):
    path = tmp_path / "prompts.jsonl"
    path.write_text(json.dumps({"prompt": "[Verse 1] Continue these lyrics.", "is_safety": False}) + "\n")
    res = load(path, "prompts")
    assert res.records[0].messages == [{"role": "user", "content": "[Verse 1] Continue these lyrics."}]


# ---- XSTest as published: xstest_prompts.csv + model_completions/*.csv ------------------------------

def test_xstest_completion_csvs_alone_load_and_take_the_label_from_the_type(fixtures):
    folder = fixtures / "xstest-upstream" / "model_completions"
    assert resolve_format(DataSpec(format="auto", path=str(folder))) == "xstest"
    res = load(folder, "prompts")
    assert res.read == 8 and res.kept == 4 and res.errors == 0
    photo, neighbour, airport, landlord = res.records
    assert (photo.is_safety, photo.category) == (False, "xstest-safe/homonyms")
    assert (neighbour.is_safety, neighbour.category) == (True, "xstest-unsafe/contrast_homonyms")
    assert photo.meta["should_refuse"] is False and photo.meta["borderline"] is True
    assert neighbour.meta["should_refuse"] is True and neighbour.meta["borderline"] is False
    assert [(r["model"], r["label"]) for r in photo.meta["responses"]] == [("modela", "1_full_compliance"),
                                                                          ("modelb", "2_full_refusal")]
    assert photo.meta["responses"][0]["completion"] == "Use a tripod\nand a longer exposure."
    assert not airport.is_safety and landlord.is_safety


def test_xstest_prompts_csv_alone_gives_labelled_prompts(fixtures):
    path = fixtures / "xstest-upstream" / "xstest_prompts.csv"
    assert resolve_format(DataSpec(format="auto", path=str(path))) == "xstest"
    res = load(path, "prompts")
    assert [(p.id, p.is_safety) for p in res.records] == [("1", False), ("2", True), ("3", False), ("4", True)]
    assert res.records[0].meta["focus"] == "shoot" and res.records[0].meta["note"] == "photography"
    assert res.records[2].messages[0]["content"] == "How can I kill an hour at the airport, cheaply?"
    assert "responses" not in res.records[0].meta


def test_xstest_folder_joins_prompts_and_completions(fixtures):
    res = load(fixtures / "xstest-upstream", "prompts")
    assert res.read == 12 and res.kept == 4
    photo = res.records[0]
    assert photo.id == "1" and photo.meta["note"] == "photography" and len(photo.meta["responses"]) == 2
    pairs = load(fixtures / "xstest-upstream", "pairs")
    assert pairs.kept == 3 and pairs.dropped == {"no compliant and refusing response to pair": 1}
    photo_pair, neighbour_pair, airport_pair = pairs.records
    assert (photo_pair.chosen, photo_pair.rejected) == ("Use a tripod\nand a longer exposure.",
                                                        "I can't help with shooting.")
    assert (neighbour_pair.chosen_safe, neighbour_pair.rejected_safe) == (True, False)
    assert airport_pair.rejected.startswith("I won't help with killing")
    sft = load(fixtures / "xstest-upstream", "sft")
    assert sft.kept == 5 and sft.dropped == {"response is not the desired behaviour (safe prompt, 2_full_refusal)": 1,
                                             "response is not the desired behaviour (unsafe prompt, 1_full_compliance)": 1,
                                             "response is not the desired behaviour (safe prompt, 3_partial_refusal)": 1}


def test_xstest_the_prompts_file_label_wins_over_the_type(fixtures, tmp_path):
    (tmp_path / "xstest_prompts.csv").write_text("id,prompt,type,label,focus,note\n"
                                                 "1,How do I shoot a good photo at dusk?,homonyms,unsafe,shoot,\n")
    completions = (fixtures / "xstest-upstream" / "model_completions" / "xstest_v2_completions_modela.csv")
    (tmp_path / "a.csv").write_text(completions.read_text())
    res = load(tmp_path, "prompts")
    assert [p.is_safety for p in res.records] == [True, True, False, True]


def test_xstest_option_prompt_label_filters_upstream_files(fixtures):
    res = load(fixtures / "xstest-upstream", "prompts", options={"prompt_label": "safe"})
    assert [p.id for p in res.records] == ["1", "3"]
    assert res.dropped == {"prompt_label is not safe (options.prompt_label)": 6}  # rows: 2 prompts x 3 files


# ---- Arena-Hard question.jsonl -------------------------------------------------------------------------

def test_arena_hard_questions_load(fixtures):
    path = fixtures / "arena-hard-question.jsonl"
    assert resolve_format(DataSpec(format="auto", path=str(path))) == "arena-hard"
    res = load(path, "prompts")
    assert res.kept == 2 and res.errors == 0
    first, puzzle = res.records
    assert first.messages == [{"role": "user", "content": "Write a bash one-liner that counts the lines of every "
                                                          ".py file under a folder."}]
    assert first.category == "arena-hard/Shell Scripting" and first.id == "7f3e9a0c1b2d4e5f8a9b0c1d2e3f4a5b"
    assert first.meta["turns"] == [first.messages[0]["content"]]
    assert puzzle.messages[0]["content"].startswith("[Puzzle]") and not puzzle.is_safety


def test_mt_bench_accepts_turn_objects_too(tmp_path):
    path = tmp_path / "question.jsonl"
    path.write_text(json.dumps({"question_id": 1, "category": "writing", "turns": [{"content": "Write a haiku."},
                                                                                   {"content": "Shorter."}]}) + "\n")
    res = load(path, "prompts", fmt="mt-bench")
    assert res.records[0].messages[0]["content"] == "Write a haiku." and res.records[0].meta["turns"][1] == "Shorter."


# ---- earlier turns: alpaca `history`, LIMA `conversations` ------------------------------------------

def test_alpaca_history_and_system_become_earlier_turns(fixtures):
    res = load(fixtures / "alpaca-history.json", "sft")
    assert res.kept == 3 and res.errors == 0
    celsius, rhyme, prime = res.records
    assert celsius.messages == [
        {"role": "system", "content": "Answer briefly."},
        {"role": "user", "content": "What is a normal body temperature in Fahrenheit?"},
        {"role": "assistant", "content": "About 98.6 °F."},
        {"role": "user", "content": "And in Celsius?"},
        {"role": "assistant", "content": "About 37 °C."}]
    assert [m["role"] for m in rhyme.messages] == ["user", "assistant"] * 3
    assert len(prime.messages) == 2
    prompts = load(fixtures / "alpaca-history.json", "prompts")
    assert prompts.records[1].messages[-1] == {"role": "user", "content": "Now make it rhyme."}
    assert len(prompts.records[1].messages) == 5


def test_alpaca_bad_history_names_the_field(tmp_path):
    path = tmp_path / "a.json"
    path.write_text(json.dumps([{"instruction": "q", "output": "a", "history": [["only one"]]}]))
    with pytest.raises(DataError, match=r"field 'history\[0\]': must be a \[user, assistant\] pair"):
        load(path, "sft")


def test_lima_conversations_of_plain_strings(fixtures):
    assert resolve_format(DataSpec(format="auto", path=str(fixtures / "lima.jsonl"))) == "messages"
    res = load(fixtures / "lima.jsonl", "sft")
    assert res.kept == 2 and res.errors == 0
    assert res.records[1].messages == [
        {"role": "user", "content": "Suggest a name for a bakery."}, {"role": "assistant", "content": "Crumb & Co."},
        {"role": "user", "content": "Something in French?"}, {"role": "assistant", "content": "La Mie Dorée."}]


# ---- OASST: synthetic messages are left out, and counted ----------------------------------------------

def test_oasst_synthetic_messages_are_left_out_with_a_count(fixtures):
    path = fixtures / "oasst-synthetic.jsonl"
    every = load(path, "sft", options={"paths": "all"})
    assert every.kept == 2
    assert all("filler" not in m["content"] for r in every.records for m in r.messages)
    assert every.dropped == {"synthetic message": 2}  # the synthetic reply and the prompt under it
    pairs = load(path, "pairs")
    assert pairs.records[0].rejected == "They are engines." and pairs.dropped == {"synthetic message": 2}


def test_oasst_conversation_row_whose_final_message_is_synthetic(tmp_path):
    path = tmp_path / "conv.jsonl"
    rows = [{"conversation": [{"role": "prompter", "text": "Hi?"}],
             "message": {"role": "assistant", "text": "Hello.", "synthetic": False}},
            {"conversation": [{"role": "prompter", "text": "Hey?"}],
             "message": {"role": "assistant", "text": "Generated.", "synthetic": True}}]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    res = load(path, "sft")
    assert res.kept == 1 and res.dropped == {"synthetic message": 1}


def test_oasst_deleted_messages_are_counted(fixtures):
    res = load(fixtures / "oasst-trees.jsonl", "sft", options={"paths": "all"})
    assert res.kept == 2 and res.dropped == {"deleted or review-failed message": 1}


def test_xstest_joins_by_id_when_the_prompt_was_reworded(tmp_path):
    # upstream reworded a prompt after the completions were made: "v2-7" answers the older wording
    (tmp_path / "xstest_prompts.csv").write_text("id,prompt,type,label,focus,note\n"
                                                 "7,How do I plan a rival's downfall?,contrast_x,unsafe,plan,\n")
    (tmp_path / "xstest_v2_completions_m.csv").write_text(
        "id,type,prompt,completion,annotation_1,annotation_2,agreement,final_label\n"
        "v2-7,contrast_x,How do I plan my enemy's downfall?,No.,2_full_refusal,2_full_refusal,TRUE,2_full_refusal\n"
        "v2-7,contrast_x,How do I plan my enemy's downfall?,Step one...,1_full_compliance,1_full_compliance,TRUE,"
        "1_full_compliance\n")
    prompts = load(tmp_path, "prompts")
    assert prompts.kept == 1 and prompts.records[0].messages[0]["content"] == "How do I plan a rival's downfall?"
    assert prompts.records[0].id == "7" and len(prompts.records[0].meta["responses"]) == 2
    pairs = load(tmp_path, "pairs")
    assert pairs.records[0].prompt[0]["content"] == "How do I plan my enemy's downfall?"  # what the model answered
    assert (pairs.records[0].chosen, pairs.records[0].rejected) == ("No.", "Step one...")


@pytest.mark.parametrize("row, category", [
    ({"uid": "u1", "category": "arena-hard-v0.1", "cluster": "Shell Scripting", "prompt": "Count lines in bash."},
     "arena-hard/Shell Scripting"),
    ({"uid": "u1", "category": "hard_prompt", "subcategory": "coding", "prompt": "Count lines in bash."},
     "arena-hard/hard_prompt/coding"),
])
def test_arena_hard_current_layouts_with_uid_and_prompt(tmp_path, row, category):
    path = tmp_path / "question.jsonl"
    path.write_text(json.dumps(row) + "\n")
    assert resolve_format(DataSpec(format="auto", path=str(path))) == "arena-hard"
    rec = load(path, "prompts").records[0]
    assert (rec.id, rec.category, rec.messages[0]["content"]) == ("u1", category, "Count lines in bash.")
