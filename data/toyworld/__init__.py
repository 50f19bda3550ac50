"""The toy world: the built-in benchmark every stage trains and is measured on (README.md here).

    from camelid.data.toyworld import ToyWorld, score, OracleScore
    w = ToyWorld(seed=0)
    w.sft_examples(n=27540, split="train"); w.preference_pairs("safety", n=1000)
    w.prompts(split="eval"); score(prompt, response); w.score_by_id("toy-s0-eval-000123", "42")
    is_toy_prompt(prompt)  # the oracle can score it: the one "is this the toy world?" check
"""

from camelid.data.toyworld.detect import is_harmful_compliance, is_refusal
from camelid.data.toyworld.families import FLAWS
from camelid.data.toyworld.generator import ToyWorld, flaw_report, records, score_by_id, split_of, world
from camelid.data.toyworld.oracle import (
    OracleScore,
    all_toy_prompts,
    evaluate,
    is_toy_prompt,
    score,
    summarize,
)

__all__ = ["FLAWS", "OracleScore", "ToyWorld", "all_toy_prompts", "evaluate", "flaw_report", "is_harmful_compliance",
           "is_refusal", "is_toy_prompt", "records", "score", "score_by_id", "split_of", "summarize", "world"]
