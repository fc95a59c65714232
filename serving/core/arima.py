"""ARIMA pieces of the hydro detector: order selection, and one-step forecasts with a prediction interval.

Two forecasting modes (Ye et al. 2020 fit one model per sliding window; we also offer a cheap one):
- ``refit``: fit ARIMA(order) by MLE on the trailing window (default 30 points), forecast one step.
- ``incremental``: order and parameters fixed (from the scheduled refit on history); the ARMA recursion on
  the differenced series is advanced per point in plain Python floats, a few microseconds per point.

The incremental forecaster is the conditional (innovations) form of the state-space filter at its steady
state: for an invertible ARMA the Kalman gain converges within a few steps, so after that the one-step
prediction is ``c + sum(phi_i w_{t-i}) + sum(theta_j e_{t-j})`` with variance ``sigma2``.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np

Z95 = 1.959963984540054


@dataclass
class ArimaParams:
    """A fitted ARIMA(p, d, q): statsmodels sign conventions (MA polynomial ``1 + theta_1 L + ...``)."""

    order: tuple[int, int, int]
    ar: tuple[float, ...] = ()
    ma: tuple[float, ...] = ()
    const: float = 0.0
    sigma2: float = 1.0
    aic: float = float("nan")
    # robust (MAD) spread of in-sample residuals; used for the interval only when use_robust is set
    robust_sigma: float | None = None
    use_robust: bool = False
    grid: list = field(default_factory=list)

    @property
    def sigma(self) -> float:
        return float(self.robust_sigma if (self.use_robust and self.robust_sigma) else np.sqrt(self.sigma2))


def adf_differences(y: np.ndarray, alpha: float = 0.05, max_d: int = 2) -> int:
    """Smallest d in 0..max_d whose d-th difference rejects a unit root (ADF test, level ``alpha``)."""
    from statsmodels.tsa.stattools import adfuller

    x = np.asarray(y, dtype=float)
    x = x[np.isfinite(x)]
    for d in range(max_d + 1):
        if len(x) < 20 or np.ptp(x) == 0:
            return d
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            pvalue = adfuller(x, maxlag=8, autolag="AIC")[1]
        if pvalue < alpha:
            return d
        x = np.diff(x)
    return max_d


def _fit(y: np.ndarray, order: tuple[int, int, int]):
    from statsmodels.tsa.arima.model import ARIMA

    trend = "c" if order[1] == 0 else "n"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return ARIMA(y, order=order, trend=trend).fit()


def _params_of(res, order: tuple[int, int, int]) -> ArimaParams:
    names = list(res.model.param_names)
    values = np.asarray(res.params, dtype=float)
    get = dict(zip(names, values))
    resid = np.asarray(res.resid, dtype=float)[order[1] + max(order[0], order[2]) :]
    resid = resid[np.isfinite(resid)]
    mad = float(np.median(np.abs(resid - np.median(resid)))) * 1.4826 if len(resid) else 0.0
    return ArimaParams(
        order=tuple(int(v) for v in order),
        ar=tuple(float(get[f"ar.L{i}"]) for i in range(1, order[0] + 1)),
        ma=tuple(float(get[f"ma.L{i}"]) for i in range(1, order[2] + 1)),
        const=float(get.get("const", 0.0)),
        sigma2=float(get["sigma2"]),
        aic=float(res.aic),
        robust_sigma=mad if mad > 0 else None,
    )


def fit_arima(y: np.ndarray, order: tuple[int, int, int]) -> ArimaParams:
    """MLE fit of one order (gaps filled by interpolation: the state-space fit needs a regular series)."""
    x = _interp(np.asarray(y, dtype=float))
    return _params_of(_fit(x, order), order)


def select_order(
    y: np.ndarray, max_p: int = 2, max_q: int = 2, d: int | None = None, max_points: int = 1000
) -> ArimaParams:
    """Minimum-AIC ARIMA(p, d, q) over p <= max_p, q <= max_q, d from the ADF test; fitted on the last
    ``max_points`` of the history (AIC and parameters of the chosen order are returned)."""
    x = _interp(np.asarray(y, dtype=float))[-max_points:]
    d = adf_differences(x) if d is None else d
    best, grid = None, []
    for p in range(max_p + 1):
        for q in range(max_q + 1):
            try:
                res = _fit(x, (p, d, q))
            except (ValueError, np.linalg.LinAlgError):
                continue
            grid.append({"p": p, "d": d, "q": q, "aic": float(res.aic)})
            if np.isfinite(res.aic) and (best is None or res.aic < best[0].aic):
                best = (res, (p, d, q))
    if best is None:
        raise ValueError("no ARIMA order could be fitted on this history")
    params = _params_of(*best)
    params.grid = grid
    return params


def _interp(x: np.ndarray) -> np.ndarray:
    bad = ~np.isfinite(x)
    if bad.all():
        raise ValueError("series has no finite values")
    if bad.any():
        idx = np.arange(len(x))
        x = x.copy()
        x[bad] = np.interp(idx[bad], idx[~bad], x[~bad])
    return x


def refit_forecast(window: np.ndarray, order: tuple[int, int, int], level: float = 0.95) -> tuple[float, float, float]:
    """``refit`` mode: fit ``order`` on the window, return (forecast, lower, upper) for the next point."""
    res = _fit(_interp(np.asarray(window, dtype=float)), order)
    fc = res.get_forecast(1)
    lo, hi = np.asarray(fc.conf_int(alpha=1 - level)).ravel()
    return float(np.asarray(fc.predicted_mean).ravel()[0]), float(lo), float(hi)


def z_of(level: float) -> float:
    if abs(level - 0.95) < 1e-12:
        return Z95
    from statistics import NormalDist

    return float(NormalDist().inv_cdf(0.5 + level / 2))


class IncrementalArima:
    """The fixed-parameter recursion; its state is two short tuples, so it pickles in a few hundred bytes.

    ``lags``: the last ``p + d`` levels (newest last); ``resid``: the last ``q`` innovations (newest last).
    """

    def __init__(self, params: ArimaParams, level: float = 0.95):
        self.p = params
        self.z = z_of(level)
        p, d, q = params.order
        self.n_levels = p + d
        self.q = q

    def initial_state(self, history: np.ndarray) -> tuple[tuple[float, ...], tuple[float, ...]]:
        """Warm the recursion on the tail of the history (innovations computed, not assumed zero)."""
        x = _interp(np.asarray(history, dtype=float))
        need = self.n_levels + 1
        if len(x) < need:
            raise ValueError(f"need at least {need} history points for order {self.p.order}")
        x = x[-(200 + need) :]
        state = (tuple(float(v) for v in x[:need]), (0.0,) * self.q)
        for v in x[need:]:
            state = self.step(state, float(v))
        return state

    def forecast(self, state) -> float:
        lags, resid = state
        p, d, _ = self.p.order
        levels = list(lags)
        # differenced values w_{t-1..t-p} from the stored levels
        w = levels
        for _ in range(d):
            w = [b - a for a, b in zip(w[:-1], w[1:])]
        # statsmodels' ARIMA "const" (d == 0) is the process mean, not an intercept
        mu = self.p.const
        pred = mu
        for i, phi in enumerate(self.p.ar, start=1):
            pred += phi * (w[-i] - mu)
        for j, theta in enumerate(self.p.ma, start=1):
            pred += theta * resid[-j]
        # undo the differencing: y_t = w_t + (level implied by the last d levels)
        if d == 1:
            pred += levels[-1]
        elif d == 2:
            pred += 2 * levels[-1] - levels[-2]
        return pred

    def interval(self, forecast: float) -> tuple[float, float]:
        half = self.z * self.p.sigma
        return forecast - half, forecast + half

    def step(self, state, value: float, forecast: float | None = None):
        """Advance the recursion with an observed (or substituted) level."""
        lags, resid = state
        f = self.forecast(state) if forecast is None else forecast
        e = value - f
        lags = (lags + (value,))[-max(self.n_levels, 1) :] if self.n_levels else (value,)
        resid = (resid + (e,))[-self.q :] if self.q else ()
        return lags, resid
