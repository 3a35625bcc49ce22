"""A checkpoint of the global model after every federated round, and resuming.

Each checkpoint is ``<dir>/<stage>-round-<i>.pt`` (the global weights, a torch
state dict) beside ``<stage>-round-<i>.json``: the stage, the round and the
stage's rounds, the strategy, the sites, the round's aggregated metrics and a
hash of the run's configuration. A strategy that learns on the server
(FedAdam's moments) adds ``<stage>-round-<i>.server.pt``. `resume_point` finds
where a run stopped, so training can go on from its last round instead of
starting over; a checkpoint whose configuration hash differs from the run's is
refused by name.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from flwr.app import ArrayRecord

from ingest.errors import CardioriskError

logger = logging.getLogger(__name__)


def config_hash(*parts: object) -> str:
    """Short SHA-256 of configurations (pydantic models or JSON-able values).

    A resumed run must have the same hash as the run that wrote the checkpoint.
    """
    plain = [
        p.model_dump(mode="json") if hasattr(p, "model_dump") else p for p in parts
    ]
    text = json.dumps(plain, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def save_checkpoint(
    folder: Path,
    stage: str,
    server_round: int,
    arrays: ArrayRecord,
    metadata: dict,
    server_state: dict[str, np.ndarray] | None = None,
) -> Path:
    """Write the global model of one round and its metadata; return the .pt path.

    ``server_state``, when not empty, is the strategy's own state
    (`federated.strategy.CountWeighted.server_state`).
    """
    folder.mkdir(parents=True, exist_ok=True)
    stem = folder / f"{stage}-round-{server_round}"
    torch.save(arrays.to_torch_state_dict(), stem.with_suffix(".pt"))
    if server_state:
        tensors = {k: torch.from_numpy(np.array(v)) for k, v in server_state.items()}
        torch.save(tensors, stem.with_suffix(".server.pt"))
    record = {"stage": stage, "round": server_round, "saved": time.time(), **metadata}
    stem.with_suffix(".json").write_text(json.dumps(record, indent=1), "utf-8")
    return stem.with_suffix(".pt")


@dataclass(frozen=True)
class ResumePoint:
    """Where a stopped run goes on: after ``round`` of ``stage``, from ``weights``."""

    stage: str
    round: int
    weights: dict[str, torch.Tensor]
    metadata: dict
    server_state: dict[str, np.ndarray] = field(default_factory=dict)


def resume_point(folder: Path, stages: list[str], expected_hash: str) -> ResumePoint:
    """The last checkpoint in ``folder``, in the order of ``stages``.

    Raises
    ------
    CardioriskError
        When the folder holds no checkpoint, or the last one was written by a
        run with another configuration.
    """
    found = []
    for meta_path in folder.glob("*-round-*.json"):
        metadata = json.loads(meta_path.read_text("utf-8"))
        if metadata.get("stage") in stages:
            order = (stages.index(metadata["stage"]), int(metadata["round"]))
            found.append((order, meta_path, metadata))
    if not found:
        raise CardioriskError(f"{folder}: no checkpoint of stages {stages} to resume")
    _, meta_path, metadata = max(found, key=lambda item: item[0])
    if metadata.get("config_hash") != expected_hash:
        raise CardioriskError(
            f"{meta_path.name}: field 'config_hash': expected {expected_hash} (this "
            f"run's configuration), found {metadata.get('config_hash')}; a checkpoint "
            "resumes only the run that wrote it"
        )
    weights = torch.load(meta_path.with_suffix(".pt"), weights_only=True)
    server_path = meta_path.with_suffix(".server.pt")
    server_state = {}
    if server_path.exists():
        loaded = torch.load(server_path, weights_only=True)
        server_state = {k: v.numpy() for k, v in loaded.items()}
    logger.info(
        "resuming after %s round %d of %d",
        metadata["stage"],
        metadata["round"],
        metadata.get("rounds", metadata["round"]),
    )
    return ResumePoint(
        metadata["stage"], int(metadata["round"]), weights, metadata, server_state
    )
