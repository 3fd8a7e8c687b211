"""Matplotlib figures rendered to inline base64 PNG."""

from __future__ import annotations

import base64
import io

import numpy as np

from harness.scoring.verdict import percent


def _png(fig) -> str:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode()


def _fig(w=4.2, h=3.0):
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=(w, h))


def similarity_histogram(members: np.ndarray, nonmembers: np.ndarray, threshold: float | None, title: str,
                         xlabel: str = "best cosine to any candidate", good: float | None = None, fpr: float = 0.01) -> str:
    """Members' and non-members' best similarity, the threshold at the task's `fpr`, and the published 'good' rule
    (`good`)."""
    fig, ax = _fig()
    vals = np.concatenate([members, nonmembers]) if len(nonmembers) else members
    bins = np.linspace(np.nanmin(vals), np.nanmax(vals), 30) if len(vals) else 10
    ax.hist(nonmembers, bins=bins, alpha=0.6, density=True, label=f"non-members ({len(nonmembers)})", color="#888")
    ax.hist(members, bins=bins, alpha=0.7, density=True, label=f"members ({len(members)})", color="#d62728")
    if threshold is not None and np.isfinite(threshold):
        ax.axvline(threshold, color="k", ls="--", lw=1, label=f"{percent(fpr)}-FPR threshold")
    if good is not None:
        ax.axvline(good, color="#2ca02c", ls=":", lw=1.5, label=f"good (> {good:g})")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("density")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7, loc="best", framealpha=0.85)
    return _png(fig)


def roc_curve(members: np.ndarray, nonmembers: np.ndarray, title: str, fpr_mark: float = 0.01) -> str:
    """TPR vs FPR over every threshold, log-scaled FPR axis (the low-FPR regime matters), the task's FPR marked."""
    fig, ax = _fig()
    thr = np.unique(np.concatenate([members, nonmembers]))[::-1]
    tpr = np.array([(members > t).mean() for t in thr] + [1.0])
    fpr = np.array([(nonmembers > t).mean() if len(nonmembers) else 0.0 for t in thr] + [1.0])
    floor = 1.0 / max(len(nonmembers), 1) / 2
    ax.step(np.maximum(fpr, floor), tpr, where="post", color="#1f77b4", label="attack")
    chance = np.logspace(np.log10(floor), 0, 100)  # TPR = FPR is a curve on a log FPR axis, not a straight segment
    ax.plot(chance, chance, color="#aaa", ls=":", lw=1, label="chance (TPR = FPR)")
    ax.axvline(fpr_mark, color="k", ls="--", lw=1, label=f"{percent(fpr_mark)} FPR")
    ax.set_xscale("log")
    ax.set_xlim(floor / 1.5, 1.05)
    if floor > fpr_mark / 2:  # the control is too small to resolve the task's FPR: say so where the eye looks for it
        ax.text(floor, 0.97, f"FPR 0 shown at 1/(2x{len(nonmembers)})", fontsize=6, color="#555", va="top")
    ax.legend(fontsize=7, loc="lower right", framealpha=0.85)
    ax.set_xlabel("FPR (non-members passing)")
    ax.set_ylabel("TPR (members passing)")
    ax.set_ylim(0, 1.02)
    ax.set_title(title, fontsize=9)
    return _png(fig)


def trend(xs: list, series: dict[str, list], xlabel: str, title: str, ylabel: str) -> str:
    fig, ax = _fig()
    for name, ys in series.items():
        ax.plot(xs, ys, marker="o", label=name)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_ylim(0, 1.02)
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7)
    return _png(fig)
