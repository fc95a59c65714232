"""Streaming LSTM-ED scoring: landing lines -> parse -> per-machine windows -> production model -> alerts.

    python -m flink_jobs.streaming.lstm_job --help

Operators (stable uids, so a savepoint restores their state): ``landing-source``, ``parse``,
``order-window`` (keyed by series: event-time order, de-dup, windows), ``score`` (keyed by series:
in-process scoring), ``alerts-sink``, ``scores-sink``, ``dead-letters-sink``.
"""

from __future__ import annotations

import argparse
import sys

from pyflink.common import Types
from pyflink.datastream import CheckpointingMode

from flink_jobs.streaming.common import DEAD, SCORES
from flink_jobs.streaming.config import StreamConfig, from_env
from flink_jobs.streaming.records import ParseLines
from flink_jobs.streaming.scoring import ScoreWindows
from flink_jobs.streaming.sinks import FileSinks
from flink_jobs.streaming.sources import source_from_config
from flink_jobs.streaming.windowing import OrderAndWindow

PICKLED = Types.PICKLED_BYTE_ARRAY()


def configure(env, cfg: StreamConfig) -> None:
    """Checkpointing (exactly-once sinks need it) and connector jars."""
    env.enable_checkpointing(cfg.checkpoint_interval_ms, CheckpointingMode.EXACTLY_ONCE)
    if cfg.jars:
        env.add_jars(*[j if "://" in j else f"file://{j}" for j in cfg.jars])


def _series_key(rec) -> str:
    return rec[0]


def build(env, source=None, sink=None, cfg: StreamConfig | None = None):
    """Add the job to ``env``; returns (alerts, scores or None, dead letters) streams."""
    cfg = cfg or from_env("lstm_ed")
    configure(env, cfg)
    source = source or source_from_config(cfg)
    sink = sink or FileSinks(cfg.out_dir)
    lines = source.stream(env)
    rows = lines.process(ParseLines(cfg.n_values, cfg.series, cfg.naive_utc_offset_minutes),
                         output_type=PICKLED).name("parse").uid("parse")
    windows = (rows.key_by(_series_key, key_type=Types.STRING())
               .process(OrderAndWindow(cfg), output_type=PICKLED).name("order-window").uid("order-window"))
    alerts = (windows.key_by(_series_key, key_type=Types.STRING())
              .process(ScoreWindows(cfg), output_type=Types.STRING()).name("score").uid("score"))
    dead = rows.get_side_output(DEAD).union(windows.get_side_output(DEAD), alerts.get_side_output(DEAD))
    scores = alerts.get_side_output(SCORES) if cfg.every_window else None
    sink.attach(alerts, scores, dead)
    return alerts, scores, dead


def add_common_args(p: argparse.ArgumentParser, family: str) -> None:
    d = from_env(family)
    p.add_argument("--landing-dir", default=d.landing_dir, help="folder watched for new landing files")
    p.add_argument("--out-dir", default=d.out_dir, help="alerts/, scores/ and dead_letters/ go here")
    p.add_argument("--source", default=d.source, help="'file' (default), 'kafka' or 'module:function'")
    p.add_argument("--bounded", action="store_true", default=d.bounded,
                   help="read the files present in the landing dir, then finish")
    p.add_argument("--series", default=",".join(d.series), help="comma-separated accepted series ids (default: any)")
    p.add_argument("--out-of-orderness-ms", type=int, default=d.out_of_orderness_ms,
                   help="how much later than newer rows of its series a row may arrive")
    p.add_argument("--every-window", action="store_true", default=d.every_window,
                   help="also write every scored window/point to scores/")
    p.add_argument("--checkpoint-interval-ms", type=int, default=d.checkpoint_interval_ms)
    p.add_argument("--discovery-interval-ms", type=int, default=d.discovery_interval_ms)
    p.add_argument("--parallelism", type=int, default=None, help="default: SG_FLINK_PARALLELISM")


def config_from_args(args, family: str, **more) -> StreamConfig:
    return from_env(
        family,
        landing_dir=args.landing_dir, out_dir=args.out_dir, source=args.source, bounded=args.bounded,
        series=tuple(s for s in args.series.split(",") if s), out_of_orderness_ms=args.out_of_orderness_ms,
        every_window=args.every_window, checkpoint_interval_ms=args.checkpoint_interval_ms,
        discovery_interval_ms=args.discovery_interval_ms, **more,
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m flink_jobs.streaming.lstm_job",
        description="Score server metrics (series_id,timestamp,38 values per line) with each machine's "
        "production LSTM-ED model (models:/lstm_ed-<machine>@production); alerts are JSON lines. "
        "Every default comes from SG_STREAM_* environment variables (see docs/streaming.md).",
    )
    add_common_args(p, "lstm_ed")
    p.add_argument("--batch-size", type=int, default=from_env("lstm_ed").batch_size,
                   help="windows of one machine scored per model call")
    args = p.parse_args(argv)
    cfg = config_from_args(args, "lstm_ed", batch_size=args.batch_size)
    from flink_jobs.env import stream_env

    env = stream_env(args.parallelism)
    build(env, cfg=cfg)
    print(f"lstm job: landing {cfg.landing_dir} -> {cfg.out_dir} (bounded={cfg.bounded})", flush=True)
    env.execute("streamguard-lstm-ed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
