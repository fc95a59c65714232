"""Train-once cache for the SMD bench, so calibration variants re-run in seconds on a CPU.

Three stages, each usable alone:

* ``pack``: the SMD text folder -> one compressed npz per machine (values as exact integer micro-units,
  labels, interpretation lines), small enough to carry to another machine.
* ``train``: per machine and batch size, fit the LSTM-ED (``--device``: cuda when available) and save the
  weights, scaler and loss history to ``<cache>/<machine>.train.npz``; machines run as parallel processes.
* ``errors``: per machine, reconstruction errors |z - z'| of validation (dense windows), fit-part and test
  windows in both inference modes -> ``<cache>/<machine>.errors.npz`` (bench/smd_table2.py reads them).

Imports no MLflow/Airflow/Flink (it must run on a bare GPU machine with torch + numpy).

    python -m bench.smd_cache pack --data ../shared/data/smd --out .smdpack
    python -m bench.smd_cache train --data .smdpack --cache var/smd_cache --device cuda --jobs 11 \\
        --batch-sizes 5 64 --max-epochs 60
    python -m bench.smd_cache errors --data .smdpack --cache var/smd_cache
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import numpy as np

MICRO = 1_000_000  # SMD values are written with 6 decimals: exact as integers
TRAIN_KEYS = ("hidden", "max_epochs", "lr", "patience", "length", "train_step", "val_frac", "seed", "clip")


# ---------------------------------------------------------------- data
def pack(src: str | Path, dst: str | Path, machines: list[str] | None = None) -> list[Path]:
    from training.data.smd import list_machines, load_machine

    dst = Path(dst)
    dst.mkdir(parents=True, exist_ok=True)
    out = []
    for machine in machines or list_machines(src):
        m = load_machine(src, machine)
        interp = Path(src) / "interpretation_label" / f"{machine}.txt"
        path = dst / f"{machine}.npz"
        np.savez_compressed(
            path, train=np.rint(m.train.astype(np.float64) * MICRO).astype(np.int32),
            test=np.rint(m.test.astype(np.float64) * MICRO).astype(np.int32), labels=m.test_labels,
            interpretation=np.array(interp.read_text() if interp.exists() else ""))
        out.append(path)
    return out


def list_any(folder: str | Path) -> list[str]:
    packed = sorted(p.name[: -len(".npz")] for p in Path(folder).glob("machine-*.npz"))
    if packed:
        from training.data.smd import _natural_key

        return sorted(packed, key=_natural_key)
    from training.data.smd import list_machines

    return list_machines(folder)


def load_any(folder: str | Path, machine: str):
    """SMDMachine from a pack folder (``<machine>.npz``) or an SMD text folder."""
    from training.data.smd import Segment, SMDMachine, load_machine

    path = Path(folder) / f"{machine}.npz"
    if not path.exists():
        return load_machine(folder, machine)
    z = np.load(path)
    segments = []
    for line in str(z["interpretation"]).splitlines():
        if line.strip():
            span, _, chans = line.partition(":")
            s, _, e = span.partition("-")
            segments.append(Segment(int(s), int(e), [int(c) - 1 for c in chans.split(",") if c.strip()]))
    return SMDMachine(machine, (z["train"] / MICRO).astype(np.float32), (z["test"] / MICRO).astype(np.float32),
                      z["labels"].astype(np.int8), segments)


# ---------------------------------------------------------------- training
def train_key(cfg) -> str:
    d = {k: getattr(cfg, k) for k in TRAIN_KEYS}
    return hashlib.sha1(json.dumps(d, sort_keys=True).encode()).hexdigest()[:10]


def split_and_scale(train: np.ndarray, cfg):
    """The pipeline's chronological split and robust scaling: (scaler, scaled train rows, cut)."""
    from serving.core.scoring import RobustScaler

    cut = int(round((1 - cfg.val_frac) * len(train)))
    scaler = RobustScaler.fit(train[:cut], clip=cfg.clip)
    return scaler, scaler.transform(train), cut


def train_one(data: str, machine: str, cfg, batch_sizes: list[int], cache: str, device: str = "auto",
              deadline_s: float | None = None) -> dict:
    from serving.core.lstm_ed import LSTMEDConfig
    from serving.core.windows import sliding_windows
    from training.lstm_ed.train import resolve_device, train_model

    m = load_any(data, machine)
    scaler, z, cut = split_and_scale(m.train, cfg)
    z_fit = sliding_windows(z[:cut], cfg.length, cfg.train_step)
    z_val = sliding_windows(z[cut:], cfg.length, cfg.train_step)
    config = LSTMEDConfig(n_channels=m.train.shape[1], hidden=cfg.hidden)
    arrays, runs = {"center": scaler.center, "scale": scaler.scale}, {}
    for bs in batch_sizes:
        t0 = time.perf_counter()
        model, hist = train_model(z_fit, z_val, config, max_epochs=cfg.max_epochs, batch_size=bs, lr=cfg.lr,
                                  patience=cfg.patience, seed=cfg.seed, threads=cfg.threads, device=device,
                                  deadline_s=deadline_s)
        runs[bs] = {"history": hist, "seconds": time.perf_counter() - t0, "epochs": len(hist),
                    "best_val_loss": min(h["val_loss"] for h in hist), "stop": hist[-1].get("stop", "max_epochs")}
        for k, v in model.state_dict().items():
            arrays[f"w{bs}/{k}"] = v.numpy()
    chosen = min(runs, key=lambda b: runs[b]["best_val_loss"])  # validation loss only
    meta = {"machine": machine, "key": train_key(cfg), "config": config.to_dict(),
            "train_settings": {k: getattr(cfg, k) for k in TRAIN_KEYS}, "runs": {str(b): r for b, r in runs.items()},
            "chosen_batch_size": chosen, "device": str(resolve_device(device)), "device_name": _device_name(device)}
    Path(cache).mkdir(parents=True, exist_ok=True)
    np.savez(Path(cache) / f"{machine}.train.npz", meta=np.array(json.dumps(meta)), **arrays)
    return meta


def _device_name(device) -> str:
    import platform

    import torch

    from training.lstm_ed.train import resolve_device

    dev = resolve_device(device)
    return torch.cuda.get_device_name(dev) if dev.type == "cuda" else f"cpu ({platform.processor() or 'x86'})"


def load_trained(cache: str | Path, machine: str, batch_size: int | None = None):
    """(model on cpu, scaler, meta) from ``<machine>.train.npz``; batch size: the chosen one by default."""
    import torch

    from serving.core.lstm_ed import LSTMED, LSTMEDConfig
    from serving.core.scoring import RobustScaler

    z = np.load(Path(cache) / f"{machine}.train.npz")
    meta = json.loads(str(z["meta"]))
    bs = batch_size or meta["chosen_batch_size"]
    model = LSTMED(LSTMEDConfig(**meta["config"]))
    prefix = f"w{bs}/"
    model.load_state_dict({k[len(prefix):]: torch.from_numpy(z[k]) for k in z.files if k.startswith(prefix)})
    model.eval()
    clip = meta["train_settings"]["clip"]
    return model, RobustScaler(z["center"], z["scale"], clip), meta


# ---------------------------------------------------------------- errors
def errors_one(data: str, machine: str, cache: str, val_step: int = 10, step: int = 90, batch_size=None) -> Path:
    """Reconstruction errors in both modes: val (dense, ``val_step``), fit part and test (``step``)."""
    import torch

    from serving.core.lstm_ed import MODES, reconstruct
    from serving.core.windows import sliding_windows

    torch.set_num_threads(1)
    model, scaler, meta = load_trained(cache, machine, batch_size)
    m = load_any(data, machine)
    length, cut = meta["train_settings"]["length"], int(round((1 - meta["train_settings"]["val_frac"]) * len(m.train)))
    parts = {"val": sliding_windows(scaler.transform(m.train[cut:]), length, val_step),
             "fit": sliding_windows(scaler.transform(m.train[:cut]), length, step),
             "test": sliding_windows(scaler.transform(m.test), length, step)}
    arrays = {}
    for mode in MODES:
        for part, z in parts.items():
            arrays[f"{mode}/{part}"] = np.abs(z - reconstruct(model, z, mode)).astype(np.float32)
    info = {"val_step": val_step, "step": step, "cut": cut, "batch_size": batch_size or meta["chosen_batch_size"],
            "train_key": meta["key"]}
    path = Path(cache) / f"{machine}.errors.npz"
    np.savez(path, info=np.array(json.dumps(info)), **arrays)
    return path


def merge(caches: list[str], out: str) -> list[str]:
    """Join ``<machine>.train.npz`` files of several caches (e.g. one per batch size, trained on different
    devices) into ``out``; the chosen batch size is again the lowest best validation loss."""
    names = sorted({p.name for c in caches for p in Path(c).glob("*.train.npz")})
    Path(out).mkdir(parents=True, exist_ok=True)
    for name in names:
        arrays, meta = {}, None
        for c in caches:
            if not (Path(c) / name).exists():
                continue
            z = np.load(Path(c) / name)
            m = json.loads(str(z["meta"]))
            for r in m["runs"].values():
                r["device_name"] = m["device_name"]
            if meta is None:
                meta = m
            else:
                meta["runs"].update(m["runs"])
            arrays.update({k: z[k] for k in z.files if k != "meta"})
        meta["chosen_batch_size"] = int(min(meta["runs"], key=lambda b: meta["runs"][b]["best_val_loss"]))
        meta["device_name"] = meta["runs"][str(meta["chosen_batch_size"])]["device_name"]
        np.savez(Path(out) / name, meta=np.array(json.dumps(meta)), **arrays)
    return names


def _pool(fn, jobs: int, tasks: list[tuple], desc: str):
    from tqdm import tqdm

    results = {}
    with ProcessPoolExecutor(max_workers=jobs) as ex:
        futs = {ex.submit(fn, *t): t[1] for t in tasks}
        for f in tqdm(as_completed(futs), total=len(futs), desc=desc):
            results[futs[f]] = f.result()
    return results


def main(argv=None) -> None:
    from training.lstm_ed.pipeline import TrainConfig

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("stage", choices=["pack", "train", "errors", "merge"])
    p.add_argument("--data", default=".smdpack", help="SMD text folder or pack folder (pack: the SMD text folder)")
    p.add_argument("--out", default=".smdpack", help="pack: output folder")
    p.add_argument("--cache", default="var/smd_cache", help="train/errors: cache folder")
    p.add_argument("--merge-from", nargs="+", help="merge: cache folders to join into --cache")
    p.add_argument("--machines", nargs="*", help="machine ids (default: all in --data)")
    p.add_argument("--jobs", type=int, default=1, help="parallel processes (one machine each)")
    p.add_argument("--device", default="auto", help="torch device for training: auto (cuda if available), cpu, cuda")
    p.add_argument("--batch-sizes", type=int, nargs="+", default=[5], help="train one model per batch size; the "
                   "lowest best validation loss is the chosen one")
    p.add_argument("--max-epochs", type=int, default=60)
    p.add_argument("--patience", type=int, default=5)
    p.add_argument("--hidden", type=int, default=200)
    p.add_argument("--train-step", type=int, default=10, help="stride of training/validation windows")
    p.add_argument("--deadline", type=float, default=None, help="seconds of training per batch size, then stop")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads per process")
    p.add_argument("--val-step", type=int, default=10, help="errors: stride of the validation windows")
    a = p.parse_args(argv)
    if a.stage == "merge":
        print(merge(a.merge_from, a.cache))
        return
    machines = a.machines or list_any(a.data)
    if a.stage == "pack":
        for path in pack(a.data, a.out, machines):
            print(path, path.stat().st_size)
        return
    cfg = TrainConfig(hidden=a.hidden, max_epochs=a.max_epochs, patience=a.patience, train_step=a.train_step,
                      threads=a.threads)
    if a.stage == "train":
        res = _pool(train_one, a.jobs, [(a.data, m, cfg, a.batch_sizes, a.cache, a.device, a.deadline)
                                        for m in machines], "train")
        for m in machines:
            r = res[m]
            print(m, r["device_name"], "chosen bs", r["chosen_batch_size"], json.dumps(
                {b: {k: round(v, 3) if isinstance(v, float) else v for k, v in x.items() if k != "history"}
                 for b, x in r["runs"].items()}))
    else:
        _pool(errors_one, a.jobs, [(a.data, m, a.cache, a.val_step) for m in machines], "errors")


if __name__ == "__main__":
    main()
