"""dag.test() of refit_hydro on a tiny synthetic Logan River-layout folder (two sensors, mapped refits)."""

from __future__ import annotations

import pytest

from training.data.synthetic_hydro import generate, write_logan_csv


@pytest.mark.slow
def test_refit_hydro_dag_two_sensors(airflow_db, tmp_root):
    from tests.conftest import run_dag
    from training import registry

    folder = tmp_root / "hydro_dag"
    for i, site in enumerate(("SynthDagA", "SynthDagB")):
        write_logan_csv(generate(1200, seed=20 + i, n_each=1), folder / "LRO_data" / f"{site}2021.csv")
    conf = {"sensors": ["SynthDagA/stage", "SynthDagB/stage"], "hydro_dir": str(folder), "reselect_order": True}
    run = run_dag("refit_hydro", conf)
    assert run.state == "success"
    for site in ("SynthDagA", "SynthDagB"):
        prod = registry.version_by_alias(registry.registry_name("hydro", f"{site}/stage"), "production")
        assert prod is not None and prod.tags.get("promotion")
    # a second run without order re-selection keeps the production order and makes a new challenger
    run2 = run_dag("refit_hydro", {**conf, "reselect_order": False, "order_every_days": 100000})
    assert run2.state == "success"
    name = registry.registry_name("hydro", "SynthDagA/stage")
    assert int(registry.version_by_alias(name, "challenger").version) == 2


def _ice_folder(root):
    """Two synthetic sites: IceA has stage and water temperature (cold for a stretch), IceB stage only; a bench
    results file choosing ``d2`` stage-only and ``d2+ice`` with temperature for both."""
    import json

    import numpy as np
    import pandas as pd

    folder = root / "hydro_dag_ice"
    for i, site in enumerate(("SynthIceA", "SynthIceB")):
        path = write_logan_csv(generate(1000, seed=40 + i, n_each=1), folder / "LRO_data" / f"{site}2021.csv")
        if site == "SynthIceA":
            df = pd.read_csv(path)
            df["temp"] = np.where(np.arange(len(df)) % 300 < 60, -0.2, 3.0)
            df.to_csv(path, index=False)
    bench = root / "hydro_dag_ice_bench.json"
    choice = {"selected_config": "d2", "selected_config_temp": "d2+ice"}
    bench.write_text(json.dumps({"results": {"SynthIceA stage": choice, "SynthIceB stage": choice}}))
    return folder, bench


def test_refit_uses_temperature_config_where_temperature_exists(tmp_root):
    from training.hydro.dag_tasks import config_for, temperature_of

    folder, bench = _ice_folder(tmp_root)
    on = {"hydro_dir": str(folder), "bench_results": str(bench), "use_temperature": True}
    assert temperature_of("SynthIceA/stage", on, 0) is not None
    assert temperature_of("SynthIceB/stage", on, 0) is None  # no temp column
    assert temperature_of("SynthIceA/stage", {**on, "use_temperature": False}, 0) is None
    assert config_for("SynthIceA/stage", on, temperature=True) == "d2+ice"
    assert config_for("SynthIceA/stage", on, temperature=False) == "d2"
    assert config_for("SynthIceA/stage", {**on, "detector_config": {"default": "d1"}}, temperature=True) == "d1"


@pytest.mark.slow
def test_refit_hydro_dag_temperature(airflow_db, tmp_root):
    import json

    import mlflow

    from tests.conftest import run_dag
    from training import registry

    folder, bench = _ice_folder(tmp_root)
    sensors = ["SynthIceA/stage", "SynthIceB/stage"]
    run = run_dag("refit_hydro", {"sensors": sensors, "hydro_dir": str(folder), "bench_results": str(bench),
                                  "use_temperature": True, "reselect_order": True})
    assert run.state == "success"
    client = mlflow.MlflowClient()
    for sensor, covariate in zip(sensors, ("temp", "none")):
        v = registry.version_by_alias(registry.registry_name("hydro", sensor), "challenger")
        params = client.get_run(v.run_id).data.params
        assert v.tags.get("covariate") == params["covariate"] == covariate
        assert ("ice_temp" in json.loads(params["detector_config"])) == (covariate == "temp")
