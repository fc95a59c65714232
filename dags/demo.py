"""The main job, end to end on embedded defaults: ``make demo`` runs ``python -m dags.demo``.

Steps, through the project's real DAGs (Airflow ``dag.test()`` on a SQLite metadata DB), real MLflow
(SQLite + ``mlruns/``) and real Flink (the embedded mini-cluster):
1. produce raw input: SMD machines and Logan River sensor files from the shared data folder when
   present, else the project's synthetic sets, written as messy raw line files;
2. clean them on Flink (``clean_data``) and print the cleaning report;
3. train, calibrate, register and promote the LSTM-ED models (``train_lstm_ed``);
4. refit, register and promote the hydro models (``refit_hydro``);
5. start the streaming job, replay part of the test data, print the alert summary;
6. redeploy: run the LSTM job on the wheel's standalone Flink cluster, retrain one machine
   (``train_lstm_ed``), promote the new version, let ``redeploy_scoring`` stop the job with a savepoint
   and resubmit it, and print the model version of the windows scored before and after the switch.
It lives beside the DAGs (the top layer) because it drives all of them; ``.airflowignore`` keeps the
scheduler from parsing it.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

from serving.settings import REPO_ROOT, get_settings

DEMO_MACHINES = ["machine-1-2", "machine-2-1", "machine-3-4"]


def _airflow_env() -> None:
    """Point Airflow at this project before it is imported (defaults; the caller's env wins)."""
    s = get_settings()
    os.environ.setdefault("AIRFLOW_HOME", str(s.airflow_home))
    os.environ.setdefault("AIRFLOW__CORE__DAGS_FOLDER", str(REPO_ROOT / "dags"))
    os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
    os.environ.setdefault("MLFLOW_TRACKING_URI", s.mlflow_tracking_uri)


def ensure_airflow_db() -> None:
    """``airflow db migrate`` once per AIRFLOW_HOME (idempotent; a few seconds)."""
    home = Path(os.environ["AIRFLOW_HOME"])
    home.mkdir(parents=True, exist_ok=True)
    marker = home / ".migrated"
    if marker.exists():
        return
    airflow = Path(sys.executable).with_name("airflow")
    result = subprocess.run([str(airflow), "db", "migrate"], capture_output=True, text=True)
    if result.returncode:
        raise RuntimeError(f"`airflow db migrate` failed:\n{result.stderr[-2000:]}")
    marker.touch()


def run_dag(dag_id: str, conf: dict):
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(REPO_ROOT / "dags"))
    if bag.import_errors:
        raise RuntimeError(f"DAG import errors: {bag.import_errors}")
    run = bag.get_dag(dag_id).test(run_conf=conf)
    if run.state != "success":
        raise RuntimeError(f"DAG {dag_id} ended {run.state}; see the task logs above")
    return run


def use_synthetic_data_if_missing(seed: int = 0) -> bool:
    """Without the shared data folder, generate the synthetic sets and point SG_DATA_DIR at them."""
    s = get_settings()
    if s.smd_dir.is_dir() and s.hydro_dir.is_dir():
        return False
    from training.data.synthetic_hydro import generate, write_logan_csv
    from training.data.synthetic_metrics import make_machine, write_smd_layout

    root = s.work_dir / "synthetic"
    write_smd_layout(root / "smd", [make_machine(seed + i, name=f"synthetic-{i}") for i in range(3)])
    for i, site in enumerate(["SynthA", "SynthB"]):
        write_logan_csv(generate(seed=seed + i), root / "hydro" / "LRO_data" / f"{site}2021.csv")
    os.environ["SG_DATA_DIR"] = str(root)
    return True


def demo_machines(full: bool) -> list[str]:
    from training.data.smd import list_machines

    available = list_machines(get_settings().smd_dir)
    return available if full else [m for m in DEMO_MACHINES if m in available] or available[:3]


def produce_raw(machines: list[str], seed: int = 0) -> dict[str, dict]:
    """Write messy raw input for the smd and hydro sources; returns the writer's ground-truth counts."""
    from training.data import raw_sources

    s = get_settings()
    return {
        "smd": raw_sources.smd_raw(s.smd_dir, s.raw_dir / "smd", machines, seed=seed).counts,
        "hydro": raw_sources.hydro_raw(s.hydro_dir, s.raw_dir / "hydro", seed=seed).counts,
    }


def production_table(prefix: str, metrics: list[str]) -> str:
    """Markdown table of the production version of every registered model whose name starts with prefix."""
    from mlflow import MlflowClient

    from training import registry

    registry.configure()
    client = MlflowClient()
    rows = [f"| model | production | {' | '.join(metrics)} |", "|---|---:|" + "---:|" * len(metrics)]
    for m in sorted(client.search_registered_models(), key=lambda m: m.name):
        if not m.name.startswith(prefix):
            continue
        v = registry.version_by_alias(m.name)
        if v is None:
            rows.append(f"| {m.name} | none |" + " |" * len(metrics))
            continue
        got = client.get_run(v.run_id).data.metrics
        cells = " | ".join("" if got.get(k) is None else f"{got[k]:.3f}" for k in metrics)
        rows.append(f"| {m.name} | v{v.version} | {cells} |")
    return "\n".join(rows)


def _wait_windows(scores_dir: Path, n: int, timeout_s: float = 180) -> list[dict]:
    from flink_jobs.streaming.sinks import read_records

    deadline = time.monotonic() + timeout_s
    recs = []
    while time.monotonic() < deadline:
        recs = read_records(scores_dir)
        if len(recs) >= n:
            break
        time.sleep(0.5)
    return sorted(recs, key=lambda r: r["row_index"])


def start_demo_cluster():
    """The demo's own standalone cluster (free ports, files in <work dir>/run/flink-demo); returns at once."""
    import socket

    from flink_jobs import cluster

    def free_port() -> int:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            return sock.getsockname()[1]

    spec = cluster.ClusterSpec(run_dir=get_settings().work_dir / "run" / "flink-demo", rest_port=free_port(),
                               rpc_port=free_port(), slots=2, tm_memory="1536m", jm_memory="768m")
    cluster.start(spec, wait=False)
    return spec


def redeploy_demo(machine: str, hidden: int = 64, rows: int = 600, spec=None, echo=print) -> dict:
    """Live model switch: LSTM job on a standalone cluster, retrain + promote ``machine``, redeploy DAG.

    Returns versions before/after, job ids, the savepoint and the windows scored by each version.
    """
    from flink_jobs import cluster, deploy, replay
    from training import registry

    s = get_settings()
    root = s.work_dir / "redeploy_demo" / time.strftime("%Y%m%d-%H%M%S")
    name = registry.registry_name("lstm_ed", machine)
    os.environ["SG_STREAM_MODEL_REFRESH_S"] = "1e9"  # the switch below comes from the redeploy, not the hot refresh
    spec = spec or start_demo_cluster()
    echo(f"Flink standalone cluster at {spec.url}")
    cluster.wait_ready(spec)
    d = deploy.Deployer(spec.address, "lstm_ed", state_dir=root / "state", savepoint_dir=root / "savepoints",
                        echo=echo)
    out = root / "out"
    try:
        first = d.submit(["--landing-dir", str(root / "landing"), "--out-dir", str(out), "--parallelism", "1",
                          "--series", machine, "--every-window", "--checkpoint-interval-ms", "500",
                          "--discovery-interval-ms", "200"], verify_timeout_s=0)
        n_windows = len(range(0, rows - 100 + 1, 90))
        replay.write_landing(replay.smd_lines(s.smd_dir, machine, 0, rows), root / "landing",
                             rows_per_file=rows, prefix="before", progress=False)
        before = _wait_windows(out / "scores", n_windows)
        echo(f"job {first['job_id']}: {len(before)} windows scored by {name} v{first['versions'].get(name)}")
        run_dag("train_lstm_ed", {"machines": [machine], "max_epochs": 1, "hidden": hidden})
        registry.configure()
        newest = max(int(v.version) for v in _client().search_model_versions(f"name='{name}'"))
        prod = registry.version_by_alias(name)
        note = "promoted by validation"
        if prod is None or int(prod.version) != newest:
            reason = _client().get_model_version(name, str(newest)).tags.get("promotion", "")
            note = f"validation kept v{prod.version if prod else '-'} ({reason}); promoted by hand, as in the MLflow UI"
            with registry.sqlite_write_lock():
                _client().set_registered_model_alias(name, registry.PRODUCTION, str(newest))
        echo(f"{name}: production -> v{newest} ({note})")
        run_dag("redeploy_scoring", {"families": ["lstm_ed"], "jobmanager": spec.address,
                                     "state_dir": str(root / "state"), "verify_timeout_s": 0})
        st = d.state()
        replay.write_landing(replay.smd_lines(s.smd_dir, machine, rows, rows), root / "landing",
                             rows_per_file=rows, prefix="after", progress=False)
        scores = _wait_windows(out / "scores", len(range(0, 2 * rows - 100 + 1, 90)))
        by_version: dict[str, list[int]] = {}
        for r in scores:
            by_version.setdefault(r["model_version"], []).append(r["row_index"])
        result = {"model": name, "before": first["versions"].get(name), "after": st["versions"].get(name),
                  "jobs": [first["job_id"], st["job_id"]], "savepoint": st.get("last_savepoint"),
                  "windows_by_version": by_version, "promotion": note, "state_file": str(deploy.state_path(
                      "lstm_ed", root / "state"))}
        d.rest.cancel(st["job_id"])
    finally:
        cluster.stop(spec)
    echo(format_redeploy(result))
    return result


def _client():
    from mlflow import MlflowClient

    return MlflowClient()


def format_redeploy(r: dict) -> str:
    spans = ", ".join(f"v{v}: windows at rows {min(ix)}-{max(ix) + 99} ({len(ix)})"
                      for v, ix in sorted(r["windows_by_version"].items(), key=lambda kv: min(kv[1])))
    return (f"{r['model']}: production v{r['before']} -> v{r['after']} ({r['promotion']})\n"
            f"  job {r['jobs'][0]} stopped with savepoint {r['savepoint']}\n"
            f"  job {r['jobs'][1]} resumed from it; live output: {spans}\n"
            f"  deployment history: {r['state_file']}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Run the pipeline end to end on embedded defaults (Flink mini-cluster, SQLite Airflow and "
        "MLflow stores under the repository). Rerunning is safe: each step replaces its own output and new model "
        "versions are promoted only when they are at least as good on validation data."
    )
    parser.add_argument("--full", action="store_true",
                        help="all SMD machines, paper-sized model (hidden 200, up to 200 epochs): hours on 2 cores")
    parser.add_argument("--epochs", type=int, default=3, help="max LSTM-ED epochs in the default (small) run")
    parser.add_argument("--stream-rows", type=int, default=3000, help="test rows per machine to replay")
    parser.add_argument("--skip-stream", action="store_true", help="stop after training")
    parser.add_argument("--skip-redeploy", action="store_true",
                        help="skip the last step (standalone cluster, retrain + promote one machine, live redeploy)")
    parser.add_argument("--redeploy-only", action="store_true",
                        help="run only the redeploy step, on the models already in the registry")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    _airflow_env()
    if args.redeploy_only:
        use_synthetic_data_if_missing(args.seed)
        ensure_airflow_db()
        redeploy_demo(demo_machines(args.full)[0], hidden=200 if args.full else 64)
        return 0
    from tqdm import tqdm

    started = time.perf_counter()
    synthetic = use_synthetic_data_if_missing(args.seed)
    machines = demo_machines(args.full)
    s = get_settings()
    steps = ["raw input", "airflow db", "clean (Flink)", "train LSTM-ED", "refit hydro", "stream (Flink)", "redeploy"]
    if args.skip_stream:
        steps = steps[:-2]
    elif args.skip_redeploy:
        steps.pop()
    # the standalone cluster of the last step boots while the first steps run
    spec = start_demo_cluster() if "redeploy" in steps else None
    if spec is not None:
        import atexit

        from flink_jobs import cluster

        atexit.register(cluster.stop, spec)  # also when a step fails; a no-op once redeploy_demo stopped it
    with tqdm(total=len(steps), desc="demo", unit="step", position=0) as bar:
        bar.set_postfix_str(steps[0])
        truths = produce_raw(machines, args.seed)
        bar.update()
        bar.set_postfix_str(steps[1])
        ensure_airflow_db()
        bar.update()
        bar.set_postfix_str(steps[2])
        run_dag("clean_data", {"raw_dirs": [str(s.raw_dir / name) for name in truths]})
        bar.update()
        bar.set_postfix_str(steps[3])
        lstm_conf = {"machines": machines, "max_epochs": 200 if args.full else args.epochs,
                     "hidden": 200 if args.full else 64}
        run_dag("train_lstm_ed", lstm_conf)
        bar.update()
        bar.set_postfix_str(steps[4])
        from training.data.cleaned import list_series

        sensors = [x for x in list_series("hydro") if x.endswith("/stage")]
        run_dag("refit_hydro", {"sensors": sensors, "reselect_order": True})
        bar.update()
        stream = None
        if not args.skip_stream:
            bar.set_postfix_str(steps[5])
            from flink_jobs.streaming.demo import run_stream_demo

            stream = run_stream_demo(machines, rows=args.stream_rows, echo=lambda *_: None)
            bar.update()
        redeploy = None
        if "redeploy" in steps:
            bar.set_postfix_str(steps[-1])
            redeploy = redeploy_demo(machines[0], hidden=lstm_conf["hidden"], spec=spec, echo=lambda *_: None)
            bar.update()

    from flink_jobs.clean_job import format_report
    from training.data.cleaned import read_report

    print(f"\n# Demo summary ({'synthetic data' if synthetic else 'data from ' + str(s.data_dir)})")
    reports = [read_report(name) for name in truths]
    print("\n## Cleaning (Flink batch job, `clean_data` DAG)\n")
    print(format_report(reports))
    mismatches = {r["source"]: [k for k, v in truths[r["source"]].items() if r["counts"].get(k) != v]
                  for r in reports}
    print("\nCounts equal the messy writer's ground truth:",
          "yes" if not any(mismatches.values()) else f"NO: {mismatches}")
    print("\n## LSTM-ED models (`train_lstm_ed` DAG; test-half window F1 per calibration mode)\n")
    print(production_table("lstm_ed-", ["test_unsupervised_window_f1", "test_labeled_window_f1", "test_oracle_window_f1",
                                        "val_probe_auc"]))
    print("\n## Hydro models (`refit_hydro` DAG; validation forecast error)\n")
    print(production_table("hydro-", ["val_mae", "aic", "silhouette"]))
    if stream is not None:
        from flink_jobs.streaming.demo import format_summary

        print("\n## Streaming (Flink job on the embedded mini-cluster)\n")
        print(format_summary(stream))
    if redeploy is not None:
        print("\n## Redeploy (standalone Flink cluster, `redeploy_scoring` DAG)\n")
        print(format_redeploy(redeploy))
    print(f"\nCleaned data: {s.cleaned_dir}\nMLflow store: {s.mlflow_tracking_uri} (artifacts in {s.artifact_root})")
    print("Open the UIs: `make up` serves Airflow, MLflow and Flink on this store and prints their URLs and "
          "the Airflow login (README: Services).")
    print(f"Done in {time.perf_counter() - started:.0f} s.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
