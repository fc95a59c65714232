"""Read the cleaning job's output: one sorted CSV per series under ``<cleaned_dir>/<source>/``."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from serving.settings import get_settings
from serving.sources import series_file_name, series_from_file_name


def _dir(source: str, cleaned_dir: str | Path | None) -> Path:
    return (Path(cleaned_dir) / source) if cleaned_dir else get_settings().cleaned_dir / source


def list_series(source: str, cleaned_dir: str | Path | None = None) -> list[str]:
    folder = _dir(source, cleaned_dir)
    return sorted(series_from_file_name(p.stem) for p in folder.glob("*.csv"))


def read_series(source: str, series_id: str, cleaned_dir: str | Path | None = None) -> pd.DataFrame:
    """``ts`` (UTC epoch ms, sorted, unique), the value columns, ``gap_before``."""
    path = _dir(source, cleaned_dir) / f"{series_file_name(series_id)}.csv"
    if not path.exists():
        raise FileNotFoundError(
            f"no cleaned data for {series_id!r} of source {source!r} at {path}: run the clean_data DAG "
            "(or `python -m flink_jobs.clean_job`) first"
        )
    return pd.read_csv(path)


def read_report(source: str, cleaned_dir: str | Path | None = None) -> dict:
    return json.loads((_dir(source, cleaned_dir) / "report.json").read_text())
