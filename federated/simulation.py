"""Federated training on one machine: Flower simulation, a SuperNode per site."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from flwr.app import ArrayRecord
from flwr.simulation import run_simulation

from federated.checkpoints import config_hash, resume_point
from federated.client_app import app as client_app
from federated.config import FederatedConfig
from federated.server_app import make_server_app
from fusion.model import FusedRiskModel
from ingest.errors import CardioriskError

logger = logging.getLogger(__name__)


def train_federated(
    model: FusedRiskModel,
    sites: list[str],
    cohort_dir: Path,
    federated: FederatedConfig,
    stages: list[str] | None = None,
    verbose: bool = False,
    checkpoint_dir: Path | None = None,
    resume: bool = False,
) -> dict:
    """Train ``model`` federatedly across ``sites``; load the final weights into it.

    Parameters
    ----------
    model : FusedRiskModel
        Initial model; updated in place with the final global weights.
    sites : list of str
        One simulated SuperNode per site.
    cohort_dir : Path
        Cohort store the clients read.
    federated : FederatedConfig
        Rounds of each stage, local epochs, CPUs per client.
    stages : list of str, optional
        Stages to run in order (default: supervised tuning only).
    verbose : bool
        Keep Flower's and Ray's own logs (default: only one line per round).
    checkpoint_dir : Path, optional
        Write the global model after every round under it, in a folder named
        by the hash of the configuration, sites and stages.
    resume : bool
        Go on from the last checkpoint in ``checkpoint_dir`` (written by a run
        of the same configuration, sites and stages) instead of starting over.

    Returns
    -------
    dict
        ``train_metrics`` per stage and round; ``privacy``, the spent
        ``(epsilon, delta)`` budget and its settings (None without DP).
    """
    if not sites:
        raise CardioriskError("federated training needs at least one site")
    if not verbose:
        logging.getLogger("flwr").setLevel(logging.WARNING)
        os.environ.setdefault("RAY_DEDUP_LOGS", "1")
        os.environ.setdefault("RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO", "0")
    result: dict = {}
    stages = stages or ["supervised"]
    run_hash = config_hash(federated, stages, sites)
    # One folder per configuration: a run resumes only its own checkpoints.
    folder = checkpoint_dir / run_hash if checkpoint_dir is not None else None
    point = None
    if resume:
        if folder is None:
            raise CardioriskError("resuming needs the checkpoint folder of the run")
        point = resume_point(folder, stages, run_hash)
    server_app = make_server_app(
        initial=ArrayRecord(model.state_dict()),
        sites=sites,
        cohort_dir=str(cohort_dir),
        federated=federated,
        result=result,
        stages=stages,
        checkpoint_dir=str(folder) if folder is not None else None,
        resume=point,
        run_hash=run_hash,
    )
    run_simulation(
        server_app=server_app,
        client_app=client_app,
        num_supernodes=len(sites),
        backend_config={
            "client_resources": {"num_cpus": federated.client_cpus, "num_gpus": 0.0},
            "init_args": {"log_to_driver": verbose, "include_dashboard": False},
        },
        verbose_logging=verbose,
    )
    if not result.get("train_metrics", {}).get("supervised"):
        raise CardioriskError(
            "federated training failed: no site returned a usable update in any "
            "round (run `cardiorisk train --verbose` to see each client's error)"
        )
    model.load_state_dict(result["arrays"].to_torch_state_dict())
    return {
        "train_metrics": result.get("train_metrics", {}),
        "privacy": result.get("privacy"),
    }
