"""The three training stages, run in order: pretraining, alignment, supervised tuning.

Centralised training runs them here one after the other; federated training
runs each stage for its own rounds, every client calling `run_stage` on its
site's data. A stage turned off in ``configs/training.yaml`` (or skipped on the
command line) is left out; supervised tuning always runs.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import lightning as L

from fusion.alignment import AlignmentModule
from fusion.config import ModelConfig, TrainingConfig
from fusion.model import STAGES, FusedRiskModel, set_coverage
from fusion.module import RiskModule, fit
from fusion.pretraining import PretrainingModule
from ingest.config import DataConfig
from modalities.batch import ModelInputs

logger = logging.getLogger(__name__)


def enabled_stages(training: TrainingConfig) -> list[str]:
    """The stages that run, in order (supervised tuning always)."""
    return [
        stage
        for stage in STAGES
        if stage == "supervised" or getattr(training.stages, stage).enabled
    ]


def stage_module(
    stage: str,
    model: FusedRiskModel,
    data: DataConfig,
    model_config: ModelConfig,
    training: TrainingConfig,
) -> L.LightningModule:
    """The Lightning module that trains ``model`` in ``stage``."""
    if stage == "pretraining":
        return PretrainingModule(
            model, data.ecg.fs, training.stages.pretraining, training
        )
    if stage == "alignment":
        return AlignmentModule(model, training.stages.alignment, training)
    if stage == "supervised":
        return RiskModule(model, model_config, training)
    raise ValueError(f"stage '{stage}' unknown; expected one of {list(STAGES)}")


def run_stage(
    stage: str,
    model: FusedRiskModel,
    train: ModelInputs,
    epochs: int,
    data: DataConfig,
    model_config: ModelConfig,
    training: TrainingConfig,
    seed: int | None = None,
    progress: bool = False,
    proximal_mu: float = 0.0,
) -> float:
    """Train ``model`` in one stage for ``epochs`` passes over ``train``.

    With ``proximal_mu`` > 0 (FedProx), the local loss adds
    ``mu / 2 * ||w - w_start||^2``, ``w_start`` being the weights on entry.

    Returns
    -------
    float
        Mean loss of the last epoch (NaN when the data teach this stage nothing,
        e.g. alignment at a site holding one modality).
    """
    if stage == "supervised":
        set_coverage(model, train)
    module = stage_module(stage, model, data, model_config, training)
    if proximal_mu > 0:
        module.anchor_to(proximal_mu)
    return fit(
        module,
        train,
        epochs=epochs,
        batch_size=training.batch_size,
        seed=training.seed if seed is None else seed,
        progress=progress,
        by_modalities=stage != "supervised",
    )


def train_stages(
    model: FusedRiskModel,
    train: ModelInputs,
    data: DataConfig,
    model_config: ModelConfig,
    training: TrainingConfig,
    supervised_epochs: int | None = None,
    on_stage: Callable[[str], None] | None = None,
) -> dict[str, float]:
    """Centralised training through every enabled stage.

    Parameters
    ----------
    model : FusedRiskModel
        Trained in place.
    train : ModelInputs
        Pooled training records.
    data, model_config, training
        Configuration; each stage's epochs come from ``training``.
    supervised_epochs : int, optional
        Epochs of stage 3 (default ``training.epochs``).
    on_stage : callable, optional
        Called with each stage's name as it starts.

    Returns
    -------
    dict
        Stage -> mean loss of its last epoch.
    """
    losses = {}
    for stage in enabled_stages(training):
        if on_stage is not None:
            on_stage(stage)
        epochs = (
            (supervised_epochs or training.epochs)
            if stage == "supervised"
            else getattr(training.stages, stage).epochs
        )
        losses[stage] = run_stage(
            stage, model, train, epochs, data, model_config, training
        )
        logger.info("%s: %d epochs, last loss %.4f", stage, epochs, losses[stage])
    return losses
