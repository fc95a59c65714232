"""Sliding windows over a (time, channels) array (Ha et al.: length 100, 10 points shared -> step 90).

Only full windows are produced: a trailing stretch shorter than ``length`` is left for the next call
(streaming keeps it buffered); ``window_starts`` says exactly which rows each window covers.
"""

from __future__ import annotations

import numpy as np


def window_starts(n_points: int, length: int = 100, step: int = 90) -> np.ndarray:
    """First row of every full window: 0, step, 2*step, ... while start + length <= n_points."""
    if length <= 0 or step <= 0:
        raise ValueError(f"length and step must be positive, got length={length}, step={step}")
    if n_points < length:
        return np.zeros(0, dtype=np.int64)
    return np.arange(0, n_points - length + 1, step, dtype=np.int64)


def sliding_windows(x: np.ndarray, length: int = 100, step: int = 90) -> np.ndarray:
    """(T, C) -> (N, length, C) float32 copies of the windows at ``window_starts``."""
    x = np.asarray(x, dtype=np.float32)
    if x.ndim == 1:
        x = x[:, None]
    starts = window_starts(len(x), length, step)
    if len(starts) == 0:
        return np.zeros((0, length, x.shape[1]), dtype=np.float32)
    idx = starts[:, None] + np.arange(length)[None, :]
    return x[idx]


def per_point_max(values: np.ndarray, starts: np.ndarray, n_points: int, fill: float = np.nan) -> np.ndarray:
    """Fold (N, L) per-window values back to (T,) taking the max where windows overlap."""
    out = np.full(n_points, -np.inf)
    length = values.shape[1] if len(values) else 0
    for s, v in zip(starts, values):
        np.maximum(out[s : s + length], v, out=out[s : s + length])
    out[np.isneginf(out)] = fill
    return out
