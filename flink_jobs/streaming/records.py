"""Landing lines -> rows, or dead letters with a reason; alert and dead-letter JSON records.

A landing line is CSV ``series_id,timestamp,v1,...,vn`` or a JSON object
``{"series_id": ..., "timestamp": ..., "values": [...]}`` (``value`` for one number; ``ts`` for the time).
Timestamps: epoch ms (13 digits), epoch s (9-10 digits, optional fraction), or ISO-8601 /
``yyyy-MM-dd HH:mm[:ss[.fff]]`` with an optional zone (``Z``, ``+hh:mm``); the same formats and the
same reason codes as the batch cleaning job.
"""

from __future__ import annotations

import json
import math
import re
import time
from datetime import UTC, datetime, timedelta
from typing import NamedTuple

from flink_jobs.streaming.common import Counters

REASONS = (
    "blank_line",
    "bad_json",
    "missing_columns",
    "extra_columns",
    "unknown_series",
    "bad_timestamp",
    "non_numeric",
    "nan_inf",
    "nodata",  # NULL, an empty value or a configured no-data code (e.g. -9999): the reading is absent
    "late",  # older than the series' released rows plus the out-of-orderness bound
    "no_production_model",
    "registry_unreachable",
    "window_shape",  # the production model expects another number of values
    "model_error",
)

_EPOCH_MS = re.compile(r"^\d{13}$")
_EPOCH_S = re.compile(r"^\d{9,10}(\.\d+)?$")
_DATE = re.compile(
    r"^(\d{4})[-/](\d{2})[-/](\d{2})[T ](\d{2}):(\d{2})(?::(\d{2})(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?$"
)
_SERIES = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-/]{0,127}$")


class Row(NamedTuple):
    series_id: str
    ts: int  # UTC epoch ms
    values: tuple[float, ...]
    ingest_ms: int  # wall clock when the job parsed the line (latency is measured from here)


class DeadLetter(NamedTuple):
    raw: str
    reason: str
    detail: str = ""
    series_id: str = ""


def parse_timestamp(text: str, naive_offset_minutes: int = 0) -> int | None:
    """UTC epoch ms, or None when ``text`` is no valid instant."""
    t = text.strip()
    if _EPOCH_MS.match(t):
        return int(t)
    if _EPOCH_S.match(t):
        return int(round(float(t) * 1000))
    m = _DATE.match(t)
    if not m:
        return None
    year, month, day, hour, minute = (int(m.group(i)) for i in range(1, 6))
    second = int(m.group(6) or 0)
    micro = int(round(float(m.group(7)) * 1_000_000)) if m.group(7) else 0
    try:
        dt = datetime(year, month, day, hour, minute, second, min(micro, 999_999), tzinfo=UTC)
    except ValueError:
        return None
    zone = m.group(8)
    if zone is None:
        offset = naive_offset_minutes
    elif zone == "Z":
        offset = 0
    else:
        digits = zone[1:].replace(":", "")
        offset = (int(digits[:2]) * 60 + int(digits[2:])) * (1 if zone[0] == "+" else -1)
    return int((dt - timedelta(minutes=offset)).timestamp() * 1000)


def _number(token, nodata: frozenset) -> float | str:
    """The float, or the reason code why it is not a usable number."""
    if isinstance(token, bool):
        return "non_numeric"
    if token is None or (isinstance(token, str) and token.strip() in ("", "NULL")):
        return "nodata"
    try:
        v = float(token)
    except (TypeError, ValueError):
        return "non_numeric"
    if not math.isfinite(v):
        return "nan_inf"
    return "nodata" if v in nodata else v


def _fields(line: str) -> tuple[str, object, list] | DeadLetter:
    if line.lstrip().startswith("{"):
        try:
            obj = json.loads(line)
        except ValueError as exc:
            return DeadLetter(line, "bad_json", str(exc)[:120])
        if not isinstance(obj, dict):
            return DeadLetter(line, "bad_json", "not an object")
        sid = obj.get("series_id", obj.get("machine_id", obj.get("sensor_id")))
        ts = obj.get("timestamp", obj.get("ts"))
        if "values" in obj:
            vals = obj["values"]
        elif "value" in obj:
            vals = [obj["value"]]
        else:
            vals = []
        if sid is None or ts is None or not isinstance(vals, list):
            return DeadLetter(line, "missing_columns", "needs series_id, timestamp and values")
        return str(sid), ts, vals
    parts = line.split(",")
    if len(parts) < 3:
        return DeadLetter(line, "missing_columns", f"{len(parts)} columns")
    return parts[0].strip(), parts[1], parts[2:]


def series_key(line: str) -> str:
    """The series id of a landing line, cheaply (the job's key_by runs this on every line before parsing).

    The same id as ``parse_line`` gives for a valid line; a malformed line gets some string (it is
    dead-lettered by the keyed operator, which creates no state for it).
    """
    if line[:1] == "{" or line.lstrip()[:1] == "{":
        got = _fields(line)
        return "" if isinstance(got, DeadLetter) else got[0]
    return line.split(",", 1)[0].strip()


def _parse_fast(line: str, n_values: int, series: frozenset | None, nodata: frozenset, now_ms: int | None):
    """The common case (CSV, epoch-ms timestamp, finite numbers) in a few C-level calls; None: take the
    full path, which gives the same Row or names the problem."""
    parts = line.rstrip("\r\n").split(",")
    if len(parts) != n_values + 2:
        return None
    sid, ts_raw = parts[0].strip(), parts[1].strip()
    if len(ts_raw) != 13 or not ts_raw.isdigit() or (series and sid not in series) or not _SERIES.match(sid):
        return None
    try:
        values = tuple(map(float, parts[2:]))  # '', 'NULL', text raise: the full path names them
    except ValueError:
        return None
    if not math.isfinite(math.fsum(values)) or (nodata and not nodata.isdisjoint(values)):
        return None
    return Row(sid, int(ts_raw), values, now_ms if now_ms is not None else int(time.time() * 1000))


def parse_line(line: str, n_values: int, series: frozenset | None = None, naive_offset_minutes: int = 0,
               nodata: frozenset = frozenset(), now_ms: int | None = None) -> Row | DeadLetter:
    """One landing line -> a Row, or a DeadLetter naming the first problem found."""
    fast = _parse_fast(line, n_values, series, nodata, now_ms)
    if fast is not None:
        return fast
    if not line.strip():
        return DeadLetter(line, "blank_line")
    got = _fields(line.rstrip("\r\n"))
    if isinstance(got, DeadLetter):
        return got
    sid, ts_raw, vals = got
    if len(vals) < n_values:
        return DeadLetter(line, "missing_columns", f"{len(vals)} values, expected {n_values}", sid)
    if len(vals) > n_values:
        return DeadLetter(line, "extra_columns", f"{len(vals)} values, expected {n_values}", sid)
    if not _SERIES.match(sid) or (series and sid not in series):
        return DeadLetter(line, "unknown_series", sid[:80], sid)
    if isinstance(ts_raw, bool):
        ts = None
    elif isinstance(ts_raw, int | float):
        ts = parse_timestamp(repr(ts_raw) if isinstance(ts_raw, float) else str(ts_raw), naive_offset_minutes)
    else:
        ts = parse_timestamp(str(ts_raw), naive_offset_minutes)
    if ts is None or not (0 <= ts < 7_258_118_400_000):  # up to year 2200
        return DeadLetter(line, "bad_timestamp", str(ts_raw)[:40], sid)
    out = []
    for i, tok in enumerate(vals):
        v = _number(tok, nodata)
        if isinstance(v, str):
            return DeadLetter(line, v, f"value {i}: {str(tok)[:20]}", sid)
        out.append(v)
    return Row(sid, ts, tuple(out), now_ms if now_ms is not None else int(time.time() * 1000))


def dead_letter_json(d: DeadLetter, stage: str) -> str:
    return json.dumps({"reason": d.reason, "detail": d.detail, "series_id": d.series_id, "stage": stage,
                       "raw": d.raw, "at": int(time.time() * 1000)})


def alert_json(series_id: str, window_start: int, window_end: int, anomalous: bool, score: float,
               threshold: float, count_over_tau: int | None, delta: float | None, top_channels: list,
               model_name: str, model_version: str, ingest_ms: int, **extra) -> str:
    """The alert record of DESIGN.md; ``latency_ms`` is emit time minus parse time of the newest row."""
    now = int(time.time() * 1000)
    rec = {
        "series_id": series_id,
        "window_start": int(window_start),
        "window_end": int(window_end),
        "anomalous": bool(anomalous),
        "score": float(score),
        "threshold": float(threshold),
        "count_over_tau": None if count_over_tau is None else int(count_over_tau),
        "delta": None if delta is None else float(delta),
        "top_channels": [{"channel": int(c), "share": round(float(s), 6)} for c, s in top_channels],
        "model_name": model_name,
        "model_version": str(model_version),
        "emitted_at": now,
        "latency_ms": now - int(ingest_ms),
    }
    rec.update(extra)
    return json.dumps(rec)



class LineParser:
    """Landing line -> Row, or the dead-letter JSON (a str) after counting it; used inside keyed operators."""

    def __init__(self, cfg, counters: Counters | None = None):
        self.n_values = cfg.n_values
        self.nodata = frozenset(float(c) for c in cfg.nodata_codes)
        self.series = frozenset(cfg.series) if cfg.series else None
        self.offset = cfg.naive_utc_offset_minutes
        self.counters = counters

    def __call__(self, line: str) -> Row | str:
        got = parse_line(line, self.n_values, self.series, self.offset, self.nodata)
        if isinstance(got, DeadLetter):
            if self.counters is not None:
                self.counters.dead(got.reason)
            return dead_letter_json(got, "parse")
        return got
