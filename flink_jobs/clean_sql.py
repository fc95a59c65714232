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
NAN_INF_WORDS = tuple(f"{sign}{word}" for sign in ("", "+", "-") for word in ("nan", "inf", "infinity"))
LINE_SEP = "'\n'"  # a raw line never holds a newline, so it can join the lines of one instant

# Accepted timestamps: epoch milliseconds (13 digits), epoch seconds (9-10 digits, optional fraction),
# and 'yyyy-MM-dd[T ]HH:mm[:ss[.fff]]' or 'yyyy/MM/dd HH:mm[:ss]' with an optional zone 'Z' or '+hh:mm'.
DATE_RE = r"^([0-9]{4})[-/]([0-9]{2})[-/]([0-9]{2})[T ]([0-9]{2}):([0-9]{2})(:([0-9]{2})([.][0-9]+)?)?(Z|[+-][0-9]{2}:?[0-9]{2})?$"


def _q(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


def _int(expr: str) -> str:
    return f"CAST({expr} AS BIGINT)"


def timestamp_ms(col: str, naive_offset_minutes: int) -> str:
    """An expression turning the string ``col`` into UTC epoch ms, or NULL when it is not a valid instant.

    One regular expression checks the shape; the fields are then cut at fixed positions and turned
    into days with integer arithmetic (days-from-civil), which is many times cheaper per row than
    Flink's format-string date parsing. Calendar dates are checked strictly (2019-02-30 is invalid).
    """
    s = col
    y, mo, d = _int(f"SUBSTRING({s} FROM 1 FOR 4)"), _int(f"SUBSTRING({s} FROM 6 FOR 2)"), _int(f"SUBSTRING({s} FROM 9 FOR 2)")
    hh, mi = _int(f"SUBSTRING({s} FROM 12 FOR 2)"), _int(f"SUBSTRING({s} FROM 15 FOR 2)")
    has_sec = f"(SUBSTRING({s} FROM 17 FOR 1) = ':')"
    ss = f"(CASE WHEN {has_sec} THEN {_int(f'SUBSTRING({s} FROM 18 FOR 2)')} ELSE 0 END)"
    tail = f"SUBSTRING({s} FROM (CASE WHEN {has_sec} THEN 20 ELSE 17 END))"
    z6, z5 = f"RIGHT({tail}, 6)", f"RIGHT({tail}, 5)"
    zone_kind = (
        f"(CASE WHEN RIGHT({tail}, 1) = 'Z' THEN 1 "
        f"WHEN SUBSTRING({z6} FROM 1 FOR 1) IN ('+', '-') AND SUBSTRING({z6} FROM 4 FOR 1) = ':' THEN 6 "
        f"WHEN SUBSTRING({z5} FROM 1 FOR 1) IN ('+', '-') AND CHAR_LENGTH({tail}) >= 5 THEN 5 ELSE 0 END)"
    )
    offset_min = (
        f"(CASE {zone_kind} WHEN 0 THEN {int(naive_offset_minutes)} WHEN 1 THEN 0 "
        f"WHEN 6 THEN (CASE WHEN SUBSTRING({z6} FROM 1 FOR 1) = '-' THEN -1 ELSE 1 END) * "
        f"({_int(f'SUBSTRING({z6} FROM 2 FOR 2)')} * 60 + {_int(f'SUBSTRING({z6} FROM 5 FOR 2)')}) "
        f"ELSE (CASE WHEN SUBSTRING({z5} FROM 1 FOR 1) = '-' THEN -1 ELSE 1 END) * "
        f"({_int(f'SUBSTRING({z5} FROM 2 FOR 2)')} * 60 + {_int(f'SUBSTRING({z5} FROM 4 FOR 2)')}) END)"
    )
    frac_text = f"SUBSTRING({tail} FROM 2 FOR CHAR_LENGTH({tail}) - 1 - (CASE {zone_kind} WHEN 0 THEN 0 WHEN 1 THEN 1 ELSE {zone_kind} END))"
    frac = f"(CASE WHEN SUBSTRING({tail} FROM 1 FOR 1) = '.' THEN {_int(f'RPAD(SUBSTRING({frac_text} FROM 1 FOR 3), 3, ' + chr(39) + '0' + chr(39) + ')')} ELSE 0 END)"
    # days from civil (H. Hinnant), all integer arithmetic on non-negative operands
    ya = f"({y} - (CASE WHEN {mo} <= 2 THEN 1 ELSE 0 END))"
    era = f"({ya} / 400)"
    yoe = f"({ya} - {era} * 400)"
    doy = f"((153 * ({mo} + (CASE WHEN {mo} > 2 THEN -3 ELSE 9 END)) + 2) / 5 + {d} - 1)"
    doe = f"({yoe} * 365 + {yoe} / 4 - {yoe} / 100 + {doy})"
    days = f"({era} * 146097 + {doe} - 719468)"
    leap = f"(MOD({y}, 4) = 0 AND (MOD({y}, 100) <> 0 OR MOD({y}, 400) = 0))"
    month_days = (f"(CASE WHEN {mo} = 2 THEN (CASE WHEN {leap} THEN 29 ELSE 28 END) "
                  f"WHEN {mo} IN (4, 6, 9, 11) THEN 30 ELSE 31 END)")
    valid = (f"{y} >= 1970 AND {mo} BETWEEN 1 AND 12 AND {d} BETWEEN 1 AND {month_days} AND {hh} < 24 "
             f"AND {mi} < 60 AND {ss} < 60")
    date_ms = f"(({days} * 86400 + {hh} * 3600 + {mi} * 60 + {ss} - {offset_min} * 60) * 1000 + {frac})"
    return (
        f"CASE WHEN CHAR_LENGTH({s}) = 13 AND SUBSTRING({s} FROM 1 FOR 1) BETWEEN '0' AND '9' "
        f"THEN TRY_CAST({s} AS BIGINT) "
        f"WHEN CHAR_LENGTH({s}) BETWEEN 9 AND 14 AND REGEXP({s}, '^[0-9]{{9,10}}([.][0-9]+)?$') "
        f"THEN CAST(CAST({s} AS DECIMAL(20, 3)) * 1000 AS BIGINT) "
        f"WHEN REGEXP({s}, {_q(DATE_RE)}) AND {valid} THEN {date_ms} "
        f"ELSE CAST(NULL AS BIGINT) END"
    )


def _token(i: int) -> str:
    return f"TRIM(SPLIT_INDEX(line, ',', {i}))"


def parsed_view(cfg: SourceConfig, table: str = "raw_lines") -> str:
    """One row per raw line: the line, its field count, series id, ``ts`` (UTC epoch ms) and value tokens."""
    tokens = ", ".join(f"{_token(i + 2)} AS t{i}" for i in range(cfg.n_values))
    return (
        f"SELECT line, "
        f"CHAR_LENGTH(line) - CHAR_LENGTH(REPLACE(line, ',', '')) + 1 AS nfields, "
        f"{_token(0)} AS series_id, {timestamp_ms(_token(1), cfg.naive_utc_offset_minutes)} AS ts, {tokens} "
        f"FROM {table}"
    )


def token_code(i: int, cfg: SourceConfig) -> str:
    """Per value token: 0 a number, 1 no-data, 2 NaN/inf, 3 not a number (the worst token decides the row)."""
    nodata_tokens = ", ".join(_q(t) for t in DEFAULT_NODATA_TOKENS)
    nan_inf_words = ", ".join(_q(w) for w in NAN_INF_WORDS)
    codes = ", ".join(repr(float(c)) for c in cfg.nodata_codes)
    code_rule = f"WHEN TRY_CAST(t{i} AS DOUBLE) IN ({codes}) THEN 1 " if codes else ""
    return (f"CASE WHEN UPPER(t{i}) IN ({nodata_tokens}) THEN 1 WHEN LOWER(t{i}) IN ({nan_inf_words}) THEN 2 "
            f"WHEN TRY_CAST(t{i} AS DOUBLE) IS NULL THEN 3 {code_rule}ELSE 0 END")


def classified_view(cfg: SourceConfig, table: str = "parsed") -> str:
    """Adds typed values ``v0..`` and ``reason`` (NULL for a good row).

    The value checks are one small CASE per token folded with GREATEST: a single CASE over OR-chains
    of every token made the planner's expression simplification take minutes for 38 channels.
    """
    series = ", ".join(_q(s) for s in cfg.series)
    expected = cfg.n_values + 2
    codes = [token_code(i, cfg) for i in range(cfg.n_values)]
    worst = codes[0] if len(codes) == 1 else f"GREATEST({', '.join(codes)})"
    values = ", ".join(f"TRY_CAST(t{i} AS DOUBLE) AS v{i}" for i in range(cfg.n_values))
    return (
        f"SELECT line, series_id, ts, {values}, "
        f"CASE WHEN TRIM(line) = '' THEN 'blank_line' "
        f"WHEN nfields < {expected} THEN 'missing_columns' "
        f"WHEN nfields > {expected} THEN 'extra_columns' "
        f"WHEN series_id NOT IN ({series}) THEN 'unknown_series' "
        f"WHEN ts IS NULL THEN 'bad_timestamp' "
        f"ELSE ELT(CAST({worst} AS INT) + 1, CAST(NULL AS STRING), 'nodata', 'nan_inf', 'non_numeric') "
        f"END AS reason FROM {table}"
    )


def value_cols(cfg: SourceConfig) -> str:
    return ", ".join(f"v{i}" for i in range(cfg.n_values))


def readings_view(cfg: SourceConfig, table: str = "classified") -> str:
    """Distinct readings per (series, ts, values): how many raw rows carried each, and one of those lines."""
    vc = value_cols(cfg)
    return (f"SELECT series_id, ts, {vc}, COUNT(*) AS copies, MIN(line) AS line FROM {table} "
            f"WHERE reason IS NULL GROUP BY series_id, ts, {vc}")


def instants_view(cfg: SourceConfig, table: str = "readings") -> str:
    """One row per (series, ts): how many distinct readings it has (more than one is a conflict)."""
    mins = ", ".join(f"MIN(v{i}) AS v{i}" for i in range(cfg.n_values))
    return (f"SELECT series_id, ts, COUNT(*) AS readings, {mins}, SUM(copies) - 1 AS duplicates, "
            f"LISTAGG(line, {LINE_SEP}) AS lines FROM {table} GROUP BY series_id, ts")
