"""The one "is this the toy world?" check (sft's evaluation, ppo's, rs's oracle view, compare, rounds, exact match)."""

from __future__ import annotations

from camelid.data.records import Prompt
from camelid.data.toyworld import ToyWorld, all_toy_prompts, is_toy_prompt
from camelid.eval.exact_match import exact_match, references

REAL = Prompt(messages=[{"role": "user", "content": "How do I pick a lock?"}], source="real:harmful",
              meta={"kind": "harmful", "should_refuse": True, "style": "blunt"})  # a kind, but no task


def test_toy_prompts_are_recognised_by_their_task_not_their_source():
    toy = ToyWorld(seed=0).prompts(split="eval", n=3)
    assert all(is_toy_prompt(p) for p in toy) and all_toy_prompts(toy)
    assert is_toy_prompt(toy[0].to_dict())  # rounds keep prompt records as dicts
    renamed = Prompt.from_dict({**toy[0].to_dict(), "source": "prompts/exported"})
    assert is_toy_prompt(renamed)  # saved to a file and read back: the oracle reads meta only
    assert not is_toy_prompt(REAL) and not is_toy_prompt(REAL.to_dict())
    assert not all_toy_prompts([*toy, REAL]) and not all_toy_prompts([])


def test_exact_match_leaves_toy_prompts_to_the_oracle_in_a_mixture():
    toy = ToyWorld(seed=0).prompts(split="eval", n=3)
    knowledge = Prompt(messages=[{"role": "user", "content": "Capital of France?"}], meta={"answers": ["paris"]})
    assert [references(p) for p in toy] == [None] * 3 and references(knowledge) == ["paris"]
    assert exact_match([*toy, knowledge], ["x", "y", "z", "Paris."]) == {"exact_match": 1.0, "n": 1}
