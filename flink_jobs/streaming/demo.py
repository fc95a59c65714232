"""Streaming demo: start the LSTM job on the embedded mini-cluster, replay SMD test rows, summarise alerts.

``run_stream_demo(["machine-1-2"], rows=3000)`` expects production models ``lstm_ed-<machine>`` in the
registry (the demo trains and promotes them first). It watches a fresh landing folder, replays the test
rows into it (one file per machine, optionally paced by ``rate`` rows/s), waits until every window was scored and committed, cancels the job and
returns the alert summary: alerts, window precision/recall against the SMD labels, how often a top-3
channel is one the labels name, the model versions used, and where the alert files are.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from flink_jobs import replay
from flink_jobs.streaming import lstm_job
from flink_jobs.streaming.config import from_env
from flink_jobs.streaming.models import ModelCache
from flink_jobs.streaming.sinks import read_records


def _labels(smd_dir: Path, machine: str) -> tuple[np.ndarray, list[tuple[int, int, set]]]:
    labels = np.loadtxt(smd_dir / "test_label" / f"{machine}.txt", dtype=np.int8, ndmin=1)
    segments = []
    path = smd_dir / "interpretation_label" / f"{machine}.txt"
    if path.exists():
        for line in path.read_text().split():
            span, _, chans = line.partition(":")
            a, _, b = span.partition("-")
            segments.append((int(a), int(b), {int(c) - 1 for c in chans.split(",") if c}))
    return labels, segments


def summarize(scores: list[dict], smd_dir: Path, start: int) -> dict:
    """Window-level precision/recall (a window is anomalous when any of its rows is labelled) and the
    top-channel hit rate over alerted windows that overlap a labelled segment with named channels."""
    out = {"windows": len(scores), "alerts": 0, "tp": 0, "fp": 0, "fn": 0, "hits": 0, "hit_windows": 0}
    per_machine = {}
    for rec in scores:
        machine = rec["series_id"]
        if machine not in per_machine:
            per_machine[machine] = _labels(smd_dir, machine)
        labels, segments = per_machine[machine]
        a = start + rec["row_index"]
        b = a + int(round((rec["window_end"] - rec["window_start"]) / replay.SMD_INTERVAL_MS)) + 1
        truth = bool(labels[a:b].any())
        alert = bool(rec["anomalous"])
        out["alerts"] += alert
        out["tp"] += alert and truth
        out["fp"] += alert and not truth
        out["fn"] += truth and not alert
        if alert:
            named = set().union(*[c for s, e, c in segments if s < b and e > a]) if segments else set()
            if named:
                out["hit_windows"] += 1
                out["hits"] += bool({c["channel"] for c in rec["top_channels"]} & named)
    out["precision"] = out["tp"] / max(out["tp"] + out["fp"], 1)
    out["recall"] = out["tp"] / max(out["tp"] + out["fn"], 1)
    out["top_channel_hit_rate"] = out["hits"] / out["hit_windows"] if out["hit_windows"] else None
    return out


def run_stream_demo(machines=("machine-1-2",), rows: int = 3000, start: int = 0, work_dir: str | Path | None = None,
                    rate: float = 0, timeout_s: float = 600, echo=print) -> dict:
    """Run the streaming job over replayed test rows and return the alert summary (see module doc)."""
    from flink_jobs.env import stream_env
    from serving.core.windows import window_starts
    from serving.settings import get_settings

    s = get_settings()
    root = Path(work_dir) if work_dir else s.work_dir / "stream_demo" / time.strftime("%Y%m%d-%H%M%S")
    cfg = from_env("lstm_ed", landing_dir=str(root / "landing"), out_dir=str(root / "out"), every_window=True,
                   discovery_interval_ms=200, checkpoint_interval_ms=1000, series=tuple(machines))
    env = stream_env()
    lstm_job.build(env, cfg=cfg)
    client = env.execute_async("streamguard-lstm-demo")
    echo(f"streaming job {client.get_job_id()} watching {cfg.landing_dir}")
    try:
        wait_running(client)
        # one file per machine (files queued together are read in path order)
        rep = replay.ReplayReport()
        for m in machines:
            part = replay.write_landing(replay.smd_lines(s.smd_dir, m, start, rows), cfg.landing_dir, rate=rate,
                                        rows_per_file=rows, total=rows, prefix=f"demo-{m}")
            rep.files += part.files
            rep.rows += part.rows
        expected = 0
        for m in machines:
            det = ModelCache("lstm_ed", cfg.tracking_uri, cfg.registry_uri).get(m)
            expected += len(window_starts(rows, det.detector.length, det.detector.step)) if det else 0
        deadline = time.monotonic() + timeout_s
        scores = []
        while time.monotonic() < deadline:
            scores = read_records(cfg.scores_dir)
            if len(scores) >= expected:
                break
            time.sleep(1.0)
    finally:
        client.cancel().result()
    dead = read_records(cfg.dead_dir)
    summary = summarize(scores, s.smd_dir, start)
    summary.update(
        rows_replayed=rep.rows, files=len(rep.files), expected_windows=expected, dead_letters=len(dead),
        model_versions=sorted({f"{r['model_name']} v{r['model_version']}" for r in scores}),
        alert_dir=str(cfg.alerts_dir), scores_dir=str(cfg.scores_dir), dead_letter_dir=str(cfg.dead_dir),
        latency_ms_p50=float(np.percentile([r["latency_ms"] for r in scores], 50)) if scores else None,
    )
    echo(format_summary(summary))
    return summary


def wait_running(client, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while str(client.get_job_status().result()).split(".")[-1] != "RUNNING":
        if time.monotonic() > deadline:
            raise TimeoutError(f"job {client.get_job_id()} did not start within {timeout_s}s")
        time.sleep(0.2)


def format_summary(s: dict) -> str:
    hit = "n/a" if s["top_channel_hit_rate"] is None else f"{s['top_channel_hit_rate']:.2f}"
    return (f"stream: {s['rows_replayed']} rows in {s['files']} files -> {s['windows']}/{s['expected_windows']} "
            f"windows scored, {s['alerts']} alerts, {s['dead_letters']} dead letters\n"
            f"  window precision {s['precision']:.2f}  recall {s['recall']:.2f}  top-3 channel hit rate {hit}\n"
            f"  models: {', '.join(s['model_versions'])}\n  alerts: {s['alert_dir']}")
