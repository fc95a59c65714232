"""What both jobs share: environment setup and the common command-line options."""

from __future__ import annotations

import argparse
import os

from pyflink.datastream import CheckpointingMode

from flink_jobs.streaming.common import DEAD, SCORES
from flink_jobs.streaming.config import StreamConfig, from_env


def configure(env, cfg: StreamConfig) -> None:
    """Checkpointing (exactly-once sinks need it), Python execution mode and bundles, restarts, connector jars."""
    from pyflink.common import Configuration

    env.enable_checkpointing(cfg.checkpoint_interval_ms, CheckpointingMode.EXACTLY_ONCE)
    env.set_buffer_timeout(cfg.buffer_timeout_ms)
    conf = Configuration()
    conf.set_string("python.fn-execution.bundle.size", str(cfg.bundle_size))
    conf.set_string("python.fn-execution.bundle.time", str(cfg.bundle_time_ms))
    if cfg.python_mode not in ("process", "thread"):
        raise ValueError(f"python_mode must be 'process' or 'thread', got {cfg.python_mode!r}")
    conf.set_string("python.execution-mode", cfg.python_mode)
    if cfg.python_mode == "thread":
        conf.set_string("python.pythonpath", thread_mode_pythonpath())
    if cfg.restart_attempts > 0:
        conf.set_string("restart-strategy.type", "fixed-delay")
        conf.set_string("restart-strategy.fixed-delay.attempts", str(cfg.restart_attempts))
        conf.set_string("restart-strategy.fixed-delay.delay", f"{cfg.restart_delay_ms} ms")
    env.configure(conf)
    if cfg.jars:
        env.add_jars(*[j if "://" in j else f"file://{j}" for j in cfg.jars])


def thread_mode_pythonpath() -> str:
    """sys.path entries the JVM-embedded interpreter needs: it starts from the base Python, so neither the
    venv's site-packages (pyflink, pemja, torch) nor this package (an editable install, found through a
    .pth hook that only site directories run) is on its path otherwise."""
    import sysconfig
    from pathlib import Path

    repo = Path(__file__).resolve().parents[2]
    paths = [str(repo), sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]]
    return os.pathsep.join(dict.fromkeys(paths))


def side_outputs(main, cfg: StreamConfig):
    """(dead letters, scores or None) of the scoring operator. PyFlink reads a side output through an
    identity Python map; in thread mode each Python operator of a chain has its own interpreter thread
    state on the task's one thread, and C code that calls PyGILState_Ensure from a state other than the
    thread's first (sqlite3 replacing a SQL function as MLflow opens the registry, in ``open()``) waits
    for the GIL it holds: the maps go to their own tasks there."""
    dead = main.get_side_output(DEAD)
    scores = main.get_side_output(SCORES) if cfg.every_window else None
    if cfg.python_mode == "thread":
        dead = dead.disable_chaining()
        scores = scores.disable_chaining() if scores is not None else None
    return dead, scores


def add_common_args(p: argparse.ArgumentParser, family: str) -> None:
    d = from_env(family)
    p.add_argument("--landing-dir", default=d.landing_dir, help="folder watched for new landing files")
    p.add_argument("--out-dir", default=d.out_dir, help="alerts/, scores/ and dead_letters/ go here")
    p.add_argument("--status-dir", default=d.status_dir,
                   help="status files of the scoring operators (default: <out-dir>/status)")
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
    p.add_argument("--bundle-time-ms", type=int, default=d.bundle_time_ms,
                   help="process mode: longest a Python bundle is held before its results go out (latency)")
    p.add_argument("--bundle-size", type=int, default=d.bundle_size, help="elements per Python bundle at most")
    p.add_argument("--python-mode", choices=("process", "thread"), default=d.python_mode,
                   help="'process': Python workers fed in bundles; 'thread': Python inside the JVM, per element")
    p.add_argument("--parallelism", type=int, default=None, help="default: SG_FLINK_PARALLELISM")
    p.add_argument("--model-cache-dir", default=d.model_cache_dir,
                   help="copies of loaded models, used when the registry is unreachable")


def config_from_args(args, family: str, **more) -> StreamConfig:
    return from_env(
        family,
        landing_dir=args.landing_dir, out_dir=args.out_dir, status_dir=args.status_dir, source=args.source, bounded=args.bounded,
        series=tuple(s for s in args.series.split(",") if s), out_of_orderness_ms=args.out_of_orderness_ms,
        every_window=args.every_window, checkpoint_interval_ms=args.checkpoint_interval_ms,
        discovery_interval_ms=args.discovery_interval_ms, model_cache_dir=args.model_cache_dir,
        bundle_time_ms=args.bundle_time_ms, bundle_size=args.bundle_size, python_mode=args.python_mode, **more,
    )


