"""Evaluate scored test windows in every calibration mode (window P/R/F1, point F1, point-adjusted F1, AUCs)."""

from __future__ import annotations

import numpy as np

from serving.core.metrics import auc_scores, evaluate_windows, top3_hit_rate, window_labels
from serving.core.windows import per_point_max
from training.lstm_ed import calibrate


def evaluate_modes(test_scores: np.ndarray, starts: np.ndarray, length: int, labels: np.ndarray,
                   unsup: tuple[float, float], labeled_frac: float = 0.3,
                   top_channels=None, segments=None, unsup_taus: np.ndarray | None = None) -> dict:
    """Metrics per mode. ``unsup`` = (tau, delta) fitted without labels. ``labeled`` tunes on the windows
    that start in the first ``labeled_frac`` of the test half and is scored on the windows after it
    (``unsupervised_rest`` scores the label-free thresholds on that same rest, for a fair comparison);
    ``oracle`` tunes on all test labels (the paper's protocol). ``unsup_taus`` (N,): the label-free rule's
    per-window thresholds (the detector's stream threshold, its output 'tau'); labeled and oracle search
    one fixed tau on the scores as they are."""
    labels = np.asarray(labels)
    n = len(labels)
    wl = window_labels(labels, starts, length)
    out = {}

    # a_t > tau_i  <=>  a_t - tau_i + tau > tau: the label-free rule as one fixed tau on shifted scores
    unsup_scores = test_scores if unsup_taus is None else (
        test_scores - (np.asarray(unsup_taus, dtype=np.float64) - unsup[0])[:, None])

    def run(name, tau, delta, sel=slice(None), extra=None, scores=test_scores):
        sub_starts = starts[sel]
        offset = int(sub_starts[0]) if len(sub_starts) else 0
        m = evaluate_windows(scores[sel], sub_starts - offset, length, labels[offset:], tau, delta)
        flags = (scores[sel] > tau).sum(axis=1) > delta
        if top_channels is not None and segments is not None:
            from training.data.smd import Segment

            shifted = [Segment(s.start - offset, s.end - offset, s.channels) for s in segments]
            m["top3_hit_rate"] = top3_hit_rate(flags, sub_starts - offset, length,
                                               [top_channels[i] for i in np.arange(len(starts))[sel]], shifted)
        m.update(tau=float(tau), delta=float(delta), **(extra or {}))
        out[name] = m

    run("unsupervised", *unsup, scores=unsup_scores)
    cut = int(labeled_frac * n)
    cal = starts + length <= cut
    rest = starts >= cut
    if cal.sum() >= 5 and wl[cal].any() and rest.any():
        tau, delta, f1_cal = calibrate.search(test_scores[cal], wl[cal], extra_taus=[unsup[0]])
        run("labeled", tau, delta, rest, {"calibration_f1": f1_cal, "calibration_rows": cut})
    else:  # no anomaly in the calibration slice: nothing to tune on, keep the label-free thresholds
        run("labeled", *unsup, rest, {"calibration_f1": float("nan"), "calibration_rows": cut,
                                       "note": "no labeled anomaly in calibration slice"}, scores=unsup_scores)
    run("unsupervised_rest", *unsup, rest, scores=unsup_scores)
    tau, delta, _ = calibrate.search(test_scores, wl, extra_taus=[unsup[0]])
    run("oracle", tau, delta)
    point = per_point_max(test_scores, starts, n)
    out["auc"] = auc_scores(point, labels)
    return out
