"""Imaging modality: a 2-D convolutional encoder over one grey image (X-ray, CT)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from ingest.schema import PatientRecord

PIXEL_MEAN, PIXEL_STD = 0.5, 0.25  # conformed pixels lie in 0..1


def image_array(
    records: Sequence[PatientRecord], size: int
) -> tuple[np.ndarray, np.ndarray]:
    """Stack the records' first images (already conformed to ``size`` x ``size``).

    Returns
    -------
    pixels : np.ndarray
        ``(n_records, 1, size, size)`` float32, standardised; zeros where absent.
    present : np.ndarray
        ``(n_records,)`` bool.
    """
    pixels = np.zeros((len(records), 1, size, size), dtype=np.float32)
    present = np.zeros(len(records), dtype=bool)
    for row, record in enumerate(records):
        if record.images:
            image = record.images[0].pixels[:size, :size]
            standard = (image - PIXEL_MEAN) / PIXEL_STD
            pixels[row, 0, : image.shape[0], : image.shape[1]] = standard
            present[row] = True
    return pixels, present


class ImageEncoder(nn.Module):
    """Strided 2-D convolutions with group norm, then mean and max pooling.

    Parameters
    ----------
    token_dim : int
        Width of the output token.
    channels : sequence of int
        Channels of each convolution block (each halves the side).
    kernel_size : int
        Kernel size in pixels.
    """

    def __init__(
        self, token_dim: int, channels: Sequence[int], kernel_size: int
    ) -> None:
        super().__init__()
        blocks: list[nn.Module] = []
        width = 1
        for out in channels:
            blocks += [
                nn.Conv2d(width, out, kernel_size, stride=2, padding=kernel_size // 2),
                nn.GroupNorm(min(8, out), out),
                nn.GELU(),
            ]
            width = out
        self.features = nn.Sequential(*blocks)
        self.project = nn.Linear(2 * width, token_dim)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        """Map ``(B, 1, H, W)`` standardised pixels to ``(B, token_dim)`` tokens."""
        hidden = self.features(pixels)
        pooled = torch.cat([hidden.mean(dim=(-2, -1)), hidden.amax(dim=(-2, -1))], -1)
        return self.project(pooled)
