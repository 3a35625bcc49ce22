"""Typed configuration of federated training."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field

from ingest.config import load_yaml


class FederatedConfig(BaseModel):
    """``configs/federated.yaml``."""

    num_rounds: int = Field(gt=0)
    pretraining_rounds: int = Field(0, ge=0)
    alignment_rounds: int = Field(0, ge=0)
    local_epochs: int = Field(gt=0)
    strategy: Literal["fedavg", "fedprox", "fedadam"] = "fedavg"
    proximal_mu: float = Field(0.01, ge=0)
    server_learning_rate: float = Field(0.01, gt=0)
    client_cpus: float = Field(1.0, gt=0)


def load_federated_config(config_dir: Path | None = None) -> FederatedConfig:
    """Load and validate ``configs/federated.yaml``."""
    return FederatedConfig.model_validate(load_yaml("federated", config_dir))
