"""ECG modality: a 1-D convolutional encoder over 12 leads (10 s at 100 Hz)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from ingest.schema import PatientRecord


def ecg_array(
    records: Sequence[PatientRecord], n_leads: int, n_samples: int
) -> tuple[np.ndarray, np.ndarray]:
    """Stack the records' ECGs (already conformed to the model's leads and `fs`).

    Returns
    -------
    signal : np.ndarray
        ``(n_records, n_leads, n_samples)`` float32 in mV, zeros where absent.
    present : np.ndarray
        ``(n_records,)`` bool.
    """
    signal = np.zeros((len(records), n_leads, n_samples), dtype=np.float32)
    present = np.zeros(len(records), dtype=bool)
    for row, record in enumerate(records):
        if record.ecg is not None:
            trace = record.ecg.signal[:n_leads, :n_samples]
            signal[row, : trace.shape[0], : trace.shape[1]] = trace
            present[row] = True
    return signal, present


class ECGEncoder(nn.Module):
    """Strided 1-D convolutions with group norm, then mean and max pooling over time.

    Group norm (not batch norm) keeps the encoder independent of batch size
    and of each site's statistics, which suits federated averaging.

    Parameters
    ----------
    n_leads : int
        Input leads (12).
    token_dim : int
        Width of the output token.
    channels : sequence of int
        Channels of each convolution block.
    kernel_size : int
        Kernel size in samples (7 samples = 70 ms at 100 Hz).
    """

    def __init__(
        self, n_leads: int, token_dim: int, channels: Sequence[int], kernel_size: int
    ) -> None:
        super().__init__()
        blocks: list[nn.Module] = []
        width = n_leads
        for out in channels:
            blocks += [
                nn.Conv1d(width, out, kernel_size, stride=2, padding=kernel_size // 2),
                nn.GroupNorm(8, out),
                nn.GELU(),
            ]
            width = out
        self.features = nn.Sequential(*blocks)
        self.project = nn.Linear(2 * width, token_dim)

    def forward(self, signal: torch.Tensor) -> torch.Tensor:
        """Map ``(B, leads, samples)`` in mV to ``(B, token_dim)`` tokens."""
        hidden = self.features(signal)
        pooled = torch.cat([hidden.mean(dim=-1), hidden.amax(dim=-1)], dim=-1)
        return self.project(pooled)
