"""Replay a data set into the landing directory as rolled files, at a rate or as fast as possible.

    python -m flink_jobs.replay smd --machines machine-1-2 --rows 3000 --rate 500
    python -m flink_jobs.replay hydro --sites MainStreet --variables stage --rate 0
    python -m flink_jobs.replay synthetic --series 3 --rows 2000
    python -m flink_jobs.replay lines path/to/raw_source_folder

Rows of all series are merged in timestamp order and cut into files of ``--rows-per-file`` lines.
Each file is written under a hidden name and renamed when complete, so the streaming job's file
source never reads a half-written file. File names (``<prefix>-<publish ms>-<seq>-<pid>.csv``) sort
in publication order, the order in which the job's file source reads queued files. ``--rate`` is rows
per second over all series (0: as fast as possible). ``--jitter-ms`` shuffles rows within that bound
and ``--duplicates`` repeats a share of the rows, to exercise the jobs' out-of-order and de-duplication
handling.
"""

from __future__ import annotations

import argparse
import csv
import heapq
import json
import math
import os
import random
import sys
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

SMD_INTERVAL_MS = 60_000
DEFAULT_T0 = "2024-01-01T00:00:00Z"
HYDRO_NAIVE_OFFSET = "-07:00"  # Logan River timestamps are local standard time, UTC-07:00


@dataclass(frozen=True)
class Line:
    ts: int  # event time (ms), for ordering and shuffling
    series_id: str
    text: str  # the landing line without newline


@dataclass
class ReplayReport:
    files: list[dict] = field(default_factory=list)  # name, published_ms, rows, first_ts, last_ts
    rows: int = 0
    seconds: float = 0.0

    def publish_time(self, ts: int) -> int | None:
        """Wall-clock ms at which the file holding event time ``ts`` was published (None: not replayed)."""
        for f in self.files:
            if f["first_ts"] <= ts <= f["last_ts"]:
                return f["published_ms"]
        return None


def iso_ms(text: str) -> int:
    return int(datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC).timestamp() * 1000)


# ---- data sets -----------------------------------------------------------------------------------------
def smd_lines(smd_dir: str | Path, machine: str, start: int = 0, rows: int | None = None,
              t0_ms: int | None = None, interval_ms: int = SMD_INTERVAL_MS, fmt: str = "csv") -> Iterator[Line]:
    """The test half of one SMD machine from row ``start``; row i gets t0 + i * interval (1 row per minute)."""
    path = Path(smd_dir) / "test" / f"{machine}.txt"
    if not path.exists():
        raise FileNotFoundError(f"no SMD test half for {machine!r} at {path}")
    t0 = iso_ms(DEFAULT_T0) if t0_ms is None else t0_ms
    with open(path) as fh:
        for i, text in enumerate(fh):
            if i < start:
                continue
            if rows is not None and i >= start + rows:
                break
            ts = t0 + i * interval_ms
            values = text.strip()
            if fmt == "json":
                body = json.dumps({"series_id": machine, "timestamp": ts, "values": [float(v) for v in values.split(",")]})
            else:
                body = f"{machine},{ts},{values}"
            yield Line(ts, machine, body)


def hydro_lines(hydro_dir: str | Path, site: str, variable: str, start: int = 0,
                rows: int | None = None) -> Iterator[Line]:
    """One Logan River variable as ``<site>/<variable>,<local time>-07:00,<raw value>`` (NULL kept)."""
    files = sorted(Path(hydro_dir).rglob(f"{site}*.csv"))
    if not files:
        raise FileNotFoundError(f"no Logan River file for site {site!r} under {hydro_dir}")
    sid = f"{site}/{variable}"
    n = 0
    for path in files:
        with open(path, newline="") as fh:
            for i, rec in enumerate(csv.DictReader(fh)):
                if i < start or not rec.get("datetime"):
                    continue
                if rows is not None and n >= rows:
                    return
                if variable not in rec:
                    raise KeyError(f"{path.name} has no column {variable!r}")
                stamp = rec["datetime"].strip().replace(" ", "T") + HYDRO_NAIVE_OFFSET
                n += 1
                yield Line(iso_ms(stamp), sid, f"{sid},{stamp},{rec[variable].strip() or 'NULL'}")


def synthetic_lines(n_series: int = 2, rows: int = 1000, channels: int = 38, seed: int = 0,
                    t0_ms: int | None = None, interval_ms: int = SMD_INTERVAL_MS,
                    anomaly_every: int = 400) -> Iterator[Line]:
    """Daily-periodic channels in [0, 1] with noise and a level shift on a few channels every ``anomaly_every`` rows."""
    rng = random.Random(seed)
    t0 = iso_ms(DEFAULT_T0) if t0_ms is None else t0_ms
    phases = [[rng.random() * 6.28 for _ in range(channels)] for _ in range(n_series)]
    for i in range(rows):
        for s in range(n_series):
            sid = f"synthetic-{s + 1}"
            shifted = anomaly_every and (i % anomaly_every) >= anomaly_every - 20
            vals = []
            for c in range(channels):
                v = 0.5 + 0.3 * math.sin(6.283 * i / 1440 + phases[s][c]) + rng.gauss(0, 0.02)
                if shifted and c % 7 == s % 7:
                    v += 0.4
                vals.append(min(1.0, max(0.0, v)))
            ts = t0 + i * interval_ms
            yield Line(ts, sid, f"{sid},{ts}," + ",".join(f"{v:.6f}" for v in vals))


def folder_lines(folder: str | Path) -> Iterator[Line]:
    """Landing lines already in files (e.g. a raw source folder): replayed in file order, ts unparsed (0)."""
    for path in sorted(Path(folder).rglob("*")):
        if path.is_file() and path.suffix in (".csv", ".txt", ".jsonl") and not path.name.startswith((".", "_")):
            with open(path) as fh:
                for text in fh:
                    text = text.rstrip("\n")
                    yield Line(0, text.split(",", 1)[0], text)


# ---- perturbations -------------------------------------------------------------------------------------
def merge(streams: Iterable[Iterator[Line]]) -> Iterator[Line]:
    """Merge per-series line streams (each in time order) into one stream in time order."""
    return heapq.merge(*streams, key=lambda x: x.ts)


def perturb(lines: Iterable[Line], jitter_ms: int = 0, duplicates: float = 0.0, seed: int = 0) -> list[Line]:
    """Shuffle within ``jitter_ms`` (sort by ts + U[0, jitter)) and repeat a share of rows within the bound."""
    rng = random.Random(seed)
    out = []
    for line in lines:
        out.append((line.ts + rng.random() * jitter_ms, line))
        if duplicates and rng.random() < duplicates:
            out.append((line.ts + rng.random() * jitter_ms, line))
    out.sort(key=lambda p: p[0])
    return [line for _, line in out]


# ---- writing -------------------------------------------------------------------------------------------
_last_name_ms = 0


def _name_ms() -> int:
    """Wall-clock ms for a file name, strictly increasing in this process.

    Path order must be publication order (the streaming file source reads queued files in path order),
    also across ``write_landing`` calls and after a clock step back; other writers are ordered by time.
    """
    global _last_name_ms
    _last_name_ms = max(int(time.time() * 1000), _last_name_ms + 1)
    return _last_name_ms


def write_landing(lines: Iterable[Line], landing_dir: str | Path, *, rate: float = 0.0, rows_per_file: int = 500,
                  prefix: str = "replay", total: int | None = None, progress: bool = True,
                  roll_ms: int | None = None, min_gap_ms: int = 0) -> ReplayReport:
    """Write ``lines`` into ``landing_dir`` as rolled files; ``rate`` rows/s (0 = as fast as possible).

    A file is closed after ``rows_per_file`` rows, or after ``roll_ms`` of wall time when given (so a slow
    stream is not held back). Two files are published at least ``min_gap_ms`` apart: set it above the
    job's discovery interval, so that files are read in the order they were written. Returns when the
    last file is published.
    """
    from tqdm import tqdm

    landing = Path(landing_dir)
    landing.mkdir(parents=True, exist_ok=True)
    report = ReplayReport()
    start = time.perf_counter()
    buf: list[Line] = []
    opened = time.perf_counter()
    seq = 0
    last_publish = 0.0

    def publish():
        nonlocal buf, seq, opened, last_publish
        if not buf:
            return
        gap = last_publish + min_gap_ms / 1000 - time.perf_counter()
        if gap > 0:
            time.sleep(gap)
        name = f"{prefix}-{_name_ms():013d}-{seq:07d}-{os.getpid()}.csv"
        tmp = landing / f".{name}.tmp"
        tmp.write_text("".join(line.text + "\n" for line in buf))
        os.replace(tmp, landing / name)
        stamps = [line.ts for line in buf]
        report.files.append({"name": name, "published_ms": int(time.time() * 1000), "rows": len(buf),
                             "first_ts": min(stamps), "last_ts": max(stamps)})
        seq += 1
        buf = []
        opened = last_publish = time.perf_counter()

    bar = tqdm(total=total, unit="rows", desc=f"replay -> {landing.name}", disable=not progress, mininterval=0.5)
    for line in lines:
        buf.append(line)
        report.rows += 1
        if rate > 0:
            due = start + report.rows / rate
            wait = due - time.perf_counter()
            if wait > 0:
                if buf and roll_ms is not None and (time.perf_counter() + wait - opened) * 1000 >= roll_ms:
                    publish()
                time.sleep(wait)
        if len(buf) >= rows_per_file or (roll_ms is not None and (time.perf_counter() - opened) * 1000 >= roll_ms):
            publish()
        bar.update(1)
    publish()
    bar.close()
    report.seconds = time.perf_counter() - start
    return report


# ---- CLI -----------------------------------------------------------------------------------------------
def _lines_from_args(args) -> tuple[Iterator[Line], int | None]:
    from serving.settings import get_settings

    data = Path(args.data_dir) if args.data_dir else get_settings().data_dir
    if args.dataset == "smd":
        machines = args.machines.split(",")
        t0 = iso_ms(args.t0)
        streams = [smd_lines(data / "smd", m, args.start, args.rows, t0, fmt=args.format) for m in machines]
        return merge(streams), (args.rows * len(machines) if args.rows else None)
    if args.dataset == "hydro":
        streams = [hydro_lines(data / "hydro", s, v, args.start, args.rows)
                   for s in args.sites.split(",") for v in args.variables.split(",")]
        return merge(streams), None
    if args.dataset == "synthetic":
        return synthetic_lines(args.series, args.rows or 1000, args.channels, args.seed, iso_ms(args.t0)), \
            (args.rows or 1000) * args.series
    return folder_lines(args.folder), None


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m flink_jobs.replay", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=__doc__.split("\n\n", 1)[1])
    p.add_argument("--landing-dir", default=None, help="target folder (default: SG_LANDING_DIR)")
    p.add_argument("--data-dir", default=None, help="shared data folder (default: SG_DATA_DIR)")
    p.add_argument("--rate", type=float, default=0.0, help="rows per second over all series; 0 = as fast as possible")
    p.add_argument("--rows-per-file", type=int, default=500, help="lines per landing file")
    p.add_argument("--roll-ms", type=int, default=None, help="also close a file after this much wall time")
    p.add_argument("--min-gap-ms", type=int, default=0,
                   help="publish files at least this far apart (set above the job's discovery interval)")
    p.add_argument("--jitter-ms", type=int, default=0, help="shuffle rows within this event-time bound")
    p.add_argument("--duplicates", type=float, default=0.0, help="share of rows written twice")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    sub = p.add_subparsers(dest="dataset", required=True)
    smd = sub.add_parser("smd", help="SMD test halves (38 metrics per row, one row per minute)")
    smd.add_argument("--machines", default="machine-1-2", help="comma-separated machine ids")
    smd.add_argument("--start", type=int, default=0, help="first test row")
    smd.add_argument("--rows", type=int, default=None, help="rows per machine (default: all)")
    smd.add_argument("--t0", default=DEFAULT_T0, help="timestamp of test row 0 (ISO-8601)")
    smd.add_argument("--format", choices=("csv", "json"), default="csv")
    hy = sub.add_parser("hydro", help="Logan River sensor files (one value per row, 15 min)")
    hy.add_argument("--sites", default="MainStreet", help="comma-separated: MainStreet,TonyGrove,FranklinBasin")
    hy.add_argument("--variables", default="stage", help="comma-separated: temp,cond,ph,do,turb,stage")
    hy.add_argument("--start", type=int, default=0)
    hy.add_argument("--rows", type=int, default=None)
    sy = sub.add_parser("synthetic", help="built-in periodic multichannel series with injected level shifts")
    sy.add_argument("--series", type=int, default=2)
    sy.add_argument("--rows", type=int, default=1000)
    sy.add_argument("--channels", type=int, default=38)
    sy.add_argument("--t0", default=DEFAULT_T0)
    li = sub.add_parser("lines", help="a folder of landing-line files (e.g. a generated raw source), as is")
    li.add_argument("folder")
    args = p.parse_args(argv)
    from serving.settings import get_settings

    landing = Path(args.landing_dir) if args.landing_dir else get_settings().landing_dir
    lines, total = _lines_from_args(args)
    if args.jitter_ms or args.duplicates:
        lines = perturb(lines, args.jitter_ms, args.duplicates, args.seed)
    rep = write_landing(lines, landing, rate=args.rate, rows_per_file=args.rows_per_file, total=total,
                        progress=not args.no_progress, roll_ms=args.roll_ms, min_gap_ms=args.min_gap_ms)
    print(f"replayed {rep.rows} rows in {len(rep.files)} files to {landing} in {rep.seconds:.1f}s "
          f"({rep.rows / max(rep.seconds, 1e-9):.0f} rows/s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
