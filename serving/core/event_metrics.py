"""Point-wise and event-level detection metrics (definitions of issue 6).

An event is a maximal run of consecutive labeled points (or of consecutive flagged points). A labeled event
is found when any flag falls inside it; a flagged event is a false alarm when it touches no labeled point.
Event precision = flagged events touching a label / all flagged events; event recall = labeled events found /
labeled events. Delay = time from a found event's first point to its first flag. False alarms per day =
false-alarm flagged events / days covered by the scored span.
"""

from __future__ import annotations

import numpy as np

DAY_MS = 86_400_000


def runs(mask: np.ndarray) -> np.ndarray:
    """(n, 2) array of [start, end) index pairs of the True runs of ``mask``."""
    m = np.asarray(mask, dtype=bool).astype(np.int8)
    d = np.diff(np.concatenate(([0], m, [0])))
    return np.stack([np.flatnonzero(d == 1), np.flatnonzero(d == -1)], axis=1)


def _ratio(a: float, b: float) -> float:
    return float(a / b) if b else float("nan")


def _f1(p: float, r: float) -> float:
    if not (np.isfinite(p) and np.isfinite(r)) or p + r == 0:
        return 0.0 if np.isfinite(p) and np.isfinite(r) else float("nan")
    return float(2 * p * r / (p + r))


def point_metrics(labels: np.ndarray, flags: np.ndarray) -> dict[str, float]:
    y = np.asarray(labels, dtype=bool)
    f = np.asarray(flags, dtype=bool)
    tp = int(np.sum(y & f))
    fp = int(np.sum(~y & f))
    fn = int(np.sum(y & ~f))
    tn = int(np.sum(~y & ~f))
    sens = _ratio(tp, tp + fn)
    prec = _ratio(tp, tp + fp)
    return {
        "tp": tp,
        "fp": fp,
        "fn": fn,
        "tn": tn,
        "sensitivity": sens,
        "specificity": _ratio(tn, tn + fp),
        "precision": prec,
        "f1": _f1(prec, sens) if tp + fp + fn else float("nan"),
    }


def event_metrics(labels: np.ndarray, flags: np.ndarray, ts: np.ndarray | None = None) -> dict[str, float]:
    """Event recall/precision/F1, mean and median delay (points, and minutes when ``ts`` in ms), FA/day."""
    y = np.asarray(labels, dtype=bool)
    f = np.asarray(flags, dtype=bool)
    lab_events = runs(y)
    flag_events = runs(f)
    found, delays_pts, delays_min = 0, [], []
    for s, e in lab_events:
        hits = np.flatnonzero(f[s:e])
        if len(hits):
            found += 1
            delays_pts.append(int(hits[0]))
            if ts is not None:
                delays_min.append((ts[s + hits[0]] - ts[s]) / 60_000)
    true_flag = sum(bool(y[s:e].any()) for s, e in flag_events)
    false_alarms = len(flag_events) - true_flag
    recall = _ratio(found, len(lab_events))
    precision = _ratio(true_flag, len(flag_events))
    days = float((ts[-1] - ts[0]) / DAY_MS) if ts is not None and len(ts) > 1 else float("nan")
    return {
        "labeled_events": int(len(lab_events)),
        "flagged_events": int(len(flag_events)),
        "events_found": int(found),
        "false_alarm_events": int(false_alarms),
        "event_recall": recall,
        "event_precision": precision,
        "event_f1": _f1(precision, recall) if len(lab_events) or len(flag_events) else float("nan"),
        "delay_points_mean": float(np.mean(delays_pts)) if delays_pts else float("nan"),
        "delay_points_median": float(np.median(delays_pts)) if delays_pts else float("nan"),
        "delay_minutes_mean": float(np.mean(delays_min)) if delays_min else float("nan"),
        "false_alarms_per_day": _ratio(false_alarms, days) if np.isfinite(days) else float("nan"),
    }


def all_metrics(labels, flags, ts=None, valid=None) -> dict[str, float]:
    """Point and event metrics over the ``valid`` points (missing values are neither scored nor events)."""
    y = np.asarray(labels, dtype=bool)
    f = np.asarray(flags, dtype=bool)
    t = None if ts is None else np.asarray(ts)
    if valid is not None:
        v = np.asarray(valid, dtype=bool)
        y, f = y[v], f[v]
        t = None if t is None else t[v]
    return {**point_metrics(y, f), **event_metrics(y, f, t)}
