"""Choosing tau (point threshold) and delta (points over tau per window) in three modes.

* ``unsupervised`` (default, no labels): tau = the ``q`` quantile of validation point scores; delta = the
  smallest count whose window false-alarm rate on validation windows (dense stride, for enough windows)
  is at most ``far``.
* ``labeled``: maximise window F1 on a labeled calibration slice (the first part of the test half); the
  caller scores on the rest only.
* ``oracle``: the paper's protocol, maximise window F1 on the very labels that are scored. Comparison only.
"""

from __future__ import annotations

import numpy as np

from serving.core.metrics import prf


def unsupervised(val_scores: np.ndarray, q: float = 0.99, far: float = 0.01) -> tuple[float, float]:
    """val_scores (N, L) on normal validation windows -> (tau, delta)."""
    tau = float(np.quantile(val_scores, q))
    counts = (val_scores > tau).sum(axis=1)
    for delta in range(val_scores.shape[1]):
        if (counts > delta).mean() <= far:
            return tau, float(delta)
    return tau, float(val_scores.shape[1] - 1)


def search(scores: np.ndarray, wlabels: np.ndarray, n_tau: int = 60, extra_taus=()) -> tuple[float, float, float]:
    """Grid search of (tau, delta) maximising window F1: tau over score quantiles (plus ``extra_taus``),
    delta over every count that occurs."""
    wlabels = np.asarray(wlabels, dtype=bool)
    flat = scores[np.isfinite(scores)]
    qs = np.unique(np.quantile(flat, np.concatenate([np.linspace(0.5, 0.99, n_tau // 2),
                                                        1 - np.logspace(-2, -5, n_tau // 2)])))
    # just below each candidate, so that ties at the candidate (e.g. clipped maxima) count as over tau
    qs = np.concatenate([np.nextafter(qs, -np.inf), np.asarray(extra_taus, dtype=float)])
    best = (float(qs[-1]), 0.0, -1.0)
    length = scores.shape[1]
    for tau in qs:
        counts = (scores > tau).sum(axis=1)
        for delta in np.unique(np.minimum(counts, length - 1)):
            for d in (delta - 1, delta):
                if d < 0:
                    continue
                f1 = prf(counts > d, wlabels)["f1"]
                if f1 > best[2]:
                    best = (float(tau), float(d), f1)
    return best
