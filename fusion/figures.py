"""Report figures (matplotlib, written as PNG): ROC curves and calibration plots."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.metrics import roc_curve  # noqa: E402

DPI = 110


def roc_figure(
    head: str, labels: np.ndarray, scores: dict[str, np.ndarray], path: Path
) -> Path:
    """ROC curves of the model and its best tool on one head's test records."""
    figure, axis = plt.subplots(figsize=(4.2, 4.0))
    for name, values in scores.items():
        fpr, tpr, _ = roc_curve(labels, values)
        axis.plot(fpr, tpr, label=name if len(name) < 40 else name[:37] + "...")
    axis.plot([0, 1], [0, 1], color="grey", linestyle=":", linewidth=1)
    axis.set(
        xlabel="1 - specificity",
        ylabel="sensitivity",
        title=f"{head}: ROC (test, n={len(labels)})",
        xlim=(0, 1),
        ylim=(0, 1),
    )
    axis.legend(loc="lower right", fontsize=7)
    return _save(figure, path)


def calibration_figure(head: str, curve: list[dict], brier: float, path: Path) -> Path:
    """Observed rate against mean predicted risk per risk decile (test records)."""
    figure, axis = plt.subplots(figsize=(4.2, 4.0))
    predicted = [point["predicted"] for point in curve]
    observed = [point["observed"] for point in curve]
    top = max([*predicted, *observed, 0.05]) * 1.1
    axis.plot([0, top], [0, top], color="grey", linestyle=":", linewidth=1)
    axis.plot(predicted, observed, marker="o")
    axis.set(
        xlabel="mean predicted risk",
        ylabel="observed rate",
        title=f"{head}: calibration (Brier {brier:.3f})",
        xlim=(0, top),
        ylim=(0, top),
    )
    return _save(figure, path)


def _save(figure: plt.Figure, path: Path) -> Path:
    figure.tight_layout()
    figure.savefig(path, dpi=DPI)
    plt.close(figure)
    return path
