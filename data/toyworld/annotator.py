"""Simulated annotators built on the oracle (AlpacaFarm's idea): Llama 2-style labels with planted noise.

One annotator's label of a pair (prompt, answer A, answer B) is what a careful person following Llama 2's
guidelines would give, then perturbed:

- **preference**: the answer with the higher oracle quality (a tie is broken at random: annotators must
  pick a side); with probability ``flip`` the annotator picks the other side;
- **strength**: the Llama 2 level the quality gap deserves (``level_for_gap``, the rule the toy world's own
  pairs are rated by); with probability ``jitter`` it moves one level up or down (clamped at the ends);
- **safety**: each answer's oracle safety label, each flipped with probability ``safety_flip``.

Every annotator draws from its own RNG seeded by (seed, annotator, pair key), so a label does not depend on
the order pairs are labelled in, and rerunning gives the same labels. Several annotators vote: the preferred
side by strict majority (a tie drops the pair), the strength as the median of the winning side's votes, each
safety label by majority: the same aggregation ``camelid annotate export`` applies to people's labels
(camelid.eval.annotate.export), so simulated and human labels become the same PreferencePair rows.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass

from camelid.data.records import RATINGS, PreferencePair, Prompt
from camelid.data.toyworld.generator import level_for_gap
from camelid.data.toyworld.oracle import score
from camelid.errors import DataError


@dataclass(frozen=True)
class Noise:
    """How often a simulated annotator departs from the oracle."""

    flip: float = 0.0         # P(prefer the worse answer)
    jitter: float = 0.0       # P(strength one level off)
    safety_flip: float = 0.0  # P(a response's safety label is wrong), per response

    def __post_init__(self) -> None:
        for name in ("flip", "jitter", "safety_flip"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise DataError(f"annotator noise {name} must be in [0, 1], got {value!r}")


@dataclass(frozen=True)
class Vote:
    """One annotator's label, with the annotation database's fields (sides are A and B, not left/right)."""

    annotator: str
    preferred: str   # "a" | "b"
    strength: str    # one of RATINGS
    a_safe: bool
    b_safe: bool


def pair_key(prompt: Prompt, a: str, b: str) -> str:
    """A stable name for a pair: its prompt id (or messages) and both answers."""
    blob = "\x1e".join([str(prompt.id or prompt.messages), a, b])
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:16]


def annotator_rng(seed: int, annotator: int, key: str) -> random.Random:
    return random.Random(f"camelid-annotator/{seed}/{annotator}/{key}")


def jittered(strength: str, step: int) -> str:
    """``strength`` moved ``step`` levels (+1: weaker, -1: stronger), clamped to Llama 2's four levels."""
    return RATINGS[min(len(RATINGS) - 1, max(0, RATINGS.index(strength) + step))]


def vote(prompt: Prompt, a: str, b: str, noise: Noise, rng: random.Random, annotator: str = "sim-1") -> Vote:
    """One simulated annotator's label of (A, B). Draws a fixed number of random numbers, noise or not."""
    sa, sb = score(prompt, a), score(prompt, b)
    tie, flip, jitter, up, safe_a, safe_b = (rng.random() for _ in range(6))
    gap = sa.quality - sb.quality
    preferred = "a" if gap > 0 or (gap == 0 and tie < 0.5) else "b"
    strength = level_for_gap(abs(gap))
    if flip < noise.flip:
        preferred = "b" if preferred == "a" else "a"
    if jitter < noise.jitter:
        strength = jittered(strength, 1 if up < 0.5 else -1)
    return Vote(annotator=annotator, preferred=preferred, strength=strength,
                a_safe=sa.safe != (safe_a < noise.safety_flip), b_safe=sb.safe != (safe_b < noise.safety_flip))


def votes(prompt: Prompt, a: str, b: str, *, annotators: int = 1, noise: Noise = Noise(), seed: int = 0
          ) -> list[Vote]:
    """Labels of ``annotators`` independent simulated annotators, named sim-1, sim-2, ..."""
    if annotators < 1:
        raise DataError(f"need at least one simulated annotator, got {annotators}")
    key = pair_key(prompt, a, b)
    return [vote(prompt, a, b, noise, annotator_rng(seed, i, key), f"sim-{i + 1}") for i in range(annotators)]


def aggregate(prompt: Prompt, a: str, b: str, labels: list[Vote], source: str = "simulated"
              ) -> PreferencePair | None:
    """The pair the votes agree on (None when the preferred side ties): export's majority rule."""
    from camelid.eval.annotate.agreement import majority
    from camelid.eval.annotate.export import median_strength

    side = majority([v.preferred for v in labels])
    if side is None:
        return None
    strength = median_strength([v.strength for v in labels if v.preferred == side])
    a_safe, b_safe = majority([v.a_safe for v in labels]), majority([v.b_safe for v in labels])
    chosen, rejected = (a, b) if side == "a" else (b, a)
    chosen_safe, rejected_safe = (a_safe, b_safe) if side == "a" else (b_safe, a_safe)
    return PreferencePair(prompt=prompt.messages, chosen=chosen, rejected=rejected, rating=strength,
                          chosen_safe=chosen_safe, rejected_safe=rejected_safe, category=prompt.category,
                          source=source, id=prompt.id)


def simulate_pair(prompt: Prompt, a: str, b: str, *, annotators: int = 1, noise: Noise = Noise(), seed: int = 0
                  ) -> PreferencePair | None:
    """A preference pair labelled by ``annotators`` simulated annotators (None if their vote ties)."""
    labels = votes(prompt, a, b, annotators=annotators, noise=noise, seed=seed)
    return aggregate(prompt, a, b, labels, source=f"simulated:{annotators}x")
