"""Streaming hydro scoring: sensor lines -> parse -> per-sensor ARIMA interval + Markov verification -> alerts.

    python -m flink_jobs.streaming.hydro_job --help

Landing lines are ``sensor_id,timestamp,value`` (``MainStreet/stage,2019-01-01T07:00:00Z,1.23``).
One keyed operator per sensor (uid ``order-score``) orders rows by event time, drops duplicates and
feeds each value to the sensor's production ``HydroDetector``; the detector's streaming state is kept
in Flink keyed state, so a restore from a savepoint continues the recursion where it stopped.

With ``covariates`` (``--covariates stage=temp``) each site's ``temp`` lines also go to its ``stage`` key, and
every stage row is scored with the temperature of its timestamp (the ``+ice`` configs' second variable);
``covariates.py`` says how long a row waits for it. Without (the default) nothing is copied or waits.
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
from flink_jobs.streaming.covariates import add_covariates, cov_state, ready
from flink_jobs.streaming.records import LineParser, Row, alert_json, dead_letter_json, parse_line, series_key
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
        self.joined = bool(self.cfg.covariates)

    def process_element(self, block, ctx):
        """A block of one sensor's lines (``blocks.py``): state is read and written once per block."""
        key = ctx.get_current_key()
        lines = lines_of(block)
        if self.joined and series_key(lines[0]) != key:  # a covariate sensor's block, copied to this key
            st = self._state(ctx)
            add_covariates(cov_state(st), self._covariate_rows(lines))
            yield from self._score(key, st, [])
            self.state.update(st)
            return
        st, released = yield from admit_lines(lines, self.parser, lambda: self._state(ctx),
                                              self.cfg.out_of_orderness_ms, self.counters)
        if st is not None:
            yield from self._score(key, st, released)
            self.state.update(st)

    def _covariate_rows(self, lines) -> list[Row]:
        """The copy's valid rows; its problems are dead-lettered under the covariate sensor's own key."""
        cfg = self.cfg
        got = (parse_line(x, 1, None, cfg.naive_utc_offset_minutes, self.parser.nodata) for x in lines)
        return [r for r in got if isinstance(r, Row)]

    def _state(self, ctx) -> dict:
        arm_end_of_input(self._armed, ctx)
        return self.state.value() or {"order": new_state(), "version": None, "detector_state": None}

    def on_timer(self, timestamp, ctx):
        st = self.state.value()
        if st is not None:
            yield from self._score(ctx.get_current_key(), st, release(st["order"], END_OF_INPUT), final=True)
            self.state.update(st)

    def _score(self, key, st, rows, final: bool = False):
        if not rows and not st.get("cov", {}).get("wait"):
            return
        loaded = self.models.get(key)
        if self.joined:
            # a model without a covariate rule scores the same without one: its rows need not wait
            plain = loaded is None or getattr(loaded.detector, "ice_temp", None) is None
            pairs = ready(cov_state(st), rows, self.cfg.out_of_orderness_ms, self.cfg.covariate_wait_rows,
                          final or plain)
        elif "cov" in st:  # restored from a job with covariates: its waiting rows go first, then no more join
            pairs = ready(st.pop("cov"), rows, 0, 0, final=True)
        else:
            pairs = [(r, None) for r in rows]
        if loaded is None:
            yield from no_model_dead_letters(self.models, self.counters, self.cfg.family, key,
                                             [r for r, _ in pairs], "score")
            return
        det = loaded.detector
        if st["version"] != loaded.version or st["detector_state"] is None:
            st["version"], st["detector_state"] = loaded.version, det.new_state()
        scored = alerts = 0
        for r, cov in pairs:
            try:
                st["detector_state"], out = det.update(st["detector_state"], r.ts, r.values[0], cov)
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
            scored += 1
            if out["anomalous"]:
                alerts += 1
                yield rec
            if self.cfg.every_window:
                yield SCORES, rec
        if scored:  # one metric update per block (each is a call into the JVM)
            self.counters.inc("points_scored", scored)
        if alerts:
            self.counters.inc("alerts", alerts)


def build(env, source=None, sink=None, cfg: StreamConfig | None = None):
    """Add the hydro job to ``env``; returns (alerts, scores or None, dead letters) streams."""
    cfg = cfg or from_env("hydro")
    configure(env, cfg)
    source = source or source_from_config(cfg)
    sink = sink or FileSinks(cfg.out_dir)
    # parse inside the keyed operator: lines cross to Python once, in blocks (see lstm_job)
    alerts = (keyed_series_blocks(env, source.stream(env), covariates=cfg.covariates)
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
    d = from_env("hydro")
    p.add_argument("--covariates", default=",".join(d.covariates),
                   help="comma-separated 'dependent=covariate' variables, e.g. 'stage=temp': each site's temp "
                   "readings are its stage sensor's covariate (the +ice models' water temperature); a stage row "
                   "is scored with the temp of its timestamp, None when there is none (default: no covariate)")
    p.add_argument("--covariate-wait-rows", type=int, default=d.covariate_wait_rows,
                   help="at most this many rows of a sensor wait for their same-time covariate (0: none wait)")
    args = p.parse_args(argv)
    cfg = config_from_args(args, "hydro", covariates=tuple(c for c in args.covariates.split(",") if c.strip()),
                           covariate_wait_rows=args.covariate_wait_rows)
    from flink_jobs.env import stream_env

    env = stream_env(args.parallelism)
    build(env, cfg=cfg)
    print(f"hydro job: landing {cfg.landing_dir} -> {cfg.out_dir} (bounded={cfg.bounded})", flush=True)
    env.execute("streamguard-hydro")
    return 0


if __name__ == "__main__":
    sys.exit(main())
