"""Streaming LSTM-ED scoring: landing lines -> parse -> per-machine windows -> production model -> alerts.

    python -m flink_jobs.streaming.lstm_job --help

Operators (stable uids, so a savepoint restores their state): ``landing-source`` (blocks of lines),
``split-by-series`` (stateless), ``order-window-score`` (keyed by series: parse, event-time order, de-dup, windows, in-process scoring),
``alerts-sink``, ``scores-sink``, ``dead-letters-sink``.
"""

from __future__ import annotations

import argparse
import sys

from pyflink.common import Types

from flink_jobs.streaming.blocks import keyed_series_blocks
from flink_jobs.streaming.cli import add_common_args, config_from_args, configure, side_outputs
from flink_jobs.streaming.config import StreamConfig, from_env
from flink_jobs.streaming.scoring import OrderWindowScore
from flink_jobs.streaming.sinks import FileSinks
from flink_jobs.streaming.sources import source_from_config


def build(env, source=None, sink=None, cfg: StreamConfig | None = None):
    """Add the job to ``env``; returns (alerts, scores or None, dead letters) streams."""
    cfg = cfg or from_env("lstm_ed")
    configure(env, cfg)
    source = source or source_from_config(cfg)
    sink = sink or FileSinks(cfg.out_dir)
    lines = source.stream(env)
    # records (lines, or blocks of lines) are split per series next to the source (same parallelism,
    # forward), so a series' lines keep the source's order; the Java splitter also parses the common
    # lines into arrays, the rest stay strings for the keyed operator's parser
    alerts = (keyed_series_blocks(env, lines, parse=(cfg.n_values, cfg.nodata_codes, cfg.series))
              .process(OrderWindowScore(cfg), output_type=Types.STRING())
              .name("order-window-score").uid("order-window-score"))
    dead, scores = side_outputs(alerts, cfg)
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
