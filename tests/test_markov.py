"""Exact tests of the transition matrix, anomaly probability and the verification rule (issue 6)."""

import numpy as np
import pytest

from serving.core import markov as mk


def test_transition_matrix_on_hand_made_sequence():
    seq = np.array([0, 0, 1, 0, 0, 2, 2, 0, -1, 1, 1])  # -1 = missing: pairs (0,-1), (-1,1) are skipped
    counts = mk.transition_counts(seq, 3)
    expected = np.array([[2, 1, 1], [1, 1, 0], [1, 0, 1]])
    np.testing.assert_array_equal(counts, expected)
    p = mk.transition_matrix(counts)
    np.testing.assert_allclose(p[0], [0.5, 0.25, 0.25])
    np.testing.assert_allclose(p[1], [0.5, 0.5, 0.0])
    table = mk.transition_table(counts)
    assert list(table) == ["from_state", "to_state", "count", "probability"]
    row = (table["from_state"] == 2) & (table["to_state"] == 0)
    assert table["count"][row][0] == 1 and table["probability"][row][0] == pytest.approx(0.5)
    assert table["count"].sum() == 8


def test_anomaly_probability_relative_to_most_probable_transition():
    p = mk.transition_matrix(np.array([[2, 1, 1], [1, 1, 0], [0, 0, 0]]))
    assert mk.anomaly_probability(p, 0, 0) == pytest.approx(0.0)  # the most probable transition
    assert mk.anomaly_probability(p, 0, 1) == pytest.approx(0.5)  # 1 - 0.25 / 0.5
    assert mk.anomaly_probability(p, 1, 2) == pytest.approx(1.0)  # never seen
    assert mk.anomaly_probability(p, 2, 0) == pytest.approx(1.0)  # state never left in history


@pytest.mark.parametrize(
    "candidate, p_ij, a, change, expected",
    [
        (False, 0.0, 1.0, 10.0, False),  # not a candidate: never flagged
        (True, 0.25, 0.49, 10.0, False),  # below 50 %: dropped, whatever the change
        (True, 0.25, 0.50, 0.1, True),  # at 50 %: kept
        (True, 0.10, 0.80, 0.1, True),
        (True, 0.0, 1.0, 2.5, True),  # unseen transition, change above 2
        (True, 0.0, 1.0, -2.5, True),  # absolute change
        (True, 0.0, 1.0, 1.5, False),  # unseen transition, change below 2
        (True, 0.0, 1.0, 2.0, False),  # must exceed, not equal
    ],
)
def test_verification_rule_table(candidate, p_ij, a, change, expected):
    assert mk.verify(candidate, p_ij, a, change, change_threshold=2.0) is expected


def test_states_assign_and_k_choice():
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(0, 0.1, 300), rng.normal(5, 0.1, 300), rng.normal(10, 0.1, 300)])
    st = mk.fit_states(x, k_range=(2, 3, 4, 5))
    assert st.k == 3  # three well-separated levels: silhouette picks 3
    np.testing.assert_allclose(st.centroids, [0, 5, 10], atol=0.05)
    np.testing.assert_array_equal(mk.assign(st.centroids, [-1, 2.4, 2.6, 11, np.nan]), [0, 0, 1, 2, -1])
    mid = tuple((st.centroids[:-1] + st.centroids[1:]) / 2)
    assert [mk.assign_one(mid, v) for v in (-1, 2.6, 11)] == [0, 1, 2]
