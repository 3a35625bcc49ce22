"""Stage 2: cross-modal alignment on records that hold two or more modalities.

For every pair of modalities a batch's records both hold (PTB-XL: ECG with
age, sex and body size; Framingham: the exam with earlier exams; the chest
X-rays with age and sex), each record's two tokens, through the alignment
projectors, must match each other better than any other record's (a symmetric
InfoNCE loss, as CLIP does for images and text). The encoders learn what one
modality says about the other, from data without labels.

VitalDB holds one modality (its surgery context is part of the table), so it
takes no part in this stage.
"""

from __future__ import annotations

import itertools

import torch
from torch import nn

from fusion.config import AlignmentConfig, TrainingConfig
from fusion.model import FusedRiskModel
from fusion.module import SelfSupervisedModule
from modalities.batch import MODALITIES, ModelInputs

MIN_PAIRS = 2  # records a pair of modalities needs in a batch to be aligned


def info_nce(
    first: torch.Tensor, second: torch.Tensor, temperature: float
) -> torch.Tensor:
    """Symmetric InfoNCE of matched rows ``(B, D)`` of two modalities."""
    first = nn.functional.normalize(first, dim=1)
    second = nn.functional.normalize(second, dim=1)
    logits = first @ second.T / temperature
    targets = torch.arange(first.shape[0], device=first.device)
    return 0.5 * (
        nn.functional.cross_entropy(logits, targets)
        + nn.functional.cross_entropy(logits.T, targets)
    )


def modality_tokens(
    model: FusedRiskModel, batch: ModelInputs, name: str, rows: torch.Tensor
) -> torch.Tensor:
    """The alignment projection of one modality's encoder output for ``rows``."""
    inputs = {
        "tabular": (batch.tabular_values, batch.tabular_present),
        "ecg": (batch.ecg,),
        "timeline": (batch.timeline_steps, batch.timeline_mask),
        "imaging": (batch.image,),
    }[name]
    token = model.encode(name, *(x[rows] for x in inputs))
    return model.alignment[name](token)


class AlignmentModule(SelfSupervisedModule):
    """Mean InfoNCE over the modality pairs a batch holds together.

    Parameters
    ----------
    model : FusedRiskModel
        The network; its encoders and alignment projectors are trained.
    config : AlignmentConfig
        Contrastive temperature.
    training : TrainingConfig
        Learning rate and weight decay.
    """

    combine = "mean"
    trained = "alignment"

    def __init__(
        self, model: FusedRiskModel, config: AlignmentConfig, training: TrainingConfig
    ) -> None:
        super().__init__(model, training)
        self.config = config

    def losses(self, batch: ModelInputs) -> dict[tuple[str, str], torch.Tensor]:
        """InfoNCE of each modality pair held together by at least two records."""
        found = {}
        for a, b in itertools.combinations(range(len(MODALITIES)), 2):
            rows = batch.modality_mask[:, a] & batch.modality_mask[:, b]
            if int(rows.sum()) < MIN_PAIRS:
                continue
            first = modality_tokens(self.model, batch, MODALITIES[a], rows)
            second = modality_tokens(self.model, batch, MODALITIES[b], rows)
            pair = (MODALITIES[a], MODALITIES[b])
            found[pair] = info_nce(first, second, self.config.temperature)
        return found
