"""The redeploy lifecycle on a real Flink standalone cluster (the wheel's, one per test session).

One LSTM job runs through the module, fed with SMD test rows of one machine in chunks:
1. submit with model v1, replay rows 0-499 (5 windows, rows 450-499 wait in the window buffer);
2. move ``production`` to v2, redeploy (stop with savepoint, resubmit); rows 500-999 land as 5 files while
   the job is down and are read oldest first (no `late` dead letters); the buffered rows finish window 450
   in the new job, windows are exactly the batch windows (none lost, none twice),
   v1's windows equal batch scoring by v1 and the later ones batch scoring by v2 (fresh history);
3. redeploy again without a change: skipped; with the registry unreachable: refused, old job untouched;
   with job options that cannot restore the savepoint: fails with the job's exception, savepoint kept;
4. rollback: production back to v1, job started from that savepoint; rows 1000-1299 are scored by v1;
5. the ``redeploy_scoring`` DAG redeploys after v2 is promoted again;
6. a TaskManager is killed mid-stream: the job restarts from its checkpoint, output still exactly once.
"""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

import numpy as np
import pytest

from flink_jobs import cluster, deploy, replay
from flink_jobs.streaming.sinks import read_records
from serving.settings import get_settings

pytestmark = pytest.mark.slow

MACHINE = "machine-1-2"
SERIES = "deploytest-1-2"  # own registry name: other tests' versions of the machine cannot interfere
NAME = f"lstm_ed-{SERIES}"
LENGTH, STEP = 100, 90


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def standalone_cluster(tmp_root):
    """One small standalone cluster for the session: 1 TaskManager, 2 slots, loopback, own pid folder."""
    spec = cluster.ClusterSpec(run_dir=tmp_root / "flink-standalone", rest_port=_free_port(), rpc_port=_free_port(),
                               slots=2, tm_memory="1536m", jm_memory="768m",
                               checkpoints_dir=tmp_root / "checkpoints", savepoints_dir=tmp_root / "savepoints",
                               extra={"heartbeat.interval": "2000", "heartbeat.timeout": "8000",
                                      "restart-strategy.type": "fixed-delay",
                                      "restart-strategy.fixed-delay.attempts": "20",
                                      "restart-strategy.fixed-delay.delay": "1 s"})
    cluster.start(spec, wait=False)  # JVMs come up while the models train; users call wait_ready
    yield spec
    cluster.stop(spec)


@pytest.fixture(scope="module")
def models():
    """Two tiny LSTM-ED versions of the same machine (different seeds, same window length/step)."""
    from training.lstm_ed.pipeline import TrainConfig, promote_machine, train_machine

    smd = get_settings().smd_dir
    train = np.loadtxt(smd / "train" / f"{MACHINE}.txt", delimiter=",", dtype=np.float32)[:1200]
    out = []
    for seed in (0, 1):
        cfg = TrainConfig(hidden=8, max_epochs=1, train_step=20, threads=2, seed=seed, length=LENGTH, step=STEP)
        out.append(train_machine(SERIES, train, config=cfg))
        if seed == 0:
            promote_machine(SERIES)
    test = np.loadtxt(smd / "test" / f"{MACHINE}.txt", delimiter=",", dtype=np.float32)[:1600]
    return {"v1": str(out[0]["model_version"]), "v2": str(out[1]["model_version"]),
            "det1": out[0]["detector"], "det2": out[1]["detector"], "test": test}


def _set_production(version: str) -> None:
    from mlflow import MlflowClient

    from training import registry

    registry.configure()
    with registry.sqlite_write_lock():
        MlflowClient().set_registered_model_alias(NAME, "production", version)


@pytest.fixture(scope="module")
def live(standalone_cluster, models, tmp_path_factory):
    """The deployer and folders of the module's job (submitted with v1 in production)."""
    root = tmp_path_factory.mktemp("deploy")
    cluster.wait_ready(standalone_cluster)
    old = os.environ.get("SG_STREAM_MODEL_REFRESH_S")
    os.environ["SG_STREAM_MODEL_REFRESH_S"] = "1e9"  # only redeploys change the model here, not the hot refresh
    job_args = ["--landing-dir", str(root / "landing"), "--out-dir", str(root / "out"), "--parallelism", "1",
                "--series", SERIES, "--every-window", "--checkpoint-interval-ms", "500",
                "--discovery-interval-ms", "200"]
    d = deploy.Deployer(standalone_cluster.address, "lstm_ed", state_dir=root / "state",
                        savepoint_dir=root / "savepoints")
    entry = d.submit(job_args, verify_timeout_s=1)
    yield {"d": d, "root": root, "first": entry}
    try:
        d.rest.cancel(d.state()["job_id"])
    except deploy.DeployError:
        pass
    if old is None:
        os.environ.pop("SG_STREAM_MODEL_REFRESH_S", None)
    else:
        os.environ["SG_STREAM_MODEL_REFRESH_S"] = old


def _replay(live, a: int, b: int, rows_per_file: int | None = None) -> None:
    lines = [replay.Line(x.ts, SERIES, x.text.replace(MACHINE, SERIES, 1))
             for x in replay.smd_lines(get_settings().smd_dir, MACHINE, start=a, rows=b - a)]
    replay.write_landing(lines, live["root"] / "landing", rows_per_file=rows_per_file or b - a,
                         prefix=f"rows{a:05d}", progress=False)


def _scores_until(live, n_rows: int, timeout_s: float = 120) -> list[dict]:
    want = len(range(0, n_rows - LENGTH + 1, STEP))
    deadline = time.monotonic() + timeout_s
    while True:
        recs = sorted(read_records(live["root"] / "out" / "scores"), key=lambda r: r["row_index"])
        if len(recs) >= want or time.monotonic() > deadline:
            return recs
        time.sleep(0.5)


def _expected_starts(n_rows: int) -> list[int]:
    return list(range(0, n_rows - LENGTH + 1, STEP))


def test_redeploy_mid_stream_keeps_partial_windows_and_switches_version(live, models, monkeypatch):
    d = live["d"]
    assert live["first"]["versions"] == {NAME: models["v1"]}
    _replay(live, 0, 500)
    before = _scores_until(live, 500)
    assert [r["row_index"] for r in before] == _expected_starts(500)
    first_job = d.state()["job_id"]

    _set_production(models["v2"])
    switched_ms = int(time.time() * 1000)
    # rows 500-999 land while the job is down (stopped, not yet resubmitted), as 5 queued files: the new
    # job must read them oldest first, else rows of the older files are dead-lettered `late`
    real_submit = deploy.submit

    def land_then_submit(*args, **kwargs):
        _replay(live, 500, 1000, rows_per_file=100)
        return real_submit(*args, **kwargs)

    monkeypatch.setattr(deploy, "submit", land_then_submit)
    entry = d.redeploy(verify_timeout_s=1)
    monkeypatch.undo()
    assert entry["action"] == "redeploy" and entry["versions"] == {NAME: models["v2"]}
    assert entry["job_id"] != first_job and entry["restored_from"].startswith("file:")
    assert d.rest.job(first_job)["state"] == "FINISHED"  # stopped with a savepoint, not cancelled

    scores = _scores_until(live, 1000)
    assert read_records(live["root"] / "out" / "dead_letters") == []
    starts = [r["row_index"] for r in scores]
    assert starts == _expected_starts(1000), "a window was lost or written twice across the redeploy"
    # window 450 holds rows 450-499 from before the stop: they came back from the savepoint
    v = {r["row_index"]: r["model_version"] for r in scores}
    assert all(v[s] == models["v1"] for s in starts if s <= 360)
    assert all(v[s] == models["v2"] for s in starts if s >= 450)
    test = models["test"]
    b1 = models["det1"].score_series(test[:460])
    np.testing.assert_allclose([r["score"] for r in scores if r["row_index"] <= 360], b1["max_score"], rtol=1e-5, atol=1e-5)
    b2 = models["det2"].score_series(test[450:1000])
    np.testing.assert_allclose([r["score"] for r in scores if r["row_index"] >= 450], b2["max_score"], rtol=1e-5, atol=1e-5)
    alerts = read_records(live["root"] / "out" / "alerts")
    assert all(a["model_version"] == models["v2"] for a in alerts if a["emitted_at"] > switched_ms)
    # the job itself reports the new version (status record, or its newest records)
    assert d.verify({NAME: models["v2"]}, entry["started_ms"], timeout_s=10)["confirmed"] == {NAME: models["v2"]}
    hist = d.state()["history"]
    assert [h["action"] for h in hist] == ["submit", "stop-for-redeploy", "redeploy"]
    assert hist[1]["savepoint"] == entry["restored_from"]


def test_redeploy_without_change_is_skipped(live):
    d = live["d"]
    job = d.state()["job_id"]
    assert d.redeploy()["action"] == "skip"
    assert d.state()["job_id"] == job and d.rest.job(job)["state"] == "RUNNING"


def test_registry_unreachable_refuses_redeploy_and_leaves_the_job_running(live, monkeypatch):
    d = live["d"]
    job = d.state()["job_id"]
    for var in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI"):  # mlflow itself exports both once configured
        monkeypatch.setenv(var, "http://127.0.0.1:9")  # nothing listens on the discard port
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "2")
    with pytest.raises(deploy.RegistryUnreachable, match="left alone"):
        d.redeploy(force=True)
    assert d.state()["job_id"] == job and d.rest.job(job)["state"] == "RUNNING"


def test_failed_redeploy_reports_the_job_exception_and_keeps_the_savepoint(live):
    d = live["d"]
    old_job = d.state()["job_id"]
    # job options that cannot restore the savepoint: without --every-window the 'scores-sink' state has no operator
    st = d.state()
    good_args = st["job_args"]
    st["job_args"] = [a for a in good_args if a != "--every-window"]
    deploy.save_state(st, d.state_dir)
    try:
        with pytest.raises(deploy.DeployError, match="savepoint is still usable") as err:
            d.redeploy(force=True, verify_timeout_s=5)
    finally:
        st = d.state()
        st["job_args"] = good_args
        deploy.save_state(st, d.state_dir)
    assert "scores-sink" in str(err.value) or "Exception" in str(err.value), str(err.value)[:2000]
    assert st["history"][-1]["action"] == "redeploy-failed" and st["job_id"] is None
    assert d.rest.job(old_job)["state"] == "FINISHED"  # stopped with the savepoint the next start uses
    assert st["last_savepoint"] == st["history"][-2]["savepoint"]
    assert Path(st["last_savepoint"].removeprefix("file:")).is_dir()


def test_rollback_returns_to_the_old_version(live, models):
    d = live["d"]
    # no job runs after the failed redeploy: the rollback starts from the savepoint that one left
    entry = d.rollback(verify_timeout_s=1)
    assert entry["restored_from"] == d.state()["last_savepoint"]
    assert entry["rolled_back"] == {NAME: (models["v2"], models["v1"])}
    assert entry["versions"] == {NAME: models["v1"]}
    _replay(live, 1000, 1300)
    scores = _scores_until(live, 1300)
    assert [r["row_index"] for r in scores] == _expected_starts(1300)
    after = [r for r in scores if r["row_index"] >= 990]
    assert after and all(r["model_version"] == models["v1"] for r in after)
    b = models["det1"].score_series(models["test"][990:1300])
    np.testing.assert_allclose([r["score"] for r in after], b["max_score"], rtol=1e-5, atol=1e-5)


def test_redeploy_dag_follows_a_promotion(live, models, standalone_cluster, airflow_db):
    from tests.conftest import run_dag

    d = live["d"]
    job = d.state()["job_id"]
    _set_production(models["v2"])
    run = run_dag("redeploy_scoring", {"families": ["lstm_ed"], "jobmanager": standalone_cluster.address,
                                       "state_dir": str(d.state_dir), "verify_timeout_s": 1})
    assert run.state == "success"
    st = d.state()
    assert st["versions"] == {NAME: models["v2"]} and st["job_id"] != job
    assert d.rest.job(st["job_id"])["state"] == "RUNNING"


def test_taskmanager_killed_mid_stream_output_stays_exactly_once(live, standalone_cluster):
    d = live["d"]
    job = d.state()["job_id"]
    _replay(live, 1300, 1450)
    time.sleep(0.5)
    cluster.kill_taskmanager(standalone_cluster)  # while the file is read/scored/committed
    cluster.add_taskmanager(standalone_cluster)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:  # restarted on the new TaskManager
        info = d.rest.job(job)
        if d.rest.exceptions(job) and all(v["status"] == "RUNNING" for v in info["vertices"]):
            break
        time.sleep(1)
    # Published after the restart (the redeploy test covers files that queue up while a job is down).
    _replay(live, 1450, 1600)
    scores = _scores_until(live, 1600, timeout_s=90)
    starts = [r["row_index"] for r in scores]
    if starts != _expected_starts(1600):
        info = d.rest.job(job)
        ckpt = d.rest.get(f"/jobs/{job}/checkpoints").get("counts")
        landing = sorted(p.name for p in (live["root"] / "landing").iterdir())
        pytest.fail(f"windows {starts} != {_expected_starts(1600)} after the TaskManager failure; job "
                    f"{info['state']} tasks {[v['status'] for v in info['vertices']]} checkpoints {ckpt} "
                    f"TaskManagers {cluster.pids(standalone_cluster, 'taskexecutor')} landing {landing}\n"
                    f"{d.rest.exceptions(job)[:1500]}")
    assert d.rest.job(job)["state"] == "RUNNING"
    assert d.rest.exceptions(job), "the job saw no failure: the TaskManager kill did not reach it"


def test_plain_python_run_submits_to_the_configured_jobmanager(standalone_cluster):
    """SG_FLINK_JOBMANAGER sends a job started with plain python to the cluster, not to a mini-cluster."""
    import json
    import subprocess
    import sys
    import urllib.request

    cluster.wait_ready(standalone_cluster)
    code = ("from flink_jobs.env import stream_env\n"
            "env = stream_env(parallelism=1)\n"
            "print(sorted(env.from_collection([1, 2, 3]).map(lambda x: x * 10).execute_and_collect('remote-probe')))\n")
    env = {**os.environ, "SG_FLINK_JOBMANAGER": f"127.0.0.1:{standalone_cluster.rest_port}"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=180)
    assert "[10, 20, 30]" in out.stdout, out.stderr[-2000:]
    with urllib.request.urlopen(f"http://127.0.0.1:{standalone_cluster.rest_port}/jobs/overview") as r:
        names = [j["name"] for j in json.load(r)["jobs"]]
    assert "remote-probe" in names


def test_no_cluster_gives_a_clear_message(tmp_path):
    with pytest.raises(deploy.ClusterUnreachable, match="no Flink cluster answers"):
        deploy.FlinkRest(f"127.0.0.1:{_free_port()}").jobs()
    assert deploy.main(["--jobmanager", f"127.0.0.1:{_free_port()}", "--state-dir", str(tmp_path), "status"]) == 2


def test_cli_help_lists_the_lifecycle(capsys):
    with pytest.raises(SystemExit):
        deploy.main(["--help"])
    text = capsys.readouterr().out
    for cmd in ("cluster", "submit", "status", "redeploy", "rollback", "stop"):
        assert cmd in text


def test_reported_versions_read_the_new_jobs_status_records_then_its_output(tmp_path):
    import json

    out = tmp_path / "out"
    (out / "status").mkdir(parents=True)
    (out / "scores").mkdir()
    now = int(time.time() * 1000)

    def status(subtask: int, started: int, models: dict) -> None:
        rec = {"family": "lstm_ed", "subtask": subtask, "started_ms": started, "updated_ms": started,
               "registry_reachable": True, "models": models}
        (out / "status" / f"lstm_ed-{subtask}.json").write_text(json.dumps(rec))

    status(0, now - 60_000, {"lstm_ed-a": {"version": "1", "source": "registry"}})  # the old job's
    status(1, now + 1, {"lstm_ed-b": {"version": "3", "source": "disk_cache"}})
    recs = [{"model_name": "lstm_ed-c", "model_version": "2", "emitted_at": now + 5},
            {"model_name": "lstm_ed-c", "model_version": "1", "emitted_at": now - 5}]
    (out / "scores" / "scores-0.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
    seen = deploy.reported_versions("lstm_ed", ["--out-dir", str(out)], since_ms=now)
    assert seen == {"lstm_ed-b": {"version": "3", "source": "disk_cache"},
                    "lstm_ed-c": {"version": "2", "source": "records"}}
