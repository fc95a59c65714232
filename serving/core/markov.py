"""KMeans++ level states, the one-step Markov transition matrix, and the verification rule (Ye et al. 2020).

States: KMeans++ clusters of historical values (1-D); k is the candidate in ``k_range`` with the highest
silhouette score on (a subsample of) the history — the usual label-free criterion, and it keeps k small
when the levels do not form separate groups.

Anomaly probability of an observed transition i -> j (the paper compares it with the most probable
transition out of i; its formula did not survive the text, this is our reading of it):
    a(i, j) = 1 - P[i, j] / max_k P[i, k]
so the most probable transition has a = 0 and a transition never seen from i has a = 1.

Verification of an ARIMA candidate:
- transition never seen in history (P[i, j] == 0, also when state i itself was never left): kept only when
  the absolute change exceeds ``change_threshold`` (the paper's 2 cm, in series units);
- otherwise dropped when a(i, j) < ``min_probability`` (50 %), kept when a(i, j) >= it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class States:
    centroids: np.ndarray  # sorted ascending, shape (k,)
    inertia: float
    silhouette: float
    k_scores: dict  # k -> silhouette

    @property
    def k(self) -> int:
        return len(self.centroids)


def fit_states(
    values: np.ndarray, k_range: tuple[int, ...] = (2, 3, 4, 5, 6, 7, 8), max_points: int = 1500, seed: int = 0
) -> States:
    """KMeans++ on finite history values; k by best silhouette (computed on an even subsample)."""
    from sklearn.cluster import KMeans
    from sklearn.metrics import silhouette_score

    x = np.asarray(values, dtype=float)
    x = x[np.isfinite(x)]
    if len(np.unique(x)) < 2:
        raise ValueError("need at least two distinct values to form states")
    sub = x[:: max(1, len(x) // max_points)].reshape(-1, 1)
    best, scores = None, {}
    for k in k_range:
        if k >= len(np.unique(sub)):
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
    full = x[:: max(1, len(x) // 20000)].reshape(-1, 1)
    km = KMeans(n_clusters=km.n_clusters, init="k-means++", n_init=2, random_state=seed).fit(full)
    order = np.argsort(km.cluster_centers_.ravel())
    return States(km.cluster_centers_.ravel()[order], float(km.inertia_), score, scores)


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
    """The verification rule (see the module docstring)."""
    if not candidate:
        return False
    if transition_probability <= 0.0:
        return bool(abs(change) > change_threshold)
    return bool(anomaly_prob >= min_probability)
