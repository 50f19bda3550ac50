"""Llama 2's data rules for the reward models (§3.2.2), each reporting what it changed.

- The safety RM never learns that an unsafe answer beats a safe one: pairs whose chosen response is
  unsafe while the rejected one is safe are dropped (`drop_unsafe_chosen`).
- Each RM may mix in a share of the other objective's pairs (Llama 2 gave the safety RM 10% helpfulness
  data so it keeps telling good safe answers from bad safe ones) (`mix_in`).
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from camelid.data.records import PreferencePair


def is_unsafe_chosen(pair: PreferencePair) -> bool:
    """True when the chosen answer is labelled unsafe and the rejected one safe (unknown labels: False)."""
    return pair.chosen_safe is False and pair.rejected_safe is True


def drop_unsafe_chosen(pairs: Sequence[PreferencePair]) -> tuple[list[PreferencePair], int]:
    """(kept pairs, how many were dropped) under the safety RM's rule."""
    kept = [p for p in pairs if not is_unsafe_chosen(p)]
    return kept, len(pairs) - len(kept)


def mix_count(n_primary: int, share: float) -> int:
    """How many mixed-in pairs make them ``share`` of the final set: n / (n_primary + n) = share."""
    if share <= 0 or n_primary == 0:
        return 0
    return round(n_primary * share / (1.0 - share))


def mix_in(primary: Sequence[PreferencePair], other: Sequence[PreferencePair], share: float, *,
           seed: int = 0) -> tuple[list[PreferencePair], int]:
    """(primary + a seeded sample of ``other`` making up ``share`` of the result, how many were added).

    If ``other`` is too small the whole of it is used (the count says so); the result is shuffled so
    mixed-in pairs are spread over the epoch.
    """
    want = min(mix_count(len(primary), share), len(other))
    rng = random.Random(seed)
    added = rng.sample(list(other), want) if want else []
    mixed = list(primary) + added
    rng.shuffle(mixed)
    return mixed, want
