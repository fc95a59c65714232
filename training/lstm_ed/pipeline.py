"""Per machine: fit the LSTM-ED, pick the inference mode, calibrate, evaluate, log to MLflow, register, promote.

``fit_detector`` is pure (no MLflow); ``train_machine`` adds the MLflow run and registry; the DAG, the demo
and the bench call these.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, replace

import numpy as np

from serving.core import scoring
from serving.core.detector import LSTMEDDetector
from serving.core.lstm_ed import MODES, LSTMEDConfig, reconstruct
from serving.core.metrics import auc_scores
from serving.core.windows import sliding_windows
from training.lstm_ed import calibrate
from training.lstm_ed.train import train_model

FAMILY = "lstm_ed"
EXPERIMENT = "lstm_ed"
PROMOTION_METRIC = "val_probe_auc"  # validation only: see probe_auc
UNSCORED_SD = 1e12  # error sd given to channels left out of the score: their share is 0


@dataclass
class TrainConfig:
    hidden: int = 200
    max_epochs: int = 50
    batch_size: int = 5  # paper; measured: same CPU time per epoch as 32 and lower validation loss
    lr: float = 1e-3
    patience: int = 5
    length: int = 100
    step: int = 90  # scoring windows: 10 points shared (paper)
    train_step: int = 10  # denser windows for training/validation statistics
    val_frac: float = 0.2
    seed: int = 0
    mode: str = "auto"  # 'free' (paper), 'teacher', or 'auto' = the higher validation probe AUC
    cov: str = "shrinkage"
    score_channels: str = "varying"  # 'varying': leave channels flat in training out of a_t; 'all': session 1
    score: str = "channel_z"  # per-point a_t: 'channel_z' (session 3) or 'mahalanobis' (paper, sessions 1-2)
    input_deviation: bool = True  # channel_z: add the inputs' |robust z| as features (label-free ensemble)
    error_weight: float = 0.25  # channel_z: reconstruction-error features x 0.25 beside the inputs' (session 5:
    # picked leave-one-machine-out over 1 / 0.5 / 0.25 / 0.1 in bench/smd_score_designs.py)
    level_windows: int = 32  # channel_z: each feature relative to its level over the previous 32 windows
    top_k_channels: int = 3  # channel_z: a_t = mean of the 3 largest per-channel features
    score_transform: str = "log1p"  # channel_z: log1p (compresses single huge deviations) or none
    calibration: str = "pot_max"  # label-free tau/delta: 'pot_max' (tail fit, delta 0), 'pot' (tail fit +
    # count model, session 2) or 'quantile' (session 1)
    risk: float = 1e-2  # pot: P(a_t > tau) on normal validation data, extrapolated by the tail fit
    pot_init_q: float = 0.98  # pot/pot_max: the tail is fitted above this quantile of validation a_t
    q: float = 0.99  # quantile: tau = this quantile of validation a_t
    far: float = 0.1  # window false-alarm rate on normal data (modelled for pot/pot_max, empirical for quantile;
    # pot_max: 10% of normal windows, session 2's pot: 1%)
    stream_memory: int = 1024  # channel_z: tau per window, the (1 - far) quantile of the largest a_t of the last
    # 1024 windows seen (validation's, then the stream's own; 0: the fixed validation tau). Session 4
    adapt_windows: int = 0  # a_t relative to the previous k windows' level (session 2: 32 with mahalanobis)
    adapt_guard: float = 0.5  # relative to unflagged windows unless over half were flagged (0: all windows)
    clip: float = 5.0
    threads: int | None = None
    device: str = "cpu"  # torch device for training ('auto': cuda when available)

    def to_params(self) -> dict:
        return {k: v for k, v in asdict(self).items() if v is not None}


def probe_auc(model, z_val: np.ndarray, mode: str, mu, prec, seed: int, moving: np.ndarray) -> float:
    """Label-free validation score: ROC-AUC separating clean validation windows from copies with a synthetic
    shift (1 robust range on 3 channels for 20 points). Uses no test data and no labels."""
    rng = np.random.default_rng(seed)
    bad = z_val.copy()
    for w in bad:
        chans = rng.choice(moving, size=min(3, len(moving)), replace=False)
        s = int(rng.integers(0, w.shape[0] - 20))
        w[s : s + 20, chans] += rng.choice([-1.0, 1.0], len(chans))
    both = np.concatenate([z_val, bad])
    a = scoring.mahalanobis(np.abs(both - reconstruct(model, both, mode)), mu, prec)
    top = np.sort(a, axis=1)[:, -10:].mean(axis=1)
    y = np.r_[np.zeros(len(z_val)), np.ones(len(bad))]
    return auc_scores(top, y)["roc_auc"]


def fit_detector(train: np.ndarray, cfg: TrainConfig | None = None, channel_names=None, progress=False,
                 on_epoch=None) -> tuple[LSTMEDDetector, dict]:
    """Chronological split of the training half (first 1-val_frac fit, rest validation), scaling fitted on
    the fit part, training with early stopping, mode choice and label-free calibration on validation."""
    cfg = cfg or TrainConfig()
    train = np.asarray(train, dtype=np.float32)
    cut = int(round((1 - cfg.val_frac) * len(train)))
    scaler = scoring.RobustScaler.fit(train[:cut], clip=cfg.clip)
    z_fit = sliding_windows(scaler.transform(train[:cut]), cfg.length, cfg.train_step)
    z_val = sliding_windows(scaler.transform(train[cut:]), cfg.length, cfg.train_step)
    if len(z_fit) == 0 or len(z_val) < 2:
        raise ValueError(f"training half of {len(train)} rows is too short for windows of {cfg.length}")
    config = LSTMEDConfig(n_channels=train.shape[1], hidden=cfg.hidden)
    t0 = time.perf_counter()
    model, history = train_model(z_fit, z_val, config, max_epochs=cfg.max_epochs, batch_size=cfg.batch_size,
                                 lr=cfg.lr, patience=cfg.patience, seed=cfg.seed, threads=cfg.threads,
                                 progress=progress, on_epoch=on_epoch, device=cfg.device)
    train_seconds = time.perf_counter() - t0
    det, info = build_detector(model, scaler, train, cfg, channel_names=channel_names, z_val=z_val)
    info.update({"history": history, "train_seconds": train_seconds, "epochs": len(history),
                 "best_val_loss": min(h["val_loss"] for h in history), "fit_windows": len(z_fit)})
    return det, info


def build_detector(model, scaler: scoring.RobustScaler, train: np.ndarray, cfg: TrainConfig, channel_names=None,
                   z_val: np.ndarray | None = None, val_errors: dict | None = None) -> tuple[LSTMEDDetector, dict]:
    """Mode choice and label-free calibration of a trained model on the validation part of ``train``.

    ``val_errors`` (mode -> (N, L, C) errors of the validation windows at stride ``train_step``) skips the
    reconstruction (the bench passes cached errors); ``z_val`` likewise skips windowing."""
    train = np.asarray(train, dtype=np.float32)
    cut = int(round((1 - cfg.val_frac) * len(train)))
    if z_val is None:
        z_val = sliding_windows(scaler.transform(train[cut:]), cfg.length, cfg.train_step)
    config = LSTMEDConfig(**{k: v for k, v in model.config.to_dict().items()})
    moving = np.flatnonzero(train[:cut].std(axis=0) > 0)
    moving = moving if len(moving) else np.arange(train.shape[1])
    scored = scoring.varying_channels(train[:cut]) if cfg.score_channels == "varying" else None
    per_mode = {}
    for mode in (MODES if cfg.mode == "auto" else (cfg.mode,)):
        err = val_errors[mode] if val_errors else np.abs(z_val - reconstruct(model, z_val, mode))
        mu, prec, shrink = scoring.fit_gaussian(err.reshape(-1, err.shape[-1]), cfg.cov, channels=scored)
        val_scores = scoring.mahalanobis(err, mu, prec)
        probe_windows = z_val[:: max(1, cfg.step // cfg.train_step)]
        per_mode[mode] = {
            "err": err, "mu": mu, "prec": prec, "shrinkage": shrink, "val_scores": val_scores,
            "val_mse": float((err**2).mean()),
            "probe_auc": probe_auc(model, probe_windows, mode, mu, prec, cfg.seed, moving),
        }
    mode = max(per_mode, key=lambda m: (round(per_mode[m]["probe_auc"], 4), -per_mode[m]["val_mse"]))
    chosen = per_mode[mode]
    val_scores = chosen["val_scores"]
    chz = {}
    if cfg.score == "channel_z":
        val_scores, chz = channel_z_fit(chosen["err"], scaler, train[cut:], cfg)
    elif cfg.score != "mahalanobis":
        raise ValueError(f"unknown score {cfg.score!r}; use 'channel_z' or 'mahalanobis'")
    ref = float(np.median(np.median(val_scores, axis=1)))
    if cfg.adapt_windows > 0:  # validation windows are denser than scoring windows: same time span
        val_scores, _ = scoring.adapt_recent(val_scores, ref, None,
                                             cfg.adapt_windows * max(1, cfg.step // cfg.train_step))
    tau, delta, how = calibrate.label_free(val_scores, cfg)
    if cfg.score == "channel_z" and cfg.stream_memory > 0:
        seed = stream_seed(val_scores, delta, cfg)
        chz.update(stream_memory=cfg.stream_memory, stream_far=cfg.far, stream_init=seed[-cfg.stream_memory:].tolist())
        how = {**how, "stream_memory": cfg.stream_memory, "stream_far": cfg.far,
               "stream_seed_tau": float(np.quantile(seed, 1 - cfg.far))}
    calibration = {"method": cfg.calibration, "cov": cfg.cov, "shrinkage": chosen["shrinkage"],
                   "unscored_channels": [] if scored is None else np.flatnonzero(~scored).tolist(),
                   **{k: v for k, v in how.items() if k != "val_window_alarm_rate"}}
    cov_shrunk = None
    if chosen["shrinkage"] > 0:
        keep = scored if scored is not None else np.ones(train.shape[1], bool)
        cov_shrunk = np.eye(train.shape[1])
        cov_shrunk[np.ix_(keep, keep)] = np.linalg.inv(chosen["prec"][np.ix_(keep, keep)])
    sd = chosen["err"].reshape(-1, train.shape[1]).std(0)
    if cov_shrunk is not None:
        sd = np.sqrt(np.diag(cov_shrunk))
    if scored is not None:  # unscored channels take no share of a window's error either
        sd = np.where(scored, sd, UNSCORED_SD)
    det = LSTMEDDetector(
        center=scaler.center, scale=scaler.scale, clip=scaler.clip, model_config=config.to_dict(),
        state_dict={k: v.detach().cpu().numpy().copy() for k, v in model.state_dict().items()},
        mu=chosen["mu"], precision=chosen["prec"], error_sd=np.maximum(sd, 1e-9), tau=tau, delta=delta,
        length=cfg.length, step=cfg.step, mode=mode,
        channel_names=list(channel_names or [f"c{i}" for i in range(train.shape[1])]),
        adapt_windows=cfg.adapt_windows, adapt_ref=ref, adapt_guard=cfg.adapt_guard,
        calibration={"mode": "unsupervised", "score": cfg.score, **calibration}, score=cfg.score, **chz,
    )
    det._model = model
    info = {
        "mode": mode, "val_windows": len(z_val), "calibration": det.calibration,
        "per_mode": {m: {"val_mse": v["val_mse"], "probe_auc": v["probe_auc"], "shrinkage": v["shrinkage"]}
                     for m, v in per_mode.items()},
        "val_probe_auc": chosen["probe_auc"], "val_mse": chosen["val_mse"],
        "val_window_alarm_rate": float((((val_scores > tau).sum(1) > delta)).mean()),
        "val_scores": val_scores,  # validation a_t as calibrated (re-calibration in the benches)
    }
    return det, info


def stream_seed(val_scores: np.ndarray, delta: float, cfg: TrainConfig) -> np.ndarray:
    """The stream threshold's seed: the decision statistic of the validation windows at the scoring step,
    or of all (overlapping) validation windows when the step leaves fewer than 5 / far of them (a (1 - far)
    quantile of fewer windows rests on under 5 exceedances, and the first stream windows would set it)."""
    stat = scoring.window_stat(val_scores, delta)
    at_step = stat[:: max(1, cfg.step // cfg.train_step)]
    return at_step if len(at_step) >= 5 / cfg.far else stat


def channel_z_fit(val_err: np.ndarray, scaler: scoring.RobustScaler, val_rows: np.ndarray, cfg: TrainConfig):
    """channel_z parameters from validation: per-channel error scale, the warm-start levels, and the
    validation a_t (dense windows at ``train_step``, levels over the same time span as ``level_windows``
    scoring windows). Returns (val a_t (N, L), detector fields)."""
    center, scale = scoring.robust_error_scale(val_err)
    inputs = None
    if cfg.input_deviation:
        inputs = sliding_windows((np.asarray(val_rows, np.float64) - scaler.center) / scaler.scale, cfg.length,
                                 cfg.train_step)[: len(val_err)]
    feats = scoring.channel_features(val_err, center, scale, inputs, cfg.error_weight)
    ratio = max(1, cfg.step // cfg.train_step)
    init = []
    if cfg.level_windows > 0:
        init = scoring.window_levels(feats[::ratio][-cfg.level_windows:]).tolist()
        feats, _ = scoring.remove_levels(feats, None, cfg.level_windows * ratio)
    val_scores = scoring.top_k_mean(feats, cfg.top_k_channels, cfg.score_transform)
    fields = {"err_center": center, "err_scale": scale, "input_deviation": cfg.input_deviation,
              "error_weight": cfg.error_weight,
              "level_windows": cfg.level_windows, "level_init": init, "top_k_channels": cfg.top_k_channels,
              "score_transform": cfg.score_transform}
    return val_scores, fields


def config_with(cfg: TrainConfig | None, **overrides) -> TrainConfig:
    return replace(cfg or TrainConfig(), **{k: v for k, v in overrides.items() if v is not None})


def _git_commit(repo_root) -> str:
    import subprocess

    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo_root, capture_output=True, text=True,
                              timeout=10).stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def data_version(train: np.ndarray) -> str:
    import hashlib

    return "sha1:" + hashlib.sha1(np.ascontiguousarray(train, dtype=np.float32).tobytes()).hexdigest()[:12]


def _flat_metrics(evaluation: dict) -> dict:
    out = {}
    for mode, m in evaluation.items():
        if mode == "auc":
            out.update({f"test_{k}": v for k, v in m.items()})
            continue
        for k in ("precision", "recall", "f1", "point_f1", "point_adjusted_f1", "top3_hit_rate", "tau", "delta",
                  "fallback", "calibration_events"):
            if k in m:
                name = "window_f1" if k == "f1" else k
                out[f"test_{mode}_{name}"] = m[k]
    return {k: float(v) for k, v in out.items() if v is not None and np.isfinite(v)}


def train_machine(machine_id: str, train: np.ndarray, test: np.ndarray | None = None,
                  test_labels: np.ndarray | None = None, segments=None, *, max_epochs: int | None = None,
                  batch_size: int | None = None, hidden: int | None = None, config: TrainConfig | None = None,
                  register: bool = True, data_version_tag: str | None = None, channel_names=None,
                  progress: bool = False) -> dict:
    """Fit, calibrate, evaluate (when a labeled test half is given) and log one MLflow run; register the
    model as ``lstm_ed-<machine>`` with alias ``challenger``. Returns run id, version, metrics, detector."""
    import tempfile
    from pathlib import Path

    import mlflow
    import pandas as pd

    from serving.lstm_pyfunc import LSTMEDPyfunc
    from serving.settings import get_settings
    from training import registry
    from training.lstm_ed import plots
    from training.lstm_ed.evaluate import evaluate_modes

    s = get_settings()
    cfg = config_with(config, max_epochs=max_epochs, batch_size=batch_size, hidden=hidden)
    if cfg.threads is None:
        cfg = replace(cfg, threads=s.torch_threads)
    registry.configure(s, EXPERIMENT)
    det, info = fit_detector(train, cfg, channel_names=channel_names, progress=progress)
    metrics = {"val_probe_auc": info["val_probe_auc"], "val_mse": info["val_mse"],
               "best_val_loss": info["best_val_loss"], "val_window_alarm_rate": info["val_window_alarm_rate"],
               "train_seconds": info["train_seconds"], "epochs_run": info["epochs"], "tau": det.tau,
               "delta": det.delta}
    for m, v in info["per_mode"].items():
        metrics[f"val_probe_auc_{m}"] = v["probe_auc"]
        metrics[f"val_mse_{m}"] = v["val_mse"]
    evaluation, point_scores, point_taus = None, None, det.tau
    if test is not None:
        out = det.score_series(test)
        from serving.core.windows import per_point_max

        point_scores = per_point_max(out["scores"], out["starts"], len(test))
        point_taus = per_point_max(np.repeat(np.asarray(out["tau"], dtype=float)[:, None], det.length, axis=1),
                                   out["starts"], len(test))
        if test_labels is not None:
            evaluation = evaluate_modes(out["scores"], out["starts"], det.length, test_labels, (det.tau, det.delta),
                                        top_channels=out["top_channels"], segments=segments, unsup_taus=out["tau"])
            metrics.update(_flat_metrics(evaluation))
    names = det.channel_names
    example = pd.DataFrame(np.asarray(train[: det.length + det.step], dtype=np.float32), columns=names)
    wrapper = LSTMEDPyfunc(det)
    signature = registry.infer_signature(example, wrapper.predict(None, example))
    name = registry.registry_name(FAMILY, machine_id)
    tags = {"machine": machine_id, "data_version": data_version_tag or data_version(train),
            "git_commit": _git_commit(s.repo_root), "inference_mode": det.mode, "family": FAMILY}
    params = {**cfg.to_params(), "chosen_mode": det.mode, "n_channels": det.n_channels,
              "train_rows": len(train), "shrinkage": det.calibration.get("shrinkage")}
    with tempfile.TemporaryDirectory() as tmp, registry.sqlite_write_lock(s):
        tmp = Path(tmp)
        plots.loss_curve(info["history"], tmp / "loss_curve.png")
        if point_scores is not None:
            plots.scores_vs_labels(point_scores, test_labels, point_taus, tmp / "scores_vs_labels.png",
                                   f"{machine_id}: test a_t (unsupervised tau)")
        if evaluation is not None:
            (tmp / "confusion.md").write_text(plots.confusion_table(evaluation))
        log = registry.retry_locked
        run = log(mlflow.start_run)(run_name=machine_id, tags=tags)
        try:
            log(mlflow.log_params)(params)
            client = mlflow.MlflowClient()
            from mlflow.entities import Metric

            now = int(time.time() * 1000)
            epoch_metrics = [Metric(k, float(h[k]), now, h["epoch"]) for h in info["history"]
                             for k in ("train_loss", "val_loss")]
            log(client.log_batch)(run.info.run_id, metrics=epoch_metrics)
            log(mlflow.log_metrics)(metrics)
            log(mlflow.log_artifacts)(str(tmp))
            model_info, version = registry.log_model(wrapper, name, signature, example, register)
        finally:
            mlflow.end_run()
    if register and version is not None:
        registry.set_challenger(name, version)
    return {"machine": machine_id, "run_id": run.info.run_id, "model_name": name, "model_version": version,
            "model_uri": model_info.model_uri, "metrics": metrics, "evaluation": evaluation, "detector": det,
            "mode": det.mode}


def promote_machine(machine_id: str):
    """Move ``production`` to the challenger when its label-free validation probe AUC is no worse."""
    from training import registry

    return registry.promote(registry.registry_name(FAMILY, machine_id), PROMOTION_METRIC, higher_is_better=True)


def train_and_promote(machines: list[str], data: str | None = None, *, max_epochs: int = 3, hidden: int = 64,
                      full: bool = False, echo=print) -> list[dict]:
    """For the demo: train, register and promote each machine of an SMD-layout folder; print metrics.

    Few epochs and a small network by default; ``full=True`` uses the paper's settings (hidden 200, 200
    epochs with early stopping)."""
    from serving.settings import get_settings
    from training.data.smd import load_machine

    folder = data or str(get_settings().smd_dir)
    cfg = TrainConfig() if not full else TrainConfig(hidden=200, max_epochs=200)
    if not full:
        cfg = replace(cfg, hidden=hidden, max_epochs=max_epochs, train_step=20)
    results = []
    for machine in machines:
        m = load_machine(folder, machine)
        r = train_machine(machine, m.train, m.test, m.test_labels, m.segments, config=cfg, progress=True)
        p = promote_machine(machine)
        r["promotion"] = p
        mt = r["metrics"]
        echo(f"{machine}: v{r['model_version']} mode={r['mode']} val_probe_auc={mt['val_probe_auc']:.3f} "
             f"window F1 unsupervised={mt.get('test_unsupervised_window_f1', float('nan')):.3f} "
             f"labeled={mt.get('test_labeled_window_f1', float('nan')):.3f} "
             f"oracle={mt.get('test_oracle_window_f1', float('nan')):.3f} "
             f"PA-F1={mt.get('test_unsupervised_point_adjusted_f1', float('nan')):.3f} | "
             f"production: {'promoted' if p.promoted else 'kept'} ({p.reason})")
        results.append(r)
    return results
