"""Typed configuration of federated training."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field

from ingest.config import load_yaml


class PrivacyConfig(BaseModel):
    """Differential privacy of each site's update (see `federated.privacy`)."""

    enabled: bool = False
    clipping_norm: float = Field(1.0, gt=0)
    noise_multiplier: float = Field(1.0, gt=0)
    delta: float = Field(1e-5, gt=0, lt=1)


class SecureAggregationConfig(BaseModel):
    """SecAgg+ of the sites' updates (see `federated.secure_aggregation`)."""

    enabled: bool = False
    num_shares: int | float = Field(
        1.0, gt=0, description="shares of each site's keys (a fraction: of the sites)"
    )
    reconstruction_threshold: int | float = Field(
        0.5, gt=0, description="shares that rebuild a key (a fraction: of the shares)"
    )
    clipping_range: float = Field(2.0, gt=0)
    quantization_range: int = Field(2**24, gt=0, le=2**31)
    max_examples: int = Field(10_000, gt=0)
    timeout: float | None = Field(600.0, gt=0)


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
    privacy: PrivacyConfig = Field(default_factory=PrivacyConfig)
    secure_aggregation: SecureAggregationConfig = Field(
        default_factory=SecureAggregationConfig
    )


def load_federated_config(config_dir: Path | None = None) -> FederatedConfig:
    """Load and validate ``configs/federated.yaml``."""
    return FederatedConfig.model_validate(load_yaml("federated", config_dir))
