"""dag.test() of train_lstm_ed on two tiny synthetic machines in an SMD-layout folder (two mapped tasks
writing to the same SQLite MLflow store)."""

from __future__ import annotations

import pytest

from training.data.synthetic_metrics import make_machine, write_smd_layout


@pytest.mark.slow
def test_train_lstm_ed_dag_two_machines(airflow_db, tmp_root, capfd):
    from tests.conftest import run_dag
    from training import registry

    folder = write_smd_layout(tmp_root / "smd_dag", [
        make_machine(11, n_train=700, n_test=500, n_anomalies=2, period=200, name="machine-8-1"),
        make_machine(12, n_train=700, n_test=500, n_anomalies=2, period=200, name="machine-8-2"),
    ])
    conf = {"machines": ["machine-8-1", "machine-8-2"], "max_epochs": 1, "hidden": 8, "smd_dir": str(folder)}
    run = run_dag("train_lstm_ed", conf)
    assert run.state == "success"
    out, err = capfd.readouterr()
    assert "promote" in out + err  # the task logs are captured here
    assert "XCom not found" not in out + err  # the mapped results are read without a request past their end
    for m in ("machine-8-1", "machine-8-2"):
        name = registry.registry_name("lstm_ed", m)
        prod = registry.version_by_alias(name, "production")
        assert prod is not None and prod.tags.get("promotion")
