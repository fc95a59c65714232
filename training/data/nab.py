"""Reader for Numenta Anomaly Benchmark series and their label windows (layout of ../shared/data/nab)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd


def list_series(folder: str | Path) -> list[str]:
    """Keys like ``realKnownCause/nyc_taxi.csv`` (as in ``labels/combined_windows.json``)."""
    data = Path(folder) / "data"
    if not data.is_dir():
        raise FileNotFoundError(f"{data} not found: a NAB folder needs data/<category>/<name>.csv and labels/")
    return sorted(str(p.relative_to(data)) for p in data.glob("*/*.csv"))


def series_id(key: str) -> str:
    return f"nab/{Path(key).stem}"


def load_series(folder: str | Path, key: str) -> pd.DataFrame:
    """``ts`` (UTC epoch ms), ``value``, ``label`` (1 inside an official anomaly window, inclusive)."""
    root = Path(folder)
    df = pd.read_csv(root / "data" / key)
    stamps = pd.to_datetime(df["timestamp"])
    labels = np.zeros(len(df), dtype=np.int8)
    windows_path = root / "labels" / "combined_windows.json"
    if windows_path.exists():
        windows = json.loads(windows_path.read_text()).get(key, [])
        for start, end in windows:
            labels[(stamps >= pd.Timestamp(start)) & (stamps <= pd.Timestamp(end))] = 1
    return pd.DataFrame(
        {"ts": (stamps.astype("int64") // 1_000_000).to_numpy(), "value": df["value"].astype(float), "label": labels}
    )
