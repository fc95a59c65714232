"""The LSTM-ED streaming job on the embedded mini-cluster, with a tiny model trained and registered here.

Two bounded job runs over landing files (same operators as the continuous job):
1. the first test rows of a machine in order, with malformed lines mixed in: dead letters carry
   their reason, and windows, scores and verdicts equal batch ``detector.score_series``;
2. the same rows shuffled within the out-of-orderness bound, 10 % duplicated, and a failure injected
   mid-run (restart from the last checkpoint): the same alerts, each exactly once.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from flink_jobs import replay
from flink_jobs.streaming import lstm_job
from flink_jobs.streaming.config import from_env
from flink_jobs.streaming.models import ModelCache
from flink_jobs.streaming.sinks import read_records
from flink_jobs.streaming.status import StatusFile, read_status
from serving.settings import get_settings
from tests.flink_helpers import stop_with_savepoint, wait_for_records

pytestmark = pytest.mark.slow

MACHINE = "machine-1-2"
SERIES = "streamtest-1-2"  # own registry name, so other tests' versions of the machine cannot interfere
ROWS = 1000
MINUTE = 60_000


@pytest.fixture(scope="module")
def model():
    from training.lstm_ed.pipeline import TrainConfig, promote_machine, train_machine

    smd = get_settings().smd_dir
    train = np.loadtxt(smd / "train" / f"{MACHINE}.txt", delimiter=",", dtype=np.float32)[:1500]
    cfg = TrainConfig(hidden=8, max_epochs=2, train_step=20, threads=2)
    result = train_machine(SERIES, train, config=cfg)
    promote_machine(SERIES)
    test = np.loadtxt(smd / "test" / f"{MACHINE}.txt", delimiter=",", dtype=np.float32)[:ROWS]
    return result, test


def _test_lines(jitter_ms=0, duplicates=0.0):
    lines = [replay.Line(x.ts, SERIES, x.text.replace(MACHINE, SERIES, 1))
             for x in replay.smd_lines(get_settings().smd_dir, MACHINE, rows=ROWS)]
    return replay.perturb(lines, jitter_ms, duplicates, seed=3) if (jitter_ms or duplicates) else lines


BAD = {
    "missing_columns": f"{SERIES},1704067200000,0.1,0.2",
    "non_numeric": f"{SERIES},1704067200000," + ",".join(["0.1"] * 37 + ["x"]),
    "nan_inf": f"{SERIES},1704067200000," + ",".join(["0.1"] * 37 + ["inf"]),
    "bad_timestamp": f"{SERIES},2024-13-01T00:00:00Z," + ",".join(["0.1"] * 38),
    "unknown_series": "machine-9-9,1704067200000," + ",".join(["0.1"] * 38),
    "bad_json": '{"series_id": "' + SERIES + '", "timestamp": ',
}


def _run(env, root: Path, lines: list[str], **overrides):
    land = root / "landing"
    land.mkdir(parents=True)
    # one file: the bounded source reads a folder's files in no defined order
    (land / "part-0.csv").write_text("\n".join(lines) + "\n")
    cfg = from_env("lstm_ed", landing_dir=str(land), out_dir=str(root / "out"), bounded=True,
                   every_window=True, series=(SERIES, "machine-2-1"), checkpoint_interval_ms=300,
                   model_cache_dir=str(root / "cache"), **overrides)
    lstm_job.build(env, cfg=cfg)
    env.execute("test-lstm-stream")
    return cfg


@pytest.fixture(scope="module")
def clean_run(model, flink_stream_env, tmp_path_factory):
    lines = [x.text for x in _test_lines()]
    # malformed lines spread through the stream, plus a valid row of a series without a model
    for i, bad in enumerate(BAD.values()):
        lines.insert(100 * (i + 1), bad)
    lines.insert(50, "machine-2-1,1704067200000," + ",".join(["0.1"] * 38))
    cfg = _run(flink_stream_env, tmp_path_factory.mktemp("clean"), lines)
    return cfg, read_records(cfg.scores_dir), read_records(cfg.alerts_dir), read_records(cfg.dead_dir)


def test_dead_letters_carry_raw_line_and_reason(clean_run):
    _, _, _, dead = clean_run
    reasons = Counter(d["reason"] for d in dead)
    assert reasons == Counter({**{r: 1 for r in BAD}, "no_production_model": 1})
    by_reason = {d["reason"]: d for d in dead}
    for reason, line in BAD.items():
        assert by_reason[reason]["raw"] == line
    assert by_reason["no_production_model"]["series_id"] == "machine-2-1"


def test_scoring_operators_write_status_files(model, clean_run):
    result, _ = model
    cfg = clean_run[0]
    status = read_status(cfg.status_path)
    # one per scoring subtask that got data (PyFlink opens a Python operator with its first bundle)
    assert status and set(status) <= {"lstm_ed-0", "lstm_ed-1"}
    name = result["model_name"]
    for rec in status.values():
        assert rec["family"] == "lstm_ed" and rec["registry_reachable"] is True
        assert rec["models"] == {name: {"version": str(result["model_version"]), "source": "registry"}}
        assert rec["started_ms"] <= rec["updated_ms"]


def test_stream_equals_batch_scoring(model, clean_run):
    result, test = model
    _, scores, alerts, _ = clean_run
    batch = result["detector"].score_series(test)
    scores = sorted(scores, key=lambda r: r["window_start"])
    assert [s["row_index"] for s in scores] == list(batch["starts"])
    t0 = replay.iso_ms(replay.DEFAULT_T0)
    assert [s["window_start"] for s in scores] == [t0 + int(s) * MINUTE for s in batch["starts"]]
    np.testing.assert_allclose([s["score"] for s in scores], batch["max_score"], rtol=1e-5, atol=1e-5)
    assert [s["count_over_tau"] for s in scores] == list(batch["count_over_tau"])
    assert [s["anomalous"] for s in scores] == list(batch["anomalous"])
    np.testing.assert_allclose([s["threshold"] for s in scores], batch["tau"], rtol=1e-6)  # per-window tau
    assert [[c["channel"] for c in s["top_channels"]] for s in scores] == \
        [[c for c, _ in top] for top in batch["top_channels"]]
    assert len(alerts) == int(batch["anomalous"].sum())
    assert {(a["model_name"], a["model_version"]) for a in scores} == {(result["model_name"], str(result["model_version"]))}


def test_both_python_execution_modes_score_the_same(model, clean_run, flink_stream_env, tmp_path_factory):
    """The default mode (thread: Python inside the JVM) and PyFlink's process mode (Python workers fed in
    bundles) run the same operators: the same windows, scores and verdicts."""
    cfg = clean_run[0]
    other = {"thread": "process", "process": "thread"}[cfg.python_mode]
    lines = [x.text for x in _test_lines()]
    cfg2 = _run(flink_stream_env, tmp_path_factory.mktemp(other), lines, python_mode=other)
    assert cfg2.python_mode == other
    key = lambda r: r["window_start"]  # noqa: E731
    first, second = sorted(clean_run[1], key=key), sorted(read_records(cfg2.scores_dir), key=key)
    assert [s["window_start"] for s in second] == [s["window_start"] for s in first] and first
    np.testing.assert_allclose([s["score"] for s in second], [s["score"] for s in first], rtol=1e-6)
    assert [s["anomalous"] for s in second] == [s["anomalous"] for s in first]


def test_shuffled_duplicated_and_restarted_stream_gives_the_same_alerts_once(clean_run, flink_stream_env,
                                                                             tmp_path_factory):
    _, ref_scores, ref_alerts, _ = clean_run
    lines = [x.text for x in _test_lines(jitter_ms=5 * MINUTE, duplicates=0.1)]
    root = tmp_path_factory.mktemp("shuffled")
    cfg = _run(flink_stream_env, root, lines, out_of_orderness_ms=5 * MINUTE, fail_after_windows=5,
               restart_attempts=3, restart_delay_ms=100)
    assert (Path(cfg.out_dir) / ".fault-injected").exists(), "the failure was not injected"
    scores, alerts, dead = read_records(cfg.scores_dir), read_records(cfg.alerts_dir), read_records(cfg.dead_dir)
    assert dead == []
    key = lambda r: (r["series_id"], r["window_start"])  # noqa: E731
    assert len({key(a) for a in alerts}) == len(alerts), "duplicate alerts"
    assert len({key(s) for s in scores}) == len(scores), "duplicate scores"
    strip = lambda r: json.dumps({k: v for k, v in r.items() if k not in ("emitted_at", "latency_ms")},  # noqa: E731
                                 sort_keys=True)
    assert set(map(strip, alerts)) <= set(map(strip, ref_alerts))
    assert set(map(strip, scores)) <= set(map(strip, ref_scores))
    # the last window is released only by the end-of-input timer: it must survive a restore (issue 7 bug)
    assert sorted(map(strip, scores)) == sorted(map(strip, ref_scores))
    assert sorted(map(strip, alerts)) == sorted(map(strip, ref_alerts))


def test_registry_unreachable_keeps_serving_from_memory_and_disk(model, tmp_path, monkeypatch):
    result, _ = model
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "2")
    s = get_settings()
    events = []
    status = StatusFile(tmp_path / "status", "lstm_ed", 0)
    cache = ModelCache("lstm_ed", s.mlflow_tracking_uri, cache_dir=str(tmp_path), refresh_s=0,
                       on_event=lambda kind, msg: events.append(kind), on_change=status.update)
    first = cache.get(SERIES)
    assert first.origin == "registry" and first.version == str(result["model_version"])
    served = {first.name: {"version": first.version, "source": "registry"}}
    assert read_status(tmp_path / "status")["lstm_ed-0"]["models"] == served
    down = "http://127.0.0.1:9"  # nothing listens on the discard port
    cache.tracking_uri = cache.registry_uri = down
    cache._client = None
    assert cache.get(SERIES) is first and events[-1] == "registry_unreachable"
    rec = read_status(tmp_path / "status")["lstm_ed-0"]
    assert rec["registry_reachable"] is False and rec["models"] == served
    cold_status = StatusFile(tmp_path / "status", "lstm_ed", 1)
    cold = ModelCache("lstm_ed", down, cache_dir=str(tmp_path), on_event=lambda kind, msg: events.append(kind),
                      on_change=cold_status.update)
    again = cold.get(SERIES)
    assert again.origin == "disk" and again.version == first.version and events[-1] == "registry_unreachable"
    assert read_status(tmp_path / "status")["lstm_ed-1"]["models"] == {
        first.name: {"version": first.version, "source": "disk_cache"}}
    w = np.zeros((1, again.detector.length, again.detector.n_channels), np.float32)
    np.testing.assert_allclose(again.detector.score_windows(w)["max_score"],
                               first.detector.score_windows(w)["max_score"])
    assert ModelCache("lstm_ed", s.mlflow_tracking_uri).get("machine-7-7") is None


def test_state_survives_stop_with_savepoint_and_restore(model, clean_run, tmp_path):
    """Continuous job: rows 0..549, stop with a savepoint, rows 550..999 into a job restored from it.

    Window 540 takes rows 540..549 from the restored buffer and every score depends on the restored
    score history, so equality with the uninterrupted run shows the keyed state came across."""
    from flink_jobs.env import stream_env

    _, ref_scores, _, _ = clean_run
    lines = [x.text for x in _test_lines()]
    land = tmp_path / "landing"
    land.mkdir()

    def job(out: str, savepoint: str | None):
        cfg = from_env("lstm_ed", landing_dir=str(land), out_dir=str(tmp_path / out), every_window=True,
                       series=(SERIES,), checkpoint_interval_ms=300, discovery_interval_ms=100,
                       model_cache_dir=str(tmp_path / "cache"))
        env = stream_env(2, extra={"execution.savepoint.path": savepoint} if savepoint else None)
        lstm_job.build(env, cfg=cfg)
        return cfg, env.execute_async("test-lstm-savepoint")

    cfg1, client = job("out1", None)
    (land / "part-0.csv").write_text("\n".join(lines[:550]) + "\n")
    first = wait_for_records(cfg1.scores_dir, 6)  # windows 0, 90, ..., 450
    savepoint = stop_with_savepoint(client, (tmp_path / "savepoints").as_uri())
    cfg2, client = job("out2", savepoint)
    try:
        (land / "part-1.csv").write_text("\n".join(lines[550:]) + "\n")
        second = wait_for_records(cfg2.scores_dir, 5)  # windows 540, ..., 900
    finally:
        client.cancel().result()
    strip = lambda r: json.dumps({k: v for k, v in r.items() if k not in ("emitted_at", "latency_ms")},  # noqa: E731
                                 sort_keys=True)
    assert [r["row_index"] for r in sorted(second, key=lambda r: r["row_index"])] == [540, 630, 720, 810, 900]
    assert sorted(map(strip, first + second)) == sorted(map(strip, ref_scores))


def test_scoring_counts_windows_scored_and_alerts_once_per_model_call():
    """The operator's metrics (one JVM call per model call, not per window) add up to the records it emits."""
    from types import SimpleNamespace

    from flink_jobs.streaming.common import SCORES
    from flink_jobs.streaming.scoring import OrderWindowScore

    class Recorder:
        def __init__(self):
            self.calls, self.total = [], Counter()

        def inc(self, name, n=1):
            self.calls.append(name)
            self.total[name] += n

    class Det:
        delta, channel_names = 1.0, []

        def score_windows(self, windows, history):
            k = len(windows)
            flags = np.arange(k) % 3 == 0
            return {"anomalous": flags, "max_score": np.ones(k), "tau": np.ones(k), "count_over_tau": flags * 2,
                    "top_channels": [[(0, 1.0)]] * k, "history": None}

    op = OrderWindowScore(from_env("lstm_ed", every_window=True, batch_size=64))
    op.counters, op.scored = Recorder(), 0
    op.models = SimpleNamespace(get=lambda key: SimpleNamespace(detector=Det(), version="3", name="lstm_ed-m"))
    ts = np.arange(4, dtype=np.int64)
    st = {"queue": [("m", i * 4, ts, np.zeros((4, 1), np.float32), 0) for i in range(7)], "version": None,
          "history": None}
    out = list(op._flush("m", st))
    alerts = [r for r in out if not isinstance(r, tuple)]
    scores = [r for r in out if isinstance(r, tuple) and r[0] is SCORES]
    assert len(scores) == 7 and len(alerts) == 3  # windows 0, 3, 6
    assert op.counters.total == {"windows_scored": 7, "alerts": 3}
    assert op.counters.calls == ["windows_scored", "alerts"]
    assert all(json.loads(a)["model_version"] == "3" for a in alerts)
