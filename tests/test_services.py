"""Smoke test of ``make up`` / ``make down`` (``python -m dags.services``) on free ports in a temp folder.

Starts the real services (MLflow server, Airflow api-server + scheduler + dag-processor + triggerer, the
wheel's Flink standalone cluster), checks them through their REST APIs, checks that nothing they started
listens beyond loopback, stops them and checks that no process is left. About two minutes on 2 cores;
deselect with ``-m "not services"``.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import ROOT, project_dag_files

pytestmark = pytest.mark.services

PROJECT_DAGS = project_dag_files()


def _free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def _http(url: str, body: dict | None = None, token: str | None = None, headers: dict | None = None):
    """(status, parsed JSON or None) of a GET, or a POST when ``body`` is given."""
    req = urllib.request.Request(url, data=None if body is None else json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json", **(headers or {})})
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=20) as r:
            status, raw = r.status, r.read()
    except urllib.error.HTTPError as e:
        status, raw = e.code, e.read()
    try:
        return status, json.loads(raw or b"null")
    except ValueError:
        return status, None


def _wait_for(check, timeout_s: float, what: str):
    deadline = time.monotonic() + timeout_s
    while True:
        got = check()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(2)


def _sessions(work_dir: Path) -> set[int]:
    """The sessions `up` started (one per pid file: each service runs in its own session)."""
    return {int(p.read_text()) for p in (work_dir / "run").glob("*.pid") if p.read_text().strip().isdigit()}


def _our_pids(work_dir: Path, sessions: set[int]) -> set[int]:
    """Every process in one of ``sessions`` or whose environment carries this test's SG_WORK_DIR (the Flink
    JVMs, which the Flink scripts daemonize). Both, because setproctitle (Airflow, uvicorn) overwrites
    /proc/<pid>/environ."""
    marker = f"SG_WORK_DIR={work_dir}".encode()
    pids = set()
    for p in Path("/proc").iterdir():
        if not p.name.isdigit():
            continue
        try:
            sid = int((p / "stat").read_text().rsplit(")", 1)[1].split()[3])
            env = (p / "environ").read_bytes().split(b"\0")
        except (OSError, IndexError, ValueError):
            continue
        if sid in sessions or marker in env:
            pids.add(int(p.name))
    return pids


def _listen_addresses(pids: set[int]) -> list[tuple[str, int, int]]:
    """(address, port, pid) of every TCP socket in LISTEN state held by ``pids`` (from /proc/net/tcp, tcp6)."""
    owner = {}
    for pid in pids:
        try:
            for fd in Path(f"/proc/{pid}/fd").iterdir():
                link = os.readlink(fd)
                if link.startswith("socket:["):
                    owner[link[8:-1]] = pid
        except OSError:
            continue
    found = []
    for table in ("tcp", "tcp6"):
        for line in Path(f"/proc/net/{table}").read_text().splitlines()[1:]:
            f = line.split()
            local, state, inode = f[1], f[3], f[9]
            if state != "0A" or inode not in owner:  # 0A = LISTEN
                continue
            hex_addr, hex_port = local.split(":")
            raw = bytes.fromhex(hex_addr)
            # /proc writes the address as 32-bit words in host (little-endian) order.
            raw = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))
            found.append((socket.inet_ntop(socket.AF_INET if len(raw) == 4 else socket.AF_INET6, raw),
                          int(hex_port, 16), owner[inode]))
    return found


def _is_loopback(addr: str) -> bool:
    return addr.startswith("127.") or addr == "::1" or addr.startswith("::ffff:127.")


@pytest.fixture(scope="module")
def services(tmp_path_factory):
    root = tmp_path_factory.mktemp("services")
    mlflow_port, airflow_port, flink_port, flink_rpc_port = _free_ports(4)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SG_", "MLFLOW_", "AIRFLOW"))}
    env.update(SG_WORK_DIR=str(root / "work"), AIRFLOW_HOME=str(root / "airflow"),
               MLFLOW_TRACKING_URI=f"sqlite:///{root / 'mlflow.db'}", SG_ARTIFACT_ROOT=str(root / "mlruns"),
               SG_MLFLOW_PORT=str(mlflow_port), SG_AIRFLOW_PORT=str(airflow_port), SG_FLINK_PORT=str(flink_port),
               SG_FLINK_RPC_PORT=str(flink_rpc_port),
               AIRFLOW__CORE__PARALLELISM="2")

    def cli(action: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "dags.services", action], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=300)

    started = time.monotonic()
    up = cli("up")
    info = {"up": up, "cli": cli, "work_dir": root / "work", "up_s": time.monotonic() - started,
            "mlflow": f"http://127.0.0.1:{mlflow_port}", "airflow": f"http://127.0.0.1:{airflow_port}",
            "flink": f"http://127.0.0.1:{flink_port}", "ports": {mlflow_port, airflow_port, flink_port},
            "sessions": _sessions(root / "work")}
    info["pids"] = _our_pids(root / "work", info["sessions"])
    try:
        yield info
    finally:
        cli("down")  # idempotent: a no-op when test_down_leaves_no_process_behind already stopped them


def test_up_reports_every_service_up(services):
    up = services["up"]
    assert up.returncode == 0, up.stdout + up.stderr
    for name in ("mlflow", "airflow", "flink"):
        assert any(line.split()[:2] == [name, "up"] for line in up.stdout.splitlines()), up.stdout
    password = json.loads((services["work_dir"] / "run" / "airflow_passwords.json").read_text())["admin"]
    assert password in up.stdout  # printed on the first start only
    print(f"make up took {services['up_s']:.0f} s")


def test_airflow_lists_project_dags_and_refuses_anonymous_calls(services):
    assert {"clean_data", "train_lstm_ed", "refit_hydro"} <= PROJECT_DAGS
    base = services["airflow"]
    status, _ = _http(f"{base}/api/v2/dags")
    assert status in (401, 403)
    password = json.loads((services["work_dir"] / "run" / "airflow_passwords.json").read_text())["admin"]
    status, _ = _http(f"{base}/auth/token", {"username": "admin", "password": "wrong"})
    assert status in (401, 403)
    status, body = _http(f"{base}/auth/token", {"username": "admin", "password": password})
    assert status in (200, 201), body
    token = body["access_token"]

    def dags():
        status, body = _http(f"{base}/api/v2/dags?limit=100", token=token)
        assert status == 200, body
        got = {d["dag_id"] for d in body["dags"]}
        return got if PROJECT_DAGS <= got else None

    assert PROJECT_DAGS <= _wait_for(dags, 90, "the dag-processor to parse dags/")
    status, body = _http(f"{base}/api/v2/importErrors", token=token)
    assert status == 200 and body["total_entries"] == 0, body


def test_mlflow_lists_experiments_and_registered_models(services):
    api = f"{services['mlflow']}/api/2.0/mlflow"
    status, body = _http(f"{api}/experiments/create", {"name": "smoke"})
    assert status == 200, body
    status, body = _http(f"{api}/registered-models/create", {"name": "lstm_ed-smoke"})
    assert status == 200, body
    status, body = _http(f"{api}/experiments/search", {"max_results": 100})
    assert status == 200 and {"Default", "smoke"} <= {e["name"] for e in body["experiments"]}, body
    status, body = _http(f"{api}/registered-models/search")
    assert status == 200 and [m["name"] for m in body["registered_models"]] == ["lstm_ed-smoke"], body
    # Host-header protection (DNS rebinding): a foreign Host is refused.
    status, _ = _http(f"{api}/experiments/search", {"max_results": 1}, headers={"Host": "evil.example"})
    assert status in (400, 403)


def test_flink_reports_its_taskmanagers(services):
    def taskmanagers():
        status, body = _http(f"{services['flink']}/taskmanagers")
        return status == 200 and body["taskmanagers"]

    tms = _wait_for(taskmanagers, 60, "a Flink TaskManager to register")
    assert tms[0]["slotsNumber"] >= 1
    status, body = _http(f"{services['flink']}/overview")
    assert status == 200 and body["taskmanagers"] == len(tms)


def test_nothing_listens_beyond_loopback(services):
    pids = _our_pids(services["work_dir"], services["sessions"])
    listening = _listen_addresses(pids)
    assert services["ports"] <= {port for _, port, _ in listening}, listening
    exposed = [(a, port, pid) for a, port, pid in listening if not _is_loopback(a)]
    assert exposed == [], f"listening beyond loopback (address, port, pid): {exposed}"


def test_down_leaves_no_process_behind(services):
    assert services["pids"], "up started no process"
    down = services["cli"]("down")
    assert down.returncode == 0, down.stdout + down.stderr
    left = _our_pids(services["work_dir"], services["sessions"])
    assert left == set(), {p: Path(f"/proc/{p}/cmdline").read_bytes()[:120] for p in left}
    status = services["cli"]("status")
    assert "running" not in status.stdout, status.stdout
