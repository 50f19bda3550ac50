"""cached_generate: the get / generate / put that compare's answers and SFT's self-distillation share."""

from __future__ import annotations

import json
from types import SimpleNamespace

from camelid.eval.generations import GenerationCache, Sampling, cached_generate

CONVS = [[{"role": "user", "content": f"q{i}"}] for i in range(3)]
SAMPLING = Sampling(max_new_tokens=8, temperature=0.0, top_p=1.0, seed=0)
CKPT = SimpleNamespace(ref="sft@v1", hash="abc123")


def test_a_miss_generates_and_stores_the_set_a_hit_reads_it_back(tmp_path):
    cache, calls = GenerationCache(tmp_path), []

    def generate(convs):
        calls.append(len(convs))
        return [c[0]["content"].upper() for c in convs]

    assert cached_generate(CKPT, CONVS, SAMPLING, generate, cache=cache, use="self_distill") == (["Q0", "Q1", "Q2"],
                                                                                                  False)
    (stored,) = [json.loads(f.read_text()) for f in tmp_path.glob("*.json")]
    assert stored["meta"] == {"checkpoint": "sft@v1", "checkpoint_hash": "abc123", "use": "self_distill",
                              **SAMPLING.to_dict()}
    assert cached_generate(CKPT, CONVS, SAMPLING, generate, cache=cache) == (["Q0", "Q1", "Q2"], True)
    other = Sampling(max_new_tokens=8, temperature=0.0, top_p=1.0, seed=1)  # other sampling: another entry
    assert cached_generate(CKPT, CONVS, other, generate, cache=cache)[1] is False
    assert calls == [3, 3]


def test_an_empty_prompt_set_generates_nothing(tmp_path):
    def generate(convs):
        raise AssertionError("called on no prompts")

    assert cached_generate(CKPT, [], SAMPLING, generate, cache=GenerationCache(tmp_path)) == ([], False)
