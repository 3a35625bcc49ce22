"""Discrimination and calibration metrics with bootstrap confidence intervals.

Bootstrap resamples are drawn once per call as a matrix of multiplicities
(how often each patient appears in each resample), so AUROC over 1000
resamples is computed in one vectorised pass (the Mann-Whitney statistic with
ties counted half), and a paired difference uses the very same resamples for
both scores.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score

N_RESAMPLES = 1000
CALIBRATION_BINS = 10


def auroc(labels: np.ndarray, scores: np.ndarray) -> float:
    """AUROC, or NaN when only one class is present."""
    if len(np.unique(labels)) < 2:
        return float("nan")
    return float(roc_auc_score(labels, scores))


def resample_weights(
    labels: np.ndarray, n_resamples: int = N_RESAMPLES, seed: int = 0
) -> np.ndarray:
    """``(R, n)`` multiplicity of each patient in each bootstrap resample.

    Resamples holding a single class are dropped (their AUROC is undefined),
    so ``R <= n_resamples``.
    """
    n = len(labels)
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, n, size=(n_resamples, n))
    weights = np.zeros((n_resamples, n), dtype=np.float64)
    np.add.at(weights, (np.arange(n_resamples)[:, None], draws), 1.0)
    positives = weights @ (labels == 1)
    keep = (positives > 0) & (positives < n)
    return weights[keep]


def weighted_auroc(
    labels: np.ndarray, scores: np.ndarray, weights: np.ndarray
) -> np.ndarray:
    """AUROC of each row of multiplicities ``weights`` ``(R, n)``: ``(R,)``.

    The Mann-Whitney statistic: for every positive, the weighted count of
    negatives scored lower, ties counting half; divided by the weighted
    numbers of positives times negatives.
    """
    order = np.argsort(scores, kind="mergesort")
    ordered, y, w = scores[order], labels[order] == 1, weights[:, order]
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
    negatives = np.add.reduceat(w * ~y, starts, axis=1)  # per tie group
    positives = np.add.reduceat(w * y, starts, axis=1)
    below = np.cumsum(negatives, axis=1) - negatives
    pairs = (positives * (below + 0.5 * negatives)).sum(axis=1)
    return pairs / (positives.sum(axis=1) * negatives.sum(axis=1))


def weighted_average_precision(
    labels: np.ndarray, scores: np.ndarray, weights: np.ndarray
) -> np.ndarray:
    """Average precision (as scikit-learn's) of each row of ``weights``: ``(R,)``.

    Over distinct scores from the highest down, the precision at each one
    times the share of positives it adds to recall.
    """
    order = np.argsort(-scores, kind="mergesort")
    ordered, y, w = scores[order], labels[order] == 1, weights[:, order]
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
    positives = np.add.reduceat(w * y, starts, axis=1)
    negatives = np.add.reduceat(w * ~y, starts, axis=1)
    true, false = np.cumsum(positives, axis=1), np.cumsum(negatives, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(true + false > 0, true / (true + false), 0.0)
        return (positives * precision).sum(axis=1) / positives.sum(axis=1)


VECTORISED = {
    auroc: weighted_auroc,
    average_precision_score: weighted_average_precision,
}


def bootstrap_ci(
    labels: np.ndarray,
    scores: np.ndarray,
    metric: Callable[[np.ndarray, np.ndarray], float] = auroc,
    n_resamples: int = N_RESAMPLES,
    seed: int = 0,
    level: float = 0.95,
) -> tuple[float, float]:
    """Percentile bootstrap confidence interval of a metric over patients.

    Parameters
    ----------
    labels, scores : np.ndarray
        0/1 outcomes and scores of the same records.
    metric : callable
        ``metric(labels, scores) -> float``; AUROC and average precision take
        the vectorised path.
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
    labels, scores = np.asarray(labels), np.asarray(scores, dtype=float)
    weights = resample_weights(labels, n_resamples, seed)
    if not len(weights):
        return float("nan"), float("nan")
    fast = VECTORISED.get(metric)
    if fast is not None:
        values = fast(labels, scores, weights)
    else:
        values = np.array(
            [metric(*_expanded(labels, scores, row)) for row in weights], dtype=float
        )
    tail = (1 - level) / 2 * 100
    low, high = np.nanpercentile(values, [tail, 100 - tail])
    return float(low), float(high)


def paired_bootstrap_difference(
    labels: np.ndarray,
    scores_a: np.ndarray,
    scores_b: np.ndarray,
    n_resamples: int = N_RESAMPLES,
    seed: int = 0,
) -> tuple[float, float, float]:
    """AUROC(a) - AUROC(b) on the same patients, with a paired 95% bootstrap CI."""
    labels = np.asarray(labels)
    a, b = np.asarray(scores_a, dtype=float), np.asarray(scores_b, dtype=float)
    point = auroc(labels, a) - auroc(labels, b)
    weights = resample_weights(labels, n_resamples, seed)
    if not len(weights):
        return point, float("nan"), float("nan")
    differences = weighted_auroc(labels, a, weights) - weighted_auroc(
        labels, b, weights
    )
    low, high = np.percentile(differences, [2.5, 97.5])
    return point, float(low), float(high)


def _expanded(
    labels: np.ndarray, scores: np.ndarray, row: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The resample of one multiplicity row as plain arrays."""
    index = np.repeat(np.arange(len(labels)), row.astype(int))
    return labels[index], scores[index]


def expected_calibration_error(
    labels: np.ndarray, risks: np.ndarray, bins: int = CALIBRATION_BINS
) -> float:
    """Mean |observed - predicted| over equal-width risk bins, weighted by size."""
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(risks, edges[1:-1]), 0, bins - 1)
    total = 0.0
    for b in range(bins):
        rows = which == b
        if rows.any():
            total += rows.sum() * abs(labels[rows].mean() - risks[rows].mean())
    return float(total / len(labels))


def calibration_curve(
    labels: np.ndarray, risks: np.ndarray, bins: int = CALIBRATION_BINS
) -> list[dict]:
    """Per risk quantile bin: mean predicted risk, observed rate and count."""
    order = np.argsort(risks, kind="mergesort")
    curve = []
    for chunk in np.array_split(order, min(bins, len(order))):
        if len(chunk):
            curve.append(
                {
                    "predicted": float(risks[chunk].mean()),
                    "observed": float(labels[chunk].mean()),
                    "n": int(len(chunk)),
                }
            )
    return curve


def head_metrics(labels: np.ndarray, scores: np.ndarray, seed: int = 0) -> dict:
    """AUROC and AUPRC with 95% bootstrap CIs, Brier score, ECE and counts.

    ``scores`` are risks (0..1): the Brier score and the expected calibration
    error are computed on them as they are.
    """
    labels = np.asarray(labels)
    scores = np.asarray(scores, dtype=float)
    both = labels.any() and not labels.all()
    return {
        "auroc": auroc(labels, scores),
        "auroc_ci": list(bootstrap_ci(labels, scores, auroc, seed=seed)),
        "auprc": float(average_precision_score(labels, scores))
        if both
        else float("nan"),
        "auprc_ci": list(
            bootstrap_ci(labels, scores, average_precision_score, seed=seed)
        )
        if both
        else [float("nan"), float("nan")],
        "brier": float(brier_score_loss(labels, scores)),
        "ece": expected_calibration_error(labels, scores),
        "n_test": int(len(labels)),
        "n_positive": int(labels.sum()),
    }
