"""Per sensor: fit (ARIMA order, KMeans++ states, transition matrix), validate, evaluate, log to MLflow
(experiment ``hydro``), register ``hydro-<site>-<variable>`` with alias ``challenger``, promote.

Promotion compares the label-free ``val_mae`` (lower is better) through ``training.registry.promote``.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

EXPERIMENT = "hydro"
FAMILY = "hydro"
PROMOTION_METRIC = "val_mae"
STAGE_CHANGE_THRESHOLD = 2.0  # the paper's 2 cm; Logan River stage is in cm


def load_history(series_id: str, folder: str | None = None) -> pd.DataFrame:
    """Cleaned series (``training.data.cleaned``) when present, else the Logan River-layout folder.

    Returns ``ts, value`` and, when read from a labeled folder, ``label`` (used only for evaluation)."""
    try:
        from training.data.cleaned import read_series

        return read_series("hydro", series_id)[["ts", "value"]]
    except (FileNotFoundError, ImportError, KeyError):
        pass
    from serving.settings import get_settings
    from training.data import hydro

    site, variable = series_id.split("/", 1)
    root = Path(folder) if folder else get_settings().hydro_dir
    files = [f for f in hydro.list_files(root) if hydro.site_of(f) == site]
    if not files:
        raise FileNotFoundError(f"no file for site {site!r} under {root}")
    return pd.concat([hydro.series(hydro.read_file(f), variable) for f in files])[["ts", "value", "label"]]


def default_threshold(series_id: str) -> float | None:
    return STAGE_CHANGE_THRESHOLD if series_id.endswith("/stage") else None


def _current_order(name: str):
    """ARIMA order of the production model (used when the order is not re-selected)."""
    from training import registry

    v = registry.version_by_alias(name)
    if v is None:
        return None
    import mlflow

    run = mlflow.MlflowClient().get_run(v.run_id)
    o = run.data.params.get("order")
    return tuple(json.loads(o)) if o else None


def resolve_config(config) -> dict:
    """Detector settings from a config name of the hydro bench (``evaluate.CONFIGS``: ``d2``, ``d2+local``,
    ``d2+daily``, ``d1+alert+tod``, ``d1+alert+ice`` (reads a ``covariate`` column when scored), ...), a dict of
    ``HydroDetector`` settings, or nothing (the defaults, ``d2``)."""
    if not config:
        return {}
    if isinstance(config, str):
        from training.hydro.evaluate import CONFIGS, ICE_CONFIGS, TOD_CONFIGS

        named = CONFIGS | TOD_CONFIGS | ICE_CONFIGS
        if config not in named:
            raise ValueError(f"unknown hydro detector config {config!r}: use one of {sorted(named)} "
                             "or a dict of HydroDetector settings")
        return dict(named[config])
    return dict(config)


def fit_sensor(series_id: str, history_df: pd.DataFrame, eval_df: pd.DataFrame | None = None, *,
               refit_order: bool = True, order=None, window: int = 30, mode: str = "incremental",
               change_threshold: float | None = None, detector_config=None, register: bool = True,
               trigger: str = "manual", covariate: str | None = None) -> dict:
    """One MLflow run for one sensor and refit. ``eval_df`` (``ts, value, label``, optionally ``covariate``: the
    site's water temperature for the ``+ice`` configs) is scored after the history and its metrics are logged as
    ``eval_*`` (never used for fitting or promotion).
    ``detector_config`` (``resolve_config``): e.g. the config the hydro bench chose for the site without
    its labels; it travels inside the registered model and is logged as the ``detector_config`` param.
    ``covariate``: the variable the model is to be served with as its ice-rule covariate (``temp``: the stream's
    ``covariates=stage=temp``, the pyfunc's ``covariate`` column), logged as the ``covariate`` param and tag of
    the run and tag of the model version ("none" without); a ``covariate`` column of ``history_df`` (the
    readings aligned by ``ts``) is used for the in-sample plot."""
    import mlflow
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, Schema

    from serving.core.event_metrics import all_metrics
    from serving.core.markov import transition_table
    from serving.hydro_pyfunc import HydroPyfunc
    from serving.settings import get_settings
    from training import registry
    from training.hydro import plots
    from training.hydro.fit import fit_with_validation

    s = get_settings()
    registry.configure(s, EXPERIMENT)
    name = registry.registry_name(FAMILY, series_id)
    if order is None and not refit_order:
        order = _current_order(name)
    thr = change_threshold if change_threshold is not None else default_threshold(series_id)
    h = history_df.sort_values("ts")
    settings = resolve_config(detector_config)
    det, val = fit_with_validation(h["value"].to_numpy(float), h["ts"].to_numpy(np.int64), order=order,
                                   window=window, mode=mode, change_threshold=thr, **settings)
    counts = det.counts
    metrics = {"aic": det.arima.aic, "inertia": det.meta["inertia"], "silhouette": det.meta["silhouette"],
               "sigma": det.arima.sigma, "change_threshold": det.change_threshold, "history_points": len(h),
               **{f"state_count_{i}": int(c) for i, c in enumerate(counts.sum(axis=1))}, **val}
    evaluation, out_eval = None, None
    if eval_df is not None and len(eval_df):
        e = eval_df.sort_values("ts")
        ev_x, ev_t = e["value"].to_numpy(float), e["ts"].to_numpy(np.int64)
        ev_c = e["covariate"].to_numpy(float) if "covariate" in e else None
        out_eval = det.score_series(ev_x, ev_t, covariate=ev_c)
        if "label" in e:
            evaluation = {}
            from training.hydro.evaluate import VARIANTS

            for variant, kw in {"arima": VARIANTS["arima"], "arima_markov": VARIANTS["arima+markov"],
                                "full": {}}.items():
                flags = out_eval["anomalous"] if variant == "full" else det.variant(**kw).score_series(ev_x, ev_t)[
                    "anomalous"]
                evaluation[variant] = all_metrics(e["label"].to_numpy(), flags, ev_t, np.isfinite(ev_x))
                for k in ("sensitivity", "specificity", "precision", "f1", "event_f1", "false_alarms_per_day"):
                    v = evaluation[variant][k]
                    if np.isfinite(v):
                        metrics[f"eval_{variant}_{k}"] = float(v)
    params = {"order": json.dumps(list(det.arima.order)), "k": len(det.centroids), "window": window,
              "mode": mode, "level": det.level, "hold": det.hold, "density_window": det.density_window,
              "stuck_run": det.stuck_run, "series_id": series_id, "trigger": trigger,
              "detector_config": json.dumps(settings, sort_keys=True),
              "order_reselected": order is None, "covariate": covariate or "none"}
    wrapper = HydroPyfunc(det)
    example = pd.DataFrame({"ts": h["ts"].to_numpy(np.int64)[-48:], "value": h["value"].to_numpy(float)[-48:]})
    signature = registry.infer_signature(example, wrapper.predict(None, example))
    # the ice rule's water temperature is an optional input column (schema enforcement drops undeclared ones)
    signature = ModelSignature(Schema([*signature.inputs.inputs, ColSpec("double", "covariate", required=False)]),
                               signature.outputs)
    with tempfile.TemporaryDirectory() as tmp, registry.sqlite_write_lock(s):
        tmp = Path(tmp)
        table = pd.DataFrame(transition_table(counts))
        table.to_csv(tmp / "transition_matrix.csv", index=False)
        pd.DataFrame(det.arima.grid).to_csv(tmp / "aic_grid.csv", index=False)
        plots.transition_heatmap(det.transition_matrix, det.centroids, tmp / "transition_heatmap.png", name)
        if out_eval is not None:
            plots.fitted_series(ev_t, ev_x, out_eval, tmp / "fitted_series.png", f"{series_id}: evaluation span",
                                e["label"].to_numpy() if "label" in e else None)
        else:
            tail_x, tail_t = h["value"].to_numpy(float)[-2000:], h["ts"].to_numpy(np.int64)[-2000:]
            tail_c = h["covariate"].to_numpy(float)[-2000:] if "covariate" in h else None
            plots.fitted_series(tail_t, tail_x, det.score_series(tail_x, tail_t, covariate=tail_c),
                                tmp / "fitted_series.png",
                                f"{series_id}: last history points (in-sample)")
        if evaluation is not None:
            (tmp / "evaluation.json").write_text(json.dumps(evaluation, indent=1))
        log = registry.retry_locked
        run = log(mlflow.start_run)(run_name=f"{series_id}:{trigger}", tags={
            "series_id": series_id, "family": FAMILY, "covariate": covariate or "none"})
        try:
            log(mlflow.log_params)(params)
            log(mlflow.log_metrics)({k: float(v) for k, v in metrics.items() if v is not None and np.isfinite(v)})
            log(mlflow.log_artifacts)(str(tmp))
            info, version = registry.log_model(wrapper, name, signature, example, register)
        finally:
            mlflow.end_run()
    if register and version is not None:
        with registry.sqlite_write_lock(s):
            log(mlflow.MlflowClient().set_model_version_tag)(name, str(version), "covariate", covariate or "none")
        registry.set_challenger(name, version)
    return {"series_id": series_id, "run_id": run.info.run_id, "model_name": name, "model_version": version,
            "model_uri": info.model_uri, "metrics": metrics, "evaluation": evaluation, "detector": det}


def promote_sensor(series_id: str):
    from training import registry

    return registry.promote(registry.registry_name(FAMILY, series_id), PROMOTION_METRIC, higher_is_better=False)


def split_history(df: pd.DataFrame, history_fraction: float = 0.5):
    n = int(len(df) * history_fraction)
    return df.iloc[:n], df.iloc[n:]


def fit_and_promote(series_ids: list[str], folder: str | None = None, *, history_fraction: float = 0.5,
                    echo=print) -> list[dict]:
    """For the demo: per sensor fit on the first part, evaluate on the rest, register, promote; print a table."""
    rows, results = [], []
    for sid in series_ids:
        df = load_history(sid, folder)
        hist, ev = split_history(df, history_fraction)
        r = fit_sensor(sid, hist, ev if "label" in ev else None, trigger="demo")
        p = promote_sensor(sid)
        r["promotion"] = p
        results.append(r)
        m, d = r["metrics"], r["detector"]
        rows.append({"sensor": sid, "version": r["model_version"], "order": str(d.arima.order),
                     "k": len(d.centroids), "val_mae": round(m.get("val_mae", float("nan")), 4),
                     "ARIMA F1": round(m.get("eval_arima_f1", float("nan")), 3),
                     "full F1": round(m.get("eval_full_f1", float("nan")), 3),
                     "full event F1": round(m.get("eval_full_event_f1", float("nan")), 3),
                     "production": "promoted" if p.promoted else "kept"})
    echo(pd.DataFrame(rows).to_markdown(index=False) if rows else "(no sensors)")
    return results
