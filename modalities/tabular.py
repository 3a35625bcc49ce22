"""Tabular modality: clinical and lab features with missingness indicators."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from ingest.clinical_scores import with_scores
from ingest.config import FeatureSpec
from ingest.schema import PatientRecord

SEEN_COVERAGE = 0.99  # middle share of the training values a version keeps as seen
MIN_SEEN_VALUES = 20  # a feature with fewer training values gets no range


def seen_ranges(
    records: Sequence[PatientRecord],
    features: Sequence[str],
    coverage: float = SEEN_COVERAGE,
) -> dict[str, list[float]]:
    """The middle ``coverage`` of each feature's values over ``records``.

    A model version keeps these from its training split, so the service can
    say when a patient's value lies beyond what the model learned from.

    Parameters
    ----------
    records : sequence of PatientRecord
        The training records (canonical units).
    features : sequence of str
        Feature names to range.
    coverage : float
        Share of the values inside the range: 0.99 keeps the 0.5th to the
        99.5th percentile.

    Returns
    -------
    dict
        Feature -> ``[low, high]`` (3 significant digits), for each feature
        with at least `MIN_SEEN_VALUES` values.
    """
    tail = 100 * (1 - coverage) / 2
    found = {}
    for name in features:
        values = [r.features[name] for r in records if name in r.features]
        if len(values) < MIN_SEEN_VALUES:
            continue
        low, high = np.percentile(values, [tail, 100 - tail])
        found[name] = [float(f"{low:.3g}"), float(f"{high:.3g}")]
    return found


def tabular_arrays(
    records: Sequence[PatientRecord], registry: dict[str, FeatureSpec]
) -> tuple[np.ndarray, np.ndarray]:
    """Normalised feature values and presence flags, registry order.

    Guideline scores (``derived`` features) are computed from the record's own
    features where their fields exist (`ingest.clinical_scores`).

    Parameters
    ----------
    records : sequence of PatientRecord
    registry : dict
        Feature registry; its order is the vector's order.

    Returns
    -------
    values : np.ndarray
        ``(n_records, n_features)`` float32, 0 where a feature is missing.
    present : np.ndarray
        ``(n_records, n_features)`` float32, 1 where a feature was measured.
    """
    names = list(registry)
    values = np.zeros((len(records), len(names)), dtype=np.float32)
    present = np.zeros_like(values)
    for row, record in enumerate(records):
        features = with_scores(record.features)
        for column, name in enumerate(names):
            if name in features:
                values[row, column] = registry[name].normalise(features[name])
                present[row, column] = 1.0
    return values, present


class TabularEncoder(nn.Module):
    """MLP over feature values and their missingness indicators, to one token.

    Parameters
    ----------
    n_features : int
        Number of registry features.
    token_dim : int
        Width of the output token.
    hidden : int
        Width of the hidden layer.
    dropout : float
        Dropout between layers.
    """

    def __init__(
        self, n_features: int, token_dim: int, hidden: int, dropout: float
    ) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(2 * n_features, hidden),
            nn.GELU(),
            nn.Dropout(dropout),
            nn.Linear(hidden, token_dim),
        )

    def forward(self, values: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
        """Map ``(B, F)`` values and presence flags to ``(B, token_dim)`` tokens."""
        return self.net(torch.cat([values * present, present], dim=-1))
