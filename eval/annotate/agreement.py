"""Inter-annotator agreement on the preferred side: Cohen's kappa (two annotators), Fleiss' kappa (all)."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Hashable, Sequence
from itertools import combinations


def cohen_kappa(x: Sequence[Hashable], y: Sequence[Hashable]) -> float | None:
    """Cohen's kappa of two label sequences over the same items; None when undefined (chance = 1)."""
    if len(x) != len(y):
        raise ValueError("cohen_kappa needs two sequences of the same length")
    n = len(x)
    if n == 0:
        return None
    p_o = sum(a == b for a, b in zip(x, y)) / n
    cx, cy = Counter(x), Counter(y)
    p_e = sum(cx[c] * cy[c] for c in cx.keys() | cy.keys()) / (n * n)
    return None if p_e >= 1.0 else (p_o - p_e) / (1.0 - p_e)


def fleiss_kappa(table: Sequence[Sequence[int]]) -> float | None:
    """Fleiss' kappa from an items x categories table of rater counts.

    Items may have different numbers of raters (>= 2; others are ignored): P_i uses each item's own
    n_i and the category shares are pooled over all ratings, the usual generalisation.
    """
    rows = [list(r) for r in table if sum(r) >= 2]
    if not rows:
        return None
    total = sum(sum(r) for r in rows)
    p_bar = sum((sum(c * c for c in r) - sum(r)) / (sum(r) * (sum(r) - 1)) for r in rows) / len(rows)
    n_cat = len(rows[0])
    p_e = sum((sum(r[j] for r in rows) / total) ** 2 for j in range(n_cat))
    return None if p_e >= 1.0 else (p_bar - p_e) / (1.0 - p_e)


def majority(votes: Sequence[Hashable]) -> Hashable | None:
    """The strict plurality winner, or None on a tie / no votes."""
    top = Counter(votes).most_common(2)
    if not top or (len(top) == 2 and top[0][1] == top[1][1]):
        return None
    return top[0][0]


def agreement_report(labels: list[dict]) -> dict:
    """Agreement on ``preferred`` from labels ``{pair_id, annotator, preferred}``.

    - ``fleiss_kappa``: over every pair labelled by two or more annotators.
    - ``cohen_kappa``: for each two annotators who share at least one pair.
    - ``with_majority``: per annotator, the share of their labels that match the majority of the OTHER
      annotators of the same pair (leave-one-out, so an annotator does not vote for themselves; pairs
      where the others tie or nobody else labelled are not counted).
    """
    by_pair: dict[int, dict[str, str]] = defaultdict(dict)
    for lab in labels:
        by_pair[lab["pair_id"]][lab["annotator"]] = lab["preferred"]
    cats = ("a", "b")
    table = [[sum(v == c for v in votes.values()) for c in cats] for votes in by_pair.values()]
    annotators = sorted({lab["annotator"] for lab in labels})

    pairwise = []
    for u, v in combinations(annotators, 2):
        shared = [p for p, votes in by_pair.items() if u in votes and v in votes]
        if shared:
            x = [by_pair[p][u] for p in shared]
            y = [by_pair[p][v] for p in shared]
            pairwise.append({"a": u, "b": v, "n": len(shared), "kappa": cohen_kappa(x, y),
                             "raw_agreement": sum(i == j for i, j in zip(x, y)) / len(shared)})

    with_majority = {}
    for u in annotators:
        hits = n = 0
        for votes in by_pair.values():
            if u not in votes:
                continue
            m = majority([v for name, v in votes.items() if name != u])
            if m is not None:
                n += 1
                hits += votes[u] == m
        with_majority[u] = {"n": n, "agreement": hits / n if n else None}

    return {
        "fleiss_kappa": fleiss_kappa(table),
        "n_pairs_multi": sum(1 for r in table if sum(r) >= 2),
        "cohen_kappa": pairwise,
        "with_majority": with_majority,
    }
