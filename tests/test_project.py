"""Project-wide checks: importing has no side effects; every DAG loads; the cleaning DAG runs for real."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from tests.conftest import ROOT, project_dag_files, run_dag

PACKAGES = ("serving", "training", "flink_jobs", "dags", "bench")


def _modules() -> list[str]:
    mods = []
    for pkg in PACKAGES:
        for p in sorted((ROOT / pkg).rglob("*.py")):
            rel = p.relative_to(ROOT).with_suffix("")
            mods.append(".".join(rel.parts).removesuffix(".__init__"))
    return mods


def test_importing_any_module_has_no_side_effects(tmp_path, tmp_path_factory):
    """No DB created, no directory made: run in a clean env whose every path points into an empty folder."""
    airflow_home = tmp_path_factory.mktemp("airflow-home")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SG_", "MLFLOW_", "AIRFLOW"))}
    env.update(SG_WORK_DIR=str(tmp_path / "work"), SG_ARTIFACT_ROOT=str(tmp_path / "mlruns"),
               MLFLOW_TRACKING_URI=f"sqlite:///{tmp_path / 'mlflow.db'}", AIRFLOW_HOME=str(airflow_home),
               PYTHONPATH=str(ROOT))
    code = "import importlib, sys\nfor m in sys.argv[1:]:\n    importlib.import_module(m)\n"
    subprocess.run([sys.executable, "-c", code, *_modules()], check=True, cwd=tmp_path, env=env)
    left = sorted(p.name for p in tmp_path.iterdir())
    assert left == [], f"importing the project created {left}"
    # Airflow itself writes airflow.cfg and logs/ into AIRFLOW_HOME on first import; never a metadata DB.
    assert not list(airflow_home.rglob("*.db"))


def test_settings_read_environment(monkeypatch, tmp_path):
    from serving.settings import get_settings

    monkeypatch.setenv("SG_WORK_DIR", "relative/work")
    monkeypatch.setenv("SG_FLINK_PARALLELISM", "3")
    monkeypatch.setenv("SG_FLINK_JOBMANAGER", "flink.example:8081")
    s = get_settings()
    assert s.work_dir == ROOT / "relative" / "work"
    assert s.landing_dir == ROOT / "relative" / "work" / "landing"
    assert s.flink_parallelism == 3 and s.flink_jobmanager == "flink.example:8081"


def test_dagbag_loads_every_dag_without_errors(airflow_db):
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(ROOT / "dags"))
    assert bag.import_errors == {}
    files = project_dag_files()
    assert {"clean_data"} <= set(bag.dag_ids)
    assert len(bag.dag_ids) >= len(files)


def test_clean_data_dag_runs_and_publishes(airflow_db, tmp_path):
    from serving.sources import SourceConfig
    from training.data.messy import write_messy
    from training.data.raw_sources import smd_timestamps

    rng = np.random.default_rng(0)
    raws = []
    for name in ("a", "b"):
        cfg = SourceConfig(name=name, value_names=["v"], series=[f"{name}/s"], interval_ms=60_000)
        truth = write_messy(cfg, {f"{name}/s": (smd_timestamps(300), rng.normal(size=(300, 1)))},
                            tmp_path / "raw" / name, seed=1)
        raws.append((name, truth.counts))
    out = tmp_path / "cleaned"
    run = run_dag("clean_data", {"raw_dirs": [str(tmp_path / "raw" / n) for n, _ in raws], "out_dir": str(out)})
    assert run.state == "success"
    for name, counts in raws:
        report = json.loads((out / name / "report.json").read_text())
        assert report["counts"]["rows_out"] == counts["rows_out"]
        assert (out / name / f"{name}__s.csv").exists()
    events = _asset_events("cleaned_data")
    assert events >= 1


def _asset_events(name: str) -> int:
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session

    with create_session() as session:
        return session.query(AssetEvent).join(AssetModel, AssetEvent.asset_id == AssetModel.id).filter(
            AssetModel.name == name).count()


def test_make_targets_exist():
    text = Path(ROOT / "Makefile").read_text()
    assert "demo:" in text and "test:" in text
    assert (ROOT / ".ci" / "run").read_text().strip().endswith("make test")


def test_signature_inference_drops_only_mlflows_integer_hint():
    import warnings

    import pandas as pd
    from mlflow.models import infer_signature

    from training import registry

    df = pd.DataFrame({"ts": np.arange(3, dtype=np.int64), "value": [1.0, 2.0, 3.0]})
    with warnings.catch_warnings(record=True) as plain:
        warnings.simplefilter("always")
        want = infer_signature(df, df)
    with warnings.catch_warnings(record=True) as ours:
        warnings.simplefilter("always")
        got = registry.infer_signature(df, df)
    assert any("integer column" in str(w.message) for w in plain)  # mlflow's hint, which fills training logs
    assert not [w for w in ours if "integer column" in str(w.message)]
    assert got == want
