"""Produce raw input for the cleaning job from a data folder (SMD layout or Logan River CSVs).

The SMD train halves become series ``machine-X-Y`` with one row a minute from ``SMD_START``; the Logan
River files become ``<site>/<variable>`` series of raw sensor values (no-data codes and NULLs kept,
timestamps in the observatory's local standard time as in the files). Both are written as messy
raw line files with exact defect counts (see ``training.data.messy``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from serving.sources import SourceConfig
from training.data import hydro, smd
from training.data.messy import MessyRates, MessyResult, write_messy

SMD_START_MS = 1_546_300_800_000  # 2019-01-01T00:00:00Z; SMD publishes no timestamps
SMD_INTERVAL_MS = 60_000
HYDRO_INTERVAL_MS = 15 * 60_000


def smd_channel_names(n: int = 38) -> list[str]:
    return [f"c{i}" for i in range(n)]


def smd_timestamps(n_rows: int, offset_rows: int = 0) -> np.ndarray:
    return SMD_START_MS + SMD_INTERVAL_MS * (offset_rows + np.arange(n_rows, dtype=np.int64))


def smd_raw(smd_dir: str | Path, out: str | Path, machines: list[str] | None = None, seed: int = 0,
            rates: MessyRates | None = None) -> MessyResult:
    machines = machines or smd.list_machines(smd_dir)
    series = {}
    n_channels = None
    for m in machines:
        train = smd.load_machine(smd_dir, m, with_test=False).train
        n_channels = train.shape[1]
        series[m] = (smd_timestamps(len(train)), train.astype(float))
    cfg = SourceConfig(name="smd", value_names=smd_channel_names(n_channels or 38), series=list(machines),
                       interval_ms=SMD_INTERVAL_MS, nodata_codes=[-9999.0])
    return write_messy(cfg, series, out, seed=seed, rates=rates)


def hydro_raw(hydro_dir: str | Path, out: str | Path, variables: tuple[str, ...] = hydro.VARIABLES,
              seed: int = 0, rates: MessyRates | None = None) -> MessyResult:
    series = {}
    for path in hydro.list_files(hydro_dir):
        df = hydro.read_file(path)
        for v in variables:
            if v in df.columns:
                s = hydro.series(df, v)
                series[f"{hydro.site_of(path)}/{v}"] = (s["ts"].to_numpy(), s["raw"].to_numpy()[:, None])
    offset = -7 * 60  # hydro.SOURCE_TZ is UTC-07:00
    cfg = SourceConfig(name="hydro", value_names=["value"], series=sorted(series), interval_ms=HYDRO_INTERVAL_MS,
                       nodata_codes=list(hydro.NODATA_CODES), naive_utc_offset_minutes=offset)
    return write_messy(cfg, series, out, seed=seed, rates=rates)
