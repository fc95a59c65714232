"""Redeploy bench: time from a ``production`` alias move to the first output of the new version, and the
output gap, for (a) redeploy (stop with savepoint + resubmit, ``flink_jobs.deploy``) and (b) the jobs'
hot refresh (each key re-checks ``@production`` every ``model_refresh_s``).

    python -m bench.redeploy_bench [--rounds 3 --rate 150 --refresh-s 5]

A standalone cluster of the wheel (1 TaskManager, 2 slots, loopback, own ports) runs the LSTM job at
parallelism 1 with every window written; SMD test rows of one machine are replayed continuously at
``--rate`` rows/s in files rolled every 0.5 s. Two tiny model versions (hidden 8, one epoch) are trained
into a temporary MLflow store; the alias alternates between them.
Per alias move: ``to_new_emitted`` = first window scored by the new version (its ``emitted_at``) minus the
move time; ``to_new_visible`` = when that window's record was seen committed in the output folder
(checkpoint interval 500 ms); ``gap`` = the longest pause between consecutive scored windows from the move
until 20 s after the first new window, vs ``steady_gap`` = the median pause before the move.
Writes bench/results/redeploy_bench.md and .json.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
SERIES = "benchdeploy-1-2"
NAME = f"lstm_ed-{SERIES}"


def _isolate(tmp: Path) -> None:
    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{tmp / 'mlflow.db'}"
    os.environ.pop("MLFLOW_REGISTRY_URI", None)
    os.environ["SG_ARTIFACT_ROOT"] = str(tmp / "mlruns")
    os.environ["SG_WORK_DIR"] = str(tmp / "work")
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ.setdefault("SG_TORCH_THREADS", "1")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _models(machine: str) -> list[str]:
    import numpy as np

    from serving.settings import get_settings
    from training.lstm_ed.pipeline import TrainConfig, promote_machine, train_machine

    train = np.loadtxt(get_settings().smd_dir / "train" / f"{machine}.txt", delimiter=",", dtype=np.float32)[:1500]
    versions = []
    for seed in (0, 1):
        res = train_machine(SERIES, train, config=TrainConfig(hidden=8, max_epochs=1, train_step=20, threads=1, seed=seed))
        versions.append(str(res["model_version"]))
        if seed == 0:
            promote_machine(SERIES)
    return versions


def _set_production(version: str) -> None:
    from mlflow import MlflowClient

    from training import registry

    registry.configure()
    with registry.sqlite_write_lock():
        MlflowClient().set_registered_model_alias(NAME, "production", version)


class Feeder(threading.Thread):
    """Replays the machine's test rows (looping, time shifted) at ``rate`` rows/s until stopped."""

    def __init__(self, machine: str, landing: Path, rate: float):
        super().__init__(daemon=True)
        self.machine, self.landing, self.rate = machine, landing, rate
        self.stop_flag = threading.Event()

    def run(self):
        from flink_jobs import replay
        from serving.settings import get_settings

        t0 = replay.iso_ms(replay.DEFAULT_T0)
        n = sum(1 for _ in open(get_settings().smd_dir / "test" / f"{self.machine}.txt"))
        rnd = 0

        def lines():
            nonlocal rnd
            while not self.stop_flag.is_set():
                for x in replay.smd_lines(get_settings().smd_dir, self.machine, t0_ms=t0 + rnd * n * 60_000):
                    if self.stop_flag.is_set():
                        return
                    yield replay.Line(x.ts, SERIES, x.text.replace(self.machine, SERIES, 1))
                rnd += 1

        replay.write_landing(lines(), self.landing, rate=self.rate, rows_per_file=10**9, roll_ms=500,
                             min_gap_ms=300, prefix="bench", progress=False)


def _records(out: Path) -> list[dict]:
    from flink_jobs.streaming.sinks import read_records

    return sorted(read_records(out / "scores"), key=lambda r: r["emitted_at"])


def _wait_new(out: Path, version: str, since_ms: int, healthy, timeout_s: float = 240) -> tuple[dict | None, float | None]:
    """First record of ``version`` emitted after ``since_ms``, and the wall time it was first seen;
    ``healthy()`` raises (with the job's exception) when the job failed meanwhile."""
    deadline = time.monotonic() + timeout_s
    checked = 0.0
    while time.monotonic() < deadline:
        if time.monotonic() - checked > 2:
            healthy()
            checked = time.monotonic()
        new = [r for r in _records(out) if r["model_version"] == version and r["emitted_at"] >= since_ms]
        if new:
            return new[0], time.time() * 1000
        time.sleep(0.1)
    return None, None


def _ms(at) -> int:
    """Dead-letter time as epoch ms (number, or ISO text)."""
    if isinstance(at, (int, float)):
        return int(at if at > 1e11 else at * 1000)
    try:
        from flink_jobs import replay

        return replay.iso_ms(str(at))
    except (TypeError, ValueError):
        return 0


def _measure(out: Path, version: str, moved_ms: int, healthy, settle_s: float = 20) -> dict:
    first, seen_ms = _wait_new(out, version, moved_ms, healthy)
    if first is None:
        return {"error": f"no output of v{version} within the timeout"}
    time.sleep(settle_s)
    recs = _records(out)
    before = [r["emitted_at"] for r in recs if moved_ms - 30_000 <= r["emitted_at"] < moved_ms]
    around = [r["emitted_at"] for r in recs if moved_ms - 2_000 <= r["emitted_at"] <= first["emitted_at"] + settle_s * 1000]
    gaps_before = [b - a for a, b in zip(before, before[1:])]
    gaps = [b - a for a, b in zip(around, around[1:])]
    from flink_jobs.streaming.sinks import read_records

    # rows that arrive behind newer rows of their series are dead-lettered late: count them
    late = sum(1 for r in read_records(out / "dead_letters") if r.get("reason") == "late" and _ms(r.get("at")) >= moved_ms)
    return {"to_new_emitted_s": (first["emitted_at"] - moved_ms) / 1000, "to_new_visible_s": (seen_ms - moved_ms) / 1000,
            "late_rows": late,
            "gap_s": max(gaps) / 1000 if gaps else None,
            "steady_gap_s": statistics.median(gaps_before) / 1000 if gaps_before else None}


def _ordered_files() -> bool:
    from flink_jobs.streaming.config import from_env

    return from_env("lstm_ed").ordered_files


def run(args) -> dict:
    from flink_jobs import cluster, deploy

    tmp = Path(tempfile.mkdtemp(prefix="sg-redeploy-bench-"))
    _isolate(tmp)
    load_start = os.getloadavg()
    versions = _models(args.machine)
    spec = cluster.ClusterSpec(run_dir=tmp / "flink", rest_port=_free_port(), rpc_port=_free_port(), slots=2,
                               tm_memory="1536m", jm_memory="768m")
    cluster.start(spec)
    results = {"redeploy": [], "hot_refresh": []}
    try:
        for mode in ("redeploy", "hot_refresh"):
            root = tmp / mode
            os.environ["SG_STREAM_MODEL_REFRESH_S"] = "1e9" if mode == "redeploy" else str(args.refresh_s)
            _set_production(versions[0])
            d = deploy.Deployer(spec.address, "lstm_ed", state_dir=root / "state", savepoint_dir=root / "sp",
                                echo=lambda *_: None)
            d.submit(["--landing-dir", str(root / "landing"), "--out-dir", str(root / "out"), "--parallelism", "1",
                      "--series", SERIES, "--every-window", "--checkpoint-interval-ms", "500",
                      "--discovery-interval-ms", "200"], verify_timeout_s=0)
            feeder = Feeder(args.machine, root / "landing", args.rate)
            feeder.start()
            time.sleep(args.warmup_s)
            current = versions[0]
            for i in range(args.rounds):
                new = versions[(i + 1) % 2]
                moved_ms = int(time.time() * 1000)
                _set_production(new)
                t = time.perf_counter()
                if mode == "redeploy":
                    d.redeploy(verify_timeout_s=0)
                call_s = time.perf_counter() - t
                m = _measure(root / "out", new, moved_ms, lambda d=d: d.check_healthy(d.state()["job_id"]))
                m.update(round=i + 1, from_version=current, to_version=new, deploy_call_s=call_s if mode == "redeploy" else None)
                results[mode].append(m)
                print(f"{mode} round {i + 1}: {m}", flush=True)
                current = new
            feeder.stop_flag.set()
            feeder.join(timeout=10)
            # stop with a savepoint, not cancel: cancelling a PyFlink job here once took the TaskManager down
            # (Beam 'Reference count must not be negative' while releasing the Python workers)
            d.stop()
            deadline = time.monotonic() + 60
            while (cluster.overview(spec.url) or {}).get("slots-available", 0) < 1 and time.monotonic() < deadline:
                time.sleep(0.5)
    finally:
        cluster.stop(spec)
    return {"results": results, "settings": {"rounds": args.rounds, "rate_rows_s": args.rate,
                                              "refresh_s": args.refresh_s, "machine": args.machine,
                                              "checkpoint_interval_ms": 500, "discovery_interval_ms": 200,
                                              "model": "LSTM-ED hidden 8, 1 epoch", "parallelism": 1,
                                              "ordered_files": _ordered_files()},
            "cpu_count": os.cpu_count(), "loadavg_start": load_start, "loadavg_end": os.getloadavg(),
            "python": sys.version.split()[0]}


def _summary(rows: list[dict], key: str) -> str:
    vals = [r[key] for r in rows if r.get(key) is not None]
    if not vals:
        return "n/a"
    return f"{statistics.median(vals):.1f} ({min(vals):.1f}-{max(vals):.1f})"


def markdown(res: dict) -> str:
    s = res["settings"]
    out = ["# Redeploy bench", "",
           f"`python -m bench.redeploy_bench --rounds {s['rounds']} --rate {s['rate_rows_s']:g} --refresh-s {s['refresh_s']:g}`; "
           f"{res['cpu_count']} CPUs, load average {res['loadavg_start'][0]:.1f} at start, {res['loadavg_end'][0]:.1f} at end "
           "(1-minute average, all processes of the machine). Wheel's standalone cluster, 1 TaskManager, job parallelism 1, "
           f"{s['rate_rows_s']:g} rows/s replayed, every window written, checkpoints every {s['checkpoint_interval_ms']} ms.",
           "", "Seconds, median (min-max) over the alias moves:", "",
           "| mode | alias moves | move -> first new window scored | move -> its record committed | longest output gap | steady gap | deploy call | late rows |",
           "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for mode, rows in res["results"].items():
        ok = [r for r in rows if "error" not in r]
        label = "redeploy (savepoint + resubmit)" if mode == "redeploy" else f"hot refresh (every {s['refresh_s']:g} s)"
        out.append(f"| {label} | {len(ok)}/{len(rows)} | {_summary(ok, 'to_new_emitted_s')} | {_summary(ok, 'to_new_visible_s')} "
                   f"| {_summary(ok, 'gap_s')} | {_summary(ok, 'steady_gap_s')} | {_summary(ok, 'deploy_call_s')} "
                   f"| {sum(r.get('late_rows', 0) for r in ok)} |")
    out += ["", "Late rows: rows dead-lettered as late after the alias moves (all rounds). The file source reads the "
            "files that queued up while the job was down in path order (publication order) when `ordered_files` is on "
            f"(this run: {res['settings'].get('ordered_files', 'unknown')}; docs/streaming.md, 'File order'), so no "
            "row should arrive behind a newer one.",
            "", "The longest output gap is the downtime seen by a reader of the scores (the backlog is then caught up); "
            "hot refresh has no gap beyond the steady one, but a new version reaches a key only at its next check "
            "(up to `model_refresh_s` later, plus the load) and the job's state/operators cannot change."]
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.redeploy_bench", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__.split("\n\n", 1)[1])
    p.add_argument("--rounds", type=int, default=3, help="alias moves per mode")
    p.add_argument("--rate", type=float, default=150, help="replayed rows per second")
    p.add_argument("--refresh-s", type=float, default=5, help="model_refresh_s of the hot-refresh job")
    p.add_argument("--warmup-s", type=float, default=15, help="feed this long before the first move")
    p.add_argument("--machine", default="machine-1-2")
    args = p.parse_args(argv)
    res = run(args)
    md = markdown(res)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "redeploy_bench.md").write_text(md)
    (RESULTS / "redeploy_bench.json").write_text(json.dumps(res, indent=1))
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
