"""EHR timeline modality: earlier visits, time-aware, encoded by a GRU."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from ingest.config import FeatureSpec
from ingest.schema import PatientRecord

YEARS_SCALE = 10.0  # time inputs are years / 10


def timeline_arrays(
    records: Sequence[PatientRecord],
    registry: dict[str, FeatureSpec],
    features: Sequence[str],
    max_steps: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Encode each record's earlier visits, oldest first, right-aligned.

    Each step holds the normalised values of ``features``, their presence flags
    and the visit's time before the record (years / 10).

    Returns
    -------
    steps : np.ndarray
        ``(n_records, max_steps, 2 * len(features) + 1)`` float32.
    step_mask : np.ndarray
        ``(n_records, max_steps)`` bool, True for real steps.
    """
    width = 2 * len(features) + 1
    steps = np.zeros((len(records), max_steps, width), dtype=np.float32)
    mask = np.zeros((len(records), max_steps), dtype=bool)
    for row, record in enumerate(records):
        recent = record.timeline[:max_steps]  # most recent first
        for offset, step in enumerate(recent):
            slot = max_steps - 1 - offset  # newest at the right edge
            for column, name in enumerate(features):
                if name in step.values:
                    steps[row, slot, column] = registry[name].normalise(
                        step.values[name]
                    )
                    steps[row, slot, len(features) + column] = 1.0
            steps[row, slot, -1] = step.years_before / YEARS_SCALE
            mask[row, slot] = True
    return steps, mask


class TimelineEncoder(nn.Module):
    """Embed each visit (values, presence, time gap) and run a GRU over them.

    Parameters
    ----------
    step_width : int
        Width of one encoded step.
    token_dim : int
        Width of the output token.
    hidden : int
        GRU hidden size.
    """

    def __init__(self, step_width: int, token_dim: int, hidden: int) -> None:
        super().__init__()
        self.embed = nn.Sequential(nn.Linear(step_width, hidden), nn.GELU())
        self.gru = nn.GRU(hidden, hidden, batch_first=True)
        self.project = nn.Linear(hidden, token_dim)

    def forward(self, steps: torch.Tensor, step_mask: torch.Tensor) -> torch.Tensor:
        """Map ``(B, S, W)`` steps with ``(B, S)`` mask to ``(B, token_dim)``."""
        embedded = self.embed(steps) * step_mask.unsqueeze(-1)
        output, _ = self.gru(embedded)
        # Steps are right-aligned, so the last output has seen every real visit;
        # padding before them enters as zeros.
        return self.project(output[:, -1])
