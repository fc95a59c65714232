"""Seeded synthetic water-level series with labeled anomalies, and a writer of the Logan River CSV layout.

The level is a slow seasonal curve plus a daily cycle, AR(1) noise and rain events (fast rise, exponential
recession: normal behaviour, not labeled). Injected and labeled: spikes, level shifts, stuck sensor (the value
repeats), drift (a linear ramp that snaps back) and dropouts (the reading falls to the sensor floor). A few
short gaps (missing rows written as NULL) are unlabeled.

``write_logan_csv`` writes ``datetime, stage, stage_cor, stage_qual`` (qualifier code where labeled, ``NULL``
elsewhere; missing readings ``NULL``) so ``training.data.hydro`` reads it back like the real files.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

KINDS = ("spike", "shift", "stuck", "drift", "dropout")
QUAL_CODE = {"spike": 1, "shift": 2, "stuck": 3, "drift": 4, "dropout": 5}


def generate(
    n: int = 6000, step_minutes: int = 15, seed: int = 0, n_each: int = 3, start: str = "2021-01-01",
    train_fraction: float = 0.3,
) -> pd.DataFrame:
    """``ts`` (UTC ms), ``value`` (NaN in gaps), ``clean``, ``label`` (0/1), ``kind`` ('' or an anomaly kind).

    Anomalies are placed only after ``train_fraction`` of the series, so a history prefix exists that a
    detector can be fitted on without seeing any of them.
    """
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    per_day = 24 * 60 // step_minutes
    level = 50 + 8 * np.sin(2 * np.pi * t / (n * 1.3)) + 0.6 * np.sin(2 * np.pi * t / per_day)
    noise = np.zeros(n)
    e = rng.normal(0, 0.08, n)
    for i in range(1, n):
        noise[i] = 0.8 * noise[i - 1] + e[i]
    rain = np.zeros(n)
    for s in rng.choice(n - 200, size=max(1, n // 1500), replace=False):
        rise, peak = int(rng.integers(6, 16)), float(rng.uniform(3, 8))
        shape = np.concatenate([np.linspace(0, 1, rise), np.exp(-np.arange(180) / rng.uniform(30, 60))]) * peak
        rain[s : s + len(shape)] += shape[: n - s]
    clean = level + noise + rain
    value = clean.copy()
    label = np.zeros(n, dtype=np.int8)
    kind = np.array([""] * n, dtype=object)
    first = int(train_fraction * n)
    # slots 130 points apart (longest anomaly is 120); fewer anomalies when the series is too short
    free = np.arange(first, n - 130, 130)
    kinds = rng.permutation(np.repeat(KINDS, n_each))[: len(free)]
    slots = np.sort(rng.choice(free, size=len(kinds), replace=False))
    for s, k in zip(slots, kinds):
        s = int(s)
        if k == "spike":
            length = int(rng.integers(1, 4))
            value[s : s + length] += rng.choice([-1, 1]) * rng.uniform(6, 15)
        elif k == "shift":
            length = int(rng.integers(30, 100))
            value[s : s + length] += rng.choice([-1, 1]) * rng.uniform(4, 8)
        elif k == "stuck":
            length = int(rng.integers(30, 100))
            value[s : s + length] = value[s]
        elif k == "drift":
            length = int(rng.integers(50, 120))
            value[s : s + length] += np.linspace(0, rng.choice([-1, 1]) * rng.uniform(4, 8), length)
        else:  # dropout to the sensor floor
            length = int(rng.integers(2, 12))
            value[s : s + length] = 0.0
        label[s : s + length] = 1
        kind[s : s + length] = k
    for g in rng.choice(np.arange(first, n - 10), size=3, replace=False):
        if not label[g : g + 4].any():
            value[g : g + 4] = np.nan
    ts = pd.Timestamp(start, tz="UTC").value // 1_000_000 + t.astype(np.int64) * step_minutes * 60_000
    return pd.DataFrame({"ts": ts, "value": value, "clean": clean, "label": label, "kind": kind})


def write_logan_csv(df: pd.DataFrame, path: str | Path, variable: str = "stage") -> Path:
    """Write one series in the Logan River layout (local time UTC-07:00, ``NULL`` for missing)."""
    from training.data.hydro import SOURCE_TZ

    local = pd.to_datetime(df["ts"], unit="ms", utc=True).dt.tz_convert(SOURCE_TZ).dt.tz_localize(None)
    codes = df["kind"].map(QUAL_CODE) if "kind" in df else pd.Series(1, index=df.index)
    out = pd.DataFrame(
        {
            "datetime": local.dt.strftime("%Y-%m-%d %H:%M:%S"),
            variable: df["value"].round(4),
            f"{variable}_cor": df.get("clean", df["value"]).round(4),
            f"{variable}_qual": codes.where(df["label"].astype(bool)).astype("Int64"),
        }
    )
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    out.to_csv(path, index=False, na_rep="NULL")
    return path


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description="Write seeded synthetic water-level files in the Logan River layout.")
    ap.add_argument("out", help="folder to write <Site>2021.csv files into")
    ap.add_argument("--sites", nargs="+", default=["SynthA"], help="site names (one file each)")
    ap.add_argument("--n", type=int, default=6000, help="points per file (15-minute steps)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    for i, site in enumerate(args.sites):
        p = write_logan_csv(generate(args.n, seed=args.seed + i), Path(args.out) / f"{site}2021.csv")
        print(p)


if __name__ == "__main__":
    main()
