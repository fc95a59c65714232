"""Reader for the Server Machine Dataset layout (any folder laid out like ../shared/data/smd).

Layout: ``train/<machine>.txt``, ``test/<machine>.txt`` (no header, comma-separated floats, one row per
minute), ``test_label/<machine>.txt`` (one 0/1 per test row) and ``interpretation_label/<machine>.txt``
(``start-end:c1,c2,...``; rows ``start <= i < end``, channels 1-based in the file, 0-based here).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np


@dataclass
class Segment:
    start: int  # first anomalous test row (0-based)
    end: int  # one past the last anomalous test row
    channels: list[int] = field(default_factory=list)  # 0-based channel indices


@dataclass
class SMDMachine:
    machine: str
    train: np.ndarray  # (time, channels) float32
    test: np.ndarray | None
    test_labels: np.ndarray | None  # (time,) int8
    segments: list[Segment]


def list_machines(folder: str | Path) -> list[str]:
    """Machine ids (file stems) that have a training file, sorted naturally (1-2 before 1-10)."""
    train = Path(folder) / "train"
    if not train.is_dir():
        raise FileNotFoundError(
            f"{train} not found: an SMD folder needs train/, test/, test_label/ (see README 'Bring your own data')"
        )
    stems = [p.stem for p in train.glob("*.txt")]
    return sorted(stems, key=_natural_key)


def _natural_key(name: str) -> list:
    return [int(t) if t.isdigit() else t for t in name.replace("-", " ").split()]


def load_matrix(path: str | Path) -> np.ndarray:
    arr = np.loadtxt(path, delimiter=",", dtype=np.float32, ndmin=2)
    return arr


def parse_interpretation(path: str | Path) -> list[Segment]:
    segments: list[Segment] = []
    p = Path(path)
    if not p.exists():
        return segments
    for line in p.read_text().splitlines():
        line = line.strip()
        if not line:
            continue
        span, _, chans = line.partition(":")
        start, _, end = span.partition("-")
        channels = [int(c) - 1 for c in chans.split(",") if c.strip()]
        segments.append(Segment(int(start), int(end), channels))
    return segments


def load_machine(folder: str | Path, machine: str, with_test: bool = True) -> SMDMachine:
    root = Path(folder)
    train_path = root / "train" / f"{machine}.txt"
    if not train_path.exists():
        raise FileNotFoundError(f"no training file for {machine!r} at {train_path}")
    train = load_matrix(train_path)
    test = labels = None
    segments: list[Segment] = []
    if with_test and (root / "test" / f"{machine}.txt").exists():
        test = load_matrix(root / "test" / f"{machine}.txt")
        label_path = root / "test_label" / f"{machine}.txt"
        if label_path.exists():
            labels = np.loadtxt(label_path, dtype=np.int8, ndmin=1)
            if len(labels) != len(test):
                raise ValueError(f"{label_path}: {len(labels)} labels for {len(test)} test rows")
        segments = parse_interpretation(root / "interpretation_label" / f"{machine}.txt")
    return SMDMachine(machine, train, test, labels, segments)
