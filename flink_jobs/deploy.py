"""Deploy, redeploy and roll back the streaming jobs on a Flink cluster (local standalone or remote).

    python -m flink_jobs.deploy --help
    python -m flink_jobs.deploy cluster start|stop|status      # the wheel's standalone cluster, loopback
    python -m flink_jobs.deploy submit --family lstm_ed -- --series machine-1-2   # job options after --
    python -m flink_jobs.deploy status [--family lstm_ed]
    python -m flink_jobs.deploy redeploy --family lstm_ed       # no-op when production versions are unchanged
    python -m flink_jobs.deploy rollback --family lstm_ed [--model lstm_ed-machine-1-2]
    python -m flink_jobs.deploy stop --family lstm_ed           # stop with a savepoint

The JobManager is addressed by ``--jobmanager host:port`` or ``SG_FLINK_JOBMANAGER`` (default: the local
cluster of ``cluster start``, 127.0.0.1:8081). Job control uses the REST API; submission uses the
wheel's ``flink run -d`` (REST has no call that takes a Python job).

**Redeploy** = read the production versions from the registry (fails, leaving the running job alone,
when the registry is unreachable) -> skip when they equal the running deployment's -> stop the job with
a savepoint (``POST /jobs/:id/stop``, poll ``/jobs/:id/savepoints/:trigger``) -> resubmit from it
(``flink run -s``) -> wait until every task is RUNNING -> wait until the job reports the new versions
(status records ``<out>/status/*.json``, else the ``model_version`` of its newest output records).
If the new job fails, the error carries the job's exception (``/jobs/:id/exceptions``) and the
savepoint stays recorded, so ``submit --from-last-savepoint`` or ``rollback`` resumes from it.
Each deployment is appended to ``<work dir>/deploy/<family>.json`` (job id, savepoint, versions, time).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from serving.settings import get_settings

JOBS = {  # family -> (module of the job, job name it runs under)
    "lstm_ed": ("flink_jobs.streaming.lstm_job", "streamguard-lstm-ed"),
    "hydro": ("flink_jobs.streaming.hydro_job", "streamguard-hydro"),
}
PY_ERROR = re.compile(r"^([A-Z]\w*(?:Error|Exception): .*)$", re.M)
ACTIVE = ("CREATED", "INITIALIZING", "RUNNING", "RESTARTING", "RECONCILING")


class DeployError(RuntimeError):
    """A deploy step failed; the message says what, and where the last usable savepoint is."""


class ClusterUnreachable(DeployError):
    pass


class RegistryUnreachable(DeployError):
    pass


# ---- REST ----------------------------------------------------------------------------------------------
@dataclass
class FlinkRest:
    address: str  # host:port of the JobManager's REST endpoint
    timeout: float = 10.0

    @property
    def url(self) -> str:
        return self.address if "://" in self.address else f"http://{self.address}"

    def call(self, method: str, path: str, body: dict | None = None) -> dict:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(f"{self.url}{path}", data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as r:
                raw = r.read()
        except urllib.error.HTTPError as exc:
            raise DeployError(f"Flink REST {method} {path}: HTTP {exc.code}: {exc.read()[:500]!r}") from exc
        except (urllib.error.URLError, OSError) as exc:
            raise ClusterUnreachable(
                f"no Flink cluster answers at {self.url} ({exc}). Start one with "
                f"`python -m flink_jobs.deploy cluster start` or point SG_FLINK_JOBMANAGER / --jobmanager at it."
            ) from exc
        return json.loads(raw) if raw else {}

    def get(self, path: str) -> dict:
        return self.call("GET", path)

    def jobs(self) -> list[dict]:
        """All jobs with id, name, state (``/jobs/overview``)."""
        return [{"id": j["jid"], "name": j["name"], "state": j["state"], "start": j.get("start-time")}
                for j in self.get("/jobs/overview").get("jobs", [])]

    def job(self, job_id: str) -> dict:
        return self.get(f"/jobs/{job_id}")

    def exceptions(self, job_id: str) -> str:
        """The job's failure causes, newest first, as text ('' when none)."""
        try:
            ex = self.get(f"/jobs/{job_id}/exceptions")
        except DeployError as exc:
            return f"(exceptions not available: {exc})"
        entries = (ex.get("exceptionHistory") or {}).get("entries") or []
        parts = []
        for e in entries[:3]:
            trace = e.get("stacktrace", "")
            # a Python worker's error ('ImportError: ...') sits deep inside the Java trace: show it first
            py = PY_ERROR.findall(trace)
            head = f"Python error: {py[-1]}\n" if py else ""
            parts.append(f"{head}{e.get('exceptionName', '')} in {e.get('taskName') or 'job'}:\n{trace[:3000]}")
        if not parts and ex.get("root-exception"):
            parts = [ex["root-exception"][:3000]]
        return "\n---\n".join(parts)

    def stop_with_savepoint(self, job_id: str, target_dir: str, timeout_s: float = 180) -> str:
        """``POST /jobs/:id/stop`` (no drain: windows in flight stay in the savepoint); returns its path."""
        trigger = self.call("POST", f"/jobs/{job_id}/stop",
                            {"targetDirectory": target_dir, "drain": False})["request-id"]
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            res = self.get(f"/jobs/{job_id}/savepoints/{trigger}")
            if res.get("status", {}).get("id") == "COMPLETED":
                op = res.get("operation") or {}
                if op.get("location"):
                    return op["location"]
                cause = (op.get("failure-cause") or {}).get("stack-trace", "")[:3000]
                raise DeployError(f"stop-with-savepoint of job {job_id} failed (the job keeps running):\n{cause}")
            time.sleep(0.3)
        raise DeployError(f"stop-with-savepoint of job {job_id} did not finish within {timeout_s:.0f}s")

    def cancel(self, job_id: str) -> None:
        self.call("PATCH", f"/jobs/{job_id}?mode=cancel")

    def wait_running(self, job_id: str, timeout_s: float = 180) -> dict:
        """Until the job and all its tasks are RUNNING; a FAILED/CANCELED job raises with its exception."""
        deadline = time.monotonic() + timeout_s
        info = {}
        while time.monotonic() < deadline:
            info = self.job(job_id)
            state = info.get("state")
            if state in ("FAILED", "CANCELED", "CANCELLING", "FAILING", "FINISHED", "SUSPENDED", "RESTARTING"):
                raise DeployError(f"job {job_id} ended {state} instead of running:\n{self.exceptions(job_id)}")
            if state == "RUNNING" and all(v.get("status") == "RUNNING" for v in info.get("vertices", [])):
                return info
            time.sleep(0.3)
        raise DeployError(f"job {job_id} not RUNNING within {timeout_s:.0f}s (state {info.get('state')}):\n"
                          f"{self.exceptions(job_id)}")


# ---- deployment state ----------------------------------------------------------------------------------
def state_path(family: str, state_dir: str | Path | None = None) -> Path:
    return Path(state_dir or get_settings().work_dir / "deploy") / f"{family}.json"


def load_state(family: str, state_dir=None) -> dict:
    p = state_path(family, state_dir)
    return json.loads(p.read_text()) if p.exists() else {"family": family, "history": []}


def save_state(st: dict, state_dir=None) -> None:
    p = state_path(st["family"], state_dir)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_suffix(".tmp")
    tmp.write_text(json.dumps(st, indent=1))
    os.replace(tmp, p)


# ---- registry and job reports --------------------------------------------------------------------------
def production_versions(family: str, names: list[str] | None = None) -> dict[str, str]:
    """``{model name: production version}`` of the family's registered models (or of ``names``)."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    from flink_jobs.streaming.config import from_env

    cfg = from_env(family)
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "5")
    try:
        client = MlflowClient(cfg.tracking_uri, cfg.registry_uri)
        if names is None:
            names = sorted(m.name for m in client.search_registered_models(f"name LIKE '{family}-%'"))
        out = {}
        for name in names:
            try:
                out[name] = str(client.get_model_version_by_alias(name, cfg.alias).version)
            except MlflowException as exc:
                if "RESOURCE_DOES_NOT_EXIST" in str(getattr(exc, "error_code", "")) or "not found" in str(exc).lower():
                    continue
                raise
        return out
    except Exception as exc:  # noqa: BLE001 - any failure to reach the registry
        if isinstance(exc, DeployError):
            raise
        raise RegistryUnreachable(f"cannot read production versions from the registry {cfg.registry_uri}: "
                                  f"{type(exc).__name__}: {str(exc)[:300]}; the running job was left alone") from exc


def read_records_of(path: Path) -> list[dict]:
    """Records of one committed part file (hidden/in-progress files are never passed here)."""
    if path.name.startswith((".", "_")):
        return []
    try:
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    except (OSError, ValueError):
        return []


def _arg(job_args: list[str], flag: str) -> str | None:
    for i, a in enumerate(job_args):
        if a == flag and i + 1 < len(job_args):
            return job_args[i + 1]
        if a.startswith(flag + "="):
            return a.split("=", 1)[1]
    return None


def out_dir_of(family: str, job_args: list[str]) -> Path:
    from flink_jobs.streaming.config import from_env

    return Path(_arg(job_args, "--out-dir") or from_env(family).out_dir)


def reported_versions(family: str, job_args: list[str], since_ms: int) -> dict[str, dict]:
    """Versions the running job says it uses: ``{name: {"version", "source"}}``.

    Status records (``<out>/status/*.json`` written by the scoring operators) newer than ``since_ms``;
    models not there yet are read from the newest output records emitted after ``since_ms``.
    """
    out_dir = out_dir_of(family, job_args)
    status_dir = Path(_arg(job_args, "--status-dir") or os.environ.get("SG_STREAM_STATUS_DIR") or out_dir / "status")
    seen: dict[str, dict] = {}
    for p in sorted(status_dir.glob(f"{family}-*.json")):
        try:
            rec = json.loads(p.read_text())
        except (OSError, ValueError):
            continue
        if rec.get("started_ms", 0) < since_ms:
            continue  # written by an older job
        for name, m in (rec.get("models") or {}).items():
            seen[name] = {"version": str(m.get("version")), "source": m.get("source", "status")}
    newest: dict[str, tuple[int, str]] = {}
    for sub in ("scores", "alerts"):
        # only part files committed since the job started (a long-running job has many older ones)
        fresh = [p for p in (out_dir / sub).glob("*.jsonl") if p.stat().st_mtime * 1000 >= since_ms - 1000]
        for r in (rec for p in fresh for rec in read_records_of(p)):
            t = int(r.get("emitted_at", 0))
            if t >= since_ms and t >= newest.get(r["model_name"], (-1, ""))[0]:
                newest[r["model_name"]] = (t, str(r["model_version"]))
    for name, (_, version) in newest.items():
        seen.setdefault(name, {"version": version, "source": "records"})
    return seen


# ---- submission ----------------------------------------------------------------------------------------
def flink_bin() -> Path:
    from flink_jobs.cluster import pyflink_home

    return pyflink_home() / "bin" / "flink"


def client_conf(address: str) -> Path:
    """A Flink client config for ``flink run`` against ``address`` (Java 17 options of the wheel)."""
    from flink_jobs.cluster import _wheel_java_opts

    host, _, port = address.partition(":")
    d = get_settings().work_dir / "run" / "flink-client" / f"{host}_{port or 8081}"
    d.mkdir(parents=True, exist_ok=True)
    from flink_jobs.cluster import pyflink_home

    for name in ("log4j-cli.properties", "logback.xml"):
        src = pyflink_home() / "conf" / name
        if src.exists():
            (d / name).write_bytes(src.read_bytes())
    (d / "config.yaml").write_text(
        f"rest.address: {json.dumps(host)}\nrest.port: {json.dumps(port or '8081')}\n"
        f"env.java.opts.all: {json.dumps(_wheel_java_opts())}\n"
        f"python.executable: {json.dumps(sys.executable)}\npython.client.executable: {json.dumps(sys.executable)}\n")
    return d


def submit(address: str, family: str, job_args: list[str], savepoint: str | None = None,
           python: str = sys.executable, pyfs: str | None = None, timeout_s: float = 240) -> str:
    """``flink run -d`` the family's job (optionally from ``savepoint``); returns the job id.

    The job sets its workers' Python to the interpreter that builds it (``flink_jobs/env.py``), so on a
    remote cluster this venv must exist at the same path on the TaskManagers.
    """
    module, _ = JOBS[family]
    cmd = [str(flink_bin()), "run", "-d", "-m", address, "-pyexec", python, "-pyclientexec", python]
    if savepoint:
        cmd += ["-s", savepoint]
    if pyfs:
        cmd += ["-pyfs", pyfs]
    cmd += ["-pym", module, *job_args]
    env = {**os.environ, "FLINK_CONF_DIR": str(client_conf(address)),
           "PATH": f"{Path(python).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    env.pop("SG_FLINK_JOBMANAGER", None)  # under `flink run` the CLI's context environment submits
    res = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout_s,
                         cwd=get_settings().repo_root, stdin=subprocess.DEVNULL)
    m = re.search(r"JobID ([0-9a-f]{32})", res.stdout + res.stderr)
    if res.returncode or not m:
        tail = (res.stdout + res.stderr)[-4000:]
        if "Connection refused" in tail or "Could not retrieve" in tail:
            FlinkRest(address).get("/overview")  # raises ClusterUnreachable with the clear message
        raise DeployError(f"`flink run` of {module} failed (exit {res.returncode}):\n{tail}")
    return m.group(1)


# ---- the lifecycle -------------------------------------------------------------------------------------
@dataclass
class Deployer:
    address: str
    family: str = "lstm_ed"
    state_dir: str | Path | None = None
    savepoint_dir: str | Path | None = None
    python: str = sys.executable
    echo: object = print

    def __post_init__(self):
        if self.family not in JOBS:
            raise ValueError(f"unknown family {self.family!r}; one of {sorted(JOBS)}")
        self.rest = FlinkRest(self.address)

    def state(self) -> dict:
        return load_state(self.family, self.state_dir)

    def _savepoint_target(self) -> str:
        d = Path(self.savepoint_dir or get_settings().work_dir / "savepoints") / self.family
        return d.resolve().as_uri()

    def running_job(self, st: dict | None = None) -> str | None:
        """The recorded job id when that job is still active on the cluster."""
        st = st or self.state()
        jid = st.get("job_id")
        if not jid:
            return None
        jobs = {j["id"]: j for j in self.rest.jobs()}
        return jid if jobs.get(jid, {}).get("state") in ACTIVE else None

    def _record(self, st: dict, action: str, job_id: str | None, savepoint: str | None, versions: dict,
                **more) -> dict:
        entry = {"action": action, "job_id": job_id, "savepoint": savepoint, "versions": versions,
                 "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "time_ms": int(time.time() * 1000), **more}
        st["history"].append(entry)
        st.update(job_id=job_id, versions=versions)
        if savepoint:
            st["last_savepoint"] = savepoint
        save_state(st, self.state_dir)
        return entry

    def submit(self, job_args: list[str] | None = None, savepoint: str | None = None, verify_timeout_s: float = 60,
               action: str = "submit") -> dict:
        st = self.state()
        if self.running_job(st):
            raise DeployError(f"{self.family} job {st['job_id']} is already running; use redeploy or stop")
        job_args = list(st.get("job_args", []) if job_args is None else job_args)
        versions = production_versions(self.family, self._names(job_args))
        started_ms = int(time.time() * 1000)
        try:
            jid = submit(self.address, self.family, job_args, savepoint, self.python)
        except DeployError as exc:
            self._record(st, f"{action}-failed", None, None, versions, error=str(exc)[:2000],
                         restored_from=savepoint)
            raise DeployError(f"{exc}\nNothing was started; the last savepoint is still usable: "
                              f"{st.get('last_savepoint') or savepoint}") from exc
        st["job_args"] = job_args
        if savepoint:
            st["last_savepoint"] = savepoint
        try:
            self.rest.wait_running(jid)
            entry = self._record(st, action, jid, None, versions, restored_from=savepoint, started_ms=started_ms)
            entry["verified"] = self.verify(versions, started_ms, verify_timeout_s, job_id=jid)
        except DeployError as exc:
            try:  # a job failing in a restart loop must not hold the slot (nor stay the recorded job)
                self.rest.cancel(jid)
            except DeployError:
                pass
            self._record(st, f"{action}-failed", None, None, versions, error=str(exc)[:2000], failed_job=jid,
                         restored_from=savepoint)
            raise DeployError(f"{exc}\nThe failed job {jid} was cancelled; the last savepoint is still usable: "
                              f"{st.get('last_savepoint')} (`python -m flink_jobs.deploy submit --family "
                              f"{self.family} --from-last-savepoint`, or redeploy/rollback)") from exc
        return entry

    def _names(self, job_args: list[str]) -> list[str] | None:
        series = _arg(job_args, "--series")
        if not series:
            return None
        from serving.naming import registry_name

        return [registry_name(self.family, s) for s in series.split(",") if s]

    def verify(self, versions: dict[str, str], since_ms: int, timeout_s: float = 60, job_id: str | None = None) -> dict:
        """Wait until the job reports ``versions`` for every model it has loaded; raise on a wrong version,
        or when the job (``job_id``) fails or restarts meanwhile (with its exception).

        Returns ``{"confirmed": {...}, "pending": [...]}``: pending models had no data yet (models load
        when their series first shows up) and did not report within ``timeout_s``.
        """
        st = self.state()
        deadline = time.monotonic() + timeout_s
        while True:
            if job_id:
                self.check_healthy(job_id)
            seen = reported_versions(self.family, st.get("job_args", []), since_ms)
            confirmed = {n: v for n, v in versions.items() if seen.get(n, {}).get("version") == v}
            wrong = {n: seen[n]["version"] for n in versions if n in seen and seen[n]["version"] != versions[n]}
            pending = sorted(set(versions) - set(confirmed))
            if not pending or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        if wrong:
            raise DeployError(f"the new {self.family} job reports other versions than production: {wrong} "
                              f"(production: { {n: versions[n] for n in wrong} })")
        return {"confirmed": confirmed, "pending": pending}

    def check_healthy(self, job_id: str) -> None:
        """Raise with the job's exception when it is not RUNNING or has failed (and restarted) since it started."""
        state = self.rest.job(job_id).get("state")
        problem = self.rest.exceptions(job_id)
        if state != "RUNNING" or problem:
            raise DeployError(f"{self.family} job {job_id} is {state}"
                              f"{' after a failure' if problem else ''}:\n{problem}")

    def stop(self, action: str = "stop") -> str:
        """Stop the recorded job with a savepoint; returns the savepoint path."""
        st = self.state()
        jid = self.running_job(st)
        if jid is None:
            raise DeployError(f"no running {self.family} job recorded in {state_path(self.family, self.state_dir)}")
        sp = self.rest.stop_with_savepoint(jid, self._savepoint_target())
        self._record(st, action, jid, sp, st.get("versions", {}))
        return sp

    def redeploy(self, force: bool = False, verify_timeout_s: float = 60) -> dict:
        """Stop with savepoint and resubmit from it when production versions changed (or ``force``)."""
        st = self.state()
        want = production_versions(self.family, self._names(st.get("job_args", [])))  # before touching the job
        jid = self.running_job(st)
        if jid and not force and st.get("versions") == want:
            self.echo(f"{self.family}: production versions unchanged {want}; job {jid} keeps running")
            return {"action": "skip", "job_id": jid, "versions": want}
        if jid:
            changed = {n: (st.get("versions", {}).get(n), v) for n, v in want.items() if st.get("versions", {}).get(n) != v}
            self.echo(f"{self.family}: stopping job {jid} with a savepoint (changed: {changed})")
            sp = self.stop(action="stop-for-redeploy")
        else:
            sp = st.get("last_savepoint")
            self.echo(f"{self.family}: no running job; starting from {sp or 'scratch'}")
        entry = self.submit(savepoint=sp, verify_timeout_s=verify_timeout_s, action="redeploy")
        self.echo(f"{self.family}: job {entry['job_id']} RUNNING from {sp}; versions {entry['versions']}; "
                  f"confirmed by the job: {sorted(entry['verified']['confirmed'])}")
        return entry

    def rollback(self, models: list[str] | None = None, verify_timeout_s: float = 60) -> dict:
        """Move ``production`` of ``models`` (default: those the last deployment changed) back one version,
        then redeploy from a fresh savepoint (or the last one when no job runs)."""
        st = self.state()
        if not models:
            models = changed_by_last_deploy(st)
            if not models:
                raise DeployError(f"the last {self.family} deployment changed no model version; name the models "
                                  "to roll back with --model")
        moved = {}
        for name in models:
            old, new = move_production_back(name)
            moved[name] = (old, new)
            self.echo(f"{name}: production v{old} -> v{new}")
        entry = self.redeploy(verify_timeout_s=verify_timeout_s)
        entry["rolled_back"] = moved
        return entry


def changed_by_last_deploy(st: dict) -> list[str]:
    """Models whose version differs between the last two deployments that ran a job."""
    runs = [h for h in st.get("history", []) if h["action"] in ("submit", "redeploy")]
    if len(runs) < 2:
        return []
    a, b = runs[-2]["versions"], runs[-1]["versions"]
    return sorted(n for n in b if a.get(n) != b[n])


def move_production_back(name: str) -> tuple[str, str]:
    """Point ``name@production`` at the newest version older than the current one; returns (old, new)."""
    from mlflow import MlflowClient

    from flink_jobs.streaming.config import from_env
    from serving import aliases

    cfg = from_env("lstm_ed")
    try:
        moved = aliases.rollback(name, MlflowClient(cfg.tracking_uri, cfg.registry_uri))
    except LookupError as exc:
        raise DeployError(str(exc)) from exc
    return str(moved.previous), moved.version


# ---- CLI -----------------------------------------------------------------------------------------------
def jobmanager_address(arg: str | None) -> str:
    from flink_jobs.cluster import default_spec

    return arg or get_settings().flink_jobmanager or default_spec().address


def _print_status(rest: FlinkRest, family: str | None, state_dir) -> None:
    print(f"cluster {rest.url}: {json.dumps(rest.get('/overview'))}")
    for j in rest.jobs():
        print(f"  job {j['id']}  {j['state']:10s} {j['name']}")
    for fam in [family] if family else list(JOBS):
        st = load_state(fam, state_dir)
        if not st.get("history"):
            continue
        last = st["history"][-1]
        print(f"{fam}: job {st.get('job_id')} versions {st.get('versions')} last savepoint {st.get('last_savepoint')}")
        print(f"  last action {last['action']} at {last['time']} ({len(st['history'])} in {state_path(fam, state_dir)})")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m flink_jobs.deploy", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=__doc__.split("\n\n", 1)[1])
    p.add_argument("--jobmanager", default=None,
                   help="host:port of the JobManager REST endpoint (default: SG_FLINK_JOBMANAGER, else 127.0.0.1:8081)")
    p.add_argument("--state-dir", default=None, help="deployment history folder (default: <work dir>/deploy)")
    sub = p.add_subparsers(dest="cmd", required=True)
    cl = sub.add_parser("cluster", help="start/stop/status of the wheel's standalone cluster on this machine")
    cl.add_argument("action", choices=["start", "stop", "status"])
    cl.add_argument("--port", type=int, default=None, help="REST port (default: SG_FLINK_PORT or 8081)")
    cl.add_argument("--taskmanagers", type=int, default=1)
    cl.add_argument("--slots", type=int, default=4, help="slots per TaskManager")
    for name, helptext in [("submit", "start the family's job (job options after --)"),
                           ("status", "cluster overview, jobs, recorded deployments"),
                           ("redeploy", "stop with savepoint + resubmit when production versions changed"),
                           ("rollback", "move production back one version, then redeploy"),
                           ("stop", "stop the recorded job with a savepoint")]:
        sp = sub.add_parser(name, help=helptext)
        sp.add_argument("--family", choices=sorted(JOBS), default=None if name == "status" else "lstm_ed")
        if name == "submit":
            sp.add_argument("--savepoint", default=None, help="restore from this savepoint path")
            sp.add_argument("--from-last-savepoint", action="store_true", help="restore from the recorded savepoint")
            sp.add_argument("job_args", nargs=argparse.REMAINDER,
                            help="options of the job module after --, e.g. -- --series machine-1-2 --every-window")
        if name == "redeploy":
            sp.add_argument("--force", action="store_true", help="redeploy even when no version changed")
        if name == "rollback":
            sp.add_argument("--model", action="append", default=None,
                            help="registered model to roll back (repeatable; default: those the last redeploy changed)")
        if name in ("submit", "redeploy", "rollback"):
            sp.add_argument("--verify-timeout-s", type=float, default=60,
                            help="how long to wait for the job to report the production versions")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.cmd == "cluster":
        from flink_jobs import cluster

        spec = cluster.default_spec(taskmanagers=args.taskmanagers, slots=args.slots,
                                    **({"rest_port": args.port} if args.port else {}))
        if args.action == "start":
            info = cluster.start(spec)
            print(f"Flink {info.get('flink-version')} at {spec.url}: {info['taskmanagers']} TaskManager(s), "
                  f"{info['slots-total']} slots (conf {spec.conf_dir}, logs {spec.log_dir})")
        elif args.action == "stop":
            cluster.stop(spec)
            print(f"stopped the cluster of {spec.run_dir}")
        else:
            print(json.dumps(cluster.status(spec), indent=1))
        return 0
    address = jobmanager_address(args.jobmanager)
    try:
        if args.cmd == "status":
            _print_status(FlinkRest(address), args.family, args.state_dir)
            return 0
        d = Deployer(address, args.family, state_dir=args.state_dir)
        if args.cmd == "submit":
            job_args = [a for a in args.job_args if a != "--"] or None
            sp = args.savepoint or (d.state().get("last_savepoint") if args.from_last_savepoint else None)
            entry = d.submit(job_args, sp, args.verify_timeout_s)
        elif args.cmd == "redeploy":
            entry = d.redeploy(args.force, args.verify_timeout_s)
        elif args.cmd == "rollback":
            entry = d.rollback(args.model, args.verify_timeout_s)
        else:
            entry = {"savepoint": d.stop()}
        print(json.dumps(entry, indent=1))
        return 0
    except DeployError as exc:
        print(f"deploy {args.cmd} failed: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
