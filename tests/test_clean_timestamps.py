"""Each accepted timestamp format parses to the expected UTC instant; invalid ones are NULL."""

import pytest

from flink_jobs.clean_sql import timestamp_ms

CASES = [
    # (raw text, naive zone offset in minutes, expected UTC epoch ms or None)
    ("2019-01-01T00:00:00Z", 0, 1546300800000),
    ("2019-01-01T02:00:00+02:00", 0, 1546300800000),
    ("2019-01-01T02:00:00+0200", 0, 1546300800000),
    ("2018-12-31T19:00:00-05:00", 0, 1546300800000),
    ("2019-01-01 00:00:00", 0, 1546300800000),
    ("2019-01-01T00:00:00", 0, 1546300800000),
    ("2019-01-01 00:00", -420, 1546326000000),  # Logan River local standard time (UTC-07:00)
    ("2019/01/01 00:00:00", 0, 1546300800000),
    ("2019-01-01T00:00:00.250Z", 0, 1546300800250),
    ("1546300800", 0, 1546300800000),
    ("1546300800.5", 0, 1546300800500),
    ("1546300800000", 0, 1546300800000),
    ("2019-02-30 00:00:00", 0, None),
    ("2019-13-01 00:00:00", 0, None),
    ("2019-01-01 24:00:00", 0, None),
    ("12/31/2019 12:00", 0, None),
    ("not-a-time", 0, None),
    ("", 0, None),
]


@pytest.mark.parametrize("offset", sorted({c[1] for c in CASES}))
def test_timestamp_formats(flink_batch_env, offset):
    cases = [c for c in CASES if c[1] == offset]
    values = ", ".join(f"({i}, '{text}')" for i, (text, _, _) in enumerate(cases))
    sql = f"SELECT i, {timestamp_ms('s', offset)} FROM (VALUES {values}) AS t(i, s)"
    got = {row[0]: row[1] for row in flink_batch_env.execute_sql(sql).collect()}
    assert {i: got[i] for i in range(len(cases))} == {i: c[2] for i, c in enumerate(cases)}
