"""Model versions: registered checkpoints with the configuration that built them."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path

import torch

from fusion.config import ModelConfig
from fusion.model import FusedRiskModel
from ingest.config import DataConfig
from ingest.errors import CardioriskError

WEIGHTS = "model.pt"
METADATA = "metadata.json"
CALIBRATION_BUFFERS = ("calibration_scale", "calibration_bias")
CURRENT = "CURRENT"


def config_hash(data: DataConfig, model: ModelConfig) -> str:
    """Short SHA-256 of the data and model configuration a model was built with."""
    blob = json.dumps(
        {"data": data.model_dump(mode="json"), "model": model.model_dump(mode="json")},
        sort_keys=True,
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:10]


def save_version(
    model: FusedRiskModel,
    data: DataConfig,
    model_config: ModelConfig,
    models_dir: Path,
    metadata: dict,
) -> str:
    """Register a model version and make it the current one.

    Parameters
    ----------
    model : FusedRiskModel
    data, model_config : DataConfig, ModelConfig
        Stored beside the weights, so the version loads whatever the configs
        say later.
    models_dir : Path
        The registry folder.
    metadata : dict
        Training mode, rounds, strategy, sites, metrics.

    Returns
    -------
    str
        The version id (``YYYYmmdd-HHMMSS-<config hash>``).
    """
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    version = f"{stamp}-{config_hash(data, model_config)}"
    folder = models_dir / version
    folder.mkdir(parents=True, exist_ok=False)
    torch.save(model.state_dict(), folder / WEIGHTS)
    record = {
        "version": version,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "data_config": data.model_dump(mode="json"),
        "model_config": model_config.model_dump(mode="json"),
        **metadata,
    }
    (folder / METADATA).write_text(json.dumps(record, indent=2), encoding="utf-8")
    (models_dir / CURRENT).write_text(version + "\n", encoding="utf-8")
    return version


def current_version(models_dir: Path) -> str | None:
    """The current version id, or None when nothing is registered."""
    pointer = models_dir / CURRENT
    if not pointer.is_file():
        return None
    version = pointer.read_text(encoding="utf-8").strip()
    return version if (models_dir / version / WEIGHTS).is_file() else None


def load_version(
    models_dir: Path, version: str | None = None
) -> tuple[FusedRiskModel, DataConfig, ModelConfig, dict]:
    """Load a registered version (the current one by default), in eval mode.

    Raises
    ------
    CardioriskError
        When no version is registered or the asked one does not exist.
    """
    version = version or current_version(models_dir)
    if version is None:
        raise CardioriskError(
            f"no model version in {models_dir}; run `cardiorisk train` (or `make demo`)"
        )
    folder = models_dir / version
    if not (folder / WEIGHTS).is_file():
        raise CardioriskError(f"model version '{version}' is not in {models_dir}")
    metadata = json.loads((folder / METADATA).read_text(encoding="utf-8"))
    data = DataConfig.model_validate(metadata["data_config"])
    model_config = ModelConfig.model_validate(metadata["model_config"])
    model = FusedRiskModel(data, model_config)
    state = torch.load(folder / WEIGHTS, weights_only=True)
    # Versions saved before calibration existed lack its buffers: identity.
    missing = set(model.state_dict()) - set(state) - set(CALIBRATION_BUFFERS)
    if missing or set(state) - set(model.state_dict()):
        raise CardioriskError(
            f"model version '{version}' does not match this code's model; "
            "retrain with `cardiorisk train`"
        )
    model.load_state_dict(state, strict=False)
    model.eval()
    return model, data, model_config, metadata
