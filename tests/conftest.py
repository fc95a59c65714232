"""Test-wide isolation: every service the tests touch lives under one temp folder.

Set before anything imports Airflow or MLflow, so no test writes into the repository's own stores.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def project_dag_files() -> set[str]:
    """The DAG files in dags/ (one DAG per file, named after it): the modules dags/.airflowignore leaves out
    (the demo, the services, helpers) and __init__ excluded."""
    ignored = {line.strip().replace("\\.", ".") for line in (ROOT / "dags" / ".airflowignore").read_text().splitlines()}
    return {p.stem for p in (ROOT / "dags").glob("*.py") if p.name not in ignored | {"__init__.py"}}
TMP = Path(tempfile.mkdtemp(prefix="sg-tests-"))

# 2 cores: BLAS threads per process oversubscribe them and make the fits several times slower.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ["AIRFLOW_HOME"] = str(TMP / "airflow")
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(ROOT / "dags")
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__CORE__UNIT_TEST_MODE"] = "False"
os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{TMP / 'mlflow.db'}"
os.environ.pop("MLFLOW_REGISTRY_URI", None)
os.environ["SG_ARTIFACT_ROOT"] = str(TMP / "mlruns")
os.environ["SG_WORK_DIR"] = str(TMP / "work")
os.environ.setdefault("SG_FLINK_PARALLELISM", "2")
os.environ.setdefault("SG_TORCH_THREADS", "2")
os.environ.pop("SG_FLINK_JOBMANAGER", None)


@pytest.fixture(scope="session")
def tmp_root() -> Path:
    return TMP


@pytest.fixture(scope="session")
def airflow_db() -> Path:
    """A migrated Airflow metadata DB (SQLite) in the temp AIRFLOW_HOME, made once per session."""
    home = Path(os.environ["AIRFLOW_HOME"])
    home.mkdir(parents=True, exist_ok=True)
    subprocess.run([str(Path(sys.executable).with_name("airflow")), "db", "migrate"], check=True,
                   capture_output=True, env=os.environ.copy())
    return home


@pytest.fixture(scope="session")
def flink_batch_env():
    """One embedded Flink mini-cluster TableEnvironment (batch mode) shared by every test."""
    from flink_jobs.env import batch_table_env

    return batch_table_env(parallelism=int(os.environ["SG_FLINK_PARALLELISM"]))


def run_dag(dag_id: str, conf: dict | None = None):
    """Run one of the project's DAGs with ``dag.test()`` (real Airflow, in-process); returns the DagRun."""
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(ROOT / "dags"))
    assert not bag.import_errors, bag.import_errors
    dag = bag.get_dag(dag_id)
    assert dag is not None, f"DAG {dag_id} not found; have {sorted(bag.dag_ids)}"
    return dag.test(run_conf=conf or {})


@pytest.fixture(scope="session")
def flink_stream_env():
    """One StreamExecutionEnvironment (DataStream API, embedded mini-cluster) shared by the streaming tests."""
    from flink_jobs.env import stream_env

    return stream_env(parallelism=int(os.environ["SG_FLINK_PARALLELISM"]))
