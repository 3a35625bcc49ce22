"""Discrimination metrics with bootstrap confidence intervals."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score


def auroc(labels: np.ndarray, scores: np.ndarray) -> float:
    """AUROC, or NaN when only one class is present."""
    if len(np.unique(labels)) < 2:
        return float("nan")
    return float(roc_auc_score(labels, scores))


def bootstrap_ci(
    labels: np.ndarray,
    scores: np.ndarray,
    metric=auroc,
    n_resamples: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> tuple[float, float]:
    """Percentile bootstrap confidence interval of a metric over patients.

    Parameters
    ----------
    labels, scores : np.ndarray
        0/1 outcomes and scores of the same records.
    metric : callable
        ``metric(labels, scores) -> float``.
    n_resamples : int
        Bootstrap resamples (resamples with a single class are skipped).
    seed : int
        Random seed.
    level : float
        Coverage of the interval.

    Returns
    -------
    tuple of float
        Lower and upper bounds (NaN when no resample had both classes).
    """
    values = [
        metric(labels[index], scores[index])
        for index in _resamples(labels, n_resamples, seed)
    ]
    if not values:
        return float("nan"), float("nan")
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(values, [tail, 100 - tail])
    return float(low), float(high)


def paired_bootstrap_difference(
    labels: np.ndarray,
    scores_a: np.ndarray,
    scores_b: np.ndarray,
    n_resamples: int = 1000,
    seed: int = 0,
) -> tuple[float, float, float]:
    """AUROC(a) - AUROC(b) on the same patients, with a paired 95% bootstrap CI."""
    differences = [
        auroc(labels[index], scores_a[index]) - auroc(labels[index], scores_b[index])
        for index in _resamples(labels, n_resamples, seed)
    ]
    point = auroc(labels, scores_a) - auroc(labels, scores_b)
    if not differences:
        return point, float("nan"), float("nan")
    low, high = np.percentile(differences, [2.5, 97.5])
    return point, float(low), float(high)


def _resamples(labels: np.ndarray, n_resamples: int, seed: int):  # noqa: ANN202
    """Yield bootstrap index arrays over patients, skipping one-class resamples."""
    rng = np.random.default_rng(seed)
    n = len(labels)
    for _ in range(n_resamples):
        index = rng.integers(0, n, n)
        if labels[index].min() != labels[index].max():
            yield index


def head_metrics(labels: np.ndarray, scores: np.ndarray, seed: int = 0) -> dict:
    """AUROC and AUPRC with 95% bootstrap CIs, and the counts behind them."""
    return {
        "auroc": auroc(labels, scores),
        "auroc_ci": list(bootstrap_ci(labels, scores, auroc, seed=seed)),
        "auprc": float(average_precision_score(labels, scores))
        if labels.any()
        else float("nan"),
        "auprc_ci": list(
            bootstrap_ci(labels, scores, average_precision_score, seed=seed)
        ),
        "n_test": int(len(labels)),
        "n_positive": int(labels.sum()),
    }
