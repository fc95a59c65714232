"""Task bodies of dags/train_lstm_ed.py (kept here so the DAG file only wires tasks)."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def _smd_dir(params: dict) -> Path:
    from serving.settings import get_settings

    return Path(params.get("smd_dir") or get_settings().smd_dir)


def machines_to_train(params: dict) -> list[str]:
    from training.data import cleaned
    from training.data.smd import list_machines

    if params.get("machines"):
        return [str(m) for m in params["machines"]]
    found = cleaned.list_series("smd")
    return found or list_machines(_smd_dir(params))


def load_training_data(machine: str, params: dict):
    """(train matrix, source, SMDMachine with the test half or None)."""
    from training.data import cleaned
    from training.data.smd import load_machine

    folder = _smd_dir(params)
    smd = load_machine(folder, machine) if (folder / "train" / f"{machine}.txt").exists() else None
    try:
        df = cleaned.read_series("smd", machine)
        cols = [c for c in df.columns if c.startswith("c") and c[1:].isdigit()]
        cols.sort(key=lambda c: int(c[1:]))
        return df[cols].to_numpy(dtype=np.float32), "cleaned", smd
    except FileNotFoundError:
        if smd is None:
            raise FileNotFoundError(f"{machine}: neither cleaned data nor {folder}/train/{machine}.txt") from None
        return smd.train, f"smd:{folder}", smd


def train_one(machine: str, params: dict) -> dict:
    from training.lstm_ed.pipeline import TrainConfig, train_machine

    train, source, smd = load_training_data(machine, params)
    cfg = TrainConfig(hidden=int(params["hidden"]), max_epochs=int(params["max_epochs"]),
                      batch_size=int(params["batch_size"]), train_step=20)
    r = train_machine(machine, train, smd.test if smd else None, smd.test_labels if smd else None,
                      smd.segments if smd else None, config=cfg)
    keep = ("val_probe_auc", "val_mse", "tau", "delta", "train_seconds", "test_unsupervised_window_f1",
            "test_labeled_window_f1", "test_oracle_window_f1")
    return {"machine": machine, "source": source, "run_id": r["run_id"], "model_name": r["model_name"],
            "model_version": r["model_version"], "mode": r["mode"],
            "metrics": {k: r["metrics"][k] for k in keep if k in r["metrics"]}}


def promote_all(results: list[dict]) -> list[dict]:
    from training.lstm_ed.pipeline import promote_machine
    from training.promotion import promote_each

    return promote_each(results, "machine", promote_machine, lambda r: f"| {r['metrics']}")
