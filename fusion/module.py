"""The Lightning module shared by centralised and federated training."""

from __future__ import annotations

import logging
import warnings

import lightning as L
import torch
from torch.utils.data import DataLoader

from fusion.config import ModelConfig, TrainingConfig
from fusion.model import (
    FusedRiskModel,
    drop_leads,
    drop_modalities,
    masked_multitask_loss,
    target_weights,
)
from ingest.schema import TARGETS
from modalities.batch import ModelInputs


class Proximal:
    """FedProx's proximal term for a module that trains ``self.model``.

    `anchor_to` snapshots the weights as received (the global model); from then
    on `proximal` is ``mu / 2 * ||w - w_anchor||^2`` over the trained weights,
    added to the local loss so a site's update stays near the global model.
    """

    proximal_mu: float = 0.0
    anchor: list[torch.Tensor] | None = None

    def anchor_to(self, mu: float) -> None:
        """Hold the current weights as the anchor of a term of weight ``mu``."""
        self.proximal_mu = mu
        self.anchor = [p.detach().clone() for p in self.model.parameters()]

    def proximal(self) -> torch.Tensor | float:
        """The proximal term (0 without an anchor)."""
        if self.anchor is None or self.proximal_mu == 0.0:
            return 0.0
        total = sum(
            ((p - a) ** 2).sum()
            for p, a in zip(self.model.parameters(), self.anchor, strict=True)
            if p.requires_grad
        )
        return 0.5 * self.proximal_mu * total


class SelfSupervisedModule(Proximal, L.LightningModule):
    """Shared by stages 1 and 2: losses without labels over part of the network.

    A subclass names the losses a batch teaches (`losses`), how they combine
    (``combine``: ``"sum"`` or ``"mean"``) and the part of the model trained
    beside the encoders (``trained``: the name of a `FusedRiskModel`
    ModuleDict of stage heads); the risk heads and fusion layers stay as they are.
    """

    combine = "sum"
    trained = ""

    def __init__(self, model: FusedRiskModel, training: TrainingConfig) -> None:
        super().__init__()
        self.model = model
        self.training_config = training

    def losses(self, batch: ModelInputs) -> dict:
        """The stage's losses on ``batch``, by what they teach."""
        raise NotImplementedError

    def training_step(self, batch: ModelInputs, batch_idx: int) -> torch.Tensor | None:
        """The combined losses (None when the batch teaches nothing)."""
        losses = self.losses(batch)
        if not losses:
            return None
        stacked = torch.stack(list(losses.values()))
        loss = stacked.sum() if self.combine == "sum" else stacked.mean()
        self.log("train_loss", loss, batch_size=len(batch), prog_bar=False)
        return loss + self.proximal()

    def configure_optimizers(self) -> torch.optim.Optimizer:
        """AdamW over the encoders and this stage's heads only."""
        parameters = [
            *self.model.encoders.parameters(),
            *getattr(self.model, self.trained).parameters(),
        ]
        return torch.optim.AdamW(
            parameters,
            lr=self.training_config.learning_rate,
            weight_decay=self.training_config.weight_decay,
        )


class RiskModule(Proximal, L.LightningModule):
    """Stage 3: the masked multi-task loss over heads and findings, with dropout.

    Each present modality is hidden with ``modality_dropout`` and each ECG lead
    zeroed with ``lead_dropout``, so the model learns to read what is left.

    Parameters
    ----------
    model : FusedRiskModel
        The network (shared with the service and the federated apps).
    model_config : ModelConfig
        For the modality and lead dropout rates.
    training : TrainingConfig
        Learning rate and weight decay.
    """

    def __init__(
        self, model: FusedRiskModel, model_config: ModelConfig, training: TrainingConfig
    ) -> None:
        super().__init__()
        self.model = model
        self.modality_dropout = model_config.modality_dropout
        self.lead_dropout = model_config.lead_dropout
        self.register_buffer(
            "target_weights", target_weights(model_config.auxiliary_weight)
        )
        self.training_config = training

    def training_step(self, batch: ModelInputs, batch_idx: int) -> torch.Tensor:
        """One optimisation step with some present modalities and leads hidden."""
        mask = drop_modalities(batch.modality_mask, self.modality_dropout)
        args = list(batch.forward_args())
        args[2] = drop_leads(batch.ecg, self.lead_dropout)
        args[-1] = mask
        logits = self.model(*args)
        loss = masked_multitask_loss(
            logits, batch.labels, batch.label_mask, self.target_weights
        )
        self.log("train_loss", loss, batch_size=len(batch), prog_bar=False)
        return loss + self.proximal()

    def validation_step(self, batch: ModelInputs, batch_idx: int) -> torch.Tensor:
        """Validation loss with every present modality visible."""
        logits = self.model(*batch.forward_args())
        loss = masked_multitask_loss(
            logits, batch.labels, batch.label_mask, self.target_weights
        )
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
    inputs: ModelInputs,
    batch_size: int,
    shuffle: bool,
    seed: int = 0,
    by_modalities: bool = False,
) -> DataLoader:
    """Batches of `ModelInputs` drawn from pre-encoded tensors.

    Parameters
    ----------
    inputs : ModelInputs
    batch_size : int
    shuffle : bool
    seed : int
        Seed of the shuffling order.
    by_modalities : bool
        Draw each batch from records holding the same modalities (stages 1 and
        2: a contrastive loss needs its negatives, a pair its partners, in the
        batch); the batches' order is still shuffled.
    """
    generator = torch.Generator().manual_seed(seed)
    if not by_modalities:
        return DataLoader(
            range(len(inputs)),
            batch_size=batch_size,
            shuffle=shuffle,
            generator=generator if shuffle else None,
            collate_fn=lambda rows: inputs.select(torch.tensor(rows)),
        )
    patterns = inputs.modality_mask.long() @ (
        2 ** torch.arange(inputs.modality_mask.shape[1])
    )
    batches = []
    for pattern in torch.unique(patterns):
        rows = (patterns == pattern).nonzero(as_tuple=True)[0]
        if shuffle:
            rows = rows[torch.randperm(len(rows), generator=generator)]
        batches += [rows[i : i + batch_size] for i in range(0, len(rows), batch_size)]
    order = (
        torch.randperm(len(batches), generator=generator)
        if shuffle
        else range(len(batches))
    )
    return DataLoader(
        [batches[int(i)] for i in order],
        batch_size=None,
        collate_fn=inputs.select,
    )


def fit(
    module: L.LightningModule,
    train: ModelInputs,
    epochs: int,
    batch_size: int,
    seed: int,
    progress: bool = False,
    by_modalities: bool = False,
) -> float:
    """Train for ``epochs`` epochs on ``train``; return the last epoch's mean loss.

    Parameters
    ----------
    module : LightningModule
        A stage's module: `RiskModule`, or the pretraining or alignment module.
    train : ModelInputs
        Pre-encoded training records.
    epochs : int
    batch_size : int
    seed : int
        Seed of the shuffling order and the modality dropout.
    progress : bool
        Show Lightning's progress bar (CLI only).
    by_modalities : bool
        Batch records that hold the same modalities together (see `loader`).

    Returns
    -------
    float
        Mean training loss of the last epoch (NaN when nothing was trained).
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
    batches = loader(
        train, batch_size, shuffle=True, seed=seed, by_modalities=by_modalities
    )
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*does not have many workers.*")
        warnings.filterwarnings("ignore", message=".*num_workers.*")
        warnings.filterwarnings("ignore", message=".*LeafSpec.*")
        warnings.filterwarnings("ignore", message=".*val_dataloader.*")
        warnings.filterwarnings("ignore", message=".*training_step.*returned.*None.*")
        trainer.fit(module, batches)
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
    return torch.cat(outputs) if outputs else torch.zeros(0, len(TARGETS))
