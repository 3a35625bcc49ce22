"""The training pipeline: federated run, centralised twin, evaluation, registration."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from federated.config import FederatedConfig
from federated.simulation import train_federated
from fusion.config import ModelConfig, TrainingConfig
from fusion.model import FusedRiskModel
from fusion.module import RiskModule, fit, predict_proba
from fusion.report import evaluate_heads, write_report
from fusion.versions import save_version
from ingest.cohort import load_cohort, read_manifest
from ingest.config import DataConfig
from ingest.errors import CardioriskError
from modalities.batch import encode_records

logger = logging.getLogger(__name__)


def train_and_evaluate(
    data: DataConfig,
    model_config: ModelConfig,
    training: TrainingConfig,
    federated: FederatedConfig,
    cohort_dir: Path,
    models_dir: Path,
    reports_dir: Path,
    sites: list[str] | None = None,
    centralised: bool = True,
    command: str = "cardiorisk train",
    on_step: Callable[[str], None] | None = None,
) -> str:
    """Train federatedly, train the same model centrally, evaluate both, register.

    Parameters
    ----------
    data, model_config, training, federated
        Configuration.
    cohort_dir : Path
        The cohort store (`cardiorisk prepare`).
    models_dir : Path
        Model registry; the new version becomes current.
    reports_dir : Path
        Where ``evaluation.json`` and ``evaluation.md`` go.
    sites : list of str, optional
        Subset of sites (default: every site in the store).
    centralised : bool
        Also train the pooled (centralised) twin for comparison.
    command : str
        The command line that regenerates the report (written into it).
    on_step : callable, optional
        Called with a short description as each step starts (progress).

    Returns
    -------
    str
        The registered model version.
    """
    step = on_step or (lambda text: logger.info("%s", text))
    sites = sites or list(read_manifest(cohort_dir)["sites"])

    # Step 1: federated training, one simulated SuperNode per site.
    step(f"federated training: {federated.num_rounds} rounds over {len(sites)} sites")
    torch.manual_seed(training.seed)
    model = FusedRiskModel(data, model_config)
    initial_state = {k: v.clone() for k, v in model.state_dict().items()}
    history = train_federated(model, sites, cohort_dir, federated)

    # Step 2: the held-out patients.
    step("loading held-out patients")
    test = load_cohort(cohort_dir, sites=sites, splits=["test"])
    train = load_cohort(cohort_dir, sites=sites, splits=["train"])
    if not test:
        raise CardioriskError("the chosen sites hold no test records to evaluate on")
    test_inputs = encode_records(test, data)
    federated_risk = predict_proba(model, test_inputs).numpy()

    # Step 3: the centralised twin: same initial weights, pooled training data,
    # the same number of passes over the data.
    central_risk = None
    if centralised:
        epochs = federated.num_rounds * federated.local_epochs
        step(f"centralised training (pooled data, {epochs} epochs) for comparison")
        twin = FusedRiskModel(data, model_config)
        twin.load_state_dict(initial_state)
        fit(
            RiskModule(twin, model_config, training),
            encode_records(train, data),
            epochs=epochs,
            batch_size=training.batch_size,
            seed=training.seed,
        )
        central_risk = predict_proba(twin, test_inputs).numpy()

    # Step 4: evaluation beside the traditional tools, then registration.
    step("evaluating on held-out patients")
    results = evaluate_heads(
        test,
        train,
        federated_risk,
        central_risk,
        data.feature_names,
        seed=training.seed,
    )
    metadata = {
        "training": "federated (Flower simulation)",
        "strategy": federated.strategy,
        "rounds": federated.num_rounds,
        "local_epochs": federated.local_epochs,
        "sites": sites,
        "train_metrics": history["train_metrics"],
        "evaluation": {head: _summary(m) for head, m in results.items()},
    }
    version = save_version(model, data, model_config, models_dir, metadata)
    context = {
        "model_version": version,
        "training": metadata["training"],
        "rounds": federated.num_rounds,
        "local_epochs": federated.local_epochs,
        "sites": sites,
        "command": command,
    }
    write_report(results, context, reports_dir)
    step(f"registered model version {version}")
    return version


def _summary(metrics: dict) -> dict:
    keys = ("auroc", "auroc_ci", "baseline_auroc", "centralised_auroc", "n_test")
    return {k: metrics[k] for k in keys if k in metrics and not _is_nan(metrics[k])}


def _is_nan(value: object) -> bool:
    return isinstance(value, float) and np.isnan(value)
