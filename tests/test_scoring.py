import numpy as np
import pytest

from serving.core import scoring
from serving.core.metrics import evaluate_windows, point_adjust, prf, top3_hit_rate, window_labels
from training.data.smd import Segment

# errors of 2 channels; channel 1 is constant (zero variance) -> singular Sigma = [[1, 0], [0, 0]], mu = [2, 0]
E = np.array([[1.0, 0.0], [3.0, 0.0]])


def test_mahalanobis_pinv_singular_hand_computed():
    mu, prec, a = scoring.fit_gaussian(E, method="pinv")
    assert mu.tolist() == [2.0, 0.0] and a == 0.0
    np.testing.assert_allclose(prec, [[1.0, 0.0], [0.0, 0.0]], atol=1e-12)
    # (4-2)^2 * 1 ; the constant channel's move is invisible to the pseudo-inverse
    assert scoring.mahalanobis(np.array([4.0, 5.0]), mu, prec) == pytest.approx(4.0)


def test_mahalanobis_shrinkage_singular_hand_computed():
    mu, prec, a = scoring.fit_gaussian(E, method="shrinkage", shrinkage=0.5)
    # Sigma_s = 0.5*[[1,0],[0,0]] + 0.5*(tr/2=0.5)*I = [[0.75,0],[0,0.25]]
    np.testing.assert_allclose(prec, [[4 / 3, 0.0], [0.0, 4.0]])
    assert scoring.mahalanobis(np.array([[4.0, 5.0]]), mu, prec)[0] == pytest.approx(4 * 4 / 3 + 25 * 4)


def test_mahalanobis_full_rank_matches_inverse():
    rng = np.random.default_rng(0)
    e = rng.normal(size=(500, 3)) @ np.array([[1, 0.5, 0], [0, 1, 0.2], [0, 0, 1]])
    mu, prec, _ = scoring.fit_gaussian(e, method="pinv")
    d = e[0] - e.mean(0)
    expected = d @ np.linalg.inv(np.cov(e, rowvar=False, bias=True)) @ d
    assert scoring.mahalanobis(e[0], mu, prec) == pytest.approx(expected)
    _, prec_lw, a = scoring.fit_gaussian(e)  # Ledoit-Wolf: finite, 0 <= a <= 1
    assert 0 <= a <= 1 and np.isfinite(prec_lw).all()


def test_decision_rule_strictly_more_than_delta():
    scores = np.array([[0.0, 2.0, 3.0, 1.0], [5.0, 5.0, 5.0, 0.0], [0.0, 0.0, 0.0, 0.0]])
    counts = scoring.count_over_tau(scores, tau=1.0)
    assert counts.tolist() == [2, 3, 0]
    assert scoring.decide(counts, delta=2).tolist() == [False, True, False]
    assert scoring.decide(counts, delta=1).tolist() == [True, True, False]


def test_channel_shares_and_top_k():
    err = np.zeros((1, 2, 3))
    err[0, 1] = [3.0, 1.0, 2.0]  # mu = 0, sd = 1: squared deviations 9, 1, 4
    mask = np.array([[False, True]])
    shares = scoring.channel_shares(err, np.zeros(3), np.ones(3), mask)
    np.testing.assert_allclose(shares, [[9 / 14, 1 / 14, 4 / 14]])
    top = scoring.top_k(shares, 2)[0]
    assert [c for c, _ in top] == [0, 2] and top[0][1] == pytest.approx(9 / 14)


def test_robust_scaler_constant_channel_finite_and_clipped():
    x = np.column_stack([np.linspace(0, 1, 101), np.full(101, 0.3)])
    sc = scoring.RobustScaler.fit(x, clip=5)
    z = sc.transform(np.array([[0.5, 0.3], [100.0, 0.9]]))
    assert np.isfinite(z).all() and z[0].tolist() == [0.0, 0.0]
    assert z[1, 0] == 5.0 and z[1, 1] == 5.0


def test_adapt_recent_absorbs_persistent_shift_only():
    normal = np.ones((20, 10))
    shifted = np.full((20, 10), 10.0)
    scores = np.vstack([normal, shifted])
    out, hist = scoring.adapt_recent(scores, ref=1.0, history=None, k=4)
    assert out[20].max() == 10.0  # first shifted window still stands out
    assert out[-1].max() == pytest.approx(1.0)  # a persistent shift is absorbed
    assert len(hist) == 4


def test_window_metrics_and_point_adjust():
    labels = np.zeros(20, int)
    labels[12:14] = 1
    starts = np.array([0, 5, 10, 15])
    assert window_labels(labels, starts, 5).tolist() == [False, False, True, False]
    assert prf([1, 0, 1, 0], [1, 1, 0, 0])["f1"] == pytest.approx(0.5)
    assert point_adjust(np.array([0] * 12 + [1] + [0] * 7, bool), labels)[13]
    scores = np.zeros((4, 5))
    scores[2, :3] = 9.0
    m = evaluate_windows(scores, starts, 5, labels, tau=1.0, delta=2)
    assert (m["precision"], m["recall"], m["f1"]) == (1.0, 1.0, 1.0)
    assert m["point_f1"] == pytest.approx(2 * 0.4 * 1 / 1.4)
    hit = top3_hit_rate([False, False, True, False], starts, 5, [[], [], [(4, 0.9)], []], [Segment(12, 14, [4])])
    assert hit == 1.0


def test_fit_gaussian_channel_mask_ignores_flat_channels():
    x = np.column_stack([np.linspace(0, 1, 101), np.full(101, 0.3), np.r_[np.zeros(99), 1.0, 0.0]])
    assert scoring.varying_channels(x).tolist() == [True, False, False]  # rare spike: 5-95% range is 0
    e = np.array([[1.0, 0.0, 5.0], [3.0, 0.0, 7.0]])
    mu, prec, _ = scoring.fit_gaussian(e, method="pinv", channels=np.array([True, False, False]))
    assert mu.tolist() == [2.0, 0.0, 6.0]
    np.testing.assert_allclose(prec, [[1.0, 0, 0], [0, 0, 0], [0, 0, 0]])
    # a move of a masked channel adds nothing; channel 0 alone: (4-2)^2 / 1
    assert scoring.mahalanobis(np.array([4.0, 9.0, -3.0]), mu, prec) == pytest.approx(4.0)


def test_adapt_guarded_keeps_anomalies_until_the_guard_accepts_a_new_level():
    scores = np.repeat(np.array([1.0] * 4 + [10.0] * 5)[:, None], 3, axis=1)  # 9 windows of 3 points
    out, st = scoring.adapt_guarded(scores, ref=1.0, state=None, k=4, tau=5.0, delta=0, guard=0.5)
    # windows 4-6 stay at 10 (level from unflagged windows = 1); at window 7, 3 of the last 4 were
    # flagged (> 0.5): the level of all recent windows (median of 1, 10, 10, 10 = 10) is used
    assert out[:, 0].tolist() == [1, 1, 1, 1, 10, 10, 10, 1, 1]
    assert st["flags"] == [True, True, False, False] and len(st["all"]) == 4
    plain, _ = scoring.adapt_recent(scores, ref=1.0, history=None, k=4)
    assert plain[6, 0] == pytest.approx(10 / 5.5)  # the plain rule already halves the third anomalous window
    # streaming in two calls carrying the state gives the same result
    a, s1 = scoring.adapt_guarded(scores[:5], 1.0, None, 4, 5.0, 0, 0.5)
    b, _ = scoring.adapt_guarded(scores[5:], 1.0, s1, 4, 5.0, 0, 0.5)
    np.testing.assert_array_equal(np.vstack([a, b]), out)


def test_robust_error_scale_and_channel_features_hand_computed():
    e = np.array([[0.0, 1.0, 2.0], [2.0, 1.0, 2.0], [4.0, 1.0, 2.0]])  # channels 1 and 2 are flat
    center, scale = scoring.robust_error_scale(e, hi=1.0, floor_frac=0.5)
    assert center.tolist() == [2.0, 1.0, 2.0]
    assert scale.tolist() == [2.0, 1.0, 1.0]  # max - median = 2; flat channels floored at 0.5 * 2
    f = scoring.channel_features(np.array([[6.0, 1.0, 5.0]]), center, scale)
    assert f.tolist() == [[2.0, 0.0, 3.0]]  # a flat channel's later move scores, by its floor
    both = scoring.channel_features(np.array([[6.0, 1.0, 5.0]]), center, scale, inputs=np.array([[-4.0, 0.5, 0.0]]))
    assert both.tolist() == [[2.0, 0.0, 3.0, 4.0, 0.5, 0.0]]  # |inputs| appended
    weighted = scoring.channel_features(np.array([[6.0, 1.0, 5.0]]), center, scale,
                                        inputs=np.array([[-4.0, 0.5, 0.0]]), error_weight=0.25)
    assert weighted.tolist() == [[0.5, 0.0, 0.75, 4.0, 0.5, 0.0]]  # only the error features scaled


def test_top_k_mean_and_log1p():
    f = np.array([[1.0, 5.0, 3.0, -2.0]])
    assert scoring.top_k_mean(f, 2).tolist() == [4.0]
    assert scoring.top_k_mean(f, 9).tolist() == [pytest.approx(7 / 4)]  # k capped at the feature count
    assert scoring.top_k_mean(f, 1, "log1p")[0] == pytest.approx(np.log(6.0))
    with pytest.raises(ValueError):
        scoring.top_k_mean(f, 1, "sqrt")


def test_remove_levels_absorbs_a_persistent_shift_per_feature_and_streams():
    feats = np.zeros((12, 4, 2))
    feats[4:, :, 0] = 10.0  # feature 0 shifts for good at window 4; feature 1 has a one-window spike
    feats[6, 1, 1] = 7.0
    out, hist = scoring.remove_levels(feats, None, k=3)
    assert out[4, 0, 0] == 10.0 and out[5, 0, 0] == 10.0  # the new level is not normal yet
    assert out[6, 0, 0] == 0.0 and out[-1, 0, 0] == 0.0  # median of the last 3 window levels is 10: absorbed
    assert out[6, 1, 1] == 7.0  # a short spike is not absorbed (window median stays 0)
    assert len(hist) == 3 and hist[-1].tolist() == [10.0, 0.0]
    below = scoring.remove_levels(-feats, None, k=3)[0]
    np.testing.assert_array_equal(below, -feats)  # levels below normal are left alone
    a, h1 = scoring.remove_levels(feats[:5], None, 3)
    b, _ = scoring.remove_levels(feats[5:], h1, 3)
    np.testing.assert_array_equal(np.vstack([a, b]), out)  # two stream calls == one batch
    warm, _ = scoring.remove_levels(feats[4:], [[10.0, 0.0]] * 3, 3)
    assert warm[0, 0, 0] == 0.0  # warm-started levels apply from the first window


def _remove_levels_one_by_one(feats, history, k):
    """The definition, window after window (sessions 3-6's implementation): the reference for the vectorized one."""
    hist = [np.asarray(h, dtype=np.float64) for h in (history or [])][-k:]
    out = np.empty_like(feats)
    for i, w in enumerate(feats):
        level = np.median(np.stack(hist), axis=0) if hist else np.zeros(feats.shape[-1])
        out[i] = w - np.maximum(level, 0.0)
        hist = (hist + [np.median(w, axis=0)])[-k:]
    return out, [h.tolist() for h in hist]


@pytest.mark.parametrize("k", [1, 4, 32])
def test_remove_levels_equals_the_window_by_window_definition(k):
    rng = np.random.default_rng(k)
    feats = rng.normal(size=(90, 5, 3)) + np.repeat(rng.normal(size=(9, 1, 1, 3)) * 3, 10, axis=0).reshape(90, 1, 3)
    for n_hist in (None, 0, 1, k - 1, k, k + 5):
        history = None if n_hist is None else rng.normal(size=(max(n_hist, 0), 3)).tolist()
        for cut in (0, 1, k // 2, k, 40, 90):  # two stream calls of every split: fewer or more windows than k
            chunks, hist = [], history
            for part in (feats[:cut], feats[cut:]):
                out, hist = scoring.remove_levels(part, hist, k)
                chunks.append(out)
            want, want_hist = _remove_levels_one_by_one(feats, history, k)
            np.testing.assert_array_equal(np.concatenate(chunks), want)  # exact: the same medians
            np.testing.assert_array_equal(hist, np.asarray(want_hist).reshape(-1, 3))
    with pytest.raises(ValueError):
        scoring.remove_levels(feats, None, 0)


def test_feature_shares_fold_error_and_input_features_per_channel():
    feats = np.zeros((1, 2, 4))  # 2 channels: [err0, err1, in0, in1]
    feats[0, 1] = [1.0, 2.0, 1.0, -3.0]  # squares of positive parts: ch0 1 + 1 = 2, ch1 4 + 0 = 4
    shares = scoring.feature_shares(feats, 2, np.array([[False, True]]))
    np.testing.assert_allclose(shares, [[2 / 6, 4 / 6]])


def _stream_threshold_one_by_one(stats, seen, far, memory, fallback):
    """The definition, window after window (sessions 4-6's implementation): the reference."""
    buf, taus = [float(v) for v in (seen or [])][-memory:], []
    for m in stats:
        taus.append(float(np.quantile(buf, 1.0 - far)) if buf else fallback)
        buf = (buf + [float(m)])[-memory:]
    return np.asarray(taus), buf


@pytest.mark.parametrize("memory", [1, 5, 64])
def test_stream_threshold_equals_the_window_by_window_definition(memory):
    rng = np.random.default_rng(memory)
    for n_seen in (None, 0, 3, memory, memory + 7):
        seen = None if n_seen is None else rng.normal(size=n_seen).tolist()
        for n in (0, 1, 4, memory + 3, 300):
            stats = rng.gamma(2.0, size=n)
            taus, buf = scoring.stream_threshold(stats, seen, 0.1, memory, fallback=3.0)
            want, want_buf = _stream_threshold_one_by_one(stats, seen, 0.1, memory, 3.0)
            np.testing.assert_array_equal(taus, want.reshape(-1))
            np.testing.assert_array_equal(buf, want_buf)
    with pytest.raises(ValueError):
        scoring.stream_threshold(np.ones(3), None, 0.1, 0)


def test_sorted_median_and_quantile_equal_numpy_bit_for_bit():
    rng = np.random.default_rng(8)
    for n in (1, 2, 3, 32, 100, 1024, 1027):
        for x in (rng.normal(size=(4, n)) * 1e3, np.round(rng.normal(size=(4, n)), 1)):  # ties too
            x[3, 0] = np.nan if n > 1 else x[3, 0]  # a NaN makes its row NaN, as in numpy
            for q in (0.0, 0.05, 0.5, 0.9, 0.99, 1.0, float(rng.random())):
                np.testing.assert_array_equal(scoring.sorted_quantile(x, q), np.quantile(x, q, axis=-1))
            np.testing.assert_array_equal(scoring.sorted_median(x), np.median(x, axis=-1))
            y = x.T[None]  # along a middle axis, as window_levels takes it
            np.testing.assert_array_equal(scoring.sorted_median(y, axis=1), np.median(y, axis=1))
    with pytest.raises(ValueError):
        scoring.sorted_median(np.zeros((2, 0)))


def test_stream_history_from_old_state_lists_gives_the_same_thresholds_and_levels():
    rng = np.random.default_rng(9)
    seen, stats = rng.gamma(2.0, size=40), rng.gamma(2.0, size=6)
    t_arr, s_arr = scoring.stream_threshold(stats, seen, 0.1, 32)
    t_list, s_list = scoring.stream_threshold(stats, seen.tolist(), 0.1, 32)  # pickled before session 8
    np.testing.assert_array_equal(t_arr, t_list)
    np.testing.assert_array_equal(s_arr, s_list)
    feats, levels = rng.normal(size=(5, 10, 3)), rng.normal(size=(40, 3))
    a, ha = scoring.remove_levels(feats, levels, 32)
    b, hb = scoring.remove_levels(feats, levels.tolist(), 32)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(ha, hb)
    assert ha.shape == (32, 3)


def test_stream_threshold_hand_computed_memory_and_window_stat():
    seed = [1.0, 2.0, 3.0, 4.0]
    taus, seen = scoring.stream_threshold(np.array([10.0, 0.0, 0.0]), seed, far=0.5, memory=4)
    # window 0: median of the seed; each window is judged before it joins; the memory keeps the last 4
    np.testing.assert_allclose(taus, [2.5, 3.5, 3.5])
    assert seen.tolist() == [4.0, 10.0, 0.0, 0.0]
    # carried in two calls: the same thresholds
    t1, s1 = scoring.stream_threshold(np.array([10.0]), seed, 0.5, 4)
    t2, _ = scoring.stream_threshold(np.array([0.0, 0.0]), s1, 0.5, 4)
    np.testing.assert_allclose(np.r_[t1, t2], taus)
    assert scoring.stream_threshold(np.array([1.0]), [], 0.1, 8, fallback=7.0)[0][0] == 7.0
    a = np.array([[0.0, 5.0, 3.0, 1.0], [2.0, 2.0, 9.0, 0.0]])
    np.testing.assert_array_equal(scoring.window_stat(a, 0), [5.0, 9.0])
    np.testing.assert_array_equal(scoring.window_stat(a, 1), [3.0, 2.0])  # count > 1 <=> 2nd largest > tau
    for tau in (0.5, 2.5, 4.0):
        np.testing.assert_array_equal(scoring.decide(scoring.count_over_tau(a, tau), 1), scoring.window_stat(a, 1) > tau)
