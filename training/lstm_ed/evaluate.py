"""Evaluate scored test windows in every calibration mode (window P/R/F1, point F1, point-adjusted F1, AUCs)."""

from __future__ import annotations

import numpy as np

from serving.core.metrics import auc_scores, evaluate_windows, top3_hit_rate, window_labels
from serving.core.windows import per_point_max
from training.lstm_ed import calibrate

LABELED_MIN_EVENTS = 2  # fewer labeled events in the calibration slice: keep the label-free thresholds


def evaluate_modes(test_scores: np.ndarray, starts: np.ndarray, length: int, labels: np.ndarray,
                   unsup: tuple[float, float], labeled_frac: float = 0.3,
                   top_channels=None, segments=None, unsup_taus: np.ndarray | None = None,
                   labeled_min_events: int = LABELED_MIN_EVENTS, labeled_delta: str = "fixed") -> dict:
    """Metrics per mode. ``unsup`` = (tau, delta) fitted without labels. ``labeled`` tunes on the windows
    that end in the first ``labeled_frac`` of the test half and is scored on the windows after it
    (``unsupervised_rest`` scores the label-free thresholds on that same rest, for a fair comparison);
    ``oracle`` tunes tau and delta on all test labels (the paper's protocol). ``unsup_taus`` (N,): the
    label-free rule's per-window thresholds (the detector's stream threshold, its output 'tau'); labeled and
    oracle search one fixed tau on the scores as they are.

    Labeled: ``labeled_delta='fixed'`` tunes tau only and keeps the label-free delta (``'search'``: tau and
    delta, sessions 1-4). When the slice holds fewer than ``labeled_min_events`` labeled events (runs of
    labeled points), F1 on it cannot rank thresholds (one event: any tau that catches it scores 1), so the
    label-free thresholds are kept: ``fallback`` = 1 and a ``note`` say so."""
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
    if labeled_delta not in ("fixed", "search"):
        raise ValueError(f"labeled_delta must be 'fixed' or 'search', got {labeled_delta!r}")
    cut = int(labeled_frac * n)
    cal = starts + length <= cut
    rest = starts >= cut
    events = calibrate.count_events(labels[:cut])
    info = {"calibration_rows": cut, "calibration_events": events}
    if cal.sum() >= 5 and wl[cal].any() and events >= labeled_min_events and rest.any():
        fixed = float(unsup[1]) if labeled_delta == "fixed" else None
        tau, delta, f1_cal = calibrate.search(test_scores[cal], wl[cal], extra_taus=[unsup[0]], delta=fixed)
        run("labeled", tau, delta, rest, {"calibration_f1": f1_cal, "fallback": 0.0, **info})
    else:  # nothing to tune on: the label-free thresholds, on the same rest
        run("labeled", *unsup, rest, {"calibration_f1": float("nan"), "fallback": 1.0, **info,
                                       "note": f"{events} labeled event(s) in the calibration slice "
                                               f"(< {labeled_min_events}): label-free thresholds"},
            scores=unsup_scores)
    run("unsupervised_rest", *unsup, rest, scores=unsup_scores)
    tau, delta, _ = calibrate.search(test_scores, wl, extra_taus=[unsup[0]])
    run("oracle", tau, delta)
    point = per_point_max(test_scores, starts, n)
    out["auc"] = auc_scores(point, labels)
    return out
