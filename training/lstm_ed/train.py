"""Training loop: Adam, teacher forcing on the reversed target, early stopping on validation loss, seeded."""

from __future__ import annotations

import copy
import time

import numpy as np
import torch

from serving.core.lstm_ed import LSTMED, LSTMEDConfig


def seed_everything(seed: int, threads: int | None = None) -> None:
    if threads:
        torch.set_num_threads(int(threads))
    torch.manual_seed(seed)
    np.random.seed(seed)


def resolve_device(device: str | None = None) -> torch.device:
    """'auto'/None: cuda when available, else cpu; otherwise torch.device(device)."""
    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def _loss(model, windows: np.ndarray, batch_size: int, device=None) -> float:
    model.eval()
    total, n = 0.0, 0
    with torch.no_grad():
        for i in range(0, len(windows), batch_size):
            xb = torch.from_numpy(windows[i : i + batch_size]).to(device)
            total += float(((model(xb, "teacher") - xb) ** 2).sum(dim=(1, 2)).sum())
            n += len(xb)
    return total / max(n, 1)


def train_model(train_w: np.ndarray, val_w: np.ndarray, config: LSTMEDConfig, *, max_epochs: int = 50,
                batch_size: int = 32, lr: float = 1e-3, patience: int = 5, seed: int = 0,
                threads: int | None = None, progress: bool = False, on_epoch=None, device: str | None = "cpu",
                deadline_s: float | None = None):
    """Fit on scaled windows (N, L, C). Loss: the paper's sum over points of ||x_t - x'_t||^2 (per window).

    ``device``: torch device ('auto': cuda when available); the returned model is on the CPU.
    ``deadline_s``: stop after the epoch that passes this many seconds (best weights so far are kept).
    Returns (model with the best validation weights, history list of {epoch, train_loss, val_loss, seconds}).
    """
    seed_everything(seed, threads)
    dev = resolve_device(device)
    start = time.perf_counter()
    model = LSTMED(config).to(dev)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    rng = np.random.default_rng(seed)
    train_w = np.ascontiguousarray(train_w, dtype=np.float32)
    val_w = np.ascontiguousarray(val_w, dtype=np.float32)
    train_t = torch.from_numpy(train_w).to(dev)  # a few MB: one copy, then batches are indexed on the device
    best, best_state, bad, history = float("inf"), copy.deepcopy(model.state_dict()), 0, []
    epochs = range(1, max_epochs + 1)
    if progress:
        from tqdm import tqdm

        epochs = tqdm(epochs, desc="epochs", leave=False)
    for epoch in epochs:
        t0 = time.perf_counter()
        model.train()
        total = torch.zeros((), device=dev)
        for idx in np.array_split(rng.permutation(len(train_w)), max(1, -(-len(train_w) // batch_size))):
            xb = train_t[torch.from_numpy(idx).to(dev)]
            loss = ((model(xb, "teacher") - xb) ** 2).sum(dim=(1, 2)).mean()
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
            opt.step()
            total += loss.detach() * len(idx)  # no per-step sync with the device
        val_loss = _loss(model, val_w, 256, dev)
        rec = {"epoch": epoch, "train_loss": float(total) / len(train_w), "val_loss": val_loss,
               "seconds": time.perf_counter() - t0}
        history.append(rec)
        if on_epoch:
            on_epoch(rec)
        if val_loss < best - 1e-6:
            best, best_state, bad = val_loss, copy.deepcopy(model.state_dict()), 0
        else:
            bad += 1
            if bad >= patience:
                rec["stop"] = "patience"
                break
        if deadline_s is not None and time.perf_counter() - start > deadline_s:
            rec["stop"] = "deadline"
            break
    model.load_state_dict(best_state)
    model = model.cpu()
    model.eval()
    return model, history
