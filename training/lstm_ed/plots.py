"""Figures and tables logged as MLflow artifacts (matplotlib Agg backend, no display needed)."""

from __future__ import annotations

import numpy as np


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def loss_curve(history: list[dict], path) -> None:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ep = [h["epoch"] for h in history]
    ax.plot(ep, [h["train_loss"] for h in history], label="train")
    ax.plot(ep, [h["val_loss"] for h in history], label="validation")
    ax.set_xlabel("epoch")
    ax.set_ylabel("sum of squared errors per window")
    ax.set_yscale("log")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def scores_vs_labels(point_scores: np.ndarray, labels: np.ndarray | None, tau, path, title: str = "") -> None:
    """a_t per point (max over overlapping windows), tau as a line (a float, or per point for the stream
    threshold, which moves from window to window), labeled anomalies shaded."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(10, 3.5))
    t = np.arange(len(point_scores))
    ax.plot(t, point_scores, lw=0.5, color="tab:blue", label="a_t")
    if np.ndim(tau) == 0:
        ax.axhline(tau, color="tab:red", lw=1, label=f"tau = {float(tau):.3g}")
    else:
        ax.plot(t, tau, color="tab:red", lw=1, label="tau per window (stream threshold)")
        tau = float(np.nanmedian(tau)) if np.isfinite(tau).any() else 1.0
    if labels is not None:
        lab = np.asarray(labels).astype(bool)
        ax.fill_between(t, 0, 1, where=lab, color="tab:orange", alpha=0.3, transform=ax.get_xaxis_transform(),
                        label="labeled anomaly")
    finite = point_scores[np.isfinite(point_scores)]
    if len(finite) and finite.max() > 0:
        ax.set_yscale("symlog", linthresh=max(tau / 10, 1e-6))
    ax.set_xlabel("row")
    ax.set_title(title)
    ax.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def confusion_table(metrics: dict) -> str:
    """Markdown confusion table of windows per calibration mode."""
    rows = ["| mode | tp | fp | fn | tn | precision | recall | F1 | tau | delta |", "|---|---|---|---|---|---|---|---|---|---|"]
    for mode, m in metrics.items():
        if not isinstance(m, dict) or "tp" not in m:
            continue
        rows.append(f"| {mode} | {m['tp']} | {m['fp']} | {m['fn']} | {m['tn']} | {m['precision']:.3f} | "
                    f"{m['recall']:.3f} | {m['f1']:.3f} | {m['tau']:.4g} | {m['delta']:g} |")
    return "\n".join(rows) + "\n"
