"""Per-point score designs x label-free calibrations of the LSTM-ED on SMD, with leave-one-machine-out figures.

Every design is built through the detector's own code path (training.lstm_ed.pipeline.build_detector from the
cached weights and errors of bench/smd_cache.py, then LSTMEDDetector.score_errors); every calibration re-fits
tau/delta on the design's validation a_t only. Choosing a design by its mean test F1 over the machines is
tuning on test labels, so the headline is leave-one-machine-out (LOMO): for each machine, the (design,
calibration) with the best mean F1 on the OTHER machines (per mode) is scored on it. The all-machine best is
shown too, named as such. ``input_only`` (reconstruction errors switched off) is an ablation, not a candidate.
Writes bench/results/smd_score_designs.md/.json.

    python -m bench.smd_score_designs --data .smdpack --cache-dir var/smd_cache/b5
"""

from __future__ import annotations

import argparse
import json
import os
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"
MODES = ("unsupervised", "labeled", "oracle")
LEGACY = dict(score="mahalanobis", adapt_windows=32, adapt_guard=0.5)
CHZ = dict(score="channel_z", adapt_windows=0, error_weight=1.0)
DESIGNS = {  # name -> TrainConfig overrides (every setting explicit: the defaults move between sessions)
    "mahalanobis+guarded (session 2)": LEGACY,
    "chz err, level32": CHZ | dict(input_deviation=False, level_windows=32, score_transform="none"),
    "chz err, level32, log1p": CHZ | dict(input_deviation=False, level_windows=32, score_transform="log1p"),
    "chz err+input, level32": CHZ | dict(input_deviation=True, level_windows=32, score_transform="none"),
    "chz err+input, level32, log1p": CHZ | dict(input_deviation=True, level_windows=32, score_transform="log1p"),
    "chz err+input, no level": CHZ | dict(input_deviation=True, level_windows=0, score_transform="none"),
    # session 5: the error features weighted down beside the input deviations (error_weight)
    "chz err*0.5+input, level32, log1p": CHZ | dict(input_deviation=True, level_windows=32, score_transform="log1p",
                                                    error_weight=0.5),
    "chz err*0.25+input, level32, log1p": CHZ | dict(input_deviation=True, level_windows=32, score_transform="log1p",
                                                     error_weight=0.25),
    "chz err*0.1+input, level32, log1p": CHZ | dict(input_deviation=True, level_windows=32, score_transform="log1p",
                                                    error_weight=0.1),
}
ABLATION = {  # reconstruction errors switched off: what the input deviation alone does
    "input_only (no LSTM error), level32": CHZ | dict(input_deviation=True, level_windows=32, score_transform="none"),
    "input_only (no LSTM error), level32, log1p": CHZ | dict(input_deviation=True, level_windows=32,
                                                           score_transform="log1p"),
}
BASELINE = "baseline: "  # rows of the simple baselines: same level removal, each calibration, LOMO over these
CALIBRATIONS = {  # name -> TrainConfig overrides; '+ stream': tau per window (scoring.stream_threshold, channel_z)
    "pot risk1% far1%": dict(calibration="pot", risk=1e-2, far=1e-2, stream_memory=0),
    "pot risk1% far5%": dict(calibration="pot", risk=1e-2, far=5e-2, stream_memory=0),
    "pot_max far5%": dict(calibration="pot_max", far=0.05, stream_memory=0),
    "pot_max far10%": dict(calibration="pot_max", far=0.1, stream_memory=0),
    "pot_max far20%": dict(calibration="pot_max", far=0.2, stream_memory=0),
    "pot_max far5% + stream": dict(calibration="pot_max", far=0.05, stream_memory=1024),
    "pot_max far10% + stream": dict(calibration="pot_max", far=0.1, stream_memory=1024),
    "pot_max far20% + stream": dict(calibration="pot_max", far=0.2, stream_memory=1024),
}


def machine_grid(folder, machine: str, cache: Path, mode: str = "teacher") -> dict:
    """{(design, calibration): evaluate_modes result} for one machine."""
    from bench.smd_cache import load_any
    from bench.smd_table2 import _baselines, _cached_lstm, calibrated_windows
    from serving.core.windows import sliding_windows, window_starts
    from training.lstm_ed import calibrate
    from training.lstm_ed.evaluate import evaluate_modes
    from training.lstm_ed.pipeline import TrainConfig, stream_seed

    m = load_any(folder, machine)
    starts = window_starts(len(m.test), 100, 90)
    out = {}
    for dname, over in {**DESIGNS, **ABLATION}.items():
        cfg = replace(TrainConfig(), mode=mode, **over)
        det, info, test_err = _cached_lstm(folder, m, cfg, cache)
        if dname in ABLATION:  # errors off: the error features are 0 - the inputs alone decide
            det.err_center, det.err_scale = np.zeros_like(det.err_center), np.full_like(det.err_scale, np.inf)
            val_err = np.load(cache / f"{machine}.errors.npz")[f"{det.mode}/val"]
            from serving.core.scoring import RobustScaler
            from training.lstm_ed.pipeline import channel_z_fit

            scaler = RobustScaler(det.center, det.scale, det.clip)
            cut = int(round((1 - cfg.val_frac) * len(m.train)))
            val_scores, fields = channel_z_fit(np.zeros_like(val_err), scaler, m.train[cut:],
                                               replace(cfg, train_step=info["val_step"]))
            fields.update(err_center=det.err_center, err_scale=det.err_scale)
            for k, v in fields.items():
                setattr(det, k, v)
            info["val_scores"] = val_scores
            test_err = np.zeros_like(test_err)
        inputs = det.inputs(sliding_windows(m.test, det.length, det.step))
        for cname, cover in CALIBRATIONS.items():
            if cover["stream_memory"] and cfg.score != "channel_z":
                continue  # the stream threshold is a channel_z detector's
            tau, delta, _ = calibrate.label_free(info["val_scores"], replace(cfg, **cover))
            seed = stream_seed(info["val_scores"], delta, replace(cfg, train_step=info["val_step"], **cover))
            d2 = replace(det, tau=tau, delta=delta, stream_memory=cover["stream_memory"], stream_far=cover["far"],
                         stream_init=seed[-cover["stream_memory"]:].tolist() if cover["stream_memory"] else None)
            d2._model = getattr(det, "_model", None)
            res = d2.score_errors(test_err, inputs=inputs)
            ev = evaluate_modes(res["scores"], starts, det.length, m.test_labels, (tau, delta), unsup_taus=res["tau"])
            out[(dname, cname)] = {k: ev[k]["f1"] for k in MODES} | {"roc_auc": ev["auc"]["roc_auc"]}
    base_cfg = replace(TrainConfig(), **DESIGNS["chz err+input, level32, log1p"])  # the level removal of table 2
    for bname, (val_pts, test_pts, _) in _baselines(m, base_cfg, cache).items():
        for cname, cover in CALIBRATIONS.items():
            tst, bstarts, unsup, taus = calibrated_windows(val_pts, test_pts, replace(base_cfg, **cover), info["val_step"])
            ev = evaluate_modes(tst, bstarts, base_cfg.length, m.test_labels, unsup, unsup_taus=taus)
            out[(BASELINE + bname, cname)] = {k: ev[k]["f1"] for k in MODES} | {"roc_auc": ev["auc"]["roc_auc"]}
    return out


def lomo(f1: np.ndarray) -> tuple[list[float], list[int]]:
    """f1 (machines, configs): per machine, the config best on the other machines, and its F1 there."""
    picks = [int(np.argmax(np.delete(f1, i, axis=0).mean(axis=0))) for i in range(len(f1))]
    return [float(f1[i, j]) for i, j in enumerate(picks)], picks


def main(argv=None) -> None:
    from tqdm import tqdm

    from bench.smd_cache import list_any

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=".smdpack", help="SMD text or pack folder")
    p.add_argument("--cache-dir", required=True, help="bench/smd_cache.py cache (train + errors npz)")
    p.add_argument("--machines", nargs="*")
    p.add_argument("--mode", default="teacher", choices=["teacher", "free", "auto"],
                   help="decoder inference mode (the probe picks teacher on all 11 shared machines; fixed = faster)")
    p.add_argument("--out", default=str(RESULTS / "smd_score_designs"))
    a = p.parse_args(argv)
    cache = Path(a.cache_dir)
    machines = a.machines or [m for m in list_any(a.data) if (cache / f"{m}.train.npz").exists()]
    t0, load0 = time.perf_counter(), os.getloadavg()
    grid = {m: machine_grid(a.data, m, cache, a.mode) for m in tqdm(machines, desc="machines")}
    keys = list(grid[machines[0]])
    keys = [k for k in keys if all(k in grid[m] for m in machines)]
    cands = [i for i, k in enumerate(keys) if k[0] in DESIGNS]
    lines = ["# SMD: LSTM-ED per-point score designs x label-free calibrations", "",
             f"Cache `{a.cache_dir}`, {len(machines)} machines, inference mode {a.mode}, {time.perf_counter() - t0:.0f} s, loadavg "
             f"{load0[0]:.1f} -> {os.getloadavg()[0]:.1f}, cpu_count {os.cpu_count()}. Mean window F1 over all "
             "machines per (design, calibration) - choosing by these means is tuning on test labels; see the "
             "leave-one-machine-out (LOMO) rows below for the honest figure.", "",
             "| design | calibration | unsupervised | labeled | oracle | ROC-AUC |", "|---|---|---|---|---|---|"]
    for k in keys:
        mean = {c: float(np.mean([grid[m][k][c] for m in machines])) for c in (*MODES, "roc_auc")}
        lines.append(f"| {k[0]} | {k[1]} | " + " | ".join(f"{mean[c]:.3f}" for c in (*MODES, "roc_auc")) + " |")
    summary = {}
    lines += ["", "Leave-one-machine-out over the candidate designs (ablation row excluded), per mode:", "",
              "| mode | LOMO mean F1 | all-machine best (in hindsight) | configs picked by the folds |",
              "|---|---|---|---|"]
    for mode in MODES:
        f1 = np.array([[grid[m][keys[i]][mode] for i in cands] for m in machines])
        vals, picks = lomo(f1)
        picked = sorted({f"{keys[cands[j]][0]} / {keys[cands[j]][1]}" for j in picks})
        best = int(np.argmax(f1.mean(axis=0)))
        summary[mode] = {"lomo_mean": float(np.mean(vals)), "lomo_per_machine": dict(zip(machines, vals)),
                         "picked": {mch: list(keys[cands[j]]) for mch, j in zip(machines, picks)},
                         "all_machine_best": float(f1.mean(axis=0)[best]), "all_machine_best_config": list(keys[cands[best]])}
        lines.append(f"| {mode} | {np.mean(vals):.3f} | {f1.mean(axis=0)[best]:.3f} ({' / '.join(keys[cands[best]])}) | "
                     + "; ".join(picked) + " |")
    base_names, base_lomo = sorted({k[0] for k in keys if k[0].startswith(BASELINE)}), {}
    if base_names:
        lines += ["", "The baselines under the same protocol (their per-point score, the same level removal, LOMO over "
                  "the same calibrations), per mode:", "", "| baseline | " + " | ".join(MODES) + " |", "|---|---|---|---|"]
    for bname in base_names:
        idx = [i for i, k in enumerate(keys) if k[0] == bname]
        row = {}
        for mode in MODES:
            vals, _ = lomo(np.array([[grid[m][keys[i]][mode] for i in idx] for m in machines]))
            row[mode] = float(np.mean(vals))
        base_lomo[bname[len(BASELINE):]] = row
        lines.append(f"| {bname[len(BASELINE):]} | " + " | ".join(f"{row[md]:.3f}" for md in MODES) + " |")
    md = "\n".join(lines) + "\n"
    out = Path(a.out)
    out.with_suffix(".md").write_text(md)
    out.with_suffix(".json").write_text(json.dumps({
        "machines": machines, "designs": DESIGNS, "ablation": ABLATION, "calibrations": CALIBRATIONS,
        "f1": {m: {" | ".join(k): v for k, v in g.items()} for m, g in grid.items()}, "lomo": summary, "baseline_lomo": base_lomo,
        "cpu_count": os.cpu_count(), "loadavg_start": load0, "loadavg_end": os.getloadavg(),
        "seconds": time.perf_counter() - t0}, indent=1))
    print(md)


if __name__ == "__main__":
    main()
