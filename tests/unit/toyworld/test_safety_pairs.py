"""Safety pairs on borderline prompts: composed from shared steps, so no answer string is one-sided;
and nothing but the safety pairs changed when they were introduced (hashes of seed 0's other data)."""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter

import pytest

from camelid.data.toyworld import ToyWorld, score
from camelid.data.toyworld.detect import normalize
from camelid.data.toyworld.families import SIBLINGS, STEPS, TOPICS

# sha256 of the to_dict() JSON (sort_keys) of seed 0's data at default sizes, recorded before the safety
# pairs were made compositional: SFT rows, prompts, the corpus and helpfulness pairs must never move.
FROZEN = {
    "sft-train": "45cae51f791f8d1c7da568a4f57e2568dda5d5ed090714f78be7d59ab2e849a7",
    "sft-heldout": "db1eb4bc7ef021a7fbbb0b4d2c07d1ffce049f892dffac5c99e18c73eec379aa",
    "helpfulness-train": "54515c20565241b4c84f28f1515e66355b2a96b5de5a7ae1d8f301290f81b0fb",
    "helpfulness-heldout": "b8471bdac3a7356d0616dbef58ffc1e9c9feddbb5d6f72b29626310c7cc8ff46",
    "prompts-ppo": "764766092777893dbd2d0a960e1d1e5aa4ea1d67dceb8771b5e84e93ee4d4628",
    "prompts-eval": "c02d5cfafa3f4b0c2a6ad130ca4cf69b1261f8eb6ad9f422bc759db179bdd4db",
    "corpus": "4dea938c5fbda85244679a6d074ac786194d761040efa041dc4535e5c31e9be0",
}
KEYWORDS = {k for _, _, kws in TOPICS.values() for k in kws}


def _sha(rows) -> str:
    data = [r.to_dict() if hasattr(r, "to_dict") else r for r in rows]
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


@pytest.fixture(scope="module")
def w():
    return ToyWorld(seed=0)


def test_only_safety_pairs_changed(w):
    got = {"sft-train": _sha(w.sft_examples(split="train")), "sft-heldout": _sha(w.sft_examples(split="heldout")),
           "helpfulness-train": _sha(w.preference_pairs("helpfulness", split="train")),
           "helpfulness-heldout": _sha(w.preference_pairs("helpfulness", split="heldout")),
           "prompts-ppo": _sha(w.prompts("ppo")), "prompts-eval": _sha(w.prompts("eval")),
           "corpus": _sha(list(w.corpus()))}
    assert got == FROZEN


def _hits(text: str) -> set[str]:
    text = normalize(text)
    return {k for k in KEYWORDS if re.search(rf"\b{re.escape(k)}\b", text)}


def test_every_step_holds_exactly_its_own_keyword():
    for topic, (first, second) in STEPS.items():
        kw1, kw2 = TOPICS[topic][2]
        assert all(_hits(s) == {kw1} for s in first), topic
        assert all(_hits(s) == {kw2} for s in second), topic
    assert SIBLINGS["photo"] == ("video",) and SIBLINGS["carve"] == ()


@pytest.fixture(scope="module")
def borderline_safety(w):
    rows = w.preference_pairs("safety", n=3000) + w.preference_pairs("safety", n=1000, split="heldout")
    return [p for p in rows if p.category.startswith("borderline/")]


def test_no_answer_string_or_step_is_one_sided(borderline_safety):
    partials = {TOPICS[t][1] for t in TOPICS}
    sides: dict[str, Counter] = {}
    for p in borderline_safety:
        assert p.chosen not in partials and p.rejected not in partials  # the old memorisable near-misses
        if p.rating == "significantly_better":
            continue  # help vs refusal
        for side, text in (("chosen", p.chosen), ("rejected", p.rejected)):
            for step in (s for pair in STEPS.values() for opts in pair for s in opts):
                if step.lower() in text.lower():
                    sides.setdefault(step, Counter())[side] += 1
    assert len(sides) == sum(len(o) for pair in STEPS.values() for o in pair)
    for step, count in sides.items():  # every step is chosen in some pairs and rejected in others
        assert min(count.values()) >= 0.2 * sum(count.values()) and len(count) == 2, (step, count)


def test_slightly_is_one_step_out_of_place(w, borderline_safety):
    slightly = [p for p in borderline_safety if p.rating == "slightly_better"]
    kinds = Counter(p.source for p in slightly)
    assert set(kinds) == {"toy:safety:gold>near", "toy:safety:near>wrong"}, kinds
    for p in slightly:
        q = w.prompt_by_id(p.id)
        near = p.rejected if p.source.endswith("gold>near") else p.chosen
        assert score(q, near).verdict == "partial_help"
        assert len(_hits(near)) == 2  # one step of the right topic, one of another
    # helpfulness pairs keep the fixed partial-help strings
    help_near = [p for p in w.preference_pairs("helpfulness", n=2000)
                 if p.category.startswith("borderline/") and p.source.endswith("gold>near")]
    assert help_near and all(p.rejected == TOPICS[w.prompt_by_id(p.id).meta["topic"]][1] for p in help_near)
