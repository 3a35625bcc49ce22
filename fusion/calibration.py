"""Calibration of each head's risk, fitted on the validation split only.

A trained head can rank patients well and still state risks that are too
extreme or too timid. Calibration fits, per head, an affine map of the logit
on the validation records labelled for that head and stores it in the model
(``calibration_scale``, ``calibration_bias``), so every consumer (service,
explanations, evaluation) reads calibrated risks:

- ``temperature``: ``logit / T`` (one parameter; keeps the base rate the
  model learned; the safest choice for small validation sets);
- ``platt``: ``a * logit + b`` (also corrects a shifted base rate);
- ``none``: the identity.

Both maps are monotone, so AUROC is unchanged, and differentiable, so
Integrated Gradients still explains the calibrated risk. Isotonic regression
is not offered: it is a step function (zero gradient almost everywhere, which
would blank the attributions) and ties patients it had ranked apart.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from scipy.optimize import minimize_scalar
from scipy.special import expit
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import brier_score_loss, log_loss

from fusion.model import FusedRiskModel
from modalities.batch import ModelInputs

CALIBRATION_METHODS = ("temperature", "platt", "none")
MIN_PER_CLASS = 5  # fewer validation cases (or controls) than this: keep identity


def fit_affine(
    logits: np.ndarray, labels: np.ndarray, method: str
) -> tuple[float, float]:
    """Fit ``scale`` and ``bias`` of ``scale * logit + bias`` for one head.

    Parameters
    ----------
    logits : np.ndarray
        Uncalibrated logits of the validation records labelled for the head.
    labels : np.ndarray
        Their 0/1 outcomes.
    method : str
        One of `CALIBRATION_METHODS`.

    Returns
    -------
    tuple of float
        ``(scale, bias)``; ``(1, 0)`` when the method is ``none`` or either
        class has fewer than `MIN_PER_CLASS` records.
    """
    if method not in CALIBRATION_METHODS:
        raise ValueError(
            f"calibration method '{method}' unknown; expected one of "
            f"{list(CALIBRATION_METHODS)}"
        )
    positives = int(labels.sum())
    if method == "none" or min(positives, len(labels) - positives) < MIN_PER_CLASS:
        return 1.0, 0.0
    logits = logits.astype(np.float64)
    if method == "temperature":

        def loss(log_scale: float) -> float:
            risk = expit(np.exp(log_scale) * logits)
            return log_loss(labels, np.clip(risk, 1e-7, 1 - 1e-7), labels=[0, 1])

        result = minimize_scalar(loss, bounds=(-3.0, 3.0), method="bounded")
        return float(np.exp(result.x)), 0.0
    fitted = LogisticRegression(C=1e4, max_iter=1000).fit(logits[:, None], labels)
    return float(fitted.coef_[0, 0]), float(fitted.intercept_[0])


@torch.no_grad()
def calibrate(
    model: FusedRiskModel,
    validation: ModelInputs,
    method: str,
    heads: Sequence[str],
) -> dict[str, dict]:
    """Fit every head's calibration on validation inputs and store it in the model.

    Parameters
    ----------
    model : FusedRiskModel
        Trained model; its calibration buffers are overwritten.
    validation : ModelInputs
        Validation-split inputs (never the test split).
    method : str
        One of `CALIBRATION_METHODS`.
    heads : sequence of str
        Head names in logit-column order.

    Returns
    -------
    dict
        Head -> ``method``, ``scale``, ``bias``, ``n_validation``,
        ``brier_before`` and ``brier_after`` (on the validation records).
    """
    model.calibration_scale.fill_(1.0)
    model.calibration_bias.zero_()
    model.eval()
    logits = torch.cat(
        [
            model(*validation.select(slice(start, start + 256)).forward_args())
            for start in range(0, len(validation), 256)
        ]
    ).numpy()
    summary = {}
    for column, head in enumerate(heads):
        rows = validation.label_mask[:, column].numpy()
        labels = validation.labels[rows, column].numpy().astype(int)
        scale, bias = fit_affine(logits[rows, column], labels, method)
        model.calibration_scale[column] = scale
        model.calibration_bias[column] = bias
        entry = {"method": method, "scale": scale, "bias": bias}
        entry["n_validation"] = int(rows.sum())
        if len(np.unique(labels)) == 2:
            before = expit(logits[rows, column])
            after = expit(scale * logits[rows, column] + bias)
            entry["brier_before"] = float(brier_score_loss(labels, before))
            entry["brier_after"] = float(brier_score_loss(labels, after))
        summary[head] = entry
    return summary
