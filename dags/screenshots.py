"""Screenshots of the UIs for the README (``make screens``): headless Chromium driven over its DevTools protocol.

    python -m dags.screenshots [--out docs/img] [--no-demo] [--keep-job]

1. runs ``make demo`` (``python -m dags.demo``) when the MLflow store has no ``lstm_ed`` model in production;
2. starts the services (``python -m dags.services up``; already running ones are reused);
3. submits the LSTM-ED streaming job to the Flink cluster when no job is running there (cancelled at the
   end unless ``--keep-job``);
4. shoots, at 1280x800: the Airflow grid of ``train_lstm_ed`` (logged in with a JWT from ``/auth/token`` set
   as Airflow's ``_token`` cookie), the MLflow comparison of the LSTM-ED runs, the MLflow registry page of
   an LSTM-ED model (aliases ``production``/``challenger``), the Flink job graph of the running job.

Needs Debian's Chromium (``apt-get install -y chromium``) and the ``websockets`` package (``pip install -e
'.[screens]'``). A page is shot only once its expected text shows; otherwise the script fails, naming it.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import itertools
import json
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

from dags import services
from serving.settings import REPO_ROOT

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--hide-scrollbars", "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0"]
WIDTH, HEIGHT = 1280, 800
# MLflow 3 opens its "Assistant" side panel by default: close it, it hides half the page.
CLOSE_MLFLOW_ASSISTANT = ("document.querySelector('[data-component-id=\"mlflow.assistant.chat_panel.close\"]')"
                          "?.click()")


def _find_chromium() -> str | None:
    return next(filter(None, map(shutil.which, ("chromium", "chromium-browser", "google-chrome"))), None)


def _get(url: str, token: str | None = None, body: dict | None = None, method: str | None = None):
    req = urllib.request.Request(url, data=None if body is None else json.dumps(body).encode(), method=method,
                                 headers={"Content-Type": "application/json"})
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(req, timeout=30) as r:
        raw = r.read()
    return json.loads(raw) if raw else None


class Browser:
    """One headless Chromium with one tab, driven over the DevTools protocol (a websocket on loopback)."""

    def __init__(self, binary: str):
        from websockets.sync.client import connect

        self.profile = tempfile.mkdtemp(prefix="sg-chromium-")
        self.proc = subprocess.Popen([binary, *CHROMIUM_FLAGS, f"--user-data-dir={self.profile}",
                                      f"--window-size={WIDTH},{HEIGHT}", "about:blank"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        port_file = Path(self.profile) / "DevToolsActivePort"
        deadline = time.monotonic() + 30
        while not (port_file.exists() and len(port_file.read_text().split()) == 2):
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise RuntimeError("Chromium did not start its DevTools endpoint")
            time.sleep(0.2)
        port, path = port_file.read_text().split()
        self.stack = contextlib.ExitStack()
        self.ws = self.stack.enter_context(connect(f"ws://127.0.0.1:{port}{path}", max_size=None, open_timeout=30))
        self.ids = itertools.count(1)
        target = self.call("Target.createTarget", url="about:blank")["targetId"]
        self.session = self.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        self.call("Emulation.setDeviceMetricsOverride", session=True, width=WIDTH, height=HEIGHT,
                  deviceScaleFactor=1, mobile=False)

    def call(self, method: str, session: bool = False, **params):
        msg = {"id": next(self.ids), "method": method, "params": params}
        if session:
            msg["sessionId"] = self.session
        self.ws.send(json.dumps(msg))
        while True:  # skip events until our answer comes
            reply = json.loads(self.ws.recv(timeout=60))
            if reply.get("id") == msg["id"]:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})

    def set_cookie(self, url: str, name: str, value: str) -> None:
        self.call("Network.setCookie", session=True, url=url, name=name, value=value, httpOnly=True)

    def text(self) -> str:
        got = self.call("Runtime.evaluate", session=True, expression="document.body ? document.body.innerText : ''",
                        returnByValue=True)
        return got.get("result", {}).get("value", "")

    def shoot(self, url: str, must_show: list[str], out: Path, timeout_s: float = 60, settle_s: float = 2,
              then_js: str = "") -> None:
        """Open ``url``, wait until every string of ``must_show`` is on the page, run ``then_js``, save a PNG."""
        self.call("Page.navigate", session=True, url=url)
        deadline = time.monotonic() + timeout_s
        while True:
            text = self.text()
            missing = [s for s in must_show if s not in text]
            if not missing:
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"{url}: {missing} not on the page after {timeout_s:.0f} s; it shows:\n{text[:800]}")
            time.sleep(1)
        if then_js:
            self.call("Runtime.evaluate", session=True, expression=then_js)
        time.sleep(settle_s)  # charts and graphs draw after their data arrives
        png = self.call("Page.captureScreenshot", session=True, format="png")["data"]
        out.write_bytes(base64.b64decode(png))
        print(f"{out} ({out.stat().st_size // 1024} KiB)")

    def close(self) -> None:
        try:
            self.stack.close()
        finally:
            self.proc.terminate()
            self.proc.wait(timeout=20)
            shutil.rmtree(self.profile, ignore_errors=True)


def _production_models() -> list[str]:
    """Names of the lstm_ed models with a production alias in the MLflow store (empty before ``make demo``)."""
    from mlflow import MlflowClient

    from training import registry

    registry.configure()
    return sorted(m.name for m in MlflowClient().search_registered_models()
                  if m.name.startswith("lstm_ed-") and "production" in (m.aliases or {}))


def _running_job(flink: str) -> dict | None:
    jobs = _get(f"{flink}/jobs/overview")["jobs"]
    return next((j for j in jobs if j["state"] == "RUNNING"), None)


def _submit_stream_job(flink: str) -> dict:
    """Start the LSTM-ED streaming job on the cluster with the deploy CLI (``flink run -d``)."""
    log = services.run_dir() / "screens-stream-job.log"
    with open(log, "ab") as f:
        done = subprocess.run([sys.executable, "-m", "flink_jobs.deploy", "--jobmanager", flink.removeprefix("http://"),
                               "submit", "--family", "lstm_ed"], cwd=REPO_ROOT, stdout=f, stderr=subprocess.STDOUT)
    job = _running_job(flink)
    if done.returncode or job is None:
        raise RuntimeError(f"the streaming job did not start; see {log}")
    return job


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default=str(REPO_ROOT / "docs" / "img"), help="folder for the PNGs")
    p.add_argument("--no-demo", action="store_true", help="never run make demo, even with no production model")
    p.add_argument("--keep-job", action="store_true", help="leave the streaming job this script submitted running")
    a = p.parse_args(argv)
    binary = _find_chromium()
    if binary is None:
        print("Chromium not found. Install it: sudo apt-get install -y chromium   (Debian/Ubuntu)", file=sys.stderr)
        return 2
    try:
        import websockets  # noqa: F401
    except ImportError:
        print("The websockets package is missing: .venv/bin/pip install -e '.[screens]'", file=sys.stderr)
        return 2
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    models = _production_models()
    if not models and not a.no_demo:
        subprocess.run([sys.executable, "-m", "dags.demo"], cwd=REPO_ROOT, check=True)
        models = _production_models()
    if not models:
        print("No lstm_ed model in production: run `make demo` first.", file=sys.stderr)
        return 2
    if services.up():
        return 1
    ports = services._ports()
    airflow, mlflow, flink = (f"http://127.0.0.1:{ports[k]}" for k in ("airflow", "mlflow", "flink"))

    submitted = None  # cancel at the end only a job this script started
    job = _running_job(flink)
    if job is None:
        job = submitted = _submit_stream_job(flink)
    browser = Browser(binary)
    try:
        token = _get(f"{airflow}/auth/token", body={"username": "admin", "password": services.airflow_password()})
        browser.set_cookie(airflow, "_token", token["access_token"])
        browser.shoot(f"{airflow}/dags/train_lstm_ed", ["train_lstm_ed", "find_machines", "promote"],
                      out / "airflow_grid.png")

        # The runs behind the versions of one model: what a reviewer compares before moving `production`.
        versions = _get(f"{mlflow}/api/2.0/mlflow/model-versions/search?"
                        + urllib.parse.urlencode({"filter": f"name='{models[0]}'", "max_results": 6}))["model_versions"]
        ids = [v["run_id"] for v in sorted(versions, key=lambda v: int(v["version"]))]
        exp = _get(f"{mlflow}/api/2.0/mlflow/runs/get?run_id={ids[0]}")["run"]["info"]["experiment_id"]
        query = urllib.parse.urlencode({"runs": json.dumps(ids), "experiments": json.dumps([exp])})
        # "Show diff only" on (parameters, metrics, tags), then down to the run details and what differs.
        diff_view = ("(() => { document.querySelectorAll('[role=switch]').forEach(s => s.click());"
                     " const w = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT); let hit = null;"
                     " while (w.nextNode()) if (w.currentNode.nodeValue.trim() === 'Run details')"
                     " hit = w.currentNode.parentElement; hit?.scrollIntoView({block: 'start'}); })()")
        browser.shoot(f"{mlflow}/#/compare-runs?{query}", ["Comparing", "Run details", "Metrics"],
                      out / "mlflow_compare.png", settle_s=3, then_js=f"{CLOSE_MLFLOW_ASSISTANT}; {diff_view}")

        browser.shoot(f"{mlflow}/#/models/{models[0]}", [models[0], "production", "challenger"],
                      out / "mlflow_registry.png", then_js=CLOSE_MLFLOW_ASSISTANT)

        browser.shoot(f"{flink}/#/job/running/{job['jid']}/overview", [job["name"], "RUNNING", "score"],
                      out / "flink_job_graph.png", settle_s=4)
    finally:
        browser.close()
        if submitted is not None and not a.keep_job:
            _get(f"{flink}/jobs/{job['jid']}?mode=cancel", method="PATCH")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
