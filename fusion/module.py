"""The Lightning module shared by centralised and federated training."""

from __future__ import annotations

import logging
import warnings

import lightning as L
import torch
from torch.utils.data import DataLoader

from fusion.config import ModelConfig, TrainingConfig
from fusion.model import FusedRiskModel, drop_modalities, masked_multitask_loss
from modalities.batch import ModelInputs


class RiskModule(L.LightningModule):
    """Wraps `FusedRiskModel` with the masked multi-task loss and modality dropout.

    Parameters
    ----------
    model : FusedRiskModel
        The network (shared with the service and the federated apps).
    model_config : ModelConfig
        For the modality dropout rate.
    training : TrainingConfig
        Learning rate and weight decay.
    """

    def __init__(
        self, model: FusedRiskModel, model_config: ModelConfig, training: TrainingConfig
    ) -> None:
        super().__init__()
        self.model = model
        self.modality_dropout = model_config.modality_dropout
        self.training_config = training

    def training_step(self, batch: ModelInputs, batch_idx: int) -> torch.Tensor:
        """One optimisation step with some present modalities hidden."""
        mask = drop_modalities(batch.modality_mask, self.modality_dropout)
        args = list(batch.forward_args())
        args[-1] = mask
        logits = self.model(*args)
        loss = masked_multitask_loss(logits, batch.labels, batch.label_mask)
        self.log("train_loss", loss, batch_size=len(batch), prog_bar=False)
        return loss

    def validation_step(self, batch: ModelInputs, batch_idx: int) -> torch.Tensor:
        """Validation loss with every present modality visible."""
        logits = self.model(*batch.forward_args())
        loss = masked_multitask_loss(logits, batch.labels, batch.label_mask)
        self.log("val_loss", loss, batch_size=len(batch), prog_bar=False)
        return loss

    def configure_optimizers(self) -> torch.optim.Optimizer:
        """AdamW with the configured learning rate and weight decay."""
        return torch.optim.AdamW(
            self.parameters(),
            lr=self.training_config.learning_rate,
            weight_decay=self.training_config.weight_decay,
        )


def loader(
    inputs: ModelInputs, batch_size: int, shuffle: bool, seed: int = 0
) -> DataLoader:
    """Batches of `ModelInputs` drawn from pre-encoded tensors."""
    generator = torch.Generator().manual_seed(seed)
    return DataLoader(
        range(len(inputs)),
        batch_size=batch_size,
        shuffle=shuffle,
        generator=generator if shuffle else None,
        collate_fn=lambda rows: inputs.select(torch.tensor(rows)),
    )


def fit(
    module: RiskModule,
    train: ModelInputs,
    epochs: int,
    batch_size: int,
    seed: int,
    progress: bool = False,
) -> float:
    """Train for ``epochs`` epochs on ``train``; return the last epoch's mean loss.

    Parameters
    ----------
    module : RiskModule
    train : ModelInputs
        Pre-encoded training records.
    epochs : int
    batch_size : int
    seed : int
        Seed of the shuffling order and the modality dropout.
    progress : bool
        Show Lightning's progress bar (CLI only).

    Returns
    -------
    float
        Mean training loss of the last epoch.
    """
    if len(train) == 0:
        return float("nan")
    torch.manual_seed(seed)
    module.train()
    for name in ("lightning.pytorch", "lightning.fabric", "lightning"):
        logging.getLogger(name).setLevel(logging.WARNING)
    trainer = L.Trainer(
        max_epochs=epochs,
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_model_summary=False,
        enable_progress_bar=progress,
        num_sanity_val_steps=0,
        log_every_n_steps=1,
    )
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*does not have many workers.*")
        warnings.filterwarnings("ignore", message=".*num_workers.*")
        warnings.filterwarnings("ignore", message=".*LeafSpec.*")
        warnings.filterwarnings("ignore", message=".*val_dataloader.*")
        trainer.fit(module, loader(train, batch_size, shuffle=True, seed=seed))
    return float(trainer.callback_metrics.get("train_loss", torch.tensor(float("nan"))))


@torch.no_grad()
def predict_proba(
    model: FusedRiskModel, inputs: ModelInputs, batch_size: int = 256
) -> torch.Tensor:
    """Risks (sigmoid of the logits) ``(N, H)`` with every present modality visible."""
    model.eval()
    outputs = [
        torch.sigmoid(
            model(*inputs.select(slice(start, start + batch_size)).forward_args())
        )
        for start in range(0, len(inputs), batch_size)
    ]
    return torch.cat(outputs) if outputs else torch.zeros(0, len(model.heads))
