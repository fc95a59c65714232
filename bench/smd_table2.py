"""SMD Table 2 of Ha et al. beside this project's LSTM-ED and three baselines, in three calibration modes.

Per machine: the paper's P/R/F1 (tuned on test labels), ours in `unsupervised` (no labels), `labeled`
(tuned on the first 30% of the test half, scored on the rest) and `oracle` (tuned on the scored labels,
as the paper did), point-adjusted F1, training seconds; the same for z-score max, PCA and IsolationForest
with the same windows, window-label rule (positive when any point is labeled) and calibration.
Writes bench/results/smd_table2.md and .json (rewritten after every machine).

    python -m bench.smd_table2 --machines machine-1-2 machine-3-4 --max-epochs 15
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

# Table 2 of Ha et al. (precision, recall, F1), all 28 SMD machines
PAPER = {
    "1-1": (0.2985, 0.9742, 0.4570), "1-2": (0.8269, 0.5548, 0.6641), "1-3": (0.1389, 0.6414, 0.2284),
    "1-4": (0.1551, 0.4974, 0.2365), "1-5": (0.4545, 0.6329, 0.5291), "1-6": (0.3209, 0.9684, 0.4820),
    "1-7": (0.7799, 0.7588, 0.7692), "1-8": (0.2864, 0.4758, 0.3575), "2-1": (0.6018, 0.5407, 0.5696),
    "2-2": (0.4511, 0.5550, 0.4977), "2-3": (0.7789, 0.5873, 0.6697), "2-4": (0.2539, 0.6230, 0.3608),
    "2-5": (0.6602, 0.4518, 0.5365), "2-6": (0.1608, 0.8364, 0.2698), "2-7": (0.6889, 0.2616, 0.3792),
    "2-8": (0.0107, 0.5769, 0.2021), "2-9": (0.2790, 0.8986, 0.4258), "3-1": (0.0283, 0.9437, 0.0549),
    "3-2": (0.1291, 0.7598, 0.2206), "3-3": (0.4504, 0.3814, 0.4130), "3-4": (0.0833, 0.9943, 0.1536),
    "3-5": (0.0936, 0.9603, 0.1706), "3-6": (0.7815, 0.8087, 0.7949), "3-7": (0.0826, 0.7128, 0.1481),
    "3-8": (0.2756, 0.7143, 0.3977), "3-9": (0.0832, 0.8551, 0.1517), "3-10": (0.2434, 0.4681, 0.3202),
    "3-11": (0.0504, 0.9773, 0.0959),
}
MODES = ("unsupervised", "labeled", "oracle")
RESULTS = Path(__file__).resolve().parent / "results"


def baseline_point_scores(cls, train, test, cut):
    """Per-point scores of validation rows (train[cut:]) and test rows; fitted on train[:cut]."""
    t0 = time.perf_counter()
    b = cls().fit(train[:cut])
    fit_s = time.perf_counter() - t0
    return b.score(train[cut:]), b.score(test), fit_s


def calibrated_windows(val_pts, test_pts, cfg, val_step):
    """Windows of per-point scores with the detector's recent-behaviour normalisation and label-free tau/delta,
    and the per-window thresholds of the label-free rule (the detector's stream threshold, or tau)."""
    from serving.core import scoring
    from serving.core.windows import sliding_windows, window_starts
    from training.lstm_ed import calibrate

    val = sliding_windows(np.asarray(val_pts)[:, None], cfg.length, val_step)[..., 0].astype(np.float64)
    tst = sliding_windows(np.asarray(test_pts)[:, None], cfg.length, cfg.step)[..., 0].astype(np.float64)
    if cfg.score == "channel_z" and cfg.level_windows > 0:  # the LSTM's level removal, on the one feature
        ratio = max(1, cfg.step // val_step)
        init = scoring.window_levels(val[::ratio, :, None][-cfg.level_windows:]).tolist()
        val = scoring.remove_levels(val[..., None], None, cfg.level_windows * ratio)[0][..., 0]
        tst = scoring.remove_levels(tst[..., None], init, cfg.level_windows)[0][..., 0]
    ref = float(np.median(np.median(val, axis=1)))
    if cfg.adapt_windows > 0:
        val, _ = scoring.adapt_recent(val, ref, None, cfg.adapt_windows * max(1, cfg.step // val_step))
    tau, delta, _ = calibrate.label_free(val, cfg)
    if cfg.adapt_windows > 0 and cfg.adapt_guard > 0:  # as the detector does
        tst, _ = scoring.adapt_guarded(tst, ref, None, cfg.adapt_windows, tau, delta, cfg.adapt_guard)
    elif cfg.adapt_windows > 0:
        tst, _ = scoring.adapt_recent(tst, ref, None, cfg.adapt_windows)
    taus = np.full(len(tst), tau)
    if cfg.score == "channel_z" and cfg.stream_memory > 0:  # the detector's per-window stream threshold
        from dataclasses import replace

        from training.lstm_ed.pipeline import stream_seed

        seed = stream_seed(val, delta, replace(cfg, train_step=val_step))[-cfg.stream_memory:]
        taus, _ = scoring.stream_threshold(scoring.window_stat(tst, delta), seed.tolist(), cfg.far, cfg.stream_memory, tau)
    return tst, window_starts(len(test_pts), cfg.length, cfg.step), (tau, delta), taus


def _baselines(m, cfg, cache: Path | None) -> dict:
    """{name: (val point scores, test point scores, fit seconds)}, from ``<cache>/<machine>.baselines.npz``
    when there (baselines do not depend on the LSTM settings)."""
    from serving.core.baselines import BASELINES

    path = cache / f"{m.machine}.baselines.npz" if cache else None
    if path and path.exists():
        z = np.load(path)
        return {n: (z[f"{n}/val"], z[f"{n}/test"], float(z[f"{n}/seconds"])) for n in BASELINES}
    cut = int(round((1 - cfg.val_frac) * len(m.train)))
    out = {n: baseline_point_scores(cls, m.train, m.test, cut) for n, cls in BASELINES.items()}
    if path:
        np.savez(path, **{f"{n}/{k}": v for n, r in out.items() for k, v in zip(("val", "test", "seconds"), r)})
    return out


def _cached_lstm(folder, m, cfg, cache: Path):
    """Detector and test errors from the train/errors cache (bench/smd_cache.py); errors made when missing."""
    from dataclasses import replace

    from bench import smd_cache
    from training.lstm_ed.pipeline import build_detector

    if not (cache / f"{m.machine}.errors.npz").exists():
        smd_cache.errors_one(str(folder), m.machine, str(cache))
    z = np.load(cache / f"{m.machine}.errors.npz")
    einfo = json.loads(str(z["info"]))
    model, scaler, meta = smd_cache.load_trained(cache, m.machine, einfo["batch_size"])
    ts = meta["train_settings"]
    cfg = replace(cfg, train_step=einfo["val_step"], hidden=meta["config"]["hidden"], length=ts["length"],
                  val_frac=ts["val_frac"], clip=ts["clip"], seed=ts["seed"])
    from serving.core.lstm_ed import MODES

    det, info = build_detector(model, scaler, m.train, cfg, val_errors={md: z[f"{md}/val"] for md in MODES})
    run = meta["runs"][str(einfo["batch_size"])]
    info.update(train_seconds=run["seconds"], epochs=run["epochs"], best_val_loss=run["best_val_loss"],
                batch_size=einfo["batch_size"], device_name=run.get("device_name", meta.get("device_name")),
                batch_runs={b: {k: v for k, v in r.items() if k != "history"} for b, r in meta["runs"].items()},
                train_settings=ts, val_step=einfo["val_step"])
    return det, info, z[f"{det.mode}/test"]


def run_machine(folder, machine, cfg, cache: Path | None = None) -> dict:
    from bench.smd_cache import load_any
    from serving.core.windows import sliding_windows, window_starts
    from training.lstm_ed.evaluate import evaluate_modes
    from training.lstm_ed.pipeline import fit_detector

    m = load_any(folder, machine)
    if cache is not None and (cache / f"{machine}.train.npz").exists():
        det, info, test_err = _cached_lstm(folder, m, cfg, cache)
        out = det.score_errors(test_err, inputs=det.inputs(sliding_windows(m.test, det.length, det.step)))
        out["starts"] = window_starts(len(m.test), det.length, det.step)
    else:
        det, info = fit_detector(m.train, cfg, progress=True)
        out = det.score_series(m.test)
    res = {"lstm_ed": evaluate_modes(out["scores"], out["starts"], det.length, m.test_labels,
                                     (det.tau, det.delta), top_channels=out["top_channels"], segments=m.segments,
                                     unsup_taus=out["tau"])}
    res["lstm_ed"]["train_seconds"] = info["train_seconds"]
    res["lstm_ed"]["info"] = {k: v for k, v in info.items() if k not in ("history", "val_scores")}
    val_step = info.get("val_step", cfg.train_step)
    for name, (val_pts, test_pts, fit_s) in _baselines(m, cfg, cache).items():
        tst, starts, unsup, taus = calibrated_windows(val_pts, test_pts, cfg, val_step)
        res[name] = evaluate_modes(tst, starts, cfg.length, m.test_labels, unsup, unsup_taus=taus)
        res[name]["train_seconds"] = fit_s
    return res


def _f(x) -> str:
    return "-" if x is None or (isinstance(x, float) and np.isnan(x)) else f"{x:.3f}"


def render(results: dict, settings: dict) -> str:
    methods = ["lstm_ed", "zscore_max", "pca", "isolation_forest"]
    lines = ["# SMD Table 2: paper vs this project", "",
             f"Settings: {json.dumps({k: v for k, v in settings.items() if k != 'training'})}", ""]
    tr = settings.get("training")
    if tr:
        ts = tr["train_settings"] or {}
        epochs = {k: r["lstm_ed"]["info"].get("epochs") for k, r in results.items()}
        lines += [f"Training (cached, `{settings.get('cache_dir')}`): on {', '.join(tr['devices'])}; "
                  f"hidden {ts.get('hidden')}, <= {ts.get('max_epochs')} epochs, patience {ts.get('patience')}, "
                  f"training windows stride {ts.get('train_step')}; batch size used per machine "
                  f"{json.dumps(tr['batch_sizes_chosen'])}; epochs run {json.dumps(epochs)}. "
                  "Calibration and scoring ran on this machine's CPU from the cached weights and errors; the "
                  f"LSTMs were not trained again: training took {sum(r['lstm_ed']['train_seconds'] for r in results.values()):.0f} s "
                  "summed over machines (column `LSTM train s`)"
                  + (f", {settings['train_wall_seconds'] / 60:.0f} min wall clock" if settings.get("train_wall_seconds") else "")
                  + ".", ""]
    lines += [
             "Window F1 (window positive when any point is labeled). `unsupervised`: no labels; "
             "`labeled`: tau tuned on the first 30% of the test half (delta kept from the label-free rule), scored "
             "on the remaining 70%; `*`: that slice holds fewer than 2 labeled events, so the label-free thresholds "
             "are kept (the label-free rule scored on the same 70%); "
             "`oracle`: tuned on the scored test labels (the paper's protocol). PA-F1 = point-adjusted F1 "
             "(inflated by construction), unsupervised mode.", ""]
    head = "| machine | paper P | paper R | paper F1 | " + " | ".join(
        f"{m} {mode[:5]}" for m in methods for mode in MODES) + " | LSTM PA-F1 | LSTM top3 hit | LSTM train s |"
    lines += [head, "|" + "---|" * (head.count("|") - 1)]
    rows = {}
    for machine, r in results.items():
        paper = PAPER.get(machine.replace("machine-", ""), (np.nan,) * 3)
        vals = [r[m][mode]["f1"] for m in methods for mode in MODES]
        marks = ["*" if mode == "labeled" and r[m][mode].get("fallback") else "" for m in methods for mode in MODES]
        rows[machine] = (paper, vals, r["lstm_ed"]["unsupervised"]["point_adjusted_f1"],
                         r["lstm_ed"]["unsupervised"].get("top3_hit_rate"), r["lstm_ed"]["train_seconds"])
        lines.append(f"| {machine} | " + " | ".join(_f(x) for x in paper) + " | "
                     + " | ".join(_f(v) + k for v, k in zip(vals, marks)) + f" | {_f(rows[machine][2])} | {_f(rows[machine][3])} | "
                     f"{rows[machine][4]:.0f} |")
    if rows:
        mean = lambda xs: float(np.nanmean(np.array(xs, dtype=float)))  # noqa: E731
        paper_m = [mean([v[0][i] for v in rows.values()]) for i in range(3)]
        vals_m = [mean([v[1][i] for v in rows.values()]) for i in range(len(methods) * len(MODES))]
        lines.append("| **mean** | " + " | ".join(_f(x) for x in paper_m) + " | " + " | ".join(_f(v) for v in vals_m)
                     + f" | {_f(mean([v[2] for v in rows.values()]))} | {_f(mean([v[3] for v in rows.values()]))} | "
                     f"{sum(v[4] for v in rows.values()):.0f} |")
        lines += ["", "Machines where LSTM-ED beats the paper's F1:", ""]
        for i, mode in enumerate(MODES):
            n = sum(v[1][i] > v[0][2] for v in rows.values())
            lines.append(f"- {mode}: {n} of {len(rows)}")
        fell = {k: r["lstm_ed"]["labeled"].get("calibration_events") for k, r in results.items()
                if r["lstm_ed"]["labeled"].get("fallback")}
        if fell:
            lines += ["", "Labeled mode kept the label-free thresholds (fewer than 2 labeled events in the calibration "
                      "slice; the same rule for the baselines): " + ", ".join(f"{k} ({v} event{'' if v == 1 else 's'})" for k, v in fell.items())
                      + "."]
    lines += _side_results(list(rows))
    return "\n".join(lines) + "\n"


def _side_results(machines: list[str]) -> list[str]:
    """Leave-one-machine-out figures (bench/smd_score_designs.py) and the training comparison
    (bench/smd_gpu_train.py), from their JSON when present."""
    out = []
    designs = RESULTS / "smd_score_designs.json"
    if designs.exists():
        d = json.loads(designs.read_text())
        out += ["", "## Leave-one-machine-out (the honest figure for a design chosen on these labels)", "",
                "The score design and calibration above were chosen by comparing test F1 over these machines "
                "(bench/smd_score_designs.py). LOMO: each machine scored with the (design, calibration) that is "
                "best on the other machines' labels, per mode:", "",
                "| mode | LOMO mean F1 | " + " | ".join(m.replace("machine-", "") for m in d["machines"]) + " |",
                "|---|---|" + "---|" * len(d["machines"])]
        for mode, v in d["lomo"].items():
            out.append(f"| {mode} | **{v['lomo_mean']:.3f}** | "
                       + " | ".join(f"{v['lomo_per_machine'][m]:.3f}" for m in d["machines"]) + " |")
        if d.get("baseline_lomo"):
            out += ["", "The baselines under the same protocol (same level removal; each machine calibrated with the "
                    "calibration best on the other machines, from the same candidates), mean window F1:", "",
                    "| baseline | " + " | ".join(f"LOMO {md}" for md in MODES) + " |", "|---|---|---|---|"]
            out += [f"| {name} | " + " | ".join(f"{row[md]:.3f}" for md in MODES) + " |"
                    for name, row in d["baseline_lomo"].items()]
        lab = d["lomo"].get("labeled")
        if lab:
            beat = sum(lab["lomo_per_machine"][m] > PAPER[m.replace("machine-", "")][2] for m in d["machines"])
            out += ["", f"LOMO labeled F1 above the paper's row on {beat} of {len(d['machines'])} machines."]
    gpu = RESULTS / "smd_gpu_train.json"
    if gpu.exists():
        g = json.loads(gpu.read_text())
        out += ["", "Training is not the limit: best validation loss of H200 runs relative to the cached CPU run "
                "(median over machines): " + ", ".join(f"{k} {v:.3f}" for k, v in g["median_ratio"].items())
                + " (bench/results/smd_gpu_train.md)."]
    return out


def _rel(path) -> str:
    try:
        return str(Path(path).resolve().relative_to(Path(__file__).resolve().parents[1]))
    except ValueError:
        return str(path)


def _training_summary(results: dict) -> dict:
    """Where and how the cached LSTMs were trained (from the cache's metadata)."""
    infos = [r["lstm_ed"]["info"] for r in results.values()]
    return {"devices": sorted({str(i.get("device_name")) for i in infos}),
            "batch_sizes_chosen": {k: r["lstm_ed"]["info"].get("batch_size") for k, r in results.items()},
            "train_settings": infos[0].get("train_settings") if infos else None,
            "batch_runs": {k: r["lstm_ed"]["info"].get("batch_runs") for k, r in results.items()}}


def main(argv=None) -> None:
    from tqdm import tqdm

    from serving.settings import get_settings
    from training.lstm_ed.pipeline import TrainConfig

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=None, help="SMD-layout folder (default: <SG_DATA_DIR>/smd)")
    p.add_argument("--machines", nargs="*", help="machine ids (default: every machine in the folder)")
    p.add_argument("--max-epochs", type=int, default=15, help="max epochs (early stopping, patience 5)")
    p.add_argument("--hidden", type=int, default=200, help="LSTM hidden units (paper: 200)")
    p.add_argument("--batch-size", type=int, default=5, help="batch size (paper: 5; measured no slower than 32 on CPU, lower val loss)")
    p.add_argument("--train-step", type=int, default=20, help="stride of training/validation windows")
    p.add_argument("--mode", default="auto", choices=["auto", "free", "teacher"], help="decoder inference mode")
    p.add_argument("--score", default="channel_z", choices=["channel_z", "mahalanobis"], help="per-point a_t")
    p.add_argument("--no-input-deviation", action="store_true", help="channel_z: reconstruction errors only")
    p.add_argument("--error-weight", type=float, default=TrainConfig.error_weight,
                   help="channel_z: weight of the reconstruction-error features beside the input deviations")
    p.add_argument("--level-windows", type=int, default=32, help="channel_z: per-feature level removal (0: off)")
    p.add_argument("--top-k", type=int, default=3, help="channel_z: a_t = mean of the k largest features")
    p.add_argument("--transform", default="log1p", choices=["none", "log1p"], help="channel_z: feature transform")
    p.add_argument("--adapt-windows", type=int, default=0,
                   help="global recent-behaviour normalisation of a_t (0: off; session 2: 32 with mahalanobis)")
    p.add_argument("--adapt-guard", type=float, default=0.5,
                   help="adapt to unflagged windows unless more than this share was flagged (0: to all windows)")
    p.add_argument("--threads", type=int, default=1,
                   help="torch threads (default 1: on a shared 2-core machine more threads oversubscribe and run slower)")
    p.add_argument("--device", default="cpu", help="torch device for training without a cache (auto: cuda if any)")
    p.add_argument("--cache-dir", default=None, help="folder of bench/smd_cache.py results (<machine>.train.npz, "
                   ".errors.npz): the LSTM is not trained again, only calibrated and scored (seconds per machine)")
    p.add_argument("--calibration", default="pot_max", choices=["pot_max", "pot", "quantile"],
                   help="label-free tau/delta method")
    p.add_argument("--risk", type=float, default=1e-2, help="pot: point risk P(a_t > tau) on normal data")
    p.add_argument("--far", type=float, default=0.1,
                   help="target window false-alarm rate (pot: of delta; pot_max: of tau with delta 0)")
    p.add_argument("--stream-memory", type=int, default=1024,
                   help="channel_z: tau per window from the last k windows seen (validation's, then the stream's; "
                        "0: the fixed validation tau); applied to the baselines too")
    p.add_argument("--q", type=float, default=0.99, help="quantile calibration: tau quantile")
    p.add_argument("--cov", default="shrinkage", choices=["shrinkage", "pinv"], help="covariance of errors")
    p.add_argument("--train-wall-s", type=float, default=None,
                   help="with --cache-dir: wall-clock seconds the cached training took (from its log), for the record")
    p.add_argument("--out", default=str(RESULTS / "smd_table2"), help="output path without extension")
    a = p.parse_args(argv)
    s = get_settings()
    folder = Path(a.data) if a.data else s.smd_dir
    from bench.smd_cache import list_any

    machines = a.machines or list_any(folder)
    cfg = TrainConfig(hidden=a.hidden, max_epochs=a.max_epochs, batch_size=a.batch_size, train_step=a.train_step,
                      mode=a.mode, adapt_windows=a.adapt_windows, adapt_guard=a.adapt_guard, threads=a.threads, device=a.device,
                      calibration=a.calibration, risk=a.risk, far=a.far, q=a.q, cov=a.cov, score=a.score,
                      input_deviation=not a.no_input_deviation, error_weight=a.error_weight, level_windows=a.level_windows, top_k_channels=a.top_k,
                      score_transform=a.transform, stream_memory=a.stream_memory)
    cache = Path(a.cache_dir) if a.cache_dir else None
    settings = {**cfg.to_params(), "data": _rel(folder), "cache_dir": _rel(cache) if cache else None,
                "cpu_count": os.cpu_count(), "loadavg_start": os.getloadavg(), "train_wall_seconds": a.train_wall_s}
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    results, t0 = {}, time.perf_counter()
    for machine in tqdm(machines, desc="machines"):
        results[machine] = run_machine(folder, machine, cfg, cache)
        settings["wall_seconds"] = time.perf_counter() - t0
        settings["loadavg_end"] = os.getloadavg()
        if cache is not None:
            settings["training"] = _training_summary(results)
        md = render(results, settings)
        out.with_suffix(".md").write_text(md)
        payload = {"settings": settings, "paper": {k: PAPER.get(k.replace("machine-", "")) for k in results},
                   "results": results}
        out.with_suffix(".json").write_text(json.dumps(payload, indent=1, default=float))
    print(render(results, settings))


if __name__ == "__main__":
    main()
