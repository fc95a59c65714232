"""Seeded synthetic server metrics shaped like SMD, with labeled anomalies and the channels each touches.

38 channels (configurable) driven by a few latent factors (daily cycle + AR(1) load) so channels come in
correlated groups; some channels are constant (as SMD's 8, 27, 37, 38). The test half gets injected
anomalies of five kinds: spike, level_shift, correlation_break, noise_burst, stuck. Values are min-max
scaled with the training half's range, like the published SMD files.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from training.data.smd import Segment, SMDMachine

KINDS = ("spike", "level_shift", "correlation_break", "noise_burst", "stuck")
CONSTANT_CHANNELS = (7, 26, 36, 37)  # 0-based, SMD's 8, 27, 37, 38


def _latent(rng, n: int, n_factors: int, period: int, phase: float) -> np.ndarray:
    t = np.arange(n) + phase
    daily = np.sin(2 * np.pi * t / period)
    f = np.empty((n, n_factors))
    for k in range(n_factors):
        ar = np.zeros(n)
        eps = rng.normal(0, 0.15, n)
        for i in range(1, n):
            ar[i] = 0.97 * ar[i - 1] + eps[i]
        f[:, k] = (0.5 + 0.5 * k / max(1, n_factors - 1)) * daily + ar
    return f


def make_machine(seed: int, n_train: int = 5000, n_test: int = 5000, n_channels: int = 38,
                 n_anomalies: int | None = None, period: int = 1440, name: str | None = None) -> SMDMachine:
    rng = np.random.default_rng(seed)
    n_factors = 4
    group = rng.integers(0, n_factors, n_channels)
    loading = rng.uniform(0.5, 1.5, n_channels) * rng.choice([-1, 1], n_channels)
    noise = rng.uniform(0.05, 0.2, n_channels)
    n = n_train + n_test
    f = _latent(rng, n, n_factors, period, rng.uniform(0, period))
    x = f[:, group] * loading + rng.normal(0, 1, (n, n_channels)) * noise
    const = [c for c in CONSTANT_CHANNELS if c < n_channels]
    x[:, const] = 0.0
    test = x[n_train:].copy()
    labels = np.zeros(n_test, dtype=np.int8)
    segments: list[Segment] = []
    count = n_anomalies if n_anomalies is not None else max(2, n_test // 700)
    slots = np.linspace(0, n_test, count + 1).astype(int)
    moving = [c for c in range(n_channels) if c not in const]
    for i in range(count):
        length = int(rng.integers(20, 120))
        lo, hi = slots[i] + 10, slots[i + 1] - length - 10
        if hi <= lo:
            continue
        start = int(rng.integers(lo, hi))
        end = start + length
        kind = KINDS[i % len(KINDS)]
        g = int(rng.integers(0, n_factors))
        pool = [c for c in moving if group[c] == g] or moving
        chans = sorted(rng.choice(pool, size=min(len(pool), int(rng.integers(2, 6))), replace=False).tolist())
        sd = x[:n_train, chans].std(axis=0) + 1e-9
        seg = test[start:end, chans]
        if kind == "spike":
            seg += rng.choice([-1, 1], len(chans)) * 6 * sd * np.exp(-np.linspace(0, 3, length))[:, None]
        elif kind == "level_shift":
            seg += rng.choice([-1, 1], len(chans)) * 3 * sd
        elif kind == "correlation_break":
            seg[:] = np.median(seg, axis=0) - (seg - np.median(seg, axis=0)) * 2.5
        elif kind == "noise_burst":
            seg += rng.normal(0, 2.5, seg.shape) * sd
        else:  # stuck
            seg[:] = seg[0] + 0 * seg
            seg += 2 * sd * rng.choice([-1, 1], len(chans))
        test[start:end, chans] = seg
        labels[start:end] = 1
        segments.append(Segment(start, end, chans))
    train = x[:n_train]
    lo, hi = train.min(axis=0), train.max(axis=0)
    span = np.where(hi > lo, hi - lo, 1.0)
    scale = lambda a: ((a - lo) / span).astype(np.float32)  # noqa: E731
    return SMDMachine(name or f"synthetic-{seed}", scale(train), scale(test), labels, segments)


def write_smd_layout(folder: str | Path, machines: list[SMDMachine]) -> Path:
    """Write machines as SMD files: train/, test/, test_label/, interpretation_label/ (1-based channels)."""
    root = Path(folder)
    for sub in ("train", "test", "test_label", "interpretation_label"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    for m in machines:
        np.savetxt(root / "train" / f"{m.machine}.txt", m.train, fmt="%.6f", delimiter=",")
        if m.test is not None:
            np.savetxt(root / "test" / f"{m.machine}.txt", m.test, fmt="%.6f", delimiter=",")
        if m.test_labels is not None:
            np.savetxt(root / "test_label" / f"{m.machine}.txt", m.test_labels, fmt="%d")
        lines = [f"{s.start}-{s.end}:{','.join(str(c + 1) for c in s.channels)}" for s in m.segments]
        (root / "interpretation_label" / f"{m.machine}.txt").write_text("".join(line + "\n" for line in lines))
    return root
