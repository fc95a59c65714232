"""The main job, end to end on embedded defaults: ``make demo`` runs ``python -m dags.demo``.

Steps, through the project's real DAGs (Airflow ``dag.test()`` on a SQLite metadata DB), real MLflow
(SQLite + ``mlruns/``) and real Flink (the embedded mini-cluster):
1. produce raw input: SMD machines and Logan River sensor files from the shared data folder when
   present, else the project's synthetic sets, written as messy raw line files;
2. clean them on Flink (``clean_data``) and print the cleaning report;
3. train, calibrate, register and promote the LSTM-ED models (``train_lstm_ed``);
4. refit, register and promote the hydro models (``refit_hydro``);
5. start the streaming job, replay part of the test data, print the alert summary.
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
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    _airflow_env()
    from tqdm import tqdm

    started = time.perf_counter()
    synthetic = use_synthetic_data_if_missing(args.seed)
    machines = demo_machines(args.full)
    s = get_settings()
    steps = ["raw input", "airflow db", "clean (Flink)", "train LSTM-ED", "refit hydro", "stream (Flink)"]
    if args.skip_stream:
        steps.pop()
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
    print(f"\nCleaned data: {s.cleaned_dir}\nMLflow store: {s.mlflow_tracking_uri} (artifacts in {s.artifact_root})")
    print("Open the UIs: `.venv/bin/mlflow ui --backend-store-uri " + s.mlflow_tracking_uri
          + "` and `AIRFLOW_HOME=" + str(s.airflow_home) + " .venv/bin/airflow standalone` (see README).")
    print(f"Done in {time.perf_counter() - started:.0f} s.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
