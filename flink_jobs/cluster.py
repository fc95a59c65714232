"""Start, stop and inspect the Flink standalone cluster shipped inside the apache-flink wheel.

    python -m flink_jobs.deploy cluster start|stop|status      (the CLI; this module is its library)

A cluster is described by a ``ClusterSpec``: REST port, JobManager RPC port, number of TaskManagers and
slots, and a run folder holding the generated Flink config (``conf/config.yaml``), logs and pid files
(``FLINK_PID_DIR``), so several clusters (``make up``'s, the test suite's) never touch each other's
processes. Checkpoints and savepoints go to ``<work dir>/checkpoints`` and ``<work dir>/savepoints``
unless the spec says otherwise. Every address binds loopback by default: Flink's REST API has no
authentication (anyone reaching it can submit and cancel jobs).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from serving.settings import get_settings


def pyflink_home() -> Path:
    import pyflink

    return Path(pyflink.__file__).parent


@dataclass
class ClusterSpec:
    run_dir: Path  # conf/, log/, pid/ live here
    rest_port: int = 8081
    rpc_port: int = 6123
    host: str = "127.0.0.1"  # REST bind + advertised address
    taskmanagers: int = 1
    slots: int = 4
    jm_memory: str = "1024m"
    tm_memory: str = "2048m"
    checkpoints_dir: Path | None = None
    savepoints_dir: Path | None = None
    python: str = sys.executable  # interpreter of the Python workers (needs pyflink + this project)
    extra: dict[str, str] = field(default_factory=dict)  # more config.yaml keys (flat, dotted)

    @property
    def conf_dir(self) -> Path:
        return self.run_dir / "conf"

    @property
    def log_dir(self) -> Path:
        return self.run_dir / "log"

    @property
    def lib_dir(self) -> Path:
        return self.run_dir / "lib"

    @property
    def pid_dir(self) -> Path:
        return self.run_dir / "pid"

    @property
    def address(self) -> str:
        return f"{'127.0.0.1' if self.host == '0.0.0.0' else self.host}:{self.rest_port}"

    @property
    def url(self) -> str:
        return f"http://{self.address}"


def default_spec(**overrides) -> ClusterSpec:
    """The spec of ``make up`` / ``deploy cluster start``: ports from SG_FLINK_PORT / SG_FLINK_RPC_PORT."""
    s = get_settings()
    base = dict(run_dir=s.work_dir / "run" / "flink", rest_port=int(os.environ.get("SG_FLINK_PORT", 8081)),
                rpc_port=int(os.environ.get("SG_FLINK_RPC_PORT", 6123)),
                host=os.environ.get("SG_BIND_HOST", "127.0.0.1"))
    base.update(overrides)
    return ClusterSpec(**base)


def _wheel_java_opts() -> str:
    import yaml

    conf = yaml.safe_load((pyflink_home() / "conf" / "config.yaml").read_text()) or {}
    return str(((conf.get("env") or {}).get("java") or {}).get("opts", {}).get("all", ""))


def write_lib(spec: ClusterSpec) -> Path:
    """The cluster's class path: the wheel's lib/ plus opt/flink-python (links). Jobs in PyFlink's thread
    mode need flink-python, with PEMJA, on the cluster's own class path (Flink's docs say so too): loaded
    from each job's jar instead, PEMJA cannot load libpython a second time on Java 17 (the redeployed job
    fails with NoSuchFieldException: loadedLibraryNames)."""
    lib = spec.lib_dir
    if lib.exists():
        shutil.rmtree(lib)
    lib.mkdir(parents=True)
    home = pyflink_home()
    for jar in [*(home / "lib").glob("*.jar"), *(home / "opt").glob("flink-python-*.jar")]:
        (lib / jar.name).symlink_to(jar)
    return lib


def write_config(spec: ClusterSpec) -> Path:
    """Copy the wheel's log configs and write ``config.yaml`` for ``spec``; returns the conf folder."""
    s = get_settings()
    conf = spec.conf_dir
    conf.mkdir(parents=True, exist_ok=True)
    for d in (spec.log_dir, spec.pid_dir):
        d.mkdir(parents=True, exist_ok=True)
    for f in (pyflink_home() / "conf").iterdir():
        if f.name not in ("config.yaml", "workers", "masters"):
            shutil.copy(f, conf / f.name)
    (conf / "workers").write_text("localhost\n" * spec.taskmanagers)
    (conf / "masters").write_text(f"localhost:{spec.rest_port}\n")
    ckpt = Path(spec.checkpoints_dir or s.work_dir / "checkpoints").resolve()
    svp = Path(spec.savepoints_dir or s.work_dir / "savepoints").resolve()
    flat = {
        "jobmanager.rpc.address": "localhost",
        "jobmanager.rpc.port": str(spec.rpc_port),
        "jobmanager.bind-host": "localhost",
        "jobmanager.memory.process.size": spec.jm_memory,
        "taskmanager.bind-host": "localhost",
        "taskmanager.host": "localhost",
        "taskmanager.numberOfTaskSlots": str(spec.slots),
        "taskmanager.memory.process.size": spec.tm_memory,
        "rest.address": spec.address.split(":")[0],
        "rest.bind-address": spec.host,
        "rest.port": str(spec.rest_port),
        "execution.checkpointing.dir": ckpt.as_uri(),
        "execution.checkpointing.savepoint-dir": svp.as_uri(),
        "python.executable": spec.python,
        "python.client.executable": spec.python,
        "env.pid.dir": str(spec.pid_dir),
        "env.log.dir": str(spec.log_dir),
        # the wheel's --add-opens list: Java 17 refuses Flink's reflection without it
        "env.java.opts.all": _wheel_java_opts(),
        "jobmanager.execution.failover-strategy": "region",
        # PEMJA from the cluster's lib/ (write_lib), never again from a job's jar
        "classloader.parent-first-patterns.additional": "pemja.",
        **spec.extra,
    }
    # flat dotted keys are valid Flink 2 YAML (it accepts both nested and flattened keys)
    (conf / "config.yaml").write_text("".join(f"{k}: {json.dumps(v)}\n" for k, v in flat.items()))
    return conf


def flink_env(spec: ClusterSpec) -> dict:
    return {**os.environ, "FLINK_CONF_DIR": str(spec.conf_dir), "FLINK_LOG_DIR": str(spec.log_dir),
            "FLINK_LIB_DIR": str(spec.lib_dir),
            "FLINK_PID_DIR": str(spec.pid_dir),
            "PATH": f"{Path(spec.python).parent}{os.pathsep}{os.environ.get('PATH', '')}"}


def _script(name: str) -> str:
    return str(pyflink_home() / "bin" / name)


def _sh(spec: ClusterSpec, script: str, *args: str) -> None:
    with open(spec.log_dir / "scripts.log", "ab") as log:
        subprocess.run(["bash", _script(script), *args], env=flink_env(spec), check=True, stdout=log,
                       stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)


def overview(url: str, timeout: float = 3) -> dict | None:
    """``GET /overview`` of the cluster at ``url`` (None when nothing answers)."""
    try:
        with urllib.request.urlopen(f"{url}/overview", timeout=timeout) as r:
            return json.loads(r.read())
    except (OSError, ValueError, urllib.error.URLError):
        return None


def pids(spec: ClusterSpec, role: str) -> list[int]:
    """Pids of this cluster's ``standalonesession`` (JobManager) or ``taskexecutor`` processes."""
    out = []
    for f in spec.pid_dir.glob(f"flink-*-{role}.pid"):
        for line in f.read_text().split():
            try:
                pid = int(line)
                os.kill(pid, 0)
                out.append(pid)
            except (ValueError, OSError):
                continue
    return out


def start(spec: ClusterSpec, timeout_s: float = 90, wait: bool = True) -> dict | None:
    """Start JobManager + TaskManagers (idempotent: a cluster already answering on the port is kept).

    With ``wait``, waits until the REST API answers and all TaskManagers registered; returns ``/overview``.
    """
    info = overview(spec.url)
    if info is not None:
        return info
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        raise RuntimeError("Flink needs Java 11 or 17: no `java` on PATH and JAVA_HOME unset")
    write_config(spec)
    write_lib(spec)
    if not pids(spec, "standalonesession"):
        _sh(spec, "jobmanager.sh", "start")
    for _ in range(spec.taskmanagers - len(pids(spec, "taskexecutor"))):
        _sh(spec, "taskmanager.sh", "start")
    return wait_ready(spec, timeout_s) if wait else None


def wait_ready(spec: ClusterSpec, timeout_s: float = 90) -> dict:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        info = overview(spec.url)
        if info and info.get("taskmanagers", 0) >= spec.taskmanagers:
            return info
        time.sleep(0.5)
    raise TimeoutError(f"Flink cluster at {spec.url} not ready within {timeout_s:.0f}s; logs in {spec.log_dir}")


def add_taskmanager(spec: ClusterSpec) -> None:
    _sh(spec, "taskmanager.sh", "start")


def kill_taskmanager(spec: ClusterSpec) -> int:
    """SIGKILL one TaskManager of this cluster (failure tests); returns its pid."""
    found = pids(spec, "taskexecutor")
    if not found:
        raise RuntimeError("no TaskManager process of this cluster is running")
    os.kill(found[-1], signal.SIGKILL)
    return found[-1]


def stop(spec: ClusterSpec, timeout_s: float = 30) -> None:
    """Stop this cluster's TaskManagers and JobManager (only the processes in its pid folder)."""
    if not spec.conf_dir.exists():
        return
    for script in ("taskmanager.sh", "jobmanager.sh"):
        try:
            _sh(spec, script, "stop-all")
        except subprocess.CalledProcessError:
            pass
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and (pids(spec, "taskexecutor") or pids(spec, "standalonesession")):
        time.sleep(0.3)
    for role in ("taskexecutor", "standalonesession"):
        for pid in pids(spec, role):
            os.kill(pid, signal.SIGKILL)
        for f in spec.pid_dir.glob(f"flink-*-{role}.pid"):
            f.unlink(missing_ok=True)


def status(spec: ClusterSpec) -> dict:
    """What answers at the spec's address and which of its processes run here."""
    info = overview(spec.url)
    return {"url": spec.url, "answering": info is not None, "overview": info,
            "jobmanager_pids": pids(spec, "standalonesession"), "taskmanager_pids": pids(spec, "taskexecutor"),
            "conf_dir": str(spec.conf_dir), "log_dir": str(spec.log_dir)}
