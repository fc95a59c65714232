"""LSTM-ED: synthetic data round trip, a short training run that must find injected anomalies, detector
serialization, MLflow registry round trip by alias."""

from __future__ import annotations

import numpy as np
import pytest

from serving.core.detector import LSTMEDDetector
from training.data.smd import list_machines, load_machine
from training.data.synthetic_metrics import KINDS, make_machine, write_smd_layout
from training.lstm_ed.pipeline import TrainConfig, fit_detector

# small and quick: runs in seconds on 2 shared cores
TINY = TrainConfig(hidden=32, max_epochs=10, batch_size=32, train_step=10, patience=3, threads=1, seed=0)
F1_BAR = 0.6  # unsupervised window F1 the short run must exceed on the synthetic machine


@pytest.fixture(scope="module")
def machine():
    return make_machine(7, n_train=3000, n_test=3000, n_anomalies=6, period=500)


@pytest.fixture(scope="module")
def fitted(machine):
    return fit_detector(machine.train, TINY)


def test_synthetic_machine_shape_and_labels(machine):
    assert machine.train.shape == (3000, 38) and machine.test.shape == (3000, 38)
    assert len(machine.segments) == 6 and {0, 1} == set(np.unique(machine.test_labels))
    for seg in machine.segments:
        assert machine.test_labels[seg.start : seg.end].all() and seg.channels
        assert all(c not in (7, 26, 36, 37) for c in seg.channels)
    assert np.ptp(machine.train[:, 7]) == 0  # constant channel like SMD's channel 8
    assert len(KINDS) == 5
    again = make_machine(7, n_train=3000, n_test=3000, n_anomalies=6, period=500)
    np.testing.assert_array_equal(again.test, machine.test)  # seeded


def test_write_smd_layout_round_trip(machine, tmp_path):
    m2 = make_machine(8, n_train=400, n_test=400, n_anomalies=2, name="machine-9-2")
    machine.machine = "machine-9-1"
    write_smd_layout(tmp_path, [machine, m2])
    assert list_machines(tmp_path) == ["machine-9-1", "machine-9-2"]
    back = load_machine(tmp_path, "machine-9-1")
    np.testing.assert_allclose(back.train, machine.train, atol=5e-7)
    np.testing.assert_array_equal(back.test_labels, machine.test_labels)
    assert [(s.start, s.end, s.channels) for s in back.segments] == [
        (s.start, s.end, s.channels) for s in machine.segments]


def test_short_training_finds_injected_anomalies(machine, fitted):
    from training.lstm_ed.evaluate import evaluate_modes

    det, info = fitted
    assert info["history"][0]["val_loss"] > info["best_val_loss"]  # it learned something
    assert det.mode in ("free", "teacher") and set(info["per_mode"]) == {"free", "teacher"}
    out = det.score_series(machine.test)
    res = evaluate_modes(out["scores"], out["starts"], det.length, machine.test_labels, (det.tau, det.delta),
                         top_channels=out["top_channels"], segments=machine.segments, unsup_taus=out["tau"])
    assert det.stream_memory > 0 and out["tau"].std() > 0  # the default judges by the stream threshold
    assert res["unsupervised"]["f1"] > F1_BAR, res["unsupervised"]
    assert res["oracle"]["f1"] >= res["unsupervised"]["f1"]
    assert res["auc"]["roc_auc"] > 0.8


def test_detector_serialization_and_streaming_match_batch(machine, fitted):
    det, _ = fitted
    batch = det.score_series(machine.test)
    clone = LSTMEDDetector.from_bytes(det.to_bytes())
    again = clone.score_series(machine.test)
    np.testing.assert_array_equal(again["scores"], batch["scores"])
    # stream in two calls carrying the history: same verdicts as one batch
    from serving.core.windows import sliding_windows

    w = sliding_windows(machine.test, det.length, det.step)
    first = clone.score_windows(w[:10])
    second = clone.score_windows(w[10:], history=first["history"])
    np.testing.assert_allclose(np.vstack([first["scores"], second["scores"]]), batch["scores"])
    # the stream threshold's memory travels in the history too: same per-window tau and verdicts
    np.testing.assert_allclose(np.r_[first["tau"], second["tau"]], batch["tau"])
    np.testing.assert_array_equal(np.r_[first["anomalous"], second["anomalous"]], batch["anomalous"])
    assert len(second["history"]["seen"]) <= det.stream_memory
    assert batch["top_channels"][0] and all(len(t) <= 3 for t in batch["top_channels"])
    with pytest.raises(ValueError):
        det.score_windows(w[:, :, :5])


def test_channel_z_default_and_session2_mahalanobis_score_paths(machine, fitted):
    from dataclasses import replace

    from serving.core import scoring
    from serving.core.windows import sliding_windows
    from training.lstm_ed.pipeline import build_detector

    det, _ = fitted
    assert det.score == "channel_z" and det.delta == 0.0 and 0 < len(det.level_init) <= det.level_windows
    w = sliding_windows(machine.test, det.length, det.step)
    err = det.errors(w)
    # a_t by hand: error z and input |z|, minus the warm-started levels, log1p, top-3 mean
    assert det.error_weight == 0.25  # the default: error features x 0.25 beside the inputs'
    feats = scoring.channel_features(err, det.err_center, det.err_scale, (w.astype(np.float64) - det.center) / det.scale,
                                     det.error_weight)
    feats, _ = scoring.remove_levels(feats, det.level_init, det.level_windows)
    np.testing.assert_allclose(det.score_windows(w)["scores"], scoring.top_k_mean(feats, 3, "log1p"))
    with pytest.raises(ValueError):
        det.score_errors(err)  # input deviation needs the inputs
    legacy, _ = build_detector(det.model(), det.scaler(), machine.train,
                               replace(TINY, score="mahalanobis", calibration="pot", far=0.01, adapt_windows=0))
    out = legacy.score_windows(w)
    np.testing.assert_allclose(out["scores"], scoring.mahalanobis(err, legacy.mu, legacy.precision))
    assert legacy.delta >= 1 and out["history"] is None


def test_stream_threshold_follows_the_stream_and_off_keeps_the_validation_tau(machine, fitted):
    from dataclasses import replace

    from serving.core import scoring

    det, _ = fitted
    out = det.score_series(machine.test)
    a = out["scores"]
    # by hand: window i is judged by the (1 - far) quantile of the seed plus the windows before it
    seen = list(det.stream_init)
    for i in range(len(a)):
        assert out["tau"][i] == pytest.approx(np.quantile(seen[-det.stream_memory:], 1 - det.stream_far))
        seen.append(scoring.window_stat(a[i : i + 1], det.delta)[0])
    np.testing.assert_array_equal(out["anomalous"], (a > out["tau"][:, None]).sum(1) > det.delta)
    fixed = replace(det, stream_memory=0)
    fixed._model = det.model()
    off = fixed.score_series(machine.test)
    np.testing.assert_allclose(off["scores"], a)
    np.testing.assert_array_equal(off["tau"], np.full(len(a), det.tau))
    np.testing.assert_array_equal(off["anomalous"], a.max(1) > det.tau)
