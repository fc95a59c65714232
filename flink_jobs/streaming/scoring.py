"""Keyed scoring of windows with the series' production LSTM-ED, in-process.

The windows cut from one input block of a series are scored together, in model calls of at most
``batch_size`` windows; with ``max_wait_ms`` > 0 a remainder smaller than ``batch_size`` waits in keyed
state for the next block or the wait's timer instead (a checkpoint never loses a queued window).
The detector's recent-window history (score adaptation) is kept per series in keyed state too,
so the stream gives the same scores as ``detector.score_series`` on the same rows.
"""

from __future__ import annotations

import json
import os
import time
import urllib.request
from pathlib import Path

import numpy as np
from pyflink.common import Types
from pyflink.datastream import KeyedProcessFunction
from pyflink.datastream.state import ValueStateDescriptor

from flink_jobs.streaming.blocks import ParsedRows, n_rows, row_list
from flink_jobs.streaming.common import DEAD, SCORES, Counters
from flink_jobs.streaming.config import StreamConfig
from flink_jobs.streaming.records import DeadLetter, LineParser, alert_json, dead_letter_json
from flink_jobs.streaming.windowing import (
    END_OF_INPUT,
    admit_block,
    arm_end_of_input,
    cut,
    model_cache,
    new_state,
    no_model_dead_letters,
    release,
    row_dead_letter,
)


def window_dead_letter(win: tuple, reason: str, detail: str = "") -> str:
    series_id, first, ts, values, _ = win
    raw = json.dumps({"series_id": series_id, "row_index": first, "window_start": int(ts[0]),
                      "window_end": int(ts[-1]), "rows": len(ts)})
    return dead_letter_json(DeadLetter(raw, reason, detail, series_id), "score")



class OrderWindowScore(KeyedProcessFunction):
    """Keyed by series, fed blocks of that series' raw lines: parse, order by event time, de-dup, cut the
    production model's windows and score them, all in one Python operator.

    One operator instead of parse -> order-window -> score: the lines cross from Java to Python once, as
    strings, instead of pickled rows and windows between three Python operators (issue 7 profile: the
    pickling of a 38-value row alone cost ~100 us). State per series is one dict:
    ``{"order": windowing state, "version", "history", "queue"}`` (builtin types and numpy arrays only).
    """

    def __init__(self, cfg: StreamConfig):
        self.cfg = cfg

    def open(self, runtime_context):
        self.state = runtime_context.get_state(ValueStateDescriptor("series", Types.PICKLED_BYTE_ARRAY()))
        self.counters = Counters(runtime_context)
        self.parser = LineParser(self.cfg, self.counters)
        self.models = model_cache(self.cfg, self.counters, runtime_context, "score", status=True)
        self.scored = 0
        self._armed = set()
        self._wait_until: dict[str, int] = {}
        threads = int(os.environ.get("SG_TORCH_THREADS", "1"))
        try:
            import torch

            torch.set_num_threads(max(1, threads))
        except ImportError:  # pragma: no cover - torch is a dependency
            pass

    def process_element(self, block, ctx):
        """A block of one series' lines (``blocks.py``): state is read and written once per block, the
        released rows are cut into windows once, and the windows are scored in calls of at most
        ``batch_size``; what is left is scored at the end of the block, or (``max_wait_ms`` > 0) when
        ``batch_size`` are queued or the wait is over."""
        key = ctx.get_current_key()
        st, released = yield from admit_block(block, key, self.cfg.n_values, self.parser, lambda: self._state(ctx),
                                              self.cfg.out_of_orderness_ms, self.counters)
        if st is None:
            return
        yield from self._windows(key, st, released)
        while len(st["queue"]) >= self.cfg.batch_size:
            yield from self._flush(key, st)
        if st["queue"]:
            if self.cfg.max_wait_ms <= 0:
                yield from self._flush(key, st)
            else:
                # one max-wait timer per key at a time, remembered per attempt (a restore re-registers it);
                # registering costs a round trip to the JVM (~ms), so the default is to flush now instead
                now = ctx.timer_service().current_processing_time()
                if self._wait_until.get(key, 0) < now:
                    self._wait_until[key] = now + self.cfg.max_wait_ms
                    ctx.timer_service().register_processing_time_timer(now + self.cfg.max_wait_ms)
        self.state.update(st)

    def _state(self, ctx) -> dict:
        arm_end_of_input(self._armed, ctx)
        return self.state.value() or {"order": new_state(), "version": None, "history": None, "queue": []}

    def on_timer(self, timestamp, ctx):
        st = self.state.value()
        if st is None:
            return
        key = ctx.get_current_key()
        if timestamp == END_OF_INPUT:
            yield from self._windows(key, st, release(st["order"], END_OF_INPUT))
        while st["queue"]:
            yield from self._flush(key, st)
        self.state.update(st)

    def _windows(self, key, st, rows):
        """Released rows -> the model's windows appended to the queue (or dead letters)."""
        if not n_rows(rows):
            return
        loaded = self.models.get(key)
        if loaded is None:
            yield from no_model_dead_letters(self.models, self.counters, self.cfg.family, key, row_list(rows, key),
                                             "window")
            return
        det = loaded.detector
        width = rows.values.shape[1] if isinstance(rows, ParsedRows) else len(rows[0].values)
        if det.n_channels != width:
            for r in row_list(rows, key):
                self.counters.dead("window_shape")
                yield DEAD, dead_letter_json(
                    row_dead_letter(r, "window_shape", f"model has {det.n_channels} channels"), "window")
            return
        n_before = len(st["queue"])
        for first, ts, values, ingest in cut(st["order"], rows, int(det.length), int(det.step)):
            st["queue"].append((key, int(first), ts, values, int(ingest)))
        if len(st["queue"]) > n_before:  # one metric update per block (each is a call into the JVM)
            self.counters.inc("windows", len(st["queue"]) - n_before)

    def _flush(self, key, st):
        """Score the oldest ``batch_size`` queued windows."""
        queue, st["queue"] = st["queue"][: self.cfg.batch_size], st["queue"][self.cfg.batch_size :]
        loaded = self.models.get(key)
        if loaded is None:
            reason = self.models.why_missing(key)
            for w in queue:
                self.counters.dead(reason)
                yield DEAD, window_dead_letter(w, reason)
            return
        det = loaded.detector
        if loaded.version != st["version"]:
            st["version"], st["history"] = loaded.version, None  # a new model starts its own history
        try:
            if self.cfg.rest_url:
                out = score_rest(self.cfg.rest_url, queue, det)
            else:
                out = det.score_windows(np.stack([w[3] for w in queue]), st["history"])
                st["history"] = out.get("history")
        except Exception as exc:  # noqa: BLE001 - a bad window must not kill the job
            for w in queue:
                self.counters.dead("model_error")
                yield DEAD, window_dead_letter(w, "model_error", f"{type(exc).__name__}: {str(exc)[:160]}")
            return
        names = list(getattr(det, "channel_names", []) or [])
        self.counters.inc("windows_scored", len(queue))  # one metric update per call, not per window
        n_alerts = int(np.count_nonzero(out["anomalous"]))
        if n_alerts:
            self.counters.inc("alerts", n_alerts)
        for i, (series_id, first, ts, _values, ingest) in enumerate(queue):
            anomalous = bool(out["anomalous"][i])
            top = [(int(c), float(s)) for c, s in out["top_channels"][i]]
            rec = alert_json(
                series_id, ts[0], ts[-1], anomalous, float(out["max_score"][i]), float(out["tau"][i]),
                int(out["count_over_tau"][i]), float(det.delta), top, loaded.name, loaded.version, ingest,
                row_index=int(first), channel_names=[names[c] for c, _ in top] if names else [],
            )
            if anomalous:
                yield rec
            if self.cfg.every_window:
                yield SCORES, rec
        self.scored += len(queue)
        self._maybe_fail()

    def _maybe_fail(self):
        """Fault injection for the exactly-once test: fail once, after N windows, in one attempt only."""
        n = self.cfg.fail_after_windows
        if n <= 0 or self.scored < n:
            return
        marker = Path(self.cfg.out_dir) / ".fault-injected"
        if marker.exists():
            return
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.write_text(str(time.time()))
        raise RuntimeError(f"injected failure after {self.scored} windows (fail_after_windows={n})")


def score_rest(url: str, queue: list, det) -> dict:
    """Paper's design: one POST per window to ``mlflow models serve`` (pyfunc predict on the window's rows)."""
    names = list(getattr(det, "channel_names", []) or []) or [f"c{i}" for i in range(det.n_channels)]
    res = {"anomalous": [], "max_score": [], "count_over_tau": [], "tau": [], "top_channels": []}
    for _series, _first, _ts, values, _ in queue:
        body = json.dumps({"dataframe_split": {"columns": names, "data": values.tolist()}}).encode()
        req = urllib.request.Request(url, body, {"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=30) as resp:
            preds = json.loads(resp.read())["predictions"]
        row = preds[0] if isinstance(preds, list) else {k: v[0] for k, v in preds.items()}
        res["anomalous"].append(bool(row["anomalous"]))
        res["max_score"].append(float(row["max_score"]))
        res["count_over_tau"].append(int(row["count_over_tau"]))
        res["tau"].append(float(row["tau"]))
        top = json.loads(row["top_channels"]) if isinstance(row["top_channels"], str) else row["top_channels"]
        res["top_channels"].append([(t["index"], t["share"]) if isinstance(t, dict) else tuple(t) for t in top])
    return res
