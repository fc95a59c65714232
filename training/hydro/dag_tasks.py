"""Task bodies of the ``refit_hydro`` DAG (kept here so the DAG file only wires tasks)."""

from __future__ import annotations

import json
from pathlib import Path

BENCH_RESULTS = Path(__file__).resolve().parents[2] / "bench" / "results" / "hydro_bench.json"


def sensors_to_refit(params: dict) -> list[str]:
    if params.get("sensors"):
        return list(params["sensors"])
    variables = tuple(params.get("variables") or ("stage",))
    try:
        from training.data.cleaned import list_series

        found = [s for s in list_series("hydro") if s.split("/", 1)[-1] in variables]
        if found:
            return found
    except (FileNotFoundError, ImportError):
        pass
    from serving.settings import get_settings
    from training.data import hydro

    return hydro.series_ids(params.get("hydro_dir") or get_settings().hydro_dir, variables)


def reselect_order(params: dict, logical_date) -> bool:
    """ARIMA order re-selection runs every ``order_every_days`` (by the run's logical date) or on request."""
    every = max(1, int(params.get("order_every_days", 7)))
    return bool(params.get("reselect_order")) or logical_date.toordinal() % every == 0


def config_for(sensor: str, params: dict):
    """The ``detector_config`` param's entry for ``sensor``, else its ``default`` entry, else the config the
    hydro bench chose for this series without its labels (``selected_config`` of the ``"<Site> <variable>"``
    row of ``bench_results``, default ``bench/results/hydro_bench.json``), else None (the defaults)."""
    configs = params.get("detector_config") or {}
    if sensor in configs or "default" in configs:
        return configs.get(sensor, configs.get("default"))
    return bench_choice(sensor, params.get("bench_results") or BENCH_RESULTS)


def bench_choice(sensor: str, path) -> str | None:
    """The bench's ``selected_config`` for ``sensor`` (``Site/variable``); None when absent or unreadable."""
    try:
        results = json.loads(Path(path).read_text())["results"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    row = results.get(sensor.replace("/", " ", 1))
    return row.get("selected_config") if isinstance(row, dict) else None


def refit_one(sensor: str, params: dict, logical_date) -> dict:
    from training.hydro.pipeline import fit_sensor, load_history

    df = load_history(sensor, params.get("hydro_dir") or None).sort_values("ts")
    days = float(params.get("history_days", 60))
    df = df[df["ts"] >= df["ts"].max() - int(days * 86_400_000)]
    r = fit_sensor(sensor, df[["ts", "value"]], refit_order=reselect_order(params, logical_date),
                   window=int(params.get("window", 30)), detector_config=config_for(sensor, params),
                   trigger="refit_hydro")
    d = r["detector"]
    return {"sensor": sensor, "model_name": r["model_name"], "model_version": r["model_version"],
            "order": list(d.arima.order), "k": len(d.centroids), "val_mae": r["metrics"].get("val_mae")}


def promote_all(results: list[dict]) -> list[dict]:
    from training.hydro.pipeline import promote_sensor
    from training.promotion import promote_each

    return promote_each(results, "sensor", promote_sensor, lambda r: f"| order={r['order']} k={r['k']}")
