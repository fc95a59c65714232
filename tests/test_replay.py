"""The replay tool: rolled, atomically published landing files, pacing, perturbations, CLI."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from flink_jobs import replay
from flink_jobs.streaming.records import Row, parse_line
from serving.settings import get_settings


def test_smd_rows_are_merged_in_time_order_and_parse_back(tmp_path):
    smd = get_settings().smd_dir
    lines = replay.merge([replay.smd_lines(smd, m, rows=120) for m in ("machine-1-2", "machine-2-1")])
    rep = replay.write_landing(lines, tmp_path, rows_per_file=100, progress=False)
    files = sorted(tmp_path.iterdir())
    assert rep.rows == 240 and [f["rows"] for f in rep.files] == [100, 100, 40] and len(files) == 3
    assert not [f for f in files if f.name.startswith(".")]
    rows = [parse_line(t, 38) for f in files for t in f.read_text().splitlines()]
    assert all(isinstance(r, Row) for r in rows)
    assert [r.ts for r in rows] == sorted(r.ts for r in rows)
    first = [float(v) for v in (smd / "test" / "machine-1-2.txt").read_text().split("\n", 1)[0].split(",")]
    assert rows[0].values == tuple(first) and rows[0].ts == replay.iso_ms(replay.DEFAULT_T0)


def test_rate_is_respected_and_jitter_stays_within_bound(tmp_path):
    lines = list(replay.synthetic_lines(n_series=2, rows=50, channels=3))
    t = time.perf_counter()
    replay.write_landing(lines, tmp_path, rate=200, rows_per_file=20, progress=False)
    assert time.perf_counter() - t >= 100 / 200 * 0.9
    shuffled = replay.perturb(lines, jitter_ms=120_000, duplicates=0.2, seed=1)
    assert len(shuffled) > len(lines) and sorted({x.text for x in shuffled}) == sorted(x.text for x in lines)
    newest: dict[str, int] = {}
    for x in shuffled:  # no row arrives after a row more than the bound newer of its series
        assert x.ts > newest.get(x.series_id, -10**15) - 120_000
        newest[x.series_id] = max(newest.get(x.series_id, x.ts), x.ts)
    assert shuffled != sorted(shuffled, key=lambda x: x.ts)


def test_hydro_lines_keep_the_local_zone_and_nulls():
    lines = list(replay.hydro_lines(get_settings().hydro_dir, "MainStreet", "stage", rows=5))
    assert lines[0].text.startswith("MainStreet/stage,2019-01-01T00:00-07:00,")
    assert lines[0].ts == replay.iso_ms("2019-01-01T07:00:00Z")


@pytest.mark.parametrize("args", [["--help"], ["smd", "--help"]])
def test_cli_help(args):
    out = subprocess.run([sys.executable, "-m", "flink_jobs.replay", *args], capture_output=True, text=True, check=True)
    assert "--rows" in out.stdout or "--landing-dir" in out.stdout


def test_cli_writes_files(tmp_path):
    subprocess.run([sys.executable, "-m", "flink_jobs.replay", "--landing-dir", str(tmp_path), "--no-progress",
                    "--rows-per-file", "30", "synthetic", "--series", "1", "--rows", "70", "--channels", "2"],
                   check=True, capture_output=True)
    assert sorted(len(p.read_text().splitlines()) for p in tmp_path.iterdir()) == [10, 30, 30]
