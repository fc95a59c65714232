"""SQL for the batch cleaning job, built from a SourceConfig. Built-in functions only, so all work runs in the JVM.

Reason codes, checked in this order (the first that applies is the row's reason):
``blank_line``, ``missing_columns``, ``extra_columns``, ``unknown_series``, ``bad_timestamp``,
``non_numeric``, ``nan_inf``, ``nodata`` (a configured no-data code, ``NULL`` or an empty value: the
reading is absent, the timestamp becomes a gap). Rows that pass go on to de-duplication.
"""

from __future__ import annotations

from serving.sources import DEFAULT_NODATA_TOKENS, SourceConfig

REASONS = (
    "blank_line",
    "missing_columns",
    "extra_columns",
    "unknown_series",
    "bad_timestamp",
    "non_numeric",
    "nan_inf",
    "nodata",
)
NAN_INF = r"^[+-]?(nan|inf|infinity)$"

# Accepted timestamps: epoch milliseconds (13 digits), epoch seconds (9-10 digits, optional fraction),
# and 'yyyy-MM-dd[T ]HH:mm[:ss[.fff]]' or 'yyyy/MM/dd HH:mm[:ss]' with an optional zone 'Z' or '+hh:mm'.
DATE_RE = r"^([0-9]{4})[-/]([0-9]{2})[-/]([0-9]{2})[T ]([0-9]{2}):([0-9]{2})(:([0-9]{2})([.][0-9]+)?)?(Z|[+-][0-9]{2}:?[0-9]{2})?$"


def _q(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


def timestamp_ms(col: str, naive_offset_minutes: int) -> str:
    """An expression turning the string ``col`` into UTC epoch ms, or NULL when it is not a valid instant.

    Calendar dates are checked strictly by formatting the parsed instant back and comparing
    (Flink's parser would otherwise roll 2019-02-30 over to a valid day).
    """
    g = lambda i: f"REGEXP_EXTRACT({col}, {_q(DATE_RE)}, {i})"  # noqa: E731
    base = f"CONCAT({g(1)}, '-', {g(2)}, '-', {g(3)}, ' ', {g(4)}, ':', {g(5)}, ':', COALESCE({g(7)}, '00'))"
    frac = f"CAST(RPAD(COALESCE(SUBSTRING({g(8)} FROM 2), '0'), 3, '0') AS INT)"
    zone = g(9)
    offset_min = (
        f"(CASE WHEN {zone} IS NULL THEN {int(naive_offset_minutes)} WHEN {zone} = 'Z' THEN 0 "
        f"ELSE (CASE WHEN SUBSTRING({zone} FROM 1 FOR 1) = '-' THEN -1 ELSE 1 END) * "
        f"(CAST(SUBSTRING({zone} FROM 2 FOR 2) AS INT) * 60 + CAST(SUBSTRING(REPLACE({zone}, ':', '') FROM 4 FOR 2) AS INT)) END)"
    )
    valid_date = f"DATE_FORMAT(TO_TIMESTAMP({base}, 'yyyy-MM-dd HH:mm:ss'), 'yyyy-MM-dd HH:mm:ss') = {base}"
    date_ms = (
        f"(UNIX_TIMESTAMP({base}, 'yyyy-MM-dd HH:mm:ss') * 1000 + {frac} - CAST({offset_min} AS BIGINT) * 60000)"
    )
    return (
        f"CASE WHEN REGEXP({col}, '^[0-9]{{13}}$') THEN CAST({col} AS BIGINT) "
        f"WHEN REGEXP({col}, '^[0-9]{{9,10}}([.][0-9]+)?$') THEN CAST(CAST({col} AS DECIMAL(20, 3)) * 1000 AS BIGINT) "
        f"WHEN REGEXP({col}, {_q(DATE_RE)}) AND {valid_date} THEN {date_ms} "
        f"ELSE CAST(NULL AS BIGINT) END"
    )


def _token(i: int) -> str:
    return f"TRIM(SPLIT_INDEX(line, ',', {i}))"


def parsed_view(cfg: SourceConfig, table: str = "raw_lines") -> str:
    """One row per raw line: the line, its field count, series id, epoch ms and trimmed value tokens."""
    tokens = ", ".join(f"{_token(i + 2)} AS t{i}" for i in range(cfg.n_values))
    return (
        f"SELECT line, "
        f"CHAR_LENGTH(line) - CHAR_LENGTH(REPLACE(line, ',', '')) + 1 AS nfields, "
        f"{_token(0)} AS series_id, {_token(1)} AS ts_raw, {tokens} FROM {table}"
    )


def classified_view(cfg: SourceConfig, table: str = "parsed") -> str:
    """Adds ``ts`` (UTC epoch ms), typed values ``v0..`` and ``reason`` (NULL for a good row)."""
    nodata_tokens = ", ".join(_q(t) for t in DEFAULT_NODATA_TOKENS)
    codes = ", ".join(repr(float(c)) for c in cfg.nodata_codes)
    series = ", ".join(_q(s) for s in cfg.series)

    def missing(i: int) -> str:
        return f"UPPER(t{i}) IN ({nodata_tokens})"

    def number(i: int) -> str:
        return f"TRY_CAST(t{i} AS DOUBLE)"

    def nan_inf(i: int) -> str:
        return f"REGEXP(LOWER(t{i}), {_q(NAN_INF)})"

    non_numeric = " OR ".join(f"(NOT {missing(i)} AND {number(i)} IS NULL AND NOT {nan_inf(i)})" for i in range(cfg.n_values))
    any_nan_inf = " OR ".join(nan_inf(i) for i in range(cfg.n_values))
    nodata_parts = [missing(i) for i in range(cfg.n_values)]
    if codes:
        nodata_parts += [f"{number(i)} IN ({codes})" for i in range(cfg.n_values)]
    any_nodata = " OR ".join(nodata_parts)
    expected = cfg.n_values + 2
    ts = timestamp_ms("ts_raw", cfg.naive_utc_offset_minutes)
    values = ", ".join(f"{number(i)} AS v{i}" for i in range(cfg.n_values))
    return (
        f"SELECT line, series_id, {ts} AS ts, {values}, "
        f"CASE WHEN TRIM(line) = '' THEN 'blank_line' "
        f"WHEN nfields < {expected} THEN 'missing_columns' "
        f"WHEN nfields > {expected} THEN 'extra_columns' "
        f"WHEN series_id NOT IN ({series}) THEN 'unknown_series' "
        f"WHEN ({ts}) IS NULL THEN 'bad_timestamp' "
        f"WHEN {non_numeric} THEN 'non_numeric' "
        f"WHEN {any_nan_inf} THEN 'nan_inf' "
        f"WHEN {any_nodata} THEN 'nodata' "
        f"ELSE CAST(NULL AS STRING) END AS reason FROM {table}"
    )


def value_cols(cfg: SourceConfig) -> str:
    return ", ".join(f"v{i}" for i in range(cfg.n_values))


def readings_view(cfg: SourceConfig, table: str = "classified") -> str:
    """Distinct readings per (series, ts, values) with how many raw rows carried each (exact duplicates)."""
    vc = value_cols(cfg)
    return f"SELECT series_id, ts, {vc}, COUNT(*) AS copies FROM {table} WHERE reason IS NULL GROUP BY series_id, ts, {vc}"


def conflicts_view(table: str = "readings") -> str:
    """Timestamps of a series that carry more than one distinct reading."""
    return f"SELECT series_id AS c_series, ts AS c_ts, COUNT(*) AS readings FROM {table} GROUP BY series_id, ts HAVING COUNT(*) > 1"
