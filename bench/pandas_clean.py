"""The pandas baseline for bench/clean_bench.py: the same cleaning rules as flink_jobs/clean_job.py, vectorised.

Kept in bench/ on purpose: it is a yardstick, not a second code path of the product.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from flink_jobs.clean_sql import NAN_INF_WORDS
from serving.sources import DEFAULT_NODATA_TOKENS, SourceConfig

DATE_RE = (r"^(\d{4})[-/](\d{2})[-/](\d{2})[T ](\d{2}):(\d{2})(?::(\d{2})(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?$")


def _timestamps(s: pd.Series, naive_offset_min: int) -> pd.Series:
    out = pd.Series(np.nan, index=s.index)
    ms = s.str.fullmatch(r"\d{13}")
    out[ms] = s[ms].astype("int64")
    sec = s.str.fullmatch(r"\d{9,10}(\.\d+)?") & ~ms
    out[sec] = (s[sec].astype(float) * 1000).round()
    parts = s.str.extract(DATE_RE)
    ok = parts[0].notna() & ~ms & ~sec
    p = parts[ok]
    base = p[0] + "-" + p[1] + "-" + p[2] + " " + p[3] + ":" + p[4] + ":" + p[5].fillna("00")
    when = pd.to_datetime(base, format="%Y-%m-%d %H:%M:%S", errors="coerce")
    frac = p[6].fillna(".0").str[1:].str.ljust(3, "0").str[:3].astype(int)
    zone = p[7]
    sign = np.where(zone.str[0] == "-", -1, 1)
    clean = zone.fillna("").str.replace(":", "")
    off = np.where(zone.isna(), naive_offset_min,
                   np.where(zone == "Z", 0, sign * (pd.to_numeric(clean.str[1:3], errors="coerce").fillna(0) * 60
                                                     + pd.to_numeric(clean.str[3:5], errors="coerce").fillna(0))))
    epoch = (when - pd.Timestamp("1970-01-01")) // pd.Timedelta(milliseconds=1)
    out[ok] = epoch + frac - off * 60_000
    return out


def clean(cfg: SourceConfig, lines: list[str]) -> tuple[dict[str, pd.DataFrame], pd.DataFrame, dict[str, int]]:
    """Returns (cleaned frames per series, rejects, counts) following the Flink job's rules and order."""
    raw = pd.Series(lines, dtype=object)
    n = cfg.n_values
    reason = pd.Series(None, index=raw.index, dtype=object)
    blank = raw.str.strip() == ""
    nfields = raw.str.count(",") + 1
    reason[blank] = "blank_line"
    reason[reason.isna() & (nfields < n + 2)] = "missing_columns"
    reason[reason.isna() & (nfields > n + 2)] = "extra_columns"
    cand = reason.isna()
    fields = raw[cand].str.split(",", expand=True)
    sid = fields[0].str.strip()
    unknown = ~sid.isin(cfg.series)
    reason[unknown[unknown].index] = "unknown_series"
    ts = _timestamps(fields[1].str.strip(), cfg.naive_utc_offset_minutes)
    bad_ts = ts.isna() & reason[fields.index].isna()
    reason[bad_ts[bad_ts].index] = "bad_timestamp"
    tokens = fields.iloc[:, 2:2 + n].apply(lambda c: c.str.strip())
    missing = tokens.apply(lambda c: c.str.upper().isin(DEFAULT_NODATA_TOKENS))
    nums = tokens.apply(pd.to_numeric, errors="coerce")
    naninf = tokens.apply(lambda c: c.str.lower().isin(NAN_INF_WORDS))
    non_numeric = (~missing & nums.isna() & ~naninf).any(axis=1)
    for name, mask in (("non_numeric", non_numeric), ("nan_inf", naninf.any(axis=1)),
                       ("nodata", missing.any(axis=1) | nums.isin(cfg.nodata_codes).any(axis=1))):
        hit = mask & reason[fields.index].isna()
        reason[hit[hit].index] = name
    good = reason[fields.index].isna()
    vals = nums[good].copy()
    vals.columns = cfg.value_names
    df = vals.assign(series_id=sid[good], ts=ts[good].astype("int64"))
    key = ["series_id", "ts", *cfg.value_names]
    copies = df.groupby(key, sort=False).size().rename("copies").reset_index()
    per_ts = copies.groupby(["series_id", "ts"])["copies"].transform("size")
    conflict_keys = copies.loc[per_ts > 1, ["series_id", "ts"]].drop_duplicates()
    in_conflict = df.set_index(["series_id", "ts"]).index.isin(conflict_keys.set_index(["series_id", "ts"]).index)
    kept = copies[per_ts == 1].drop(columns="copies").sort_values(["series_id", "ts"])
    gap = kept.groupby("series_id")["ts"].diff() > int(cfg.interval_ms * 1.5)
    kept = kept.assign(gap_before=gap.to_numpy())
    rejects = pd.DataFrame({"source": cfg.name, "reason": reason[reason.notna()], "line": raw[reason.notna()]})
    conflict_lines = raw[good[good].index[in_conflict]]
    rejects = pd.concat([rejects, pd.DataFrame({"source": cfg.name, "reason": "conflicting_duplicate",
                                                "line": conflict_lines})])
    counts = reason.value_counts().to_dict()
    counts.update(duplicate=int((copies.loc[per_ts == 1, "copies"] - 1).sum()),
                  conflicting_duplicate=int(in_conflict.sum()), gaps=int(gap.sum()), rows_in=len(raw),
                  rows_out=len(kept), series_out=int(kept["series_id"].nunique()))
    frames = {s: g.drop(columns="series_id") for s, g in kept.groupby("series_id")}
    return frames, rejects, counts
