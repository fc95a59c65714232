"""Sensitivity of the label-free calibration to its two global settings, from the SMD cache, and an honest
estimate of choosing them on labeled machines.

For every machine of the cache (bench/smd_cache.py) the detector is built once (bench/smd_table2.py's path);
then tau/delta are re-fitted on its validation scores for each (risk, far) of the grid and the test half is
scored: mean unsupervised window F1 per grid point. ``loco`` = leave-one-machine-out: for each machine, the
grid point with the best mean F1 on the OTHER machines is applied to it (what picking the global settings on
labeled machines would give on an unseen one). Writes bench/results/smd_calibration_grid.md/.json.

    python -m bench.smd_calibration_grid --data .smdpack --cache-dir var/smd_cache/b5
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"


def machine_scores(folder, machine, cfg, cache: Path):
    """(validation scores at the dense stride, test scores, test starts, labels) of the cached detector."""
    from bench.smd_cache import load_any
    from bench.smd_table2 import _cached_lstm
    from serving.core import scoring
    from serving.core.windows import window_starts

    m = load_any(folder, machine)
    det, info, test_err = _cached_lstm(folder, m, cfg, cache)
    z = np.load(cache / f"{machine}.errors.npz")
    val = scoring.mahalanobis(z[f"{det.mode}/val"], det.mu, det.precision)
    if det.adapt_windows > 0:
        k = det.adapt_windows * max(1, det.step // info["val_step"])
        val, _ = scoring.adapt_recent(val, det.adapt_ref, None, k)
    raw = scoring.mahalanobis(test_err, det.mu, det.precision)  # adapted per grid point: the guard uses tau
    return det, val, raw, window_starts(len(m.test), det.length, det.step), m.test_labels


def adapted_test(det, raw, tau, delta):
    """The detector's recent-behaviour normalisation of raw test a_t with the given thresholds."""
    from serving.core import scoring

    if det.adapt_windows > 0 and det.adapt_guard > 0:
        return scoring.adapt_guarded(raw, det.adapt_ref, None, det.adapt_windows, tau, delta, det.adapt_guard)[0]
    if det.adapt_windows > 0:
        return scoring.adapt_recent(raw, det.adapt_ref, None, det.adapt_windows)[0]
    return raw


def main(argv=None) -> None:
    from tqdm import tqdm

    from bench.smd_cache import list_any
    from serving.core.metrics import evaluate_windows
    from training.lstm_ed import calibrate
    from training.lstm_ed.pipeline import TrainConfig

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=".smdpack", help="SMD text or pack folder")
    p.add_argument("--cache-dir", required=True, help="bench/smd_cache.py cache")
    p.add_argument("--machines", nargs="*")
    p.add_argument("--risks", type=float, nargs="+", default=[1e-3, 3e-3, 1e-2, 3e-2])
    p.add_argument("--fars", type=float, nargs="+", default=[0.005, 0.01, 0.02, 0.05])
    p.add_argument("--adapt-windows", type=int, default=32, help="global adaptation (session 2: 32; 0: off)")
    p.add_argument("--adapt-guard", type=float, default=0.5, help="as TrainConfig (0: plain adaptation)")
    p.add_argument("--out", default=str(RESULTS / "smd_calibration_grid"))
    a = p.parse_args(argv)
    cache = Path(a.cache_dir)
    machines = a.machines or [m for m in list_any(a.data) if (cache / f"{m}.train.npz").exists()]
    # session 2's score and count-model calibration (bench/smd_score_designs.py covers the others)
    cfg = TrainConfig(score="mahalanobis", calibration="pot", far=0.01, adapt_windows=a.adapt_windows,
                      adapt_guard=a.adapt_guard)
    t0, load0 = time.perf_counter(), os.getloadavg()
    grid = [(r, f) for r in a.risks for f in a.fars]
    f1 = np.zeros((len(machines), len(grid)))
    for i, machine in enumerate(tqdm(machines, desc="machines")):
        det, val, raw, starts, labels = machine_scores(a.data, machine, cfg, cache)
        for j, (risk, far) in enumerate(grid):
            tau, delta, _ = calibrate.unsupervised_pot(val, risk, far, cfg.pot_init_q)
            tst = adapted_test(det, raw, tau, delta)
            f1[i, j] = evaluate_windows(tst, starts, cfg.length, labels, tau, delta)["f1"]
    mean = f1.mean(axis=0)
    loco = []
    for i in range(len(machines)):
        others = np.delete(f1, i, axis=0).mean(axis=0)
        loco.append(float(f1[i, int(np.argmax(others))]))
    lines = ["# Label-free calibration: sensitivity to (risk, far), leave-one-machine-out", "",
             "Session 2's score (Mahalanobis, guarded adaptation) and count-model calibration; the session-3 "
             "default (channel_z, pot_max) is compared in smd_score_designs.md.", "",
             f"Cache `{a.cache_dir}`, {len(machines)} machines, adapt_windows={a.adapt_windows}, "
             f"adapt_guard={a.adapt_guard}, "
             f"{time.perf_counter() - t0:.0f} s, loadavg {load0[0]:.1f} -> {os.getloadavg()[0]:.1f}.", "",
             "Mean unsupervised window F1 (rows: point risk of tau; columns: window false-alarm target of delta):",
             "", "| risk \\ far | " + " | ".join(f"{f:g}" for f in a.fars) + " |",
             "|---|" + "---|" * len(a.fars)]
    for r in a.risks:
        lines.append(f"| {r:g} | " + " | ".join(f"{mean[grid.index((r, f))]:.3f}" for f in a.fars) + " |")
    default = grid.index((cfg.risk, cfg.far)) if (cfg.risk, cfg.far) in grid else None
    lines += ["", f"Leave-one-machine-out (settings picked on the other machines' labels): mean F1 "
              f"{np.mean(loco):.3f}; best grid point in hindsight {mean.max():.3f} at {grid[int(np.argmax(mean))]}"
              + (f"; session 2's setting (risk={cfg.risk:g}, far={cfg.far:g}): {mean[default]:.3f}" if default is not None
                 else "")]
    md = "\n".join(lines) + "\n"
    Path(a.out).with_suffix(".md").write_text(md)
    Path(a.out).with_suffix(".json").write_text(json.dumps({
        "machines": machines, "grid": grid, "f1": f1.tolist(), "mean": mean.tolist(), "loco": loco,
        "adapt_windows": a.adapt_windows, "adapt_guard": a.adapt_guard, "cpu_count": os.cpu_count(), "loadavg_start": load0,
        "loadavg_end": os.getloadavg(), "seconds": time.perf_counter() - t0}, indent=1))
    print(md)


if __name__ == "__main__":
    main()
