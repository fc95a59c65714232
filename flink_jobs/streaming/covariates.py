"""The hydro job's covariate join (``StreamConfig.covariates``, e.g. ``stage=temp``): per dependent sensor,
the covariate readings that reached its key (copies of ``<site>/temp`` blocks, ``blocks.with_covariate_copies``)
and the released rows that wait for theirs.

Batch scoring (``HydroDetector.score_series(..., covariate=...)``) pairs each reading with the covariate of the
same timestamp, NaN where there is none. The stream does the same: a released row is scored with the
covariate of its timestamp once that has arrived; it waits while none has, unless a covariate reading at or
after its timestamp (less the out-of-orderness bound) shows that this one is missing, ``wait_rows`` rows
of the series (itself included) would otherwise wait, or the input ends: it is then scored with None (as NaN: no covariate). Rows are
scored in time order, so rows behind a waiting row wait too.

The part of the keyed state (``st["cov"]``, a plain dict: savepoint-friendly, and absent from states written
before) holds ``values`` {ts: covariate}, ``newest`` covariate ts, ``wait`` rows waiting (as plain tuples),
``done`` the newest scored ts (older covariate readings are no longer needed).
"""

from __future__ import annotations

import math

from flink_jobs.streaming.records import Row

KEEP = 4096  # covariate readings kept per sensor at most (when the covariate runs far ahead of the dependent)


def cov_state(st: dict) -> dict:
    return st.setdefault("cov", {"values": {}, "newest": None, "wait": [], "done": None})


def add_covariates(cs: dict, rows) -> None:
    """Covariate rows (parsed copies) into the state; the first reading of a timestamp is kept, as the
    series' own de-duplication keeps the first."""
    values, done = cs["values"], cs["done"]
    for r in rows:
        if done is not None and r.ts <= done:
            continue
        v = r.values[0]
        values.setdefault(r.ts, v if math.isfinite(v) else None)
        if cs["newest"] is None or r.ts > cs["newest"]:
            cs["newest"] = r.ts
    if len(values) > KEEP:
        for ts in sorted(values)[: len(values) - KEEP]:
            del values[ts]


def ready(cs: dict, rows, bound_ms: int, wait_rows: int, final: bool = False) -> list[tuple]:
    """Append released ``rows`` to the waiting ones; return ``(row, covariate or None)`` for each row that
    need wait no longer, in time order. ``final``: every row goes (end of input, or a model without a
    covariate rule)."""
    wait, values, newest = cs["wait"], cs["values"], cs["newest"]
    wait.extend(tuple(r) for r in rows)
    n = 0
    while n < len(wait):
        ts = wait[n][1]
        if (ts not in values and not final and len(wait) - n <= wait_rows
                and (newest is None or newest - bound_ms < ts)):
            break
        n += 1
    out = [(Row(*w), values.get(w[1])) for w in wait[:n]]
    if n:
        del wait[:n]
        cs["done"] = done = out[-1][0].ts
        for ts in [t for t in values if t <= done]:
            del values[ts]
    return out
