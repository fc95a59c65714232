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
        (True, 0.25, 0.49, 1.9, False),  # below 50 % and a small change: dropped
        (True, 0.25, 0.49, 2.5, True),  # below 50 % but the change exceeds 2: kept (the paper's 2 cm clause)
        (True, 0.50, 0.0, -2.5, True),  # the most probable transition (a = 0), absolute change above 2
        (True, 0.50, 0.0, 2.0, False),  # must exceed, not equal
        (True, 0.25, 0.50, 0.1, True),  # at 50 %: kept, whatever the change
        (True, 0.10, 0.80, 0.1, True),
        (True, 0.0, 1.0, 0.1, True),  # a transition never seen in history is the most improbable one
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


def test_level_and_difference_states():
    """2-D states separate a jump from a plateau at the same level; exact nearest-centroid assignment."""
    rng = np.random.default_rng(1)
    x = np.concatenate([rng.normal(0, 0.05, 400), rng.normal(10, 0.05, 400)] * 3)
    st = mk.fit_states(x, k_range=(2, 3, 4, 5, 6), use_diff=True)
    assert st.centroids.shape == (st.k, 2) and st.scale is not None
    flat = mk.assign_2d(st.centroids, st.scale, [0.0, 10.0], [0.0, 0.0])
    up = mk.assign_2d(st.centroids, st.scale, [10.0], [10.0])
    assert flat[0] != flat[1] and up[0] not in flat  # low plateau, high plateau and the up-jump differ
    scaled = tuple((u / st.scale[0], v / st.scale[1]) for u, v in st.centroids)
    for lvl, d in [(0.0, 0.0), (10.0, 0.0), (10.0, 10.0), (0.0, -10.0)]:
        assert mk.assign_one_2d(scaled, st.scale, lvl, d) == mk.assign_2d(st.centroids, st.scale, lvl, d)[0]
    assert mk.assign_2d(st.centroids, st.scale, [np.nan], [0.0])[0] == -1
