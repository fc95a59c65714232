"""Streaming hydro scoring: sensor lines -> parse -> per-sensor ARIMA interval + Markov verification -> alerts.

    python -m flink_jobs.streaming.hydro_job --help

Landing lines are ``sensor_id,timestamp,value`` (``MainStreet/stage,2019-01-01T07:00:00Z,1.23``).
One keyed operator per sensor (uid ``order-score``) orders rows by event time, drops duplicates and
feeds each value to the sensor's production ``HydroDetector``; the detector's streaming state is kept
in Flink keyed state, so a restore from a savepoint continues the recursion where it stopped.
"""

from __future__ import annotations

import argparse
import math
import sys

from pyflink.common import Types
from pyflink.datastream import KeyedProcessFunction
from pyflink.datastream.state import ValueStateDescriptor

from flink_jobs.streaming.blocks import keyed_series_blocks, lines_of
from flink_jobs.streaming.cli import add_common_args, config_from_args, configure, side_outputs
from flink_jobs.streaming.common import DEAD, SCORES, Counters
from flink_jobs.streaming.config import StreamConfig, from_env
from flink_jobs.streaming.records import LineParser, alert_json, dead_letter_json
from flink_jobs.streaming.sinks import FileSinks
from flink_jobs.streaming.sources import source_from_config
from flink_jobs.streaming.windowing import (
    END_OF_INPUT,
    admit_lines,
    arm_end_of_input,
    model_cache,
    new_state,
    no_model_dead_letters,
    release,
    row_dead_letter,
)

PICKLED = Types.PICKLED_BYTE_ARRAY()


def _finite(x) -> float | None:
    return float(x) if x is not None and math.isfinite(float(x)) else None


class OrderAndScore(KeyedProcessFunction):
    """Keyed by sensor, fed blocks of that sensor's raw lines: parse, event-time order + de-dup, then
    ``detector.update`` per released row."""

    def __init__(self, cfg: StreamConfig):
        self.cfg = cfg

    def open(self, runtime_context):
        self.state = runtime_context.get_state(ValueStateDescriptor("sensor", PICKLED))
        self.counters = Counters(runtime_context)
        self.parser = LineParser(self.cfg, self.counters)
        self.models = model_cache(self.cfg, self.counters, runtime_context, "order-score", status=True)
        self._armed = set()

    def process_element(self, block, ctx):
        """A block of one sensor's lines (``blocks.py``): state is read and written once per block."""
        key = ctx.get_current_key()
        st, released = yield from admit_lines(lines_of(block), self.parser, lambda: self._state(ctx),
                                              self.cfg.out_of_orderness_ms, self.counters)
        if st is not None:
            yield from self._score(key, st, released)
            self.state.update(st)

    def _state(self, ctx) -> dict:
        arm_end_of_input(self._armed, ctx)
        return self.state.value() or {"order": new_state(), "version": None, "detector_state": None}

    def on_timer(self, timestamp, ctx):
        st = self.state.value()
        if st is not None:
            yield from self._score(ctx.get_current_key(), st, release(st["order"], END_OF_INPUT))
            self.state.update(st)

    def _score(self, key, st, rows):
        if not rows:
            return
        loaded = self.models.get(key)
        if loaded is None:
            yield from no_model_dead_letters(self.models, self.counters, self.cfg.family, key, rows, "score")
            return
        det = loaded.detector
        if st["version"] != loaded.version or st["detector_state"] is None:
            st["version"], st["detector_state"] = loaded.version, det.new_state()
        for r in rows:
            try:
                st["detector_state"], out = det.update(st["detector_state"], r.ts, r.values[0])
            except Exception as exc:  # noqa: BLE001 - a bad point must not kill the job
                self.counters.dead("model_error")
                yield DEAD, dead_letter_json(row_dead_letter(r, "model_error", str(exc)[:160]), "score")
                continue
            prob = _finite(out["anomaly_probability"])
            rec = alert_json(
                key, r.ts, r.ts, out["anomalous"], prob if prob is not None else 0.0, float(det.min_probability),
                int(bool(out["candidate"])), None, [], loaded.name, loaded.version, r.ingest_ms,
                value=r.values[0], forecast=_finite(out["forecast"]), lower=_finite(out["lower"]),
                upper=_finite(out["upper"]), candidate=bool(out["candidate"]),
                verified=bool(out.get("verified", False)), anomaly_probability=prob,
            )
            self.counters.inc("points_scored")
            if out["anomalous"]:
                self.counters.inc("alerts")
                yield rec
            if self.cfg.every_window:
                yield SCORES, rec


def build(env, source=None, sink=None, cfg: StreamConfig | None = None):
    """Add the hydro job to ``env``; returns (alerts, scores or None, dead letters) streams."""
    cfg = cfg or from_env("hydro")
    configure(env, cfg)
    source = source or source_from_config(cfg)
    sink = sink or FileSinks(cfg.out_dir)
    # parse inside the keyed operator: lines cross to Python once, in blocks (see lstm_job)
    alerts = (keyed_series_blocks(env, source.stream(env))
              .process(OrderAndScore(cfg), output_type=Types.STRING()).name("order-score").uid("order-score"))
    dead, scores = side_outputs(alerts, cfg)
    sink.attach(alerts, scores, dead)
    return alerts, scores, dead


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m flink_jobs.streaming.hydro_job",
        description="Score sensor readings (sensor_id,timestamp,value per line) with each sensor's production "
        "hydro model (models:/hydro-<site>-<variable>@production): ARIMA interval, Markov verification, "
        "persistence rules; alerts are JSON lines. Defaults come from SG_STREAM_* (docs/streaming.md).",
    )
    add_common_args(p, "hydro")
    args = p.parse_args(argv)
    cfg = config_from_args(args, "hydro")
    from flink_jobs.env import stream_env

    env = stream_env(args.parallelism)
    build(env, cfg=cfg)
    print(f"hydro job: landing {cfg.landing_dir} -> {cfg.out_dir} (bounded={cfg.bounded})", flush=True)
    env.execute("streamguard-hydro")
    return 0


if __name__ == "__main__":
    sys.exit(main())
