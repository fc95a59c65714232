"""Source records are split into per-series blocks that keep each series' line order."""

from __future__ import annotations

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
