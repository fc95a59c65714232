"""Rolling-origin evaluation: each span is scored by a detector fitted only on the data before it.

The series is cut into spans of ``chunk_days``; before each span the KMeans++ states, the transition
matrix and the ARIMA parameters are refitted on everything before it (as the daily refit DAG does), and the
ARIMA order is re-selected every ``order_every`` spans. The first ``initial_days`` are history only and are
not scored. Labels are read only by the metric functions at the end.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from serving.core import arima as ar
from serving.core.event_metrics import all_metrics
from serving.core.hydro_detector import HydroDetector, fit_detector, rough_profile_of, rough_scale_of

DAY_MS = 86_400_000

# "arima" and "arima+markov" are the paper's method (95 % interval from the MLE innovation variance);
# "full" is the detector as fitted (robust spread, its own level, persistence rules)
PAPER_INTERVAL = {"level": 0.95, "robust_sigma": False}
VARIANTS = {
    "arima": {"use_markov": False, "use_rules": False, **PAPER_INTERVAL},
    "arima+markov": {"use_markov": True, "use_rules": False, **PAPER_INTERVAL},
    "full": {"use_markov": True, "use_rules": True},
}
# settings of the full detector that calibration chooses between (bench/hydro_bench.py): the roughness
# order, whether the interval widens with the recent residual spread, and the onset condition of excursions
CONFIGS = {
    "d2": {"rough_order": 2, "local_sigma_points": 0},
    "d1": {"rough_order": 1, "local_sigma_points": 0},
    "d2+local": {"rough_order": 2, "local_sigma_points": 96},
    "d1+local": {"rough_order": 1, "local_sigma_points": 96},
    # without the onset condition (an excursion may start on its own), with either block rule
    "d1+free": {"rough_order": 1, "local_sigma_points": 0, "excursion_onset": False},
    "density+free": {"block_rule": "density", "local_sigma_points": 0, "excursion_onset": False},
}
# each with the daily-recurrence rule too (a jump like one 1-2 days earlier at the same time of day is not
# verified): it removes FranklinBasin's afternoon jumps but also some labeled jumps elsewhere, so it is a
# choice made per data set like the others
CONFIGS |= {f"{c}+daily": {**kw, "recurrence_days": 2} for c, kw in list(CONFIGS.items())}
# alerting for an operator who wants one alert per incident: an alert stays open two hours (8 points) after
# its last flagged point, and a lone verified point is alerted only when its jump is at least 3 change
# thresholds (a spike in its own right); smaller departures are alerted from their second point on
CONFIGS |= {f"{c}+alert": {**CONFIGS[c], "merge_gap": 8, "lone_jump": 3.0}
            for c in ("d2", "d1", "d2+local", "d1+local", "d1+free", "density+free")}
# opt-in (``bench.hydro_bench --tod``, or by name in a sensor's detector_config): each roughness config with
# the time-of-day scale (session 5), so a roughness the history shows at this hour on most days (FranklinBasin's
# daily pulses) starts no block. It is not among the bench's default candidates: offered to the leave-one-site-
# out choice it lowered TonyGrove and MainStreet (midday ice roughness recurs daily in TonyGrove's winter
# history) and was not chosen for FranklinBasin, where it helps (docs/model_card_hydro.md)
TOD_CONFIGS = {f"{c}+tod": {**kw, "rough_daily": True} for c, kw in CONFIGS.items()
               if kw.get("block_rule", "rough") == "rough"}
# with the water-temperature covariate (session 6): at or below ICE_TEMP deg C (fixed a priori: the freezing point
# plus a margin for sensor accuracy) for ICE_POINTS readings in a row, stage readings are flagged as possibly
# ice-affected. Only a series given a covariate reads these settings; without one each equals its base config
ICE_TEMP, ICE_POINTS = 0.5, 8
ICE_CONFIGS = {f"{c}+ice": {**kw, "ice_temp": ICE_TEMP, "ice_points": ICE_POINTS}
               for c, kw in (CONFIGS | TOD_CONFIGS).items()}


@dataclass
class RollingResult:
    start: int  # first scored index
    flags: dict  # variant -> bool array over values[start:]
    detectors: list = field(default_factory=list)  # (span start index, detector)
    fit_seconds: list = field(default_factory=list)
    score_seconds: dict = field(default_factory=dict)


def span_starts(ts: np.ndarray, initial_days: float, chunk_days: float) -> list[int]:
    t = np.asarray(ts, dtype=np.int64)
    first = t[0] + int(initial_days * DAY_MS)
    edges = np.arange(first, t[-1] + 1, int(chunk_days * DAY_MS))
    starts = sorted(set(int(i) for i in np.searchsorted(t, edges) if i < len(t)))
    return starts


def rolling_scores(
    values: np.ndarray,
    ts: np.ndarray,
    *,
    initial_days: float = 14,
    chunk_days: float = 7,
    order_every: int = 4,
    variants: dict | None = None,
    mode: str = "incremental",
    progress: bool = False,
    covariate: np.ndarray | None = None,
    **fit_kwargs,
) -> RollingResult:
    """``covariate``: the optional second variable of the ice rule (water temperature), aligned with ``values``;
    only configs with ``ice_temp`` read it."""
    x = np.asarray(values, dtype=float)
    cov = None if covariate is None else np.asarray(covariate, dtype=float)
    t = np.asarray(ts, dtype=np.int64)
    variants = VARIANTS if variants is None else variants
    starts = span_starts(t, initial_days, chunk_days)
    if not starts:
        raise ValueError("series shorter than the initial history")
    res = RollingResult(start=starts[0], flags={v: np.zeros(len(x) - starts[0], bool) for v in variants},
                        score_seconds={v: 0.0 for v in variants})
    bounds = list(zip(starts, starts[1:] + [len(x)]))
    params: ar.ArimaParams | None = None
    it = bounds
    if progress:
        from tqdm import tqdm

        it = tqdm(bounds, desc="spans", leave=False)
    for n, (a, b) in enumerate(it):
        t0 = time.perf_counter()
        hist = x[:a]
        if params is None or n % order_every == 0:
            params = ar.select_order(hist)
            det = fit_detector(hist, t[:a], arima_params=params, mode=mode, **fit_kwargs)
        else:
            det = fit_detector(hist, t[:a], order=params.order, mode=mode, **fit_kwargs)
            params = det.arima
        res.fit_seconds.append(time.perf_counter() - t0)
        res.detectors.append((a, det))
        for name, changes in variants.items():
            t1 = time.perf_counter()
            changes = dict(changes)
            if changes.get("rough_order", det.rough_order) != det.rough_order:
                # the history scale belongs to the roughness order: recompute it (label-free, cheap)
                changes["rough_scale"] = rough_scale_of(hist, det.rough_window, changes["rough_order"])
                if changes.get("rough_daily"):
                    changes["rough_profile"] = rough_profile_of(hist, t[:a], det.step_ms, det.rough_window,
                                                                changes["rough_order"])
            out = det.variant(**changes).score_series(x[a:b], t[a:b], covariate=None if cov is None else cov[a:b])
            res.score_seconds[name] += time.perf_counter() - t1
            res.flags[name][a - res.start : b - res.start] = out["anomalous"]
    return res


def metrics_of(result: RollingResult, values, ts, labels) -> dict[str, dict]:
    s = result.start
    valid = np.isfinite(np.asarray(values, dtype=float)[s:])
    return {
        name: all_metrics(np.asarray(labels)[s:], flags, np.asarray(ts)[s:], valid)
        for name, flags in result.flags.items()
    }


def detector_summary(det: HydroDetector) -> dict:
    return {"order": det.arima.order, "k": len(det.centroids), "aic": det.arima.aic}
