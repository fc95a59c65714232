"""Source records are split into per-series blocks that keep each series' line order."""

from __future__ import annotations

import pytest

from flink_jobs.streaming.blocks import lines_of, split_by_series


def test_block_is_split_per_series_in_read_order():
    record = "\n".join(["a,1,0", "b,1,0", "a,2,0", "", '{"series_id": "b", "ts": 2, "values": [0]}', "a,3,0"])
    blocks = split_by_series(record)
    assert [k for k, _ in blocks] == ["a", "b", ""]
    by_key = dict(blocks)
    assert lines_of(("a", by_key["a"])) == ["a,1,0", "a,2,0", "a,3,0"]
    assert lines_of(("b", by_key["b"])) == ["b,1,0", '{"series_id": "b", "ts": 2, "values": [0]}']
    assert lines_of(("", by_key[""])) == [""]  # a blank line stays, to be dead-lettered


def test_single_line_record_is_one_block():
    assert split_by_series("m-1,1700000000000,1.0") == [("m-1", "m-1,1700000000000,1.0")]


TRICKY = [
    "m-1,1700000000000,1.0",
    "  m-1 ,1700000000000,1.0",
    "m-1\r",
    "",
    "no-comma-at-all",
    '{"series_id": "s/1", "ts": 5, "values": [1]}',
    ' {"machine_id": 7, "timestamp": "2020-01-01T00:00:00Z", "values": [1, 2]}',
    '{"sensor_id": "a", "ts": 1, "value": NaN}',
    '{"series_id": null, "machine_id": "x", "ts": 1, "values": [1]}',
    '{"series_id": "a", "values": [1]}',
    '{"series_id": "a", "ts": 1, "values": 3}',
    '{"series_id": true, "ts": 1, "values": [1]}',
    '{"series_id": "a", "ts": 1, "values": [1]',
    "[1, 2, 3]",
]


def test_java_splitter_keys_lines_like_python(flink_stream_env):
    from flink_jobs.streaming.ordered_files import _javac, series_block_splitter
    from flink_jobs.streaming.records import series_key

    if _javac() is None:
        pytest.skip("no JDK: the Python splitter is used")
    java = series_block_splitter(flink_stream_env)
    assert [java.seriesKey(line) for line in TRICKY] == [series_key(line) for line in TRICKY]
