"""Task bodies of the ``refit_hydro`` DAG (kept here so the DAG file only wires tasks)."""

from __future__ import annotations

import json
from pathlib import Path

BENCH_RESULTS = Path(__file__).resolve().parents[2] / "bench" / "results" / "hydro_bench.json"
# the ice rule's second variable: the same site's water temperature (the bench's ``selected_config_temp``)
COVARIATE = "temp"


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


def config_for(sensor: str, params: dict, temperature: bool = False):
    """The ``detector_config`` param's entry for ``sensor``, else its ``default`` entry, else the config the
    hydro bench chose for this series without its labels (``"<Site> <variable>"`` row of ``bench_results``,
    default ``bench/results/hydro_bench.json``): with ``temperature`` (the site's water temperature is there and
    ``use_temperature`` allows it) its ``selected_config_temp`` (a ``+ice`` config) when it has one, else its
    ``selected_config``; else None (the defaults)."""
    configs = params.get("detector_config") or {}
    if sensor in configs or "default" in configs:
        return configs.get(sensor, configs.get("default"))
    path = params.get("bench_results") or BENCH_RESULTS
    return (temperature and bench_choice(sensor, path, "selected_config_temp")) or bench_choice(sensor, path)


def bench_choice(sensor: str, path, field: str = "selected_config") -> str | None:
    """The bench's ``field`` for ``sensor`` (``Site/variable``); None when absent or unreadable."""
    try:
        results = json.loads(Path(path).read_text())["results"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    row = results.get(sensor.replace("/", " ", 1))
    return row.get(field) if isinstance(row, dict) else None


def temperature_of(sensor: str, params: dict, since_ms: int):
    """The site's water temperature (``ts, value``, finite readings from ``since_ms`` on) when the refit may use
    it: ``use_temperature`` is on, ``sensor`` is a stage sensor and the data folder has ``<site>/temp``
    readings; else None."""
    site, _, variable = sensor.rpartition("/")
    if not params.get("use_temperature") or variable != "stage":
        return None
    from training.hydro.pipeline import load_history

    try:
        temp = load_history(f"{site}/{COVARIATE}", params.get("hydro_dir") or None)
    except (FileNotFoundError, KeyError):
        return None
    temp = temp[(temp["ts"] >= since_ms) & temp["value"].notna()][["ts", "value"]]
    return temp if len(temp) else None


def refit_one(sensor: str, params: dict, logical_date) -> dict:
    from training.hydro.pipeline import fit_sensor, load_history

    df = load_history(sensor, params.get("hydro_dir") or None).sort_values("ts")
    days = float(params.get("history_days", 60))
    since = df["ts"].max() - int(days * 86_400_000)
    df = df[df["ts"] >= since][["ts", "value"]]
    temp = temperature_of(sensor, params, since)
    config = config_for(sensor, params, temperature=temp is not None)
    from training.hydro.pipeline import resolve_config

    # the covariate the model is meant to be served with: the site's temperature, when the config has the ice
    # rule and the temperature is there (a +ice model served without it is its base config)
    covariate = COVARIATE if temp is not None and resolve_config(config).get("ice_temp") is not None else None
    if covariate:
        df = df.merge(temp.rename(columns={"value": "covariate"}), on="ts", how="left")
    r = fit_sensor(sensor, df, refit_order=reselect_order(params, logical_date),
                   window=int(params.get("window", 30)), detector_config=config, trigger="refit_hydro",
                   covariate=covariate)
    d = r["detector"]
    return {"sensor": sensor, "model_name": r["model_name"], "model_version": r["model_version"],
            "order": list(d.arima.order), "k": len(d.centroids), "val_mae": r["metrics"].get("val_mae"),
            "config": config, "covariate": covariate}


def promote_all(results: list[dict]) -> list[dict]:
    from training.hydro.pipeline import promote_sensor
    from training.promotion import promote_each

    return promote_each(results, "sensor", promote_sensor,
                        lambda r: f"| order={r['order']} k={r['k']} covariate={r.get('covariate') or 'none'}")
