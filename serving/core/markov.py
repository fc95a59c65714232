"""KMeans++ level states, the one-step Markov transition matrix, and the verification rule (Ye et al. 2020).

States: KMeans++ clusters of historical values (1-D); k is the candidate in ``k_range`` with the highest
silhouette score on (a subsample of) the history — the usual label-free criterion, and it keeps k small
when the levels do not form separate groups.

Anomaly probability of an observed transition i -> j (the paper compares it with the most probable
transition out of i; its formula did not survive the text, this is our reading of it):
    a(i, j) = 1 - P[i, j] / max_k P[i, k]
so the most probable transition has a = 0 and a transition never seen from i has a = 1.

Verification of an ARIMA candidate (the paper, section 3.2.3):
- kept when a(i, j) >= ``min_probability`` (50 %): the transition is improbable relative to the most probable
  one from i; a transition never seen in history (P[i, j] == 0) has a = 1 and is kept;
- otherwise (a < 50 %, down to a = 0 when the value stays in the most probable state, usually its own) it is
  dropped unless the absolute change exceeds ``change_threshold`` (the paper's 2 cm, in series units): "the
  clustering may put the abnormal value and the value before it in the same state and lead to false
  negatives, so outliers with a probability of 0 but a difference of more than 2 cm are also outliers".
Session 1 read "probability 0" as the *transition* probability (unseen transitions kept only above the
threshold) and dropped every low-a candidate, whatever its size; with 2-3 level states almost every candidate
is a within-state move (a = 0), so verification removed nearly all true spikes too.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass
class States:
    centroids: np.ndarray  # (k,) levels sorted ascending, or (k, 2) (level, first difference) sorted by level
    inertia: float
    silhouette: float
    k_scores: dict  # k -> silhouette
    scale: tuple[float, float] | None = None  # (level sd, difference sd) for 2-D states, None for 1-D

    @property
    def k(self) -> int:
        return len(self.centroids)


def features(values: np.ndarray) -> np.ndarray:
    """(n, 2) rows (x_t, x_t - x_{t-1}); the first row's difference is NaN."""
    x = np.asarray(values, dtype=float)
    return np.column_stack([x, np.concatenate(([np.nan], np.diff(x)))])


def fit_states(
    values: np.ndarray, k_range: tuple[int, ...] = (2, 3, 4, 5, 6, 7, 8), max_points: int = 1500, seed: int = 0,
    use_diff: bool = False,
) -> States:
    """KMeans++ on finite history values (``use_diff``: on standardised (level, first difference) pairs, so a
    jump and a plateau at the same level are different states); k by best silhouette on an even subsample."""
    from sklearn.cluster import KMeans
    from sklearn.metrics import silhouette_score

    if use_diff:
        f = features(values)
        x = f[np.isfinite(f).all(axis=1)]
        scale = (float(np.std(x[:, 0])) or 1.0, float(np.std(x[:, 1])) or 1.0)
        x = x / scale
        if len(x) < 2 or np.ptp(x[:, 0]) == 0:
            raise ValueError("need at least two distinct values to form states")
        sub = x[:: max(1, len(x) // max_points)]
        n_distinct = len(np.unique(sub, axis=0))
    else:
        x = np.asarray(values, dtype=float)
        x = x[np.isfinite(x)]
        scale = None
        if len(np.unique(x)) < 2:
            raise ValueError("need at least two distinct values to form states")
        x = x.reshape(-1, 1)
        sub = x[:: max(1, len(x) // max_points)]
        n_distinct = len(np.unique(sub))
    best, scores = None, {}
    for k in k_range:
        if k >= n_distinct:
            break
        km = KMeans(n_clusters=k, init="k-means++", n_init=2, random_state=seed).fit(sub)
        score = float(silhouette_score(sub, km.labels_))
        scores[k] = score
        if best is None or score > best[1]:
            best = (km, score)
    if best is None:
        raise ValueError("history too small for the smallest k")
    km, score = best
    # refit the chosen k on (up to 20000 evenly spaced) history points so the centroids describe all of it
    full = x[:: max(1, len(x) // 20000)]
    km = KMeans(n_clusters=km.n_clusters, init="k-means++", n_init=2, random_state=seed).fit(full)
    centers = km.cluster_centers_
    order = np.argsort(centers[:, 0])
    if scale is None:
        return States(centers[order, 0], float(km.inertia_), score, scores)
    return States(centers[order] * scale, float(km.inertia_), score, scores, scale)


def assign_2d(centroids: np.ndarray, scale, level, diff) -> np.ndarray:
    """Nearest (level, difference) centroid in standardised units; -1 where either is missing."""
    c = np.asarray(centroids, dtype=float) / scale
    p = np.column_stack([np.atleast_1d(np.asarray(level, dtype=float)),
                         np.atleast_1d(np.asarray(diff, dtype=float))]) / scale
    d = ((p[:, None, :] - c[None, :, :]) ** 2).sum(axis=2)
    out = np.argmin(np.where(np.isfinite(d), d, np.inf), axis=1).astype(np.int64)
    out[~np.isfinite(p).all(axis=1)] = -1
    return out


def assign_one_2d(scaled_centroids: tuple, scale: tuple[float, float], level: float, diff: float) -> int:
    """Scalar version of ``assign_2d`` for the streaming path (``scaled_centroids`` already divided by scale)."""
    a, b = level / scale[0], diff / scale[1]
    best, arg = math.inf, 0
    for n, (u, v) in enumerate(scaled_centroids):
        d = (a - u) ** 2 + (b - v) ** 2
        if d < best:
            best, arg = d, n
    return arg


def assign(centroids: np.ndarray, x) -> np.ndarray:
    """Nearest centroid (1-D: the midpoints split the line); NaN -> -1."""
    c = np.asarray(centroids, dtype=float)
    xs = np.atleast_1d(np.asarray(x, dtype=float))
    out = np.searchsorted((c[:-1] + c[1:]) / 2, xs).astype(np.int64)
    out[~np.isfinite(xs)] = -1
    return out


def assign_one(midpoints: tuple[float, ...], x: float) -> int:
    """Scalar version for the streaming path (bisect over a tuple is faster than numpy on one value)."""
    from bisect import bisect_left

    return bisect_left(midpoints, x)


def transition_counts(states: np.ndarray, k: int) -> np.ndarray:
    """(k, k) counts of consecutive pairs; pairs touching a missing value (-1) are skipped."""
    s = np.asarray(states, dtype=np.int64)
    a, b = s[:-1], s[1:]
    ok = (a >= 0) & (b >= 0)
    counts = np.zeros((k, k), dtype=np.int64)
    np.add.at(counts, (a[ok], b[ok]), 1)
    return counts


def transition_matrix(counts: np.ndarray) -> np.ndarray:
    """Row-normalised probabilities; rows never left stay all zero."""
    c = np.asarray(counts, dtype=float)
    rows = c.sum(axis=1, keepdims=True)
    return np.divide(c, rows, out=np.zeros_like(c), where=rows > 0)


def transition_table(counts: np.ndarray) -> dict[str, np.ndarray]:
    """Tidy form: one row per (from_state, to_state) with its count and probability."""
    c = np.asarray(counts)
    k = c.shape[0]
    p = transition_matrix(c)
    i, j = np.meshgrid(np.arange(k), np.arange(k), indexing="ij")
    return {
        "from_state": i.ravel(),
        "to_state": j.ravel(),
        "count": c.ravel().astype(np.int64),
        "probability": p.ravel(),
    }


def anomaly_probability(matrix: np.ndarray, i: int, j: int) -> float:
    """1 - P[i, j] / max_k P[i, k]; 1.0 when state i was never left in history."""
    row = matrix[i]
    top = row.max()
    if top <= 0:
        return 1.0
    return float(1.0 - row[j] / top)


def verify(
    candidate: bool,
    transition_probability: float,
    anomaly_prob: float,
    change: float,
    change_threshold: float,
    min_probability: float = 0.5,
) -> bool:
    """The verification rule (see the module docstring). ``transition_probability`` is kept in the signature
    for the callers that log it; the rule itself needs only ``anomaly_prob`` (1 for an unseen transition)."""
    if not candidate:
        return False
    if transition_probability <= 0.0 or anomaly_prob >= min_probability:
        return True
    return bool(abs(change) > change_threshold)
