"""Is training the bottleneck? Best validation loss per SMD machine of several cached training runs.

Reads ``<cache>/<machine>.train.npz`` metadata (bench/smd_cache.py) of each run folder and prints one row per
machine: best validation loss, epochs, stop reason and seconds per run, plus the ratio of each run's best
loss to the first run's. Writes bench/results/smd_gpu_train.md and .json.

    python -m bench.smd_gpu_train --runs var/smd_cache/b5 var/smd_cache/gpu_b5 var/smd_cache/gpu_b64
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"


def read_runs(folder: Path) -> dict:
    """{machine: {batch size: run summary + device + train settings}} of one cache folder."""
    out = {}
    for path in sorted(folder.glob("*.train.npz")):
        meta = json.loads(str(np.load(path)["meta"]))
        out[meta["machine"]] = {
            b: {"best_val_loss": r["best_val_loss"], "epochs": r["epochs"], "stop": r.get("stop"),
                "seconds": r["seconds"], "device": r.get("device_name", meta.get("device_name")),
                "train_settings": meta["train_settings"]} for b, r in meta["runs"].items()}
    return out


def main(argv=None) -> None:
    from bench.smd_cache import list_any

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", nargs="+", default=["var/smd_cache/b5", "var/smd_cache/gpu_b5", "var/smd_cache/gpu_b64"],
                   help="cache folders, one training run each (the first is the reference)")
    p.add_argument("--data", default=".smdpack", help="pack/SMD folder: machine order")
    p.add_argument("--out", default=str(RESULTS / "smd_gpu_train"))
    a = p.parse_args(argv)
    runs = {r: read_runs(Path(r)) for r in a.runs}
    machines = [m for m in list_any(a.data) if all(m in v for v in runs.values())]
    cols = [(r, b) for r in a.runs for b in sorted({b for v in runs[r].values() for b in v}, key=int)]
    ref = cols[0]
    lines = ["# SMD: best validation loss of the LSTM-ED per training run", "",
             "Validation loss = mean over validation windows of the summed squared error (scaled units), the "
             "early-stopping criterion. Runs:", ""]
    for r, b in cols:
        any_run = next(v[b] for v in runs[r].values() if b in v)
        ts = any_run["train_settings"]
        lines.append(f"- `{r}` batch {b}: {any_run['device']}; <= {ts['max_epochs']} epochs, patience "
                     f"{ts['patience']}, training/validation window stride {ts['train_step']}, hidden {ts['hidden']}")
    head = "| machine | " + " | ".join(f"{Path(r).name} b{b} loss (epochs, stop)" for r, b in cols) + " | " + \
        " | ".join(f"{Path(r).name} b{b} / ref" for r, b in cols[1:]) + " |"
    lines += ["", head, "|" + "---|" * (head.count("|") - 1)]
    ratios = {c: [] for c in cols[1:]}
    for m in machines:
        cells = []
        for r, b in cols:
            x = runs[r][m][b]
            cells.append(f"{x['best_val_loss']:.1f} ({x['epochs']}, {x['stop']})")
        base = runs[ref[0]][m][ref[1]]["best_val_loss"]
        rat = []
        for c in cols[1:]:
            v = runs[c[0]][m][c[1]]["best_val_loss"] / base
            ratios[c].append(v)
            rat.append(f"{v:.3f}")
        lines.append(f"| {m} | " + " | ".join(cells) + " | " + " | ".join(rat) + " |")
    lines.append("| **median ratio** | " + " | ".join("" for _ in cols) + " | "
                 + " | ".join(f"{np.median(ratios[c]):.3f}" for c in cols[1:]) + " |")
    md = "\n".join(lines) + "\n"
    out = Path(a.out)
    out.with_suffix(".md").write_text(md)
    out.with_suffix(".json").write_text(json.dumps(
        {"runs": {r: runs[r] for r in a.runs}, "machines": machines, "reference": list(ref),
         "median_ratio": {f"{r}:b{b}": float(np.median(ratios[(r, b)])) for r, b in cols[1:]},
         "cpu_count": os.cpu_count()}, indent=1))
    print(md)


if __name__ == "__main__":
    main()
