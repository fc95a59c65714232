"""Queued landing files are read oldest first: the file source hands out files in path order.

Twenty small files published at once (as after a redeploy or when the job fell behind) come out of
the source in publication order, bounded and continuous, in blocks of lines cut within each file. Flink's default assigner fails this (checked
by hand: ``SG_STREAM_ORDERED_FILES=0`` gives rows of later files first). Needs a JDK (``javac``) to
build the assigner; without one the jobs fall back to Flink's order and this test skips.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from flink_jobs import replay
from flink_jobs.streaming.config import from_env
from flink_jobs.streaming.ordered_files import _javac, assigner_jar
from flink_jobs.streaming.sources import source_from_config

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(_javac() is None, reason="no JDK: Flink's default file order is used")]

ROWS, PER_FILE = 400, 20


def _publish(folder: Path) -> list[str]:
    lines = [replay.Line(i, "s", f"s,{i}") for i in range(ROWS)]
    rep = replay.write_landing(lines, folder, rows_per_file=PER_FILE, progress=False)
    return [f["name"] for f in rep.files]


def test_replay_names_sort_in_publication_order(tmp_path):
    names = _publish(tmp_path / "a") + _publish(tmp_path / "a")  # two runs into one folder
    assert len(set(names)) == len(names) == 2 * ROWS // PER_FILE
    assert sorted(names) == names


def test_assigner_jar_is_cached_by_source_hash(tmp_path):
    jar = assigner_jar(tmp_path)
    assert jar is not None and jar.stat().st_size > 0
    mtime = jar.stat().st_mtime_ns
    assert assigner_jar(tmp_path) == jar and jar.stat().st_mtime_ns == mtime  # not rebuilt


@pytest.mark.parametrize("bounded", [True, False], ids=["bounded", "continuous"])
def test_queued_files_come_out_in_path_order(flink_stream_env, tmp_path, bounded):
    land = tmp_path / "landing"
    _publish(land)
    cfg = from_env("lstm_ed", landing_dir=str(land), bounded=bounded, discovery_interval_ms=200, line_block=7)
    assert cfg.ordered_files  # the default
    source = source_from_config(cfg)
    got, block_sizes = [], []
    with source.stream(flink_stream_env).execute_and_collect() as records:
        for record in records:  # blocks of up to 7 lines of one file (Java LineBatchFormat)
            lines = record.split("\n")
            block_sizes.append(len(lines))
            got += [int(line.split(",")[1]) for line in lines]
            if len(got) >= ROWS:  # the continuous source never ends: stop after every row came
                break
    assert got == list(range(ROWS))
    assert block_sizes == [7, 7, 6] * (ROWS // PER_FILE)  # cut by line count, never across files


def test_line_block_1_gives_single_lines_in_path_order(flink_stream_env, tmp_path):
    land = tmp_path / "landing"
    _publish(land)
    cfg = from_env("lstm_ed", landing_dir=str(land), bounded=True, line_block=1)
    with source_from_config(cfg).stream(flink_stream_env).execute_and_collect() as records:
        got = list(records)
    assert all("\n" not in r for r in got)  # Flink's own line format
    assert [int(r.split(",")[1]) for r in got] == list(range(ROWS))


def _splits(enumerator, gateway, folder: Path) -> dict[str, int]:
    paths = gateway.new_array(gateway.jvm.org.apache.flink.core.fs.Path, 1)
    paths[0] = gateway.jvm.org.apache.flink.core.fs.Path(folder.as_uri())
    return {str(s.path().toString()): int(s.length()) for s in enumerator.enumerateSplits(paths, 1)}


def test_incremental_enumerator_returns_each_new_file_once_with_flinks_paths(flink_stream_env, tmp_path):
    """The continuous source's enumerator (``IncrementalFileEnumerator``) stats only unseen files. Its
    splits must carry the same paths as Flink's own enumerator (the source's checkpointed set of processed
    paths is compared with them after a restore), skip hidden files and find files in new subfolders."""
    from pyflink.java_gateway import get_gateway

    from flink_jobs.streaming.ordered_files import _java_class

    gateway = get_gateway()
    ours = _java_class(flink_stream_env, "streamguard.IncrementalFileEnumerator$Provider").newInstance().create()
    flinks = gateway.jvm.org.apache.flink.connector.file.src.enumerate.NonSplittingRecursiveEnumerator()
    land = tmp_path / "landing"
    _publish(land)
    (land / ".part-99.csv.tmp").write_text("s,1\n")  # being written
    (land / "_SUCCESS").write_text("")
    first = _splits(ours, gateway, land)
    assert first == _splits(flinks, gateway, land) and len(first) == ROWS // PER_FILE
    assert _splits(ours, gateway, land) == {}  # nothing new
    (land / "2026" / "11").mkdir(parents=True)
    (land / "2026" / "11" / "late.csv").write_text("s,1\ns,2\n")
    (land / "late2.csv").write_text("s,3\n")
    new = _splits(ours, gateway, land)
    assert sorted(Path(p.removeprefix("file:")).relative_to(land).as_posix() for p in new) == [
        "2026/11/late.csv", "late2.csv"]
    assert sum(new.values()) == len("s,1\ns,2\n") + len("s,3\n")
    assert _splits(ours, gateway, land) == {}
    # a file landing in a known sub-folder, while the folders above it are unchanged (their listings skipped)
    (land / "2026" / "11" / "later.csv").write_text("s,4\n")
    assert [Path(p).name for p in _splits(ours, gateway, land)] == ["later.csv"]
    for i in range(5):  # files landing one after another: each found by the next discovery
        (land / f"burst-{i}.csv").write_text("s,5\n")
        assert [Path(p).name for p in _splits(ours, gateway, land)] == [f"burst-{i}.csv"]
