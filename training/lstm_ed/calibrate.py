"""Choosing tau (point threshold) and delta (points over tau per window) in three modes.

* ``unsupervised`` (default, no labels), two methods:
  - ``quantile`` (session 1): tau = the ``q`` quantile of validation point scores; delta = the smallest count
    whose window false-alarm rate on validation windows is at most ``far``. With ~50 validation windows the
    1% quantile of counts rests on half a window: unstable.
  - ``pot`` (default): tau from a generalised Pareto fit to the validation tail (peaks over threshold, as in
    SPOT, Siffer et al. KDD 2017) at point risk ``risk``; delta from a model of the count of exceedances per
    window: clusters of exceedances start as Bernoulli(risk * theta) per point and have geometric sizes of
    mean 1/theta (theta = extremal index, estimated on validation exceedances), so delta is the smallest count
    whose modelled window false-alarm rate is at most ``far``. Both extrapolate past the few validation windows.
  - ``pot_max`` (session 3): delta = 0, i.e. a window is anomalous when its largest a_t exceeds tau, and tau
    from the same tail fit at the point risk whose modelled window false-alarm rate (the count model above,
    P(count > 0)) is ``far``. Of the (tau, delta) pairs with that false-alarm rate it is the one with the
    highest tau and no count: SMD anomalies often show as a few extreme points, which a count misses.
* ``labeled``: maximise window F1 on a labeled calibration slice (the first part of the test half); the
  caller scores on the rest only. Session 5: only tau is tuned, delta stays the label-free rule's (one
  parameter fitted on a slice with a handful of anomalies generalises better than two), and a slice with
  fewer than ``min_events`` labeled events (runs of labeled points) keeps the label-free thresholds: F1
  on one event (or none) cannot rank thresholds (see training.lstm_ed.evaluate).
* ``oracle``: the paper's protocol, maximise window F1 on the very labels that are scored. Comparison only.
"""

from __future__ import annotations

import numpy as np

from serving.core.metrics import prf, segments_of


def unsupervised(val_scores: np.ndarray, q: float = 0.99, far: float = 0.01) -> tuple[float, float]:
    """val_scores (N, L) on normal validation windows -> (tau, delta)."""
    tau = float(np.quantile(val_scores, q))
    counts = (val_scores > tau).sum(axis=1)
    for delta in range(val_scores.shape[1]):
        if (counts > delta).mean() <= far:
            return tau, float(delta)
    return tau, float(val_scores.shape[1] - 1)


def gpd_fit(excess: np.ndarray) -> tuple[float, float]:
    """Maximum-likelihood (shape xi, scale sigma) of a generalised Pareto distribution on excesses >= 0."""
    from scipy.stats import genpareto

    excess = np.asarray(excess, dtype=np.float64)
    if len(excess) < 10 or np.ptp(excess) == 0:
        return 0.0, float(max(excess.mean() if len(excess) else 0.0, 1e-12))
    xi, _, sigma = genpareto.fit(excess, floc=0.0)
    return float(xi), float(sigma)


def pot_threshold(scores: np.ndarray, risk: float = 1e-3, init_q: float = 0.98) -> tuple[float, dict]:
    """SPOT's initial step: t = ``init_q`` quantile, GPD (xi, sigma) fitted to the excesses over t, then
    tau = t + sigma/xi * ((risk * n / n_t)^-xi - 1) (the exponential limit when xi == 0) so that
    P(score > tau) is about ``risk``. Never below t."""
    flat = np.asarray(scores, dtype=np.float64).ravel()
    flat = flat[np.isfinite(flat)]
    t = float(np.quantile(flat, init_q))
    exc = flat[flat > t] - t
    xi, sigma = gpd_fit(exc)
    ratio = risk * len(flat) / max(len(exc), 1)
    if ratio >= 1:
        tau = t
    elif abs(xi) < 1e-6:
        tau = t - sigma * np.log(ratio)
    else:
        tau = t + sigma / xi * (ratio ** (-xi) - 1.0)
    return float(max(tau, t)), {"t": t, "xi": xi, "sigma": sigma, "n_exceed": int(len(exc))}


def run_lengths(exceed: np.ndarray) -> np.ndarray:
    """Lengths of the runs of True in each row of ``exceed`` (N, L) bool (a run does not continue across rows)."""
    e = np.asarray(exceed, dtype=bool)
    e = e.reshape(-1, e.shape[-1]) if e.ndim > 1 else e[None]
    pad = np.zeros((len(e), 1), dtype=np.int8)
    d = np.diff(np.concatenate([pad, e.astype(np.int8), pad], axis=1), axis=1)
    return np.flatnonzero(d.ravel() == -1) - np.flatnonzero(d.ravel() == 1)


def extremal_index(exceed: np.ndarray) -> float:
    """Runs estimator of the extremal index: exceedance runs (clusters) / exceedances, counted within each
    row of ``exceed`` (N, L) bool. 1 = isolated points."""
    runs = run_lengths(exceed)
    return len(runs) / runs.sum() if len(runs) else 1.0


def count_tail(p: float, theta: float | None, length: int, sizes: np.ndarray | None = None) -> np.ndarray:
    """P(count > d) for d = 0..length-1, count = points over tau in a window of ``length`` points when
    clusters of exceedances start independently with probability p*theta per point (theta = 1/mean size).
    Cluster sizes: ``sizes`` (observed run lengths, their empirical distribution) or else geometric with mean
    1/theta. Sizes are not cut at the window end (a slight over-estimate of the tail: conservative)."""
    from scipy.stats import binom

    if sizes is not None and len(sizes):
        size = np.bincount(np.minimum(np.asarray(sizes, dtype=np.int64), length), minlength=length + 1)
        size = size[: length + 1] / size.sum()
        theta = 1.0 / float(np.mean(sizes))
    else:
        theta = float(np.clip(theta if theta is not None else 1.0, 1e-6, 1.0))
        size = np.zeros(length + 1)
        size[1:] = theta * (1 - theta) ** (np.arange(1, length + 1) - 1)
    lam = float(np.clip(p * theta, 0.0, 1.0))
    pk = binom.pmf(np.arange(length + 1), length, lam)  # number of clusters in the window
    dist = np.zeros(length + 1)  # P(count = c), c <= length
    conv = np.zeros(length + 1)
    conv[0] = 1.0  # distribution of the total size of j clusters, j = 0
    for j in range(length + 1):
        dist += pk[j] * conv
        conv = np.convolve(conv, size)[: length + 1]
    return np.clip(1.0 - np.cumsum(dist)[:length], 0.0, 1.0)


def delta_for(p: float, theta: float | None, length: int, far: float = 0.01, sizes=None) -> int:
    """Smallest delta with modelled P(count > delta) <= far."""
    tail = count_tail(p, theta, length, sizes)
    ok = np.flatnonzero(tail <= far)
    return int(ok[0]) if len(ok) else length - 1


def unsupervised_pot(val_scores: np.ndarray, risk: float = 1e-3, far: float = 0.01,
                     init_q: float = 0.98) -> tuple[float, float, dict]:
    """val_scores (N, L) on normal validation windows -> (tau, delta, info); see the module docstring.
    Cluster sizes are the runs over the POT start threshold t (enough of them to see their shape; longer
    than the runs over tau, so the count model errs towards a larger delta)."""
    tau, info = pot_threshold(val_scores, risk, init_q)
    runs = run_lengths(np.asarray(val_scores) > info["t"])
    delta = delta_for(risk, None, np.shape(val_scores)[-1], far, sizes=runs)
    info.update(theta=len(runs) / max(runs.sum(), 1), mean_run=float(runs.mean()) if len(runs) else 0.0,
                risk=risk, far=far,
                val_window_alarm_rate=float(((np.asarray(val_scores) > tau).sum(-1) > delta).mean()))
    return tau, float(delta), info


def risk_for_far(val_scores: np.ndarray, far: float, init_q: float = 0.98, lo: float = 1e-6, hi: float = 0.05) -> float:
    """The point risk whose modelled window false-alarm rate P(count > 0) (clusters with the run lengths seen
    over the ``init_q`` quantile on validation, see count_tail) is ``far``; bisection on log(risk)."""
    v = np.asarray(val_scores, dtype=np.float64)
    runs = run_lengths(v > np.quantile(v[np.isfinite(v)], init_q))
    a, b = np.log(lo), np.log(hi)
    for _ in range(40):
        mid = 0.5 * (a + b)
        if count_tail(float(np.exp(mid)), None, v.shape[-1], runs)[0] > far:
            b = mid
        else:
            a = mid
    return float(np.exp(a))


def unsupervised_pot_max(val_scores: np.ndarray, far: float = 0.1, init_q: float = 0.98,
                         risk: float | None = None) -> tuple[float, float, dict]:
    """delta = 0 and tau from the tail fit at the point risk whose modelled window false-alarm rate is
    ``far`` (``risk`` given: that risk instead); info also holds the alarm rate seen on validation windows."""
    if risk is None:
        risk = risk_for_far(val_scores, far, init_q)
    tau, info = pot_threshold(val_scores, risk, init_q)
    runs = run_lengths(np.asarray(val_scores) > info["t"])
    info.update(risk=risk, far=far, modelled_window_far=float(count_tail(risk, None, np.shape(val_scores)[-1], runs)[0]),
                val_window_alarm_rate=float((np.asarray(val_scores) > tau).any(-1).mean()))
    return tau, 0.0, info


def label_free(val_scores: np.ndarray, cfg) -> tuple[float, float, dict]:
    """(tau, delta, info) by ``cfg.calibration`` ('pot', 'pot_max' or 'quantile') with cfg's risk/far/q."""
    if cfg.calibration == "pot":
        return unsupervised_pot(val_scores, cfg.risk, cfg.far, cfg.pot_init_q)
    if cfg.calibration == "pot_max":
        return unsupervised_pot_max(val_scores, cfg.far, cfg.pot_init_q)
    if cfg.calibration == "quantile":
        tau, delta = unsupervised(val_scores, cfg.q, cfg.far)
        return tau, delta, {"q": cfg.q, "far": cfg.far}
    raise ValueError(f"unknown calibration {cfg.calibration!r}; use 'pot', 'pot_max' or 'quantile'")


def search(scores: np.ndarray, wlabels: np.ndarray, n_tau: int = 60, extra_taus=(),
           delta: float | None = None) -> tuple[float, float, float]:
    """Grid search of (tau, delta) maximising window F1: tau over score quantiles (plus ``extra_taus``),
    delta over every count that occurs, or fixed at ``delta`` when given (tau alone is tuned)."""
    wlabels = np.asarray(wlabels, dtype=bool)
    flat = scores[np.isfinite(scores)]
    qs = np.unique(np.quantile(flat, np.concatenate([np.linspace(0.5, 0.99, n_tau // 2),
                                                        1 - np.logspace(-2, -5, n_tau // 2)])))
    # just below each candidate, so that ties at the candidate (e.g. clipped maxima) count as over tau
    qs = np.concatenate([np.nextafter(qs, -np.inf), np.asarray(extra_taus, dtype=float)])
    best = (float(qs[-1]), 0.0, -1.0)
    length = scores.shape[1]
    fixed = delta
    for tau in qs:
        counts = (scores > tau).sum(axis=1)
        cands = [fixed] if fixed is not None else [d for c in np.unique(np.minimum(counts, length - 1))
                                                   for d in (c - 1, c) if d >= 0]
        for d in cands:
            f1 = prf(counts > d, wlabels)["f1"]
            if f1 > best[2]:
                best = (float(tau), float(d), f1)
    return best


def count_events(labels: np.ndarray) -> int:
    """Labeled events in a point-label vector: maximal runs of labeled points."""
    return len(segments_of(labels))
