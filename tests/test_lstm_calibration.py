"""Label-free calibration (POT tail threshold, extremal index, exceedance-count model) and the bench cache."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest

from training.lstm_ed import calibrate


def test_count_tail_binomial_when_exceedances_are_isolated():
    # theta = 1: count ~ Binomial(3, 0.1): P(>0) = 1 - .9^3, P(>1) = 1 - .729 - 3*.1*.81, P(>2) = .001
    np.testing.assert_allclose(calibrate.count_tail(0.1, 1.0, 3), [0.271, 0.028, 0.001], atol=1e-12)


def test_count_tail_clustered_hand_computed():
    # p=.2, theta=.5 -> clusters K ~ Bin(2, .1): .81/.18/.01; sizes S: P(1)=.5, P(2)=.25
    # P(c=0)=.81, P(c=1)=.18*.5=.09 -> P(>0)=.19, P(>1)=.10
    np.testing.assert_allclose(calibrate.count_tail(0.2, 0.5, 2), [0.19, 0.10], atol=1e-12)
    assert calibrate.delta_for(0.2, 0.5, 2, far=0.15) == 1
    assert calibrate.delta_for(0.2, 0.5, 2, far=0.20) == 0
    assert calibrate.delta_for(0.2, 0.5, 2, far=0.05) == 1  # nothing reaches 5%: the largest possible delta


def test_extremal_index_runs_within_windows():
    e = np.array([[1, 1, 0, 1], [1, 0, 0, 0]], bool)  # runs: (0-1), (3), next row (0) -> 3 runs / 4 points
    assert calibrate.extremal_index(e) == pytest.approx(0.75)
    assert calibrate.extremal_index(np.zeros((2, 4), bool)) == 1.0


def test_pot_threshold_matches_exponential_quantile():
    x = np.random.default_rng(0).exponential(size=(400, 100))
    tau, info = calibrate.pot_threshold(x, risk=1e-4, init_q=0.98)
    assert abs(info["xi"]) < 0.1 and info["sigma"] == pytest.approx(1.0, rel=0.1)
    # true 1e-4 quantile is -log(1e-4) = 9.21; the empirical 0.9999 quantile rests on 4 points
    assert tau == pytest.approx(-np.log(1e-4), rel=0.08)


def test_pot_threshold_heavy_tail_goes_beyond_exponential():
    x = np.random.default_rng(1).pareto(3.0, size=(400, 100))  # GPD with xi = 1/3
    tau, info = calibrate.pot_threshold(x, risk=1e-4)
    assert info["xi"] == pytest.approx(1 / 3, abs=0.12)
    assert tau == pytest.approx((1e-4) ** (-1 / 3) - 1, rel=0.25)  # Lomax quantile: 20.5


def test_unsupervised_pot_clustered_scores_need_a_larger_delta():
    rng = np.random.default_rng(2)
    iid = rng.exponential(size=(300, 100))
    clustered = np.repeat(rng.exponential(size=(300, 20)), 5, axis=1)  # every value 5 points in a row
    tau1, d1, i1 = calibrate.unsupervised_pot(iid, risk=1e-3, far=0.01)
    tau2, d2, i2 = calibrate.unsupervised_pot(clustered, risk=1e-3, far=0.01)
    assert i1["theta"] > 0.9 and i2["theta"] == pytest.approx(0.2, abs=0.03)
    assert d2 > d1 and d2 >= 5  # a single run of 5 (or its part over tau) is not enough to flag a window
    assert i1["val_window_alarm_rate"] <= 0.01 and i2["val_window_alarm_rate"] <= 0.01


def test_label_free_dispatch():
    x = np.random.default_rng(3).exponential(size=(100, 100))
    cfg = SimpleNamespace(calibration="quantile", q=0.99, far=0.01, risk=1e-3, pot_init_q=0.98)
    tau, delta, _ = calibrate.label_free(x, cfg)
    assert (tau, delta) == calibrate.unsupervised(x, 0.99, 0.01)
    cfg.calibration = "pot"
    assert calibrate.label_free(x, cfg)[:2] == calibrate.unsupervised_pot(x, 1e-3, 0.01, 0.98)[:2]
    cfg.calibration = "pot_max"
    assert calibrate.label_free(x, cfg)[:2] == calibrate.unsupervised_pot_max(x, 0.01, 0.98)[:2]
    cfg.calibration = "nope"
    with pytest.raises(ValueError):
        calibrate.label_free(x, cfg)


def test_pot_max_delta_zero_at_the_modelled_window_false_alarm_rate():
    x = np.random.default_rng(4).exponential(size=(400, 100))  # iid: P(count > 0) = 1 - (1 - r)^100
    tau, delta, info = calibrate.unsupervised_pot_max(x, far=0.1)
    assert delta == 0.0 and info["modelled_window_far"] == pytest.approx(0.1, abs=1e-3)
    assert info["risk"] == pytest.approx(1 - 0.9 ** (1 / 100), rel=0.15)  # runs over the 98% level: ~1 point
    assert tau == pytest.approx(-np.log(info["risk"]), rel=0.08)  # exponential tail
    assert info["val_window_alarm_rate"] == pytest.approx(0.1, abs=0.05)
    # a smaller false-alarm target means a higher threshold
    assert calibrate.unsupervised_pot_max(x, far=0.01)[0] > tau


@pytest.fixture(scope="module")
def tiny_cache(tmp_path_factory):
    from bench import smd_cache
    from training.data.synthetic_metrics import make_machine, write_smd_layout
    from training.lstm_ed.pipeline import TrainConfig

    root = tmp_path_factory.mktemp("smdcache")
    m = make_machine(5, n_train=600, n_test=400, n_anomalies=2, period=200, name="machine-7-1")
    write_smd_layout(root / "smd", [m])
    smd_cache.pack(root / "smd", root / "pack")
    cfg = TrainConfig(hidden=8, max_epochs=2, train_step=20, patience=2, threads=1)
    meta = smd_cache.train_one(str(root / "pack"), "machine-7-1", cfg, [16, 64], str(root / "cache"), "cpu")
    return root, m, cfg, meta


def test_pack_round_trip_is_exact(tiny_cache):
    from bench import smd_cache
    from training.data.smd import load_machine

    root, _, _, _ = tiny_cache
    a, b = smd_cache.load_any(root / "pack", "machine-7-1"), load_machine(root / "smd", "machine-7-1")
    assert smd_cache.list_any(root / "pack") == ["machine-7-1"]
    np.testing.assert_array_equal(a.train, b.train)
    np.testing.assert_array_equal(a.test, b.test)
    np.testing.assert_array_equal(a.test_labels, b.test_labels)
    assert [(s.start, s.end, s.channels) for s in a.segments] == [(s.start, s.end, s.channels) for s in b.segments]


def test_cache_train_errors_and_merge(tiny_cache, tmp_path):
    from bench import smd_cache

    root, m, cfg, meta = tiny_cache
    runs = meta["runs"]
    assert set(runs) == {"16", "64"} and meta["device"] == "cpu"
    assert meta["chosen_batch_size"] == int(min(runs, key=lambda b: runs[b]["best_val_loss"]))
    model, scaler, meta2 = smd_cache.load_trained(root / "cache", "machine-7-1", 64)
    assert meta2["key"] == smd_cache.train_key(cfg) and model.config.hidden == 8
    path = smd_cache.errors_one(str(root / "pack"), "machine-7-1", str(root / "cache"), val_step=10)
    z = np.load(path)
    cut = int(round(0.8 * 600))
    assert z["teacher/val"].shape == ((600 - cut - 100) // 10 + 1, 100, 38)
    assert z["free/test"].shape == (4, 100, 38) and (z["free/test"] >= 0).all()
    # merge: two one-batch-size caches -> one file with both weights; the lower validation loss is chosen
    for bs in (16, 64):
        smd_cache.train_one(str(root / "pack"), "machine-7-1", cfg, [bs], str(tmp_path / f"b{bs}"), "cpu")
    smd_cache.merge([str(tmp_path / "b16"), str(tmp_path / "b64")], str(tmp_path / "m"))
    merged = np.load(tmp_path / "m" / "machine-7-1.train.npz")
    mm = json.loads(str(merged["meta"]))
    assert set(mm["runs"]) == {"16", "64"} and any(k.startswith("w16/") for k in merged.files)
    assert mm["chosen_batch_size"] == int(min(mm["runs"], key=lambda b: mm["runs"][b]["best_val_loss"]))


def test_run_lengths_and_empirical_cluster_sizes():
    e = np.array([[1, 1, 0, 1], [1, 1, 1, 0]], bool)
    assert calibrate.run_lengths(e).tolist() == [2, 1, 3]
    # every cluster has exactly 2 points: counts are 0, 2, 4, ... -> P(count > 0) = P(count > 1)
    tail = calibrate.count_tail(0.1, None, 4, sizes=np.array([2, 2, 2]))
    lam = 0.1 * 0.5
    assert tail[0] == pytest.approx(1 - (1 - lam) ** 4) and tail[1] == pytest.approx(tail[0])
    assert tail[2] == pytest.approx(1 - (1 - lam) ** 4 - 4 * lam * (1 - lam) ** 3)


def test_evaluate_modes_judges_unsupervised_by_the_per_window_thresholds():
    from serving.core.metrics import prf, window_labels
    from serving.core.windows import window_starts
    from training.lstm_ed.evaluate import evaluate_modes

    rng = np.random.default_rng(0)
    labels = np.zeros(2000, dtype=int)
    labels[300:350] = labels[1500:1560] = 1
    starts = window_starts(len(labels), 100, 90)
    scores = rng.normal(size=(len(starts), 100))
    scores[window_labels(labels, starts, 100)] += 2.0
    taus = np.linspace(1.5, 4.0, len(starts))
    res = evaluate_modes(scores, starts, 100, labels, (2.0, 0.0), unsup_taus=taus)
    want = prf((scores > taus[:, None]).sum(1) > 0, window_labels(labels, starts, 100))
    assert res["unsupervised"]["f1"] == pytest.approx(want["f1"])
    same = evaluate_modes(scores, starts, 100, labels, (2.0, 0.0), unsup_taus=np.full(len(starts), 2.0))
    plain = evaluate_modes(scores, starts, 100, labels, (2.0, 0.0))
    for mode in ("unsupervised", "labeled", "oracle", "unsupervised_rest"):
        assert same[mode]["f1"] == pytest.approx(plain[mode]["f1"])
    assert res["oracle"]["f1"] == pytest.approx(plain["oracle"]["f1"])  # labeled/oracle: the scores as they are


def test_search_with_fixed_delta_tunes_tau_only():
    # window 0: counts over 1.5 are 3, window 1: 1, window 2: 0; only window 0 is positive
    scores = np.array([[2.0, 2.0, 2.0, 0.0], [3.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]])
    wl = np.array([True, False, False])
    tau, delta, f1 = calibrate.search(scores, wl, delta=0.0)
    assert delta == 0.0 and f1 == pytest.approx(2 / 3)  # delta 0: no tau flags window 0 without window 1 (3.0)
    tau, delta, f1 = calibrate.search(scores, wl)
    assert f1 == 1.0 and delta >= 1  # delta free: a count rule separates them
    assert calibrate.count_events(np.array([0, 1, 1, 0, 1, 0, 0, 1])) == 3
    assert calibrate.count_events(np.zeros(5)) == 0


@pytest.mark.parametrize("n_events", [1, 2])
def test_labeled_mode_falls_back_to_label_free_thresholds_below_two_events(n_events):
    from serving.core.windows import window_starts
    from training.lstm_ed.evaluate import evaluate_modes

    rng = np.random.default_rng(1)
    labels = np.zeros(4000, dtype=int)
    labels[300:340] = 1  # calibration slice: the first 1200 rows
    if n_events == 2:
        labels[800:830] = 1
    labels[2000:2050] = labels[3000:3040] = 1
    starts = window_starts(len(labels), 100, 90)
    scores = rng.uniform(size=(len(starts), 100))  # bounded noise: any tau in (1, 6) separates
    taus = np.full(len(starts), 9.0)  # the label-free rule flags nothing
    for a, b in ((300, 340), (800, 830), (2000, 2050), (3000, 3040)):
        hit = (starts < b) & (starts + 100 > a)
        scores[hit, 10] += 6.0
    for args in ({"unsup_taus": taus}, {}):  # the fixed-tau path (baselines without a stream threshold) too
        res = evaluate_modes(scores, starts, 100, labels, (9.0, 0.0), **args)
        lab = res["labeled"]
        assert lab["calibration_events"] == n_events
        if n_events == 1:
            assert lab["fallback"] == 1.0 and "label-free" in lab["note"]
            assert (lab["tau"], lab["delta"]) == (9.0, 0.0)
            assert lab["f1"] == res["unsupervised_rest"]["f1"] == 0.0
        else:  # two events: tau is tuned on the slice, delta stays the label-free 0, the rest is found
            assert lab["fallback"] == 0.0 and "note" not in lab
            assert lab["delta"] == 0.0 and lab["tau"] < 9.0 and lab["f1"] == 1.0
