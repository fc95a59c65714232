"""Train one LSTM-ED per SMD machine, calibrate label-free, log to MLflow, register, promote on validation.

Runs when the cleaned-data Asset is updated, or by hand. Training data: the cleaned train half
(``training.data.cleaned.read_series("smd", machine)``) when present, else ``train/`` of the SMD-layout
folder ``smd_dir``; the test half and labels (for the logged test metrics only) come from ``smd_dir``.

Params: ``machines`` (empty = every cleaned SMD series, else every machine in ``smd_dir``), ``max_epochs``,
``hidden``, ``batch_size``, ``smd_dir`` (empty = settings' SMD folder).
Mapped training tasks run in the pool ``lstm_ed_training``; create it sized to the cores once:
``airflow pools set lstm_ed_training 2 "LSTM-ED training, one slot per core"``. Without the pool the tasks
still run (Airflow then uses default_pool) and ``max_active_tis_per_dag`` caps them at the core count.
Promotion: ``production`` moves to the new version when its validation probe AUC is no worse (never test
labels); users can also set the alias by hand in the MLflow UI (Models -> lstm_ed-<machine> -> Aliases).
"""

from __future__ import annotations

import os
from datetime import timedelta

from airflow.sdk import Param, dag, get_current_context, task

from dags.assets import CLEANED_DATA, LSTM_ED_MODELS
from dags.mapped import mapped_results

POOL = "lstm_ed_training"
CORES = max(1, os.cpu_count() or 1)


@dag(
    dag_id="train_lstm_ed",
    schedule=[CLEANED_DATA],
    catchup=False,
    tags=["streamguard", "lstm_ed", "training"],
    params={
        "machines": Param([], type="array", description="machine ids; empty = all cleaned (or all in smd_dir)"),
        "max_epochs": Param(3, type="integer", minimum=1, description="max epochs (early stopping, patience 5)"),
        "hidden": Param(64, type="integer", minimum=1, description="LSTM hidden units (paper: 200)"),
        "batch_size": Param(5, type="integer", minimum=1, description="training batch size (paper: 5)"),
        "smd_dir": Param("", type="string", description="SMD-layout folder; empty = SG_DATA_DIR/smd"),
    },
    doc_md=__doc__,
)
def train_lstm_ed():
    @task
    def find_machines() -> list[str]:
        from training.lstm_ed.dag_tasks import machines_to_train

        return machines_to_train(get_current_context()["params"])

    @task(retries=2, retry_delay=timedelta(seconds=15), pool=POOL, max_active_tis_per_dag=CORES)
    def train(machine: str) -> dict:
        from training.lstm_ed.dag_tasks import train_one

        return train_one(machine, get_current_context()["params"])

    @task(outlets=[LSTM_ED_MODELS])
    def promote(results) -> list[dict]:
        from training.lstm_ed.dag_tasks import promote_all

        return promote_all(mapped_results(results))

    promote(train.expand(machine=find_machines()))


train_lstm_ed()
