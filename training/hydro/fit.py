"""Fit a HydroDetector on a history and measure it on the history's own tail (label-free validation).

Validation: the detector is fitted on the history minus its last ``val_fraction`` (at most ``val_max``
points) and scores that tail; ``val_mae`` (one-step forecast error), ``val_coverage`` (share inside the
interval) and ``val_flag_rate`` come from it. The returned detector is then refitted on the whole history
with the same ARIMA order. No label is read here.
"""

from __future__ import annotations

import numpy as np

from serving.core import arima as ar
from serving.core.hydro_detector import HydroDetector, fit_detector


def fit_with_validation(values, ts, *, order: tuple[int, int, int] | None = None, val_fraction: float = 0.2,
                        val_max: int = 672, **settings) -> tuple[HydroDetector, dict]:
    x = np.asarray(values, dtype=float)
    t = np.asarray(ts, dtype=np.int64)
    n_val = int(min(val_max, val_fraction * len(x)))
    params = ar.select_order(x[:-n_val] if n_val else x) if order is None else None
    chosen = params.order if params is not None else tuple(order)
    val = {}
    if n_val >= 20:
        det_v = fit_detector(x[:-n_val], t[:-n_val], arima_params=params, order=chosen, **settings)
        out = det_v.score_series(x[-n_val:], t[-n_val:])
        ok = np.isfinite(x[-n_val:])
        err = np.abs(out["forecast"] - x[-n_val:])[ok]
        inside = ((x[-n_val:] >= out["lower"]) & (x[-n_val:] <= out["upper"]))[ok]
        val = {"val_mae": float(np.mean(err)), "val_coverage": float(np.mean(inside)),
               "val_flag_rate": float(np.mean(out["anomalous"][ok])), "val_points": int(ok.sum())}
    det = fit_detector(x, t, order=chosen, **settings)
    if params is not None:
        det.arima.grid = params.grid
    return det, val
