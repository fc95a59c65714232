"""Scaling, per-point Mahalanobis score, the tau/delta window rule and per-channel error shares.

Covariance of validation errors: SMD has channels that are constant in training, so the raw covariance
is singular. Default ``shrinkage`` (Ledoit-Wolf: Sigma_s = (1 - a) S + a * tr(S)/p * I, ``a`` estimated
from the data by sklearn) keeps every direction finite and invertible, so a channel that was constant in
training and moves later still raises the score, but by a bounded amount. ``pinv`` (Moore-Penrose
pseudo-inverse) is offered too; it ignores directions without variance, i.e. it is blind to such channels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class RobustScaler:
    """x_s = clip((x - center) / scale, -clip, clip); center = median, scale = q95 - q05 on training data.

    The floor on ``scale`` keeps constant channels finite; the clip bounds what a level shift far outside
    the training range can do to the model (SMD test halves sit outside the train range on some channels).
    """

    center: np.ndarray
    scale: np.ndarray
    clip: float = 5.0

    @classmethod
    def fit(cls, x: np.ndarray, clip: float = 5.0, floor_frac: float = 0.05) -> RobustScaler:
        x = np.asarray(x, dtype=np.float64)
        center = np.median(x, axis=0)
        spread = np.quantile(x, 0.95, axis=0) - np.quantile(x, 0.05, axis=0)
        moving = spread[spread > 0]
        floor = max(1e-6, floor_frac * float(np.median(moving))) if len(moving) else 1.0
        return cls(center.astype(np.float32), np.maximum(spread, floor).astype(np.float32), clip)

    def transform(self, x: np.ndarray) -> np.ndarray:
        z = (np.asarray(x, dtype=np.float32) - self.center) / self.scale
        return np.clip(z, -self.clip, self.clip).astype(np.float32)


def varying_channels(x: np.ndarray) -> np.ndarray:
    """Channels whose 5-95% range is non-zero on ``x`` (T, C): the ones a model can learn anything about.
    A channel flat in training (SMD has several; some move in the test half, e.g. channel 37 of
    machine-1-6) has near-zero validation error variance, so any later move would dominate a_t."""
    x = np.asarray(x, dtype=np.float64)
    return (np.quantile(x, 0.95, axis=0) - np.quantile(x, 0.05, axis=0)) > 0


def fit_gaussian(errors: np.ndarray, method: str = "shrinkage", shrinkage: float | None = None,
                 channels: np.ndarray | None = None):
    """mu and precision (inverse covariance) of error vectors (n, C); covariance with ddof=0.

    ``shrinkage`` given: fixed coefficient a in [0, 1]; None: Ledoit-Wolf's estimate.
    ``channels`` (bool mask, C): fit on these channels only; the precision's rows and columns of the others
    are 0, so they add nothing to a_t (mu stays the mean of every channel).
    Returns (mu, precision, shrinkage_used) as float64.
    """
    if channels is not None:
        keep = np.asarray(channels, dtype=bool)
        e = np.asarray(errors, dtype=np.float64).reshape(-1, np.shape(errors)[-1])
        _, sub, a = fit_gaussian(e[:, keep], method, shrinkage)
        prec = np.zeros((e.shape[1], e.shape[1]))
        prec[np.ix_(keep, keep)] = sub
        return e.mean(axis=0), prec, a
    e = np.asarray(errors, dtype=np.float64).reshape(-1, np.shape(errors)[-1])
    mu = e.mean(axis=0)
    cov = np.cov(e - mu, rowvar=False, bias=True).reshape(e.shape[1], e.shape[1])
    if method == "pinv":
        return mu, np.linalg.pinv(cov, rcond=1e-10, hermitian=True), 0.0
    if method != "shrinkage":
        raise ValueError(f"unknown covariance method {method!r}; use 'shrinkage' or 'pinv'")
    if shrinkage is None:
        from sklearn.covariance import ledoit_wolf_shrinkage

        shrinkage = float(ledoit_wolf_shrinkage(e - mu, assume_centered=True))
    p = cov.shape[0]
    target = np.trace(cov) / p if np.trace(cov) > 0 else 1.0
    shrunk = (1.0 - shrinkage) * cov + shrinkage * target * np.eye(p)
    if shrinkage == 0.0:
        return mu, np.linalg.pinv(shrunk, hermitian=True), 0.0
    return mu, np.linalg.inv(shrunk), float(shrinkage)


def mahalanobis(errors: np.ndarray, mu: np.ndarray, precision: np.ndarray) -> np.ndarray:
    """a_t = (e_t - mu)^T P (e_t - mu) for errors (..., C) -> (...)."""
    d = np.asarray(errors, dtype=np.float64) - mu
    return np.einsum("...i,ij,...j->...", d, precision, d)


def count_over_tau(scores: np.ndarray, tau: float) -> np.ndarray:
    """Per window: how many points have a_t > tau. scores (N, L) -> (N,) int."""
    return (np.asarray(scores) > tau).sum(axis=-1)


def decide(counts: np.ndarray, delta: float) -> np.ndarray:
    """The paper's rule: a window is anomalous when MORE than delta of its points exceed tau."""
    return np.asarray(counts) > delta


def channel_shares(errors: np.ndarray, mu: np.ndarray, sd: np.ndarray, mask: np.ndarray | None = None):
    """Share of each channel in a window's standardized squared error deviation.

    errors (N, L, C); mask (N, L) selects the points to count (e.g. a_t > tau; all points where a window
    has none). Returns (N, C) shares summing to 1 (0 rows stay 0).
    """
    z = np.maximum(np.asarray(errors, dtype=np.float64) - mu, 0.0) / sd
    contrib = z**2
    if mask is not None:
        m = np.asarray(mask, dtype=bool)
        m = np.where(m.any(axis=1, keepdims=True), m, True)
        contrib = contrib * m[..., None]
    per = contrib.sum(axis=1)
    tot = per.sum(axis=1, keepdims=True)
    return np.divide(per, tot, out=np.zeros_like(per), where=tot > 0)


def top_k(shares: np.ndarray, k: int = 3) -> list[list[tuple[int, float]]]:
    """Up to k (channel, share) pairs per row, largest share first, zero shares dropped."""
    order = np.argsort(-shares, axis=1, kind="stable")[:, :k]
    return [[(int(c), float(row[c])) for c in idx if row[c] > 0] for row, idx in zip(shares, order)]


def adapt_recent(scores: np.ndarray, ref: float, history: list[float] | None, k: int) -> tuple[np.ndarray, list]:
    """Scores relative to recent behaviour: divide each window's a_t by the median of the previous k windows'
    median a_t (relative to ``ref``, the same median on validation), never by less than 1.

    A shift that persists for more than about k/2 windows is absorbed; shorter anomalies are not.
    Returns (adapted scores, updated history) so a stream can carry the history between calls.
    """
    hist = list(history or [])
    out = np.empty_like(np.asarray(scores, dtype=np.float64))
    for i, row in enumerate(np.asarray(scores, dtype=np.float64)):
        level = float(np.median(hist[-k:])) / ref if hist and ref > 0 else 1.0
        out[i] = row / max(level, 1.0)
        hist.append(float(np.median(row)))
    return out, hist[-k:]


def adapt_guarded(scores: np.ndarray, ref: float, state: dict | None, k: int, tau: float, delta: float,
                  guard: float = 0.5) -> tuple[np.ndarray, dict]:
    """Scores relative to recent NORMAL behaviour, for streams whose level shifts (SMD's test halves).

    Each window's a_t is divided by the median of the previous k unflagged windows' median a_t (relative to
    ``ref``), never by less than 1, so an anomaly does not raise the level that hides it (``adapt_recent``
    absorbs any anomaly longer than about k/2 windows). Guard: when more than ``guard`` of the last k
    windows were flagged, that many alarms are taken as a new normal level, and the level of all recent
    windows is used instead. ``state`` (None to start) is returned updated: three short lists, for a stream.
    """
    st = {"all": [], "normal": [], "flags": []} if state is None else {n: list(v) for n, v in state.items()}
    out = np.empty_like(np.asarray(scores, dtype=np.float64))
    for i, row in enumerate(np.asarray(scores, dtype=np.float64)):
        if st["flags"] and np.mean(st["flags"]) > guard:
            level = float(np.median(st["all"])) / ref if ref > 0 else 1.0
        else:
            level = float(np.median(st["normal"])) / ref if st["normal"] and ref > 0 else 1.0
        out[i] = row / max(level, 1.0)
        flagged = bool((out[i] > tau).sum() > delta)
        st["all"].append(float(np.median(row)))
        st["flags"].append(flagged)
        if not flagged:
            st["normal"].append(float(np.median(row)))
        st = {n: v[-k:] for n, v in st.items()}
    return out, st


# ---------------------------------------------------------------- per-channel score (session 3)
def robust_error_scale(errors: np.ndarray, hi: float = 0.99, floor_frac: float = 0.05):
    """Per-channel (center, scale) of validation errors (..., C): center = median, scale = ``hi`` quantile
    minus the median, floored at ``floor_frac`` of the median positive scale (flat channels, whose error is
    near constant on validation, stay finite and score a later move strongly but boundedly)."""
    e = np.asarray(errors, dtype=np.float64).reshape(-1, np.shape(errors)[-1])
    center = np.median(e, axis=0)
    scale = np.quantile(e, hi, axis=0) - center
    pos = scale[scale > 1e-12]
    floor = floor_frac * float(np.median(pos)) if len(pos) else 1.0
    return center, np.maximum(scale, floor)


def channel_features(errors: np.ndarray, center: np.ndarray, scale: np.ndarray,
                     inputs: np.ndarray | None = None, error_weight: float = 1.0) -> np.ndarray:
    """Per-point, per-channel deviations (..., C) or (..., 2C): the standardized reconstruction error
    ``error_weight * (e - center) / scale`` and, when ``inputs`` (robust-scaled, unclipped values) are given,
    ``|inputs|`` (the input's distance from the training median in robust ranges) appended as C more
    features. ``error_weight`` < 1 lets an error outweigh the input deviations only when it is that many times
    past its validation scale (session 5: 0.25, chosen leave-one-machine-out, bench/smd_score_designs.py)."""
    z = error_weight * (np.asarray(errors, dtype=np.float64) - center) / scale
    if inputs is None:
        return z
    return np.concatenate([z, np.abs(np.asarray(inputs, dtype=np.float64))], axis=-1)


def sorted_median(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """``np.median(x, axis)``, bit for bit, from one ``np.sort`` (vectorized sort beats numpy's two-point
    partition on the short rows scored here: 100 points, 32 windows; ~5x on 4 windows of 76 features)."""
    s = np.sort(np.asarray(x, dtype=np.float64), axis=axis)
    s = np.moveaxis(s, axis, -1)
    n = s.shape[-1]
    if n == 0:
        raise ValueError("median of an empty axis")
    h = n // 2
    med = s[..., h] if n % 2 else (s[..., h - 1] + s[..., h]) / 2  # np.mean of the two middle points
    return _nan_where_nan(s, med)


def sorted_quantile(x: np.ndarray, q: float, axis: int = -1) -> np.ndarray:
    """``np.quantile(x, q, axis)`` (its default ``linear`` method), bit for bit, from one ``np.sort``: the same
    virtual index ``(n - 1) q``, neighbours and ``_lerp`` (numpy 2's formula, exact at both ends)."""
    s = np.moveaxis(np.sort(np.asarray(x, dtype=np.float64), axis=axis), axis, -1)
    n = s.shape[-1]
    if n == 0:
        raise ValueError("quantile of an empty axis")
    v = np.float64((n - 1) * np.float64(q))
    lo = int(np.floor(v))
    if v >= n - 1:
        lo = hi = n - 1
    else:
        hi = lo + 1
    t = np.float64(v - lo)
    a, b = s[..., lo], s[..., hi]
    diff = b - a
    out = b - diff * (1 - t) if t >= 0.5 else a + diff * t
    return _nan_where_nan(s, out)


def _nan_where_nan(s: np.ndarray, out: np.ndarray) -> np.ndarray:
    """NaN where a sorted row (last axis) holds one (sorted last), as numpy's median and quantile give."""
    nan = np.isnan(s[..., -1])
    return np.where(nan, np.nan, out) if nan.any() else out


def window_levels(feats: np.ndarray) -> np.ndarray:
    """Per window, the median over its points of each feature: (N, L, F) -> (N, F)."""
    return sorted_median(feats, axis=1)


VECTOR_MIN = 4  # trailing(): from this many rows with a full window behind them on, one vectorized call


def trailing(values: np.ndarray, n_before: int, k: int, reduce, empty) -> np.ndarray:
    """For each row i after the first ``n_before`` of ``values`` (oldest first, along axis 0): ``reduce`` over
    the up to ``k`` rows before it (``reduce(block, axis=...)``), ``empty`` where there are none. Rows with a full
    ``k`` behind them take one vectorized call (``sliding_window_view``), the first few one call each; both
    give the same numbers. Used by ``remove_levels`` (median) and ``stream_threshold`` (quantile)."""
    if k <= 0:
        raise ValueError(f"the window must be >= 1 rows, got {k}")
    n = len(values) - n_before
    out = np.empty((n,) + values.shape[1:])
    first_full = max(0, k - n_before)
    if n - first_full < VECTOR_MIN:  # a few rows: one call each is cheaper
        first_full = n
    for i in range(min(first_full, n)):
        j = n_before + i
        out[i] = reduce(values[max(0, j - k) : j], axis=0) if j else empty
    if n > first_full:
        behind = np.lib.stride_tricks.sliding_window_view(values, k, axis=0)  # (len - k + 1, ..., k)
        out[first_full:] = reduce(behind[n_before + first_full - k : n_before + n - k], axis=-1)
    return out


def recent_rows(history, k: int, width: int | None = None) -> np.ndarray:
    """The last ``k`` items of a stream history (an array, or the lists that state written before session 8
    holds) as float64, oldest first; (n, width) when ``width`` is given, else (n,)."""
    if history is None or k <= 0:
        return np.zeros((0, width) if width is not None else 0)
    h = np.asarray(history, dtype=np.float64)
    return (h.reshape(-1, width) if width is not None else h.reshape(-1))[-k:]


def remove_levels(feats: np.ndarray, history, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Each feature relative to recent behaviour: subtract from window i the median over the previous ``k``
    windows of that feature's per-window median, when positive (a persistent shift of one channel is
    absorbed after about k/2 windows; a short anomaly is not; levels below normal are left alone).

    ``history`` (per-window medians (n, F), oldest first, an array or lists; None starts empty) carries the
    levels between stream calls; returned updated: an array of at most k rows (arrays pickle into keyed
    state far faster than lists of floats)."""
    f = np.asarray(feats, dtype=np.float64)
    width = f.shape[-1]
    hist = recent_rows(history, k, width)
    levels = np.concatenate([hist, window_levels(f) if len(f) else np.zeros((0, width))])  # oldest first
    level = trailing(levels, len(hist), k, sorted_median, 0.0)
    return f - np.maximum(level, 0.0)[:, None, :], levels[-k:].copy()


def top_k_mean(feats: np.ndarray, k: int = 3, transform: str = "none") -> np.ndarray:
    """a_t = mean of the ``k`` largest features of each point (..., F) -> (...); ``transform='log1p'``
    applies log(1 + max(f, 0)) first (compresses single huge deviations)."""
    f = np.asarray(feats, dtype=np.float64)
    if transform == "log1p":
        f = np.log1p(np.maximum(f, 0.0))
    elif transform != "none":
        raise ValueError(f"unknown transform {transform!r}; use 'none' or 'log1p'")
    k = min(k, f.shape[-1])
    return np.partition(f, f.shape[-1] - k, axis=-1)[..., -k:].mean(axis=-1)


def feature_shares(feats: np.ndarray, n_channels: int, mask: np.ndarray | None = None) -> np.ndarray:
    """Share of each channel in a window's squared positive deviations (error and input features of one
    channel summed), over the points in ``mask`` (N, L) (all points where a window has none). (N, C)."""
    f = np.maximum(np.asarray(feats, dtype=np.float64), 0.0) ** 2
    if mask is not None:
        m = np.asarray(mask, dtype=bool)
        m = np.where(m.any(axis=1, keepdims=True), m, True)
        f = f * m[..., None]
    per = f.sum(axis=1)
    per = per.reshape(per.shape[0], -1, n_channels).sum(axis=1)
    tot = per.sum(axis=1, keepdims=True)
    return np.divide(per, tot, out=np.zeros_like(per), where=tot > 0)


def stream_threshold(max_scores: np.ndarray, seen, far: float, memory: int,
                     fallback: float = np.inf) -> tuple[np.ndarray, np.ndarray]:
    """A drift-aware window threshold in the spirit of SPOT/DSPOT (Siffer et al., KDD 2017): window i's tau_i
    is the (1 - ``far``) quantile of the largest a_t of the windows the detector has seen before it: ``seen``
    (seeded with validation windows at the scoring step, so the first windows get the validation threshold)
    plus the stream's own earlier windows, the last ``memory`` of them. No labels: a stream whose normal
    windows score higher than validation (or lower) moves its threshold with them; each window is judged
    before it joins the memory. Flagged windows stay in it (dropping them would bias the quantile down,
    a ratchet), so anomalies in more than ``far`` of the recent windows raise tau.

    ``max_scores`` (N,) in time order (with a count rule ``delta`` > 0: each window's (delta+1)-th largest
    a_t, see ``window_stat``) -> (tau_i (N,), updated ``seen``: an array of at most ``memory`` values; the
    ``seen`` passed in may be a list, as state from before session 8 holds);
    ``fallback`` is tau while nothing has been seen.
    """
    stats = np.asarray(max_scores, dtype=np.float64).reshape(-1)
    before = recent_rows(seen, memory)
    known = np.concatenate([before, stats])
    taus = trailing(known, len(before), memory, lambda x, axis: sorted_quantile(x, 1.0 - far, axis), fallback)
    return taus, known[-memory:].copy()


def window_stat(scores: np.ndarray, delta: float) -> np.ndarray:
    """Per window, the value the decision rule turns on: count(a_t > tau) > delta exactly when the
    (floor(delta)+1)-th largest a_t exceeds tau (the largest, for delta 0). (N, L) -> (N,)."""
    a = np.asarray(scores, dtype=np.float64)
    j = min(int(np.floor(delta)) + 1, a.shape[-1])
    return np.partition(a, a.shape[-1] - j, axis=-1)[..., -j] if a.size else np.zeros(a.shape[:-1])
