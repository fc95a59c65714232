"""Artifacts of a hydro run: transition-matrix heatmap and the fitted series with interval and flags."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def transition_heatmap(matrix: np.ndarray, centroids: np.ndarray, path: Path, title: str) -> Path:
    plt = _plt()
    k = len(centroids)
    fig, ax = plt.subplots(figsize=(1.2 * k + 2.5, 1.0 * k + 2))
    im = ax.imshow(matrix, vmin=0, vmax=1, cmap="viridis")
    labels = [f"{i}\n{c:.3g}" for i, c in enumerate(centroids)]
    ax.set_xticks(range(k), labels)
    ax.set_yticks(range(k), labels)
    ax.set_xlabel("to state (centroid)")
    ax.set_ylabel("from state (centroid)")
    for i in range(k):
        for j in range(k):
            ax.text(j, i, f"{matrix[i, j]:.2f}", ha="center", va="center", color="w" if matrix[i, j] < 0.6 else "k")
    fig.colorbar(im, ax=ax, fraction=0.046)
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def fitted_series(ts, values, out: dict, path: Path, title: str, labels=None) -> Path:
    plt = _plt()
    t = (np.asarray(ts) - np.asarray(ts)[0]) / 86_400_000
    fig, ax = plt.subplots(figsize=(14, 4.5))
    ax.fill_between(t, out["lower"], out["upper"], color="tab:blue", alpha=0.2, lw=0, label="95% interval")
    ax.plot(t, values, lw=0.6, color="k", label="value")
    cand = np.asarray(out["candidate"], bool) & ~np.asarray(out["anomalous"], bool)
    ax.scatter(t[cand], np.asarray(values)[cand], s=6, c="orange", label="candidate (dropped)")
    flag = np.asarray(out["anomalous"], bool)
    ax.scatter(t[flag], np.asarray(values)[flag], s=6, c="red", label="flagged")
    if labels is not None:
        lab = np.asarray(labels, bool)
        lo = np.nanmin(values)
        ax.scatter(t[lab], np.full(lab.sum(), lo), s=3, c="purple", marker="|", label="labeled (not used to fit)")
    ax.set_xlabel("days")
    ax.set_title(title)
    ax.legend(loc="upper right", fontsize=8, ncol=5)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
