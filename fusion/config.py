"""Typed configuration of the fused model and of training."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, model_validator

from ingest.config import load_yaml
from ingest.schema import HEADS


class HeadSpec(BaseModel):
    """One outcome head: its horizon (years) and risk bands."""

    horizon_years: float = Field(ge=0)
    bands: tuple[float, float]

    @model_validator(mode="after")
    def _ordered(self) -> HeadSpec:
        low, high = self.bands
        if not 0 < low < high < 1:
            raise ValueError(
                f"bands must satisfy 0 < low < high < 1, found {self.bands}"
            )
        return self

    def band(self, risk: float) -> str:
        """Return ``low``, ``moderate`` or ``high`` for a risk in 0..1."""
        low, high = self.bands
        return "low" if risk < low else "moderate" if risk < high else "high"


class ModelConfig(BaseModel):
    """``configs/model.yaml``."""

    token_dim: int = Field(gt=0)
    fusion_layers: int = Field(ge=1)
    fusion_heads: int = Field(ge=1)
    dropout: float = Field(ge=0, lt=1)
    modality_dropout: float = Field(ge=0, lt=1)
    lead_dropout: float = Field(default=0.0, ge=0, lt=1)
    auxiliary_weight: float = Field(0.5, ge=0)
    ecg_encoder: dict
    tabular_encoder: dict
    timeline_encoder: dict
    imaging_encoder: dict
    heads: dict[str, HeadSpec]

    @model_validator(mode="after")
    def _known_heads(self) -> ModelConfig:
        if list(self.heads) != list(HEADS):
            raise ValueError(
                f"heads must be {list(HEADS)} in that order, found {list(self.heads)}"
            )
        return self


class PretrainingConfig(BaseModel):
    """Stage 1, self-supervised pretraining per modality (`fusion.pretraining`)."""

    enabled: bool = True
    epochs: int = Field(gt=0)
    mask_fraction: float = Field(gt=0, lt=1)
    temperature: float = Field(gt=0)


class AlignmentConfig(BaseModel):
    """Stage 2, cross-modal alignment (`fusion.alignment`)."""

    enabled: bool = True
    epochs: int = Field(gt=0)
    temperature: float = Field(gt=0)


class Stages(BaseModel):
    """The two stages before supervised multi-task tuning (stage 3)."""

    pretraining: PretrainingConfig
    alignment: AlignmentConfig


class TrainingConfig(BaseModel):
    """``configs/training.yaml``."""

    batch_size: int = Field(gt=0)
    learning_rate: float = Field(gt=0)
    weight_decay: float = Field(ge=0)
    epochs: int = Field(gt=0)
    seed: int
    calibration: Literal["temperature", "platt", "none"] = "temperature"
    stages: Stages

    def without(self, *stages: str) -> TrainingConfig:
        """A copy with the named stages (``pretraining``, ``alignment``) skipped."""
        unknown = set(stages) - {"pretraining", "alignment"}
        if unknown:
            raise ValueError(
                f"stages {sorted(unknown)} cannot be skipped; expected pretraining "
                "or alignment"
            )
        copy = self.model_copy(deep=True)
        for stage in stages:
            getattr(copy.stages, stage).enabled = False
        return copy


def load_model_config(config_dir: Path | None = None) -> ModelConfig:
    """Load and validate ``configs/model.yaml``."""
    return ModelConfig.model_validate(load_yaml("model", config_dir))


def load_training_config(config_dir: Path | None = None) -> TrainingConfig:
    """Load and validate ``configs/training.yaml``."""
    return TrainingConfig.model_validate(load_yaml("training", config_dir))
