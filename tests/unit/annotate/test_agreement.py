"""Kappa statistics against published worked examples, and the leave-one-out majority agreement."""

from __future__ import annotations

import pytest

from camelid.eval.annotate.agreement import agreement_report, cohen_kappa, fleiss_kappa, majority


def test_cohen_kappa_textbook_example():
    # 50 items: both yes 20, A yes/B no 5, A no/B yes 10, both no 15 -> p_o 0.7, p_e 0.5, kappa 0.4.
    a = ["y"] * 25 + ["n"] * 25
    b = ["y"] * 20 + ["n"] * 5 + ["y"] * 10 + ["n"] * 15
    assert cohen_kappa(a, b) == pytest.approx(0.4)


def test_cohen_kappa_edges():
    assert cohen_kappa(["a", "b", "a"], ["a", "b", "a"]) == pytest.approx(1.0)
    assert cohen_kappa(["a", "b"], ["b", "a"]) == pytest.approx(-1.0)
    assert cohen_kappa(["a", "a"], ["a", "a"]) is None  # chance agreement is 1: undefined
    assert cohen_kappa([], []) is None
    with pytest.raises(ValueError):
        cohen_kappa(["a"], [])


def test_fleiss_kappa_fleiss_1971_example():
    # The 10 subjects x 5 categories, 14 raters example (Fleiss 1971, as on Wikipedia): kappa = 0.210.
    table = [[0, 0, 0, 0, 14], [0, 2, 6, 4, 2], [0, 0, 3, 5, 6], [0, 3, 9, 2, 0], [2, 2, 8, 1, 1],
             [7, 7, 0, 0, 0], [3, 2, 6, 3, 0], [2, 5, 3, 2, 2], [6, 5, 2, 1, 0], [0, 2, 2, 3, 7]]
    assert fleiss_kappa(table) == pytest.approx(0.20993, abs=1e-4)


def test_fleiss_kappa_perfect_and_single_rater_rows():
    assert fleiss_kappa([[3, 0], [0, 3], [3, 0]]) == pytest.approx(1.0)
    assert fleiss_kappa([[1, 0], [0, 1]]) is None  # no item has two raters
    # Rows with one rater are ignored, so adding one changes nothing.
    assert fleiss_kappa([[2, 1], [0, 3], [1, 0]]) == pytest.approx(fleiss_kappa([[2, 1], [0, 3]]))


def test_majority():
    assert majority(["a", "b", "a"]) == "a"
    assert majority(["a", "b"]) is None
    assert majority([]) is None


def test_agreement_report_by_hand():
    labels = [
        # pair 1: ann, bob say a; cat says b
        {"pair_id": 1, "annotator": "ann", "preferred": "a"},
        {"pair_id": 1, "annotator": "bob", "preferred": "a"},
        {"pair_id": 1, "annotator": "cat", "preferred": "b"},
        # pair 2: everyone says b
        {"pair_id": 2, "annotator": "ann", "preferred": "b"},
        {"pair_id": 2, "annotator": "bob", "preferred": "b"},
        {"pair_id": 2, "annotator": "cat", "preferred": "b"},
        # pair 3: only ann -> no one else to agree with
        {"pair_id": 3, "annotator": "ann", "preferred": "a"},
    ]
    rep = agreement_report(labels)
    wm = rep["with_majority"]
    # pair 1: ann's others are bob=a, cat=b (a tie, not counted); pair 2: others say b, ann says b.
    assert wm["ann"] == {"n": 1, "agreement": 1.0}
    # cat: pair 1 the others (a, a) outvote cat's b; pair 2 cat agrees.
    assert wm["cat"] == {"n": 2, "agreement": 0.5}
    assert rep["n_pairs_multi"] == 2
    by = {(p["a"], p["b"]): p for p in rep["cohen_kappa"]}
    assert by[("ann", "bob")]["raw_agreement"] == 1.0 and by[("ann", "bob")]["n"] == 2
    assert by[("ann", "cat")]["raw_agreement"] == 0.5
    # Fleiss over pairs 1 and 2: P1 = (4+1-3)/6 = 1/3, P2 = 1, Pbar = 2/3; p_a = 2/6, p_b = 4/6, Pe = 5/9.
    assert rep["fleiss_kappa"] == pytest.approx((2 / 3 - 5 / 9) / (1 - 5 / 9))
