"""Source records are split into per-series blocks that keep each series' line order."""

from __future__ import annotations

import time

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


PARSE_CASES = [
    "m-1,1700000000000,1.0,2.5,-3e2",  # plain: parsed in Java
    "m-1,1700000000009,.5,5.,+7E-3",
    "m-1,1700000000012,1,2,3\r",
    "m-1,1700000000001,1.0,2.5",  # the rest is left to Python, which names the problem or takes the row
    "m-1,1700000000002, 1.0,2,3",
    "m-1,1700000000003,1,2,-9999",
    "m-1,1700000000004,1,2,nan",
    "m-1,1700000000005,1,2,1e400",
    "m-1,1700000000006,1,2,3,4",
    "m-1,1700000000007,0.1234567890123456789,2,3",
    "m-1,1700000000008,1_0,2,3",
    "m-1,170000000001,1,2,3",
    "m-1, 1700000000011,1,2,3",
    "",
]


def test_java_parsing_splitter_gives_python_rows_and_leaves_the_rest(flink_stream_env):
    from flink_jobs.streaming.blocks import decode_block
    from flink_jobs.streaming.ordered_files import _javac, series_block_splitter
    from flink_jobs.streaming.records import parse_line

    if _javac() is None:
        pytest.skip("no JDK: the Python splitter is used")
    java = series_block_splitter(flink_stream_env, 3, (-9999.0,), ())
    parsed = decode_block(bytes(java.encode("\n".join(PARSE_CASES))), 3, now_ms=7)
    assert len(parsed.ts) == 3 and [place for place, _ in parsed.raw] == list(range(3, len(PARSE_CASES)))
    for line, got in zip(PARSE_CASES, parsed.in_order("m-1"), strict=True):
        expected = parse_line(line, 3, None, 0, frozenset({-9999.0}), now_ms=7)
        assert got == (line if isinstance(got, str) else expected)
    allow = series_block_splitter(flink_stream_env, 3, (), ("other",))
    assert len(decode_block(bytes(allow.encode(PARSE_CASES[0])), 3).ts) == 0  # not accepted: Python says why
    # without now_ms, a row's ingest time is when the splitter cut its block (alerts' latency starts there)
    before = int(time.time() * 1000)
    data = bytes(java.encode("\n".join(PARSE_CASES)))
    cut = int(time.time() * 1000)
    time.sleep(0.05)  # decoded later: the stamp must still be the cut's
    stamped = decode_block(data, 3)
    assert before <= int(stamped.ingest.min()) == int(stamped.ingest.max()) <= cut


def test_windows_cut_from_arrays_equal_windows_cut_from_rows():
    import numpy as np

    from flink_jobs.streaming.blocks import ParsedRows
    from flink_jobs.streaming.records import Row
    from flink_jobs.streaming.windowing import cut, new_state

    rows = [Row("s", 1000 * i, (i * 0.1, -i * 1.0), 5 + i) for i in range(47)]
    st_rows, st_arrays, a, b = new_state(), new_state(), [], []
    for lo, hi in ((0, 5), (5, 23), (23, 24), (24, 47)):
        part = rows[lo:hi]
        a += cut(st_rows, part, 10, 9)
        b += cut(st_arrays, ParsedRows(np.array([r.ts for r in part]), np.array([r.values for r in part]),
                                       np.array([r.ingest_ms for r in part]), []), 10, 9)
    assert len(a) == len(b) == 5 and st_rows["index"] == st_arrays["index"] == 45
    for (i1, t1, v1, g1), (i2, t2, v2, g2) in zip(a, b, strict=True):
        assert i1 == i2 and g1 == g2 == 5 + i1 + 9
        np.testing.assert_array_equal(t1, t2)
        np.testing.assert_array_equal(v1, v2)
        assert v1.dtype == np.float32


def test_java_parsed_numbers_equal_python_float_bit_for_bit(flink_stream_env):
    import math
    import random

    from flink_jobs.streaming.blocks import decode_block
    from flink_jobs.streaming.ordered_files import _javac, series_block_splitter

    if _javac() is None:
        pytest.skip("no JDK: the Python splitter is used")
    rng = random.Random(3)
    tokens = []
    for _ in range(1500):
        digits = "".join(rng.choice("0123456789") for _ in range(rng.randint(1, 17)))
        cut = rng.randint(0, len(digits))
        tok = digits[:cut] + ("." if rng.random() < 0.8 else "") + digits[cut:]
        if rng.random() < 0.3:
            tok += rng.choice("eE") + rng.choice(["", "+", "-"]) + str(rng.randint(0, 120))
        tokens.append(rng.choice(["", "+", "-"]) + tok)
    java = series_block_splitter(flink_stream_env, 1, (), ())
    parsed = decode_block(bytes(java.encode("\n".join(f"m,{1_700_000_000_000 + i},{t}" for i, t in enumerate(tokens)))), 1)
    left = {place for place, _ in parsed.raw}
    fast = [t for i, t in enumerate(tokens) if i not in left]
    assert len(fast) > 1000  # most are plain numbers of <= 15 digits: parsed in Java
    for tok, got in zip(fast, parsed.values[:, 0].tolist(), strict=True):
        want = float(tok)
        assert got == want and math.copysign(1.0, got) == math.copysign(1.0, want), tok


def test_local_gateway_jvm_runs_with_the_local_jit_setting(flink_stream_env):
    import os

    from pyflink.java_gateway import get_gateway

    from flink_jobs.env import LOCAL_JVM_ARGS

    if "JVM_ARGS" in os.environ or "SG_FLINK_LOCAL_JVM_ARGS" in os.environ:
        pytest.skip("the JVM options were chosen by the environment")
    args = list(get_gateway().jvm.java.lang.management.ManagementFactory.getRuntimeMXBean().getInputArguments())
    assert LOCAL_JVM_ARGS in args
    assert "JVM_ARGS" not in os.environ  # set only for the launch: child processes keep their own defaults


def test_remembering_a_block_of_stamps_equals_remembering_them_one_by_one():
    import numpy as np

    from flink_jobs.streaming.windowing import _remember, _remember_many

    for before in (0, 1, 63, 64, 100, 128):
        for added in (0, 1, 28, 29, 64, 65, 93, 200, 1000):
            one_by_one, at_once = list(range(before)), list(range(before))
            stamps = np.arange(10_000, 10_000 + added)
            for t in stamps.tolist():
                _remember(one_by_one, [t])
            _remember_many(at_once, stamps)
            assert at_once == one_by_one, (before, added)
