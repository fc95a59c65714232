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
