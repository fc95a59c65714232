"""Evaluation metrics. Window label rule: a window is positive when ANY of its points is labeled anomalous.

Point-wise predictions: a point is predicted anomalous when any flagged window covers it.
Point-adjusted F1 (it inflates scores): a whole true segment counts as found when any of its points is
predicted, the convention of many SMD papers; reported under that name only.
"""

from __future__ import annotations

import numpy as np

from serving.core.event_metrics import runs


def window_labels(labels: np.ndarray, starts: np.ndarray, length: int) -> np.ndarray:
    lab = np.asarray(labels).astype(bool)
    return np.array([lab[s : s + length].any() for s in starts], dtype=bool)


def prf(pred: np.ndarray, true: np.ndarray) -> dict:
    pred, true = np.asarray(pred, dtype=bool), np.asarray(true, dtype=bool)
    tp = int((pred & true).sum())
    fp = int((pred & ~true).sum())
    fn = int((~pred & true).sum())
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * p * r / (p + r) if p + r else 0.0
    return {"precision": p, "recall": r, "f1": f1, "tp": tp, "fp": fp, "fn": fn, "tn": int((~pred & ~true).sum())}


def point_predictions(flags: np.ndarray, starts: np.ndarray, length: int, n_points: int) -> np.ndarray:
    out = np.zeros(n_points, dtype=bool)
    for s, f in zip(starts, flags):
        if f:
            out[s : s + length] = True
    return out


def segments_of(labels: np.ndarray) -> list[tuple[int, int]]:
    """[start, end) of each run of labeled points (``event_metrics.runs`` as a list of pairs)."""
    return [(int(a), int(b)) for a, b in runs(labels)]


def point_adjust(pred: np.ndarray, labels: np.ndarray) -> np.ndarray:
    adj = np.asarray(pred, dtype=bool).copy()
    for s, e in segments_of(labels):
        if adj[s:e].any():
            adj[s:e] = True
    return adj


def auc_scores(point_scores: np.ndarray, labels: np.ndarray) -> dict:
    """ROC-AUC and PR-AUC (average precision) of per-point scores; NaN scores (uncovered points) dropped."""
    from sklearn.metrics import average_precision_score, roc_auc_score

    s, y = np.asarray(point_scores, dtype=np.float64), np.asarray(labels).astype(bool)
    ok = np.isfinite(s)
    s, y = s[ok], y[ok]
    if y.all() or not y.any():
        return {"roc_auc": float("nan"), "pr_auc": float("nan")}
    return {"roc_auc": float(roc_auc_score(y, s)), "pr_auc": float(average_precision_score(y, s))}


def top3_hit_rate(flags, starts, length, top_channels, segments) -> float:
    """Among flagged windows that overlap an interpreted segment: fraction whose top-3 channels include one
    of the channels the segment names (SMD interpretation_label). NaN when there is no such window."""
    hits = total = 0
    for s, f, top in zip(starts, flags, top_channels):
        if not f:
            continue
        truth = set()
        for seg in segments:
            if seg.start < s + length and seg.end > s:
                truth.update(seg.channels)
        if not truth:
            continue
        total += 1
        hits += any(c in truth for c, _ in top[:3])
    return hits / total if total else float("nan")


def evaluate_windows(scores: np.ndarray, starts: np.ndarray, length: int, labels: np.ndarray,
                     tau: float, delta: float) -> dict:
    """Window P/R/F1, point F1 and point-adjusted F1 for one (tau, delta) on scored windows (N, L)."""
    flags = (scores > tau).sum(axis=1) > delta
    out = prf(flags, window_labels(labels, starts, length))
    n = len(labels)
    pp = point_predictions(flags, starts, length, n)
    covered = point_predictions(np.ones(len(starts), bool), starts, length, n)
    out["point_f1"] = prf(pp[covered], np.asarray(labels, bool)[covered])["f1"]
    out["point_adjusted_f1"] = prf(point_adjust(pp, labels)[covered], np.asarray(labels, bool)[covered])["f1"]
    out["flagged_windows"] = int(flags.sum())
    return out
