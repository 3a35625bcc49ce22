"""Records to model inputs: one tensor per modality plus a presence mask."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from ingest.config import DataConfig
from ingest.schema import TARGETS, PatientRecord
from modalities.ecg import ecg_array
from modalities.imaging import image_array
from modalities.tabular import tabular_arrays
from modalities.timeline import timeline_arrays

MODALITIES = ("tabular", "ecg", "timeline", "imaging")


@dataclass
class ModelInputs:
    """Everything the fused model reads, for a batch of records.

    Attributes
    ----------
    tabular_values, tabular_present : torch.Tensor
        ``(B, F)`` normalised values and presence flags.
    ecg : torch.Tensor
        ``(B, leads, samples)`` in mV.
    timeline_steps, timeline_mask : torch.Tensor
        ``(B, S, W)`` visits and ``(B, S)`` step mask.
    image : torch.Tensor
        ``(B, 1, size, size)`` standardised grey pixels.
    modality_mask : torch.Tensor
        ``(B, len(MODALITIES))`` bool: which modalities each record holds.
    labels, label_mask : torch.Tensor
        ``(B, len(TARGETS))`` 0/1 targets and which of them are known (heads
        first, then auxiliary targets).
    """

    tabular_values: torch.Tensor
    tabular_present: torch.Tensor
    ecg: torch.Tensor
    timeline_steps: torch.Tensor
    timeline_mask: torch.Tensor
    image: torch.Tensor
    modality_mask: torch.Tensor
    labels: torch.Tensor
    label_mask: torch.Tensor

    def __len__(self) -> int:
        return self.tabular_values.shape[0]

    def select(self, index: torch.Tensor | slice) -> ModelInputs:
        """Return the rows at ``index`` as a new `ModelInputs`."""
        return ModelInputs(**{name: value[index] for name, value in self.items()})

    def items(self) -> list[tuple[str, torch.Tensor]]:
        """Field name and tensor pairs."""
        return [(name, getattr(self, name)) for name in self.__dataclass_fields__]

    def forward_args(self) -> tuple[torch.Tensor, ...]:
        """The tensors in the order `FusedRiskModel.forward` takes them."""
        return (
            self.tabular_values,
            self.tabular_present,
            self.ecg,
            self.timeline_steps,
            self.timeline_mask,
            self.image,
            self.modality_mask,
        )


def encode_records(records: Sequence[PatientRecord], config: DataConfig) -> ModelInputs:
    """Turn records into model inputs (done once per data set, then indexed).

    Parameters
    ----------
    records : sequence of PatientRecord
        Records whose ECGs are conformed to ``config.ecg``.
    config : DataConfig
        Feature registry, ECG and image specs, timeline settings.

    Returns
    -------
    ModelInputs
    """
    values, present = tabular_arrays(records, config.features)
    ecg, ecg_present = ecg_array(records, len(config.ecg.leads), config.ecg.n_samples)
    steps, step_mask = timeline_arrays(
        records, config.features, config.timeline_features, config.max_timeline_steps
    )
    image, image_present = image_array(records, config.imaging.size)
    modality_mask = np.stack(
        [present.any(axis=1), ecg_present, step_mask.any(axis=1), image_present],
        axis=1,
    )
    labels = np.zeros((len(records), len(TARGETS)), dtype=np.float32)
    label_mask = np.zeros_like(labels, dtype=bool)
    for row, record in enumerate(records):
        for column, head in enumerate(TARGETS):
            if head in record.labels:
                labels[row, column] = record.labels[head]
                label_mask[row, column] = True
    return ModelInputs(
        tabular_values=torch.from_numpy(values),
        tabular_present=torch.from_numpy(present),
        ecg=torch.from_numpy(ecg),
        timeline_steps=torch.from_numpy(steps),
        timeline_mask=torch.from_numpy(step_mask),
        image=torch.from_numpy(image),
        modality_mask=torch.from_numpy(modality_mask),
        labels=torch.from_numpy(labels),
        label_mask=torch.from_numpy(label_mask),
    )
