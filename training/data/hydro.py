"""Reader for Logan River Observatory sensor CSVs (any folder laid out like ../shared/data/hydro).

Each file has ``datetime`` then, per variable ``v``, the columns ``v`` (raw), ``v_cor`` (technician
corrected) and ``v_qual`` (qualifier code; any code marks the point anomalous, as pyhydroqc does).
``NULL`` means missing; ``-9999`` and ``7999`` are sensor no-data codes in raw columns.
Timestamps are local standard time of the observatory (UTC-07:00, no daylight saving).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

VARIABLES = ("temp", "cond", "ph", "do", "turb", "stage")
NODATA_CODES = (-9999.0, 7999.0)
SOURCE_TZ = "Etc/GMT+7"  # POSIX sign: this is UTC-07:00


def list_files(folder: str | Path) -> list[Path]:
    root = Path(folder)
    files = sorted(root.rglob("*.csv"))
    if not files:
        raise FileNotFoundError(f"no sensor CSV files under {root} (expected files like LRO_data/MainStreet2019.csv)")
    return files


def site_of(path: str | Path) -> str:
    """``MainStreet2019.csv`` -> ``MainStreet``."""
    stem = Path(path).stem
    return stem.rstrip("0123456789") or stem


def read_file(path: str | Path) -> pd.DataFrame:
    """The file as read, ``NULL`` -> NaN, plus ``ts`` (UTC epoch ms)."""
    df = pd.read_csv(path, na_values=["NULL"], keep_default_na=True)
    local = pd.to_datetime(df["datetime"], format="mixed")
    utc = local.dt.tz_localize(SOURCE_TZ)
    df["ts"] = (utc.dt.tz_convert("UTC").astype("int64") // 1_000_000).astype("int64")
    return df


def series(df: pd.DataFrame, variable: str) -> pd.DataFrame:
    """One variable as ``ts, raw, corrected, label`` with the no-data codes turned into NaN in ``value``."""
    if variable not in df.columns:
        raise KeyError(f"variable {variable!r} not in file (has {[c for c in df.columns if c in VARIABLES]})")
    raw = df[variable].astype(float)
    value = raw.where(~raw.isin(NODATA_CODES))
    out = pd.DataFrame(
        {
            "ts": df["ts"].to_numpy(),
            "raw": raw.to_numpy(),
            "value": value.to_numpy(),
            "corrected": df.get(f"{variable}_cor", pd.Series(np.nan, index=df.index)).astype(float).to_numpy(),
            "label": df.get(f"{variable}_qual", pd.Series(np.nan, index=df.index)).notna().astype(np.int8).to_numpy(),
        }
    )
    return out


def series_ids(folder: str | Path, variables: tuple[str, ...] = VARIABLES) -> list[str]:
    """``<site>/<variable>`` for every file and variable present."""
    ids = []
    for f in list_files(folder):
        cols = pd.read_csv(f, nrows=0).columns
        ids += [f"{site_of(f)}/{v}" for v in variables if v in cols]
    return ids
