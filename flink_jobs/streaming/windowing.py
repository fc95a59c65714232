"""Per-series event-time ordering, de-duplication and window cutting (pure functions used by the keyed
operators of both jobs), plus what those operators share: end-of-input timer, model cache, dead letters.

The state of one series is a plain dict (savepoint-friendly: no project classes inside):
``max`` newest timestamp seen, ``last`` newest timestamp released, ``pending`` rows held back
by the out-of-orderness bound (ts -> row), ``buf`` released rows not yet past a window, ``index``
row number of ``buf[0]`` in the series. A row is released once a row at least ``bound_ms`` newer
has been seen (or at the end of a bounded input); a row no newer than ``last`` is a duplicate
(same timestamp as a kept row) or late (dead letter).
"""

from __future__ import annotations

import numpy as np

from flink_jobs.streaming.blocks import ParsedRows, decode_block, lines_of, n_rows
from flink_jobs.streaming.common import DEAD, Counters
from flink_jobs.streaming.config import StreamConfig
from flink_jobs.streaming.models import ModelCache, registry_name
from flink_jobs.streaming.records import DeadLetter, Row, dead_letter_json

END_OF_INPUT = 2**63 - 2  # event-time timer that fires only on the final watermark of a bounded input


def arm_end_of_input(armed: set, ctx) -> None:
    """Register the END_OF_INPUT timer of the current key once per operator attempt.

    Not only when the key's state is created: after a restore from a checkpoint taken just after a key's
    first rows, PyFlink gave back the key's ValueState but not its timer, so the held-back rows were never
    flushed and the last window was lost (issue 7). Registering the same timestamp again is a no-op in Flink.
    """
    key = ctx.get_current_key()
    if key not in armed:
        armed.add(key)
        ctx.timer_service().register_event_time_timer(END_OF_INPUT)


def new_state() -> dict:
    return {"max": None, "last": None, "pending": {}, "buf": [], "index": 0, "recent": []}


def order(state: dict, row: Row, bound_ms: int) -> tuple[list[Row], str | None]:
    """Add ``row``; returns the rows now released in timestamp order and 'duplicate'/'late'/None."""
    last = state["last"]
    if last is not None and row.ts <= last:
        return [], "duplicate" if row.ts in state["recent"] else "late"
    if bound_ms <= 0 and not state["pending"]:  # the common case: in order, nothing held back
        state["max"] = state["last"] = row.ts
        _remember(state["recent"], [row.ts])
        return [row], None
    if row.ts in state["pending"]:
        return [], "duplicate"
    state["pending"][row.ts] = row
    if state["max"] is None or row.ts > state["max"]:
        state["max"] = row.ts
    return release(state, state["max"] - bound_ms), None


def admit(state: dict, row: Row, bound_ms: int, counters: Counters) -> tuple[list[Row] | None, str | None]:
    """``order`` with its bookkeeping, for both jobs: returns (released rows, None), or (None, None) for a
    duplicate (counted, dropped), or (None, dead-letter JSON) for a late row (counted)."""
    released, problem = order(state, row, bound_ms)
    if problem == "duplicate":
        counters.inc("duplicates")
        return None, None
    if problem == "late":
        counters.dead("late")
        return None, dead_letter_json(row_dead_letter(row, "late", f"newest released ts {state['last']}"), "order")
    return released, None


def admit_lines(lines, parser, get_state, bound_ms: int, counters: Counters):
    """Parse, order and de-dup one block of a series' lines (the keyed operators of both jobs).

    ``lines``: strings, or Rows already parsed (the parsing splitter's), in read order. Yields
    ``(DEAD, json)`` dead letters; returns ``(state, released rows in time order)``, the state from
    ``get_state()`` (called at the first valid row, so a block of bad lines creates none) or None.
    """
    st, released = None, []
    for line in lines:
        row = parser(line) if isinstance(line, str) else line
        if isinstance(row, str):  # dead letter JSON
            yield DEAD, row
            continue
        if st is None:
            st = get_state()
        rows, late = admit(st["order"], row, bound_ms, counters)
        if rows:
            released += rows
        elif late:
            yield DEAD, late
    return st, released


def admit_block(block, key: str, n_values: int, parser, get_state, bound_ms: int, counters: Counters):
    """``admit_lines`` for a keyed operator's input element: a block of lines (str), or the parsing
    splitter's bytes (``blocks.decode_block``). A parsed block that is in time order, after the series'
    newest released row, with nothing held back (the common case, ``bound_ms`` 0) is released whole as
    ``ParsedRows`` arrays, with no Python object per row; anything else takes the row-by-row path."""
    if isinstance(block, str | tuple):
        return (yield from admit_lines(lines_of(block), parser, get_state, bound_ms, counters))
    rows = decode_block(block, n_values)
    if not rows.raw and len(rows.ts) and bound_ms <= 0:
        st = get_state()
        o = st["order"]
        if not o["pending"] and (o["last"] is None or rows.ts[0] > o["last"]) and (
                len(rows.ts) == 1 or bool((rows.ts[1:] > rows.ts[:-1]).all())):
            o["max"] = o["last"] = int(rows.ts[-1])
            _remember_many(o["recent"], rows.ts)
            return st, rows
    return (yield from admit_lines(rows.in_order(key), parser, get_state, bound_ms, counters))


def release(state: dict, upto: int) -> list[Row]:
    """Release pending rows with ts <= upto, oldest first."""
    pending = state["pending"]
    ready = sorted(t for t in pending if t <= upto)
    out = [pending.pop(t) for t in ready]
    if out:
        state["last"] = out[-1].ts
        _remember(state["recent"], [r.ts for r in out])
    return out


def _remember(recent: list, stamps: list) -> None:
    """Keep the timestamps of the 64 to 128 newest released rows, to tell a duplicate from a late row."""
    recent.extend(stamps)
    if len(recent) > 128:
        del recent[:-64]


def _remember_many(recent: list, stamps: np.ndarray) -> None:
    """``_remember`` of each stamp in turn (the list keeps the same 64 to 128 newest), in one step."""
    total = len(recent) + len(stamps)
    keep = total if total <= 128 else 64 + (total - 129) % 65
    recent[:] = (recent + stamps[-keep:].tolist())[-keep:] if keep else []


def _as_arrays(rows) -> ParsedRows:
    if isinstance(rows, ParsedRows):
        return rows
    return ParsedRows(np.fromiter((r.ts for r in rows), dtype=np.int64, count=len(rows)),
                      np.asarray([r.values for r in rows], dtype=np.float64).reshape(len(rows), -1),
                      np.fromiter((r.ingest_ms for r in rows), dtype=np.int64, count=len(rows)), [])


def cut(state: dict, rows, length: int, step: int) -> list[tuple]:
    """Append released rows (Rows or ``ParsedRows``); return every full window as
    (first_index, ts (L,), values (L, C) float32, ingest_ms). ``buf`` holds the rows not yet past a
    window as arrays ``(ts, values, ingest)`` (a list of row tuples in states written before)."""
    buf = state["buf"]
    if isinstance(buf, list):  # empty, or row tuples in a state written before the arrays
        buf = _as_arrays([Row("", t, v, i) for t, v, i in buf]) if buf else None
    else:
        buf = ParsedRows(*buf, [])
    parts = [p for p in (buf, _as_arrays(rows) if n_rows(rows) else None) if p is not None]
    if not parts:
        return []
    ts, values, ingest = (np.concatenate([getattr(p, field) for p in parts]) for field in ("ts", "values", "ingest"))
    out, start = [], 0
    while len(ts) - start >= length:
        end = start + length
        out.append((state["index"], ts[start:end].copy(), values[start:end].astype(np.float32),
                    int(ingest[start:end].max())))
        start += step
        state["index"] += step
    state["buf"] = (ts[start:].copy(), values[start:].copy(), ingest[start:].copy()) if len(ts) > start else []
    return out


def row_dead_letter(row: Row, reason: str, detail: str = "") -> DeadLetter:
    raw = ",".join([row.series_id, str(row.ts)] + [repr(v) for v in row.values])
    return DeadLetter(raw, reason, detail, row.series_id)


def no_model_dead_letters(models, counters, family: str, key: str, rows, stage: str):
    """Dead letters for rows of a series whose production model could not be had; the reason says why."""
    reason = models.why_missing(key)
    for r in rows:
        counters.dead(reason)
        yield DEAD, dead_letter_json(row_dead_letter(r, reason, registry_name(family, key)), stage)


def subtask_of(runtime_context) -> tuple[int, int]:
    """(subtask index, attempt number). PyFlink 2.3's thread-mode context still asks the Java context for
    ``getIndexOfThisSubtask``, which Flink 2 moved to ``getTaskInfo()``; ask there when that fails."""
    try:
        return runtime_context.get_index_of_this_subtask(), runtime_context.get_attempt_number()
    except Exception:  # noqa: BLE001 - py4j/pemja raise their own types
        info = runtime_context._runtime_context.getTaskInfo()
        return info.getIndexOfThisSubtask(), info.getAttemptNumber()


def model_cache(cfg: StreamConfig, counters: Counters, runtime_context=None, operator: str = "",
                status: bool = False) -> ModelCache:
    """The operator's model cache; with a series allow-list the models are loaded now (in ``open``) and a
    marker ``<out_dir>/.ready/<operator>-<subtask>`` says this operator is warm (the demo waits for it).
    ``status``: this is the scoring operator, it keeps ``<status_dir>/<family>-<subtask>.json`` current."""
    cache = ModelCache(cfg.family, cfg.tracking_uri, cfg.registry_uri, cfg.alias, cfg.model_cache_dir,
                       cfg.model_refresh_s, cfg.missing_model_retry_s,
                       on_event=lambda kind, msg: counters.inc(kind))
    if status and runtime_context is not None:
        from flink_jobs.streaming.status import StatusFile

        status_file = StatusFile(cfg.status_path, cfg.family, *subtask_of(runtime_context))
        status_file.write()
        cache.on_change = status_file.update
    for series_id in cfg.series:
        cache.get(series_id)
    if runtime_context is not None and cfg.out_dir:
        from pathlib import Path

        ready = Path(cfg.out_dir) / ".ready"
        ready.mkdir(parents=True, exist_ok=True)
        (ready / f"{operator}-{subtask_of(runtime_context)[0]}").touch()
    return cache
