"""Turn clean series into realistic messy raw line files, and say exactly what was done to them.

Every defect the cleaning job knows is written on purpose, on disjoint rows, and counted in the
cleaning job's own terms, so a test can require the cleaning report to equal these counts exactly.
Rows are also written with mixed timestamp formats (ISO-8601 with and without zone, epoch seconds
and milliseconds, ``YYYY/MM/DD HH:mm:ss``) and shuffled out of order; neither is a defect.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from serving.sources import SourceConfig

BAD_TIMESTAMPS = ("2019-13-45 25:61:00", "not-a-time", "2019-02-30 00:00:00", "12/31/2019 12:00", "")
NON_NUMERIC = ("err", "1.2.3", "#N/A", "12a", "--")
NAN_INF = ("NaN", "inf", "-Infinity", "nan", "+inf")


@dataclass
class MessyRates:
    """Fraction of clean rows that get each defect (at least ``minimum`` each when rows allow)."""

    duplicate: float = 0.01
    conflicting: float = 0.002
    missing_columns: float = 0.002
    extra_columns: float = 0.002
    unknown_series: float = 0.002
    bad_timestamp: float = 0.002
    non_numeric: float = 0.002
    nan_inf: float = 0.002
    blank_line: float = 0.001
    injected_nodata: float = 0.002
    out_of_order: float = 0.02
    minimum: int = 2
    rows_per_file: int = 200_000


@dataclass
class MessyResult:
    counts: dict[str, int]
    out_of_order_moved: int
    files: list[Path] = field(default_factory=list)


def _format_timestamps(ts_ms: np.ndarray, kinds: np.ndarray, naive_offset_min: int) -> np.ndarray:
    """Render UTC epoch ms in the format ``kinds`` picks for each row (0..5)."""
    utc = ts_ms.astype("datetime64[ms]")
    naive = (ts_ms + naive_offset_min * 60_000).astype("datetime64[ms]")
    plus2 = (ts_ms + 120 * 60_000).astype("datetime64[ms]")
    out = np.empty(len(ts_ms), dtype=object)
    for kind in range(6):
        idx = np.flatnonzero(kinds == kind)
        if not len(idx):
            continue
        if kind == 0:
            out[idx] = np.char.add(np.datetime_as_string(utc[idx], unit="s"), "Z")
        elif kind == 1:
            out[idx] = np.char.add(np.datetime_as_string(plus2[idx], unit="s"), "+02:00")
        elif kind == 2:
            out[idx] = np.char.replace(np.datetime_as_string(naive[idx], unit="s"), "T", " ")
        elif kind == 3:
            out[idx] = (ts_ms[idx] // 1000).astype(str)
        elif kind == 4:
            out[idx] = ts_ms[idx].astype(str)
        else:
            s = np.datetime_as_string(naive[idx], unit="s")
            out[idx] = np.char.replace(np.char.replace(s, "-", "/"), "T", " ")
    return out


def _format_values(values: np.ndarray) -> np.ndarray:
    """(T, n) floats -> (T, n) strings; NaN is written as NULL (a missing reading)."""
    text = np.char.mod("%.10g", values).astype(object)
    text[np.isnan(values)] = "NULL"
    return text


_ROW_DEFECTS = ("duplicate", "conflicting", "missing_columns", "extra_columns", "unknown_series", "bad_timestamp",
                "non_numeric", "nan_inf")


def _defect_size(rate: float, n_rows: int, minimum: int) -> int:
    return max(minimum, int(round(rate * n_rows))) if rate > 0 else 0


def _render(sid: str, ts_text: np.ndarray, vtext: np.ndarray, rows: np.ndarray, sid_col=None, ts_col=None,
            vals=None) -> np.ndarray:
    """Lines ``series_id,timestamp,values`` for ``rows``, with any of the three parts replaced."""
    sid_col = np.full(len(rows), sid, dtype=object) if sid_col is None else sid_col
    ts_col = ts_text[rows] if ts_col is None else ts_col
    vals = vtext[rows] if vals is None else vals
    body = [",".join(map(str, r)) for r in vals]
    return np.array([f"{a},{b},{c}" for a, b, c in zip(sid_col, ts_col, body)], dtype=object)


def write_messy(
    cfg: SourceConfig,
    series: dict[str, tuple[np.ndarray, np.ndarray]],
    folder: str | Path,
    seed: int = 0,
    rates: MessyRates | None = None,
) -> MessyResult:
    """Write ``folder/source.json`` and ``folder/lines/part-*.csv``; return the exact defect counts.

    ``series`` maps a series id to ``(ts_ms (T,), values (T, n))``; NaN values and configured no-data
    codes already in the data are written as they are and counted as ``nodata`` rows.
    """
    rates = rates or MessyRates()
    rng = np.random.default_rng(seed)
    folder = Path(folder)
    lines_dir = folder / "lines"
    lines_dir.mkdir(parents=True, exist_ok=True)
    for old in lines_dir.glob("part-*.csv"):
        old.unlink()
    cfg.save(folder)
    codes = np.array(cfg.nodata_codes, dtype=float)
    counts = dict.fromkeys(
        ["blank_line", "missing_columns", "extra_columns", "unknown_series", "bad_timestamp", "non_numeric",
         "nan_inf", "nodata", "duplicate", "conflicting_duplicate", "gaps", "rows_in", "rows_out", "series_out"], 0
    )
    all_lines: list[np.ndarray] = []
    for sid, (ts, values) in series.items():
        ts = np.asarray(ts, dtype=np.int64)
        values = np.array(values, dtype=float).reshape(len(ts), -1).copy()
        n = len(ts)
        nodata_rows = np.isnan(values).any(axis=1) | np.isin(values, codes).any(axis=1)
        eligible = rng.permutation(np.flatnonzero(~nodata_rows))

        sizes = {name: _defect_size(getattr(rates, name), n, rates.minimum) for name in _ROW_DEFECTS}
        sizes["injected_nodata"] = _defect_size(rates.injected_nodata, n, rates.minimum) if len(codes) else 0
        picks, start = {}, 0
        for name, k in sizes.items():
            picks[name] = np.sort(eligible[start:start + k])
            start += k
        inject = picks.pop("injected_nodata")
        if len(inject):
            values[inject, rng.integers(0, values.shape[1], len(inject))] = codes[0]
            nodata_rows[inject] = True
        vtext = _format_values(values)
        ts_text = _format_timestamps(ts, rng.integers(0, 6, n), cfg.naive_utc_offset_minutes)

        render = functools.partial(_render, sid, ts_text, vtext)

        base = render(np.arange(n))
        extras = []
        dup = picks["duplicate"]  # same instant and values, often in another timestamp format
        extras.append(render(dup, ts_col=_format_timestamps(ts[dup], rng.integers(0, 6, len(dup)),
                                                            cfg.naive_utc_offset_minutes)))
        con = picks["conflicting"]
        changed = values[con].copy()
        changed[:, 0] = changed[:, 0] + 1.0
        extras.append(render(con, vals=_format_values(changed)))
        extras.append(np.array([line.rsplit(",", 1)[0] for line in render(picks["missing_columns"])], dtype=object))
        extras.append(np.array([line + ",1.0" for line in render(picks["extra_columns"])], dtype=object))
        unk = picks["unknown_series"]
        extras.append(render(unk, sid_col=np.array([f"unconfigured-{i % 3}" for i in range(len(unk))], dtype=object)))
        bad = picks["bad_timestamp"]
        extras.append(render(bad, ts_col=np.array([BAD_TIMESTAMPS[i % len(BAD_TIMESTAMPS)] for i in range(len(bad))],
                                                  dtype=object)))
        for name, tokens in (("non_numeric", NON_NUMERIC), ("nan_inf", NAN_INF)):
            rows = picks[name]
            vals = vtext[rows].copy()
            for j in range(len(rows)):
                vals[j, rng.integers(0, vals.shape[1])] = tokens[j % len(tokens)]
            extras.append(render(rows, vals=vals))
        all_lines += [base, *extras]

        for name in ("missing_columns", "extra_columns", "unknown_series", "bad_timestamp", "non_numeric", "nan_inf"):
            counts[name] += len(picks[name])
        counts["duplicate"] += len(dup)
        counts["conflicting_duplicate"] += 2 * len(con)
        counts["nodata"] += int(nodata_rows.sum())
        kept = np.ones(n, dtype=bool)
        kept[nodata_rows] = False
        kept[con] = False
        kept_ts = np.sort(ts[kept])
        counts["gaps"] += int((np.diff(kept_ts) > int(cfg.interval_ms * 1.5)).sum())
        counts["rows_out"] += int(kept.sum())
        counts["series_out"] += int(kept.any())

    lines = np.concatenate(all_lines) if all_lines else np.array([], dtype=object)
    n_blank = max(rates.minimum, int(round(rates.blank_line * len(lines)))) if rates.blank_line > 0 else 0
    lines = np.concatenate([lines, np.array(["", "   "] * (n_blank // 2) + [""] * (n_blank % 2), dtype=object)])
    counts["blank_line"] = n_blank
    # Mostly in order (as a logger writes), with some rows displaced: shuffle blocks, then displace a few rows.
    order = np.arange(len(lines))
    moved = rng.choice(len(lines), size=min(len(lines), max(rates.minimum, int(rates.out_of_order * len(lines)))),
                       replace=False)
    order[np.sort(moved)] = rng.permutation(moved)
    lines = lines[order]
    counts["rows_in"] = len(lines)
    files = []
    for i, start in enumerate(range(0, max(len(lines), 1), rates.rows_per_file)):
        path = lines_dir / f"part-{i:05d}.csv"
        path.write_text("\n".join(lines[start:start + rates.rows_per_file]) + "\n")
        files.append(path)
    return MessyResult(counts=counts, out_of_order_moved=int(len(moved)), files=files)
