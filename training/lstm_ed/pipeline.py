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


@dataclass
class TrainConfig:
    hidden: int = 200
    max_epochs: int = 50
    batch_size: int = 32
    lr: float = 1e-3
    patience: int = 5
    length: int = 100
    step: int = 90  # scoring windows: 10 points shared (paper)
    train_step: int = 10  # denser windows for training/validation statistics
    val_frac: float = 0.2
    seed: int = 0
    mode: str = "auto"  # 'free' (paper), 'teacher', or 'auto' = the higher validation probe AUC
    cov: str = "shrinkage"
    q: float = 0.99  # tau = this quantile of validation a_t
    far: float = 0.01  # delta: window false-alarm rate on validation windows
    adapt_windows: int = 16  # scores relative to the previous 16 windows (about one day at step 90)
    clip: float = 5.0
    threads: int | None = None

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
                                 progress=progress, on_epoch=on_epoch)
    train_seconds = time.perf_counter() - t0
    moving = np.flatnonzero(train[:cut].std(axis=0) > 0)
    moving = moving if len(moving) else np.arange(train.shape[1])
    per_mode = {}
    for mode in (MODES if cfg.mode == "auto" else (cfg.mode,)):
        err = np.abs(z_val - reconstruct(model, z_val, mode))
        mu, prec, shrink = scoring.fit_gaussian(err.reshape(-1, err.shape[-1]), cfg.cov)
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
    ref = float(np.median(np.median(val_scores, axis=1)))
    if cfg.adapt_windows > 0:  # validation windows are denser than scoring windows: same time span
        val_scores, _ = scoring.adapt_recent(val_scores, ref, None,
                                             cfg.adapt_windows * max(1, cfg.step // cfg.train_step))
    tau, delta = calibrate.unsupervised(val_scores, cfg.q, cfg.far)
    cov_shrunk = np.linalg.inv(chosen["prec"]) if chosen["shrinkage"] > 0 else None
    sd = np.sqrt(np.diag(cov_shrunk)) if cov_shrunk is not None else chosen["err"].reshape(-1, train.shape[1]).std(0)
    det = LSTMEDDetector(
        center=scaler.center, scale=scaler.scale, clip=cfg.clip, model_config=config.to_dict(),
        state_dict={k: v.detach().cpu().numpy().copy() for k, v in model.state_dict().items()},
        mu=chosen["mu"], precision=chosen["prec"], error_sd=np.maximum(sd, 1e-9), tau=tau, delta=delta,
        length=cfg.length, step=cfg.step, mode=mode,
        channel_names=list(channel_names or [f"c{i}" for i in range(train.shape[1])]),
        adapt_windows=cfg.adapt_windows, adapt_ref=ref,
        calibration={"mode": "unsupervised", "q": cfg.q, "far": cfg.far, "cov": cfg.cov,
                     "shrinkage": chosen["shrinkage"]},
    )
    det._model = model
    info = {
        "history": history, "train_seconds": train_seconds, "epochs": len(history),
        "best_val_loss": min(h["val_loss"] for h in history), "mode": mode,
        "val_windows": len(z_val), "fit_windows": len(z_fit),
        "per_mode": {m: {"val_mse": v["val_mse"], "probe_auc": v["probe_auc"], "shrinkage": v["shrinkage"]}
                     for m, v in per_mode.items()},
        "val_probe_auc": chosen["probe_auc"], "val_mse": chosen["val_mse"],
        "val_window_alarm_rate": float((((val_scores > tau).sum(1) > delta)).mean()),
    }
    return det, info


def config_with(cfg: TrainConfig | None, **overrides) -> TrainConfig:
    return replace(cfg or TrainConfig(), **{k: v for k, v in overrides.items() if v is not None})
