"""Landing-line parsing and per-series ordering/windowing (pure functions, no cluster)."""

from __future__ import annotations

import numpy as np
import pytest

from flink_jobs.streaming.records import DeadLetter, Row, parse_line, parse_timestamp
from flink_jobs.streaming.windowing import cut, new_state, order, release

N = 3
GOOD = "m-1,1700000000000,0.1,0.2,0.3"


@pytest.mark.parametrize(
    "line,reason",
    [
        ("", "blank_line"),
        ("m-1,1700000000000,0.1,0.2", "missing_columns"),
        ("m-1,1700000000000,0.1,0.2,0.3,0.4", "extra_columns"),
        ("m-1,1700000000000,0.1,abc,0.3", "non_numeric"),
        ("m-1,1700000000000,0.1,nan,0.3", "nan_inf"),
        ("m-1,1700000000000,0.1,-inf,0.3", "nan_inf"),
        ("m-1,1700000000000,0.1,NULL,0.3", "nodata"),
        ("m-1,2019-02-30T00:00:00Z,0.1,0.2,0.3", "bad_timestamp"),
        ("m-1,yesterday,0.1,0.2,0.3", "bad_timestamp"),
        ("other,1700000000000,0.1,0.2,0.3", "unknown_series"),
        ('{"series_id": "m-1", "timestamp": 1700000000000, "values": [1, 2]', "bad_json"),
        ('{"series_id": "m-1", "values": [1, 2, 3]}', "missing_columns"),
    ],
)
def test_malformed_lines_get_their_reason(line, reason):
    got = parse_line(line, N, frozenset({"m-1"}))
    assert isinstance(got, DeadLetter) and got.reason == reason and got.raw == line


def test_good_lines_csv_and_json_agree():
    a = parse_line(GOOD, N, now_ms=5)
    b = parse_line('{"series_id": "m-1", "ts": "2023-11-14T22:13:20Z", "values": [0.1, 0.2, 0.3]}', N, now_ms=5)
    assert a == b == Row("m-1", 1_700_000_000_000, (0.1, 0.2, 0.3), 5)
    assert parse_line("m-1,1700000000,1,2,3", N, nodata=frozenset({2.0})).reason == "nodata"


@pytest.mark.parametrize(
    "text,offset,expected",
    [
        ("1700000000000", 0, 1_700_000_000_000),
        ("1700000000", 0, 1_700_000_000_000),
        ("1700000000.25", 0, 1_700_000_000_250),
        ("2023-11-14T22:13:20Z", 0, 1_700_000_000_000),
        ("2023-11-14 22:13:20.5", 0, 1_700_000_000_500),
        ("2023-11-14T15:13:20-07:00", 0, 1_700_000_000_000),
        ("2023-11-14T15:13:20", -420, 1_700_000_000_000),
        ("2023-11-14T22:13", 0, 1_699_999_980_000),
        ("17000000", 0, None),
    ],
)
def test_timestamp_formats(text, offset, expected):
    assert parse_timestamp(text, offset) == expected


def _rows(n, start=0):
    return [Row("s", 1000 * i, (float(i), -float(i)), 0) for i in range(start, start + n)]


def _run(rows, bound, length=10, step=9):
    st, windows, problems = new_state(), [], []
    for r in rows:
        released, problem = order(st, r, bound)
        problems.append(problem)
        windows += cut(st, released, length, step)
    windows += cut(st, release(st, 2**62), length, step)
    return windows, problems


def test_windows_match_batch_cut_and_disorder_within_bound_changes_nothing():
    rows = _rows(100)
    ref, _ = _run(rows, bound=0)
    from serving.core.windows import window_starts

    assert [w[0] for w in ref] == list(window_starts(100, 10, 9))
    np.testing.assert_array_equal(ref[3][2][:, 0], np.arange(27, 37, dtype=np.float32))
    rng = np.random.default_rng(1)
    keyed = sorted(rows + [rows[i] for i in rng.choice(100, 15)], key=lambda r: r.ts + rng.random() * 3000)
    got, problems = _run(keyed, bound=3000)
    assert problems.count("duplicate") == 15 and "late" not in problems
    assert [w[0] for w in got] == [w[0] for w in ref]
    for a, b in zip(got, ref):
        np.testing.assert_array_equal(a[1], b[1])
        np.testing.assert_array_equal(a[2], b[2])


def test_rows_beyond_the_bound_are_late():
    rows = _rows(20)
    _, problems = _run(rows[:10] + [rows[3]._replace(ts=3500)] + rows[10:], bound=2000)
    assert problems[10] == "late"
