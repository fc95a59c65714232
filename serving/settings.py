"""Project settings: environment variables with defaults relative to the repository root.

Reading settings has no side effects: nothing is created, opened or contacted here.
Every other layer reads its paths, URIs and knobs from ``get_settings()``.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def _path(env: str, default: Path) -> Path:
    value = os.environ.get(env)
    if not value:
        return default
    p = Path(value)
    return p if p.is_absolute() else REPO_ROOT / p


def _int(env: str, default: int) -> int:
    value = os.environ.get(env)
    return int(value) if value else default


@dataclass(frozen=True)
class Settings:
    """One snapshot of the environment; see the settings table in README.md."""

    repo_root: Path
    mlflow_tracking_uri: str
    mlflow_registry_uri: str
    artifact_root: Path
    airflow_home: Path
    data_dir: Path
    work_dir: Path
    raw_dir: Path
    cleaned_dir: Path
    landing_dir: Path
    flink_parallelism: int
    flink_jobmanager: str | None
    flink_python: str  # interpreter of the Python workers on the TaskManagers (same path on every host)
    torch_threads: int
    extra: dict = field(default_factory=dict)

    @property
    def smd_dir(self) -> Path:
        return self.data_dir / "smd"

    @property
    def hydro_dir(self) -> Path:
        return self.data_dir / "hydro"

    @property
    def nab_dir(self) -> Path:
        return self.data_dir / "nab"


def get_settings() -> Settings:
    """Read the environment now (cheap; call it where the value is needed, not at import)."""
    work = _path("SG_WORK_DIR", REPO_ROOT / "var")
    tracking = os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{REPO_ROOT / 'mlflow.db'}"
    jobmanager = os.environ.get("SG_FLINK_JOBMANAGER") or None
    return Settings(
        repo_root=REPO_ROOT,
        mlflow_tracking_uri=tracking,
        mlflow_registry_uri=os.environ.get("MLFLOW_REGISTRY_URI") or tracking,
        artifact_root=_path("SG_ARTIFACT_ROOT", REPO_ROOT / "mlruns"),
        airflow_home=_path("AIRFLOW_HOME", REPO_ROOT / ".airflow"),
        data_dir=_path("SG_DATA_DIR", REPO_ROOT.parent / "shared" / "data"),
        work_dir=work,
        raw_dir=_path("SG_RAW_DIR", work / "raw"),
        cleaned_dir=_path("SG_CLEANED_DIR", work / "cleaned"),
        landing_dir=_path("SG_LANDING_DIR", work / "landing"),
        flink_parallelism=_int("SG_FLINK_PARALLELISM", 2),
        flink_jobmanager=jobmanager,
        flink_python=os.environ.get("SG_FLINK_PYTHON") or sys.executable,
        torch_threads=_int("SG_TORCH_THREADS", max(1, (os.cpu_count() or 2))),
    )
