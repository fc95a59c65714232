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

from flink_jobs.streaming.cli import add_common_args, config_from_args, configure
from flink_jobs.streaming.common import DEAD, SCORES
from flink_jobs.streaming.config import StreamConfig, from_env
from flink_jobs.streaming.records import ParseLines
from flink_jobs.streaming.scoring import ScoreWindows
from flink_jobs.streaming.sinks import FileSinks
from flink_jobs.streaming.sources import source_from_config
from flink_jobs.streaming.windowing import OrderAndWindow

PICKLED = Types.PICKLED_BYTE_ARRAY()


def _series_key(rec) -> str:
    return rec[0]


def build(env, source=None, sink=None, cfg: StreamConfig | None = None):
    """Add the job to ``env``; returns (alerts, scores or None, dead letters) streams."""
    cfg = cfg or from_env("lstm_ed")
    configure(env, cfg)
    source = source or source_from_config(cfg)
    sink = sink or FileSinks(cfg.out_dir)
    lines = source.stream(env)
    rows = lines.process(ParseLines(cfg.n_values, cfg.series, cfg.naive_utc_offset_minutes, cfg.nodata_codes),
                         output_type=PICKLED).name("parse").uid("parse")
    if getattr(source, "parallelism", None):
        rows = rows.set_parallelism(source.parallelism)  # forward from the source: per-series order kept
    windows = (rows.key_by(_series_key, key_type=Types.STRING())
               .process(OrderAndWindow(cfg), output_type=PICKLED).name("order-window").uid("order-window"))
    alerts = (windows.key_by(_series_key, key_type=Types.STRING())
              .process(ScoreWindows(cfg), output_type=Types.STRING()).name("score").uid("score"))
    dead = rows.get_side_output(DEAD).union(windows.get_side_output(DEAD), alerts.get_side_output(DEAD))
    scores = alerts.get_side_output(SCORES) if cfg.every_window else None
    sink.attach(alerts, scores, dead)
    return alerts, scores, dead


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
