"""Training pipeline: federated stages, calibration, comparisons, report, registration.

`train_and_evaluate` is what ``cardiorisk train`` (and ``make demo``) runs: the
federated model through its stages, calibrated on the validation split, the
centralised twin, the traditional tools, and a new registered model version.
With ``full=True`` (``cardiorisk evaluate``) it also trains what the report
compares against (one model per modality, their late fusion, HAIM-style
trees), every stage ablation, and writes the whole report with its figures
and the model card.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from explain.concepts import CONCEPTS, learn_concepts, load_concept_settings
from federated.config import FederatedConfig
from federated.simulation import train_federated
from fusion.calibration import calibrate
from fusion.comparisons import (
    HAIMModel,
    embeddings,
    late_fusion_risk,
    train_unimodal,
    unimodal_risk,
)
from fusion.config import ModelConfig, TrainingConfig
from fusion.evaluation import auroc
from fusion.model import FusedRiskModel
from fusion.model_card import write_model_card
from fusion.module import predict_proba
from fusion.report import evaluate, write_report
from fusion.stages import enabled_stages, train_stages
from fusion.subsets import fused_subsets, subset_table
from fusion.versions import current_version, load_version, save_version
from ingest.cohort import load_cohort, read_manifest
from ingest.config import DataConfig
from ingest.errors import CardioriskError
from ingest.ontology import load_ontology
from ingest.schema import HEADS, TARGETS, PatientRecord
from modalities.batch import MODALITIES, ModelInputs, encode_records
from modalities.tabular import seen_ranges

logger = logging.getLogger(__name__)

# Stage ablation: which stages each variant skips (the full model skips none).
ABLATIONS = {
    "supervised only": ("pretraining", "alignment"),
    "pretraining + supervised": ("alignment",),
    "alignment + supervised": ("pretraining",),
}


@dataclass
class Splits:
    """The chosen sites' records and encoded inputs, split by split."""

    train_records: list[PatientRecord]
    validation_records: list[PatientRecord]
    test_records: list[PatientRecord]
    train: ModelInputs
    validation: ModelInputs
    test: ModelInputs


def load_splits(cohort_dir: Path, sites: list[str], data: DataConfig) -> Splits:
    """Load and encode the train, validation and test splits of ``sites``."""
    records = {
        split: load_cohort(cohort_dir, sites=sites, splits=[split])
        for split in ("train", "validation", "test")
    }
    if not records["test"]:
        raise CardioriskError("the chosen sites hold no test records to evaluate on")
    return Splits(
        records["train"],
        records["validation"],
        records["test"],
        *(encode_records(records[s], data) for s in ("train", "validation", "test")),
    )


def federated_model(
    data: DataConfig,
    model_config: ModelConfig,
    training: TrainingConfig,
    federated: FederatedConfig,
    cohort_dir: Path,
    sites: list[str],
    splits: Splits,
    initial_state: dict[str, torch.Tensor],
    checkpoint_dir: Path | None = None,
    resume: bool = False,
) -> tuple[FusedRiskModel, dict, dict]:
    """Train federatedly through the enabled stages, then calibrate on validation.

    With ``checkpoint_dir``, the global model of every round is kept there;
    ``resume`` goes on from the last one of the same configuration.

    Returns
    -------
    model : FusedRiskModel
    history : dict
        ``train_metrics`` (per stage and round, the aggregated client metrics)
        and ``privacy`` (the spent budget of a run with differential privacy).
    calibration : dict
        Per target, the fitted map and the validation Brier scores.
    """
    model = FusedRiskModel(data, model_config)
    model.load_state_dict(initial_state)
    history = train_federated(
        model,
        sites,
        cohort_dir,
        federated,
        stages=enabled_stages(training),
        checkpoint_dir=checkpoint_dir,
        resume=resume,
    )
    summary = calibrate(model, splits.validation, training.calibration, TARGETS)
    return model, history, summary


def initial_weights(
    data: DataConfig, model_config: ModelConfig, seed: int
) -> dict[str, torch.Tensor]:
    """The seeded starting weights every compared model begins from."""
    torch.manual_seed(seed)
    model = FusedRiskModel(data, model_config)
    return {k: v.clone() for k, v in model.state_dict().items()}


def same_passes(training: TrainingConfig, federated: FederatedConfig) -> TrainingConfig:
    """Training whose stage epochs equal the federated rounds times local epochs."""
    passes = federated.local_epochs
    stages = training.stages.model_copy(deep=True)
    stages.pretraining.epochs = max(1, federated.pretraining_rounds * passes)
    stages.alignment.epochs = max(1, federated.alignment_rounds * passes)
    return training.model_copy(update={"stages": stages})


def centralised_model(
    data: DataConfig,
    model_config: ModelConfig,
    training: TrainingConfig,
    federated: FederatedConfig,
    splits: Splits,
    initial_state: dict[str, torch.Tensor],
) -> FusedRiskModel:
    """The pooled twin: same initial weights, stages and passes over the data."""
    twin_training = same_passes(training, federated)
    twin = FusedRiskModel(data, model_config)
    twin.load_state_dict(initial_state)
    train_stages(
        twin,
        splits.train,
        data,
        model_config,
        twin_training,
        supervised_epochs=federated.num_rounds * federated.local_epochs,
    )
    calibrate(twin, splits.validation, training.calibration, TARGETS)
    return twin


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
    full: bool = False,
    command: str = "cardiorisk train",
    on_step: Callable[[str], None] | None = None,
    checkpoint_dir: Path | None = None,
    resume: bool = False,
    from_current: bool = False,
) -> str:
    """Train federatedly, calibrate, compare, evaluate, register.

    Parameters
    ----------
    data, model_config, training, federated
        Configuration (``training`` says which stages run).
    cohort_dir : Path
        The cohort store (`cardiorisk prepare`).
    models_dir : Path
        Model registry; the new version becomes current.
    reports_dir : Path
        Where ``evaluation.{json,md}``, ``figures/`` and ``model_card.md`` go
        (``full`` only; otherwise the evaluation is kept with the version).
    sites : list of str, optional
        Subset of sites (default: every site in the store).
    centralised : bool
        Also train the pooled (centralised) twin for comparison.
    full : bool
        Also train the comparison models and the stage ablations, and write
        the report.
    command : str
        The command line that regenerates the report (written into it).
    on_step : callable, optional
        Called with a short description as each step starts (progress).
    checkpoint_dir : Path, optional
        Keep the federated model of every round here.
    resume : bool
        Go on from the last checkpoint of the same configuration.
    from_current : bool
        Start from the current registered version's weights (e.g. after a
        site's new data was added with `cardiorisk prepare`), not from new
        ones; the result is registered as a new version that names its parent.

    Returns
    -------
    str
        The registered model version.
    """
    step = on_step or (lambda text: logger.info("%s", text))
    sites = sites or list(read_manifest(cohort_dir)["sites"])
    splits = load_splits(cohort_dir, sites, data)
    initial = initial_weights(data, model_config, training.seed)
    parent = None
    if from_current:
        parent = current_version(models_dir)
        current, current_data, current_config, _ = load_version(models_dir, parent)
        if current_config != model_config or current_data.features != data.features:
            raise CardioriskError(
                f"model version {parent}: field 'model_config': expected the "
                "configuration of this run to retrain from it, found another "
                "(train from new weights instead)"
            )
        initial = {k: v.clone() for k, v in current.state_dict().items()}

    # Step 1: federated training through the stages, one SuperNode per site,
    # then calibration on the validation split (never the test split).
    stages = enabled_stages(training)
    step(f"federated training ({', '.join(stages)}) over {len(sites)} sites")
    model, history, calibration = federated_model(
        data,
        model_config,
        training,
        federated,
        cohort_dir,
        sites,
        splits,
        initial,
        checkpoint_dir,
        resume,
    )
    risks = {"federated": predict_proba(model, splits.test).numpy()}

    # Step 2: the centralised twin.
    if centralised:
        step("centralised training (pooled data, same stages and passes)")
        twin = centralised_model(
            data, model_config, training, federated, splits, initial
        )
        risks["centralised"] = predict_proba(twin, splits.test).numpy()

    # Step 3 (full report): other multimodal approaches and the stage ablation.
    subsets, ablation = [], {}
    if full:
        step("one model per modality, late fusion and HAIM-style trees")
        epochs = federated.num_rounds * federated.local_epochs
        unimodal = train_unimodal(data, model_config, training, splits.train, epochs)
        test_unimodal = unimodal_risk(unimodal, splits.test)
        risks["late_fusion"] = late_fusion_risk(test_unimodal)
        train_features = embeddings(unimodal, splits.train)
        test_features = embeddings(unimodal, splits.test)
        haim = HAIMModel(seed=training.seed).fit(train_features, splits.train)
        risks["haim"] = haim.risk(test_features, splits.test)
        subsets = subset_table(
            model, splits.test, unimodal, haim, test_features, HEADS, seed=training.seed
        )
        ablation["all three stages"] = _head_aurocs(splits, risks["federated"])
        for name, skipped in ABLATIONS.items():
            step(f"stage ablation: {name} (federated)")
            variant, _, _ = federated_model(
                data,
                model_config,
                training.without(*skipped),
                federated,
                cohort_dir,
                sites,
                splits,
                initial,
            )
            ablation[name] = _head_aurocs(
                splits, predict_proba(variant, splits.test).numpy()
            )

    # Step 4: evaluation beside the traditional tools, then registration.
    step("evaluating on held-out patients")
    results = evaluate(
        splits.test_records,
        splits.train_records,
        risks,
        data.feature_names,
        seed=training.seed,
    )
    coverage = {
        target: [m for j, m in enumerate(MODALITIES) if model.coverage[i, j] > 0.5]
        for i, target in enumerate(TARGETS)
    }
    metadata = {
        "training": "federated (Flower simulation)",
        "parent_version": parent,
        "strategy": federated.strategy,
        "secure_aggregation": federated.secure_aggregation.enabled,
        "stages": stages,
        "rounds": {
            "pretraining": federated.pretraining_rounds
            if "pretraining" in stages
            else 0,
            "alignment": federated.alignment_rounds if "alignment" in stages else 0,
            "supervised": federated.num_rounds,
        },
        "local_epochs": federated.local_epochs,
        "sites": sites,
        "coverage": coverage,
        "calibration": calibration,
        "train_metrics": history["train_metrics"],
        "privacy": history.get("privacy"),
        "evaluation": {head: _summary(m) for head, m in results["heads"].items()},
        # Held-out AUROC with only each modality subset visible: the confidence
        # an explanation quotes for a record holding just that subset.
        "subsets": subsets
        or fused_subsets(model, splits.test, HEADS, seed=training.seed),
        # What the service calls a value beyond the training data.
        "seen_ranges": seen_ranges(splits.train_records, data.feature_names),
    }
    # Step 5: the clinical concepts explanations place each record on (TCAV).
    step("learning clinical concepts (TCAV) for explanations")
    bank = learn_concepts(
        model,
        (splits.train_records, splits.train),
        (splits.validation_records, splits.validation),
        load_ontology(),
        load_concept_settings(),
    )
    version = save_version(model, data, model_config, models_dir, metadata)
    bank.save(models_dir / version / CONCEPTS)
    if full:
        step("writing the report, its figures and the model card")
        context = {
            "model_version": version,
            "training": metadata["training"],
            "stages": stages,
            "rounds": metadata["rounds"],
            "local_epochs": federated.local_epochs,
            "sites": sites,
            "command": command,
            "calibration_method": training.calibration,
            "coverage": coverage,
            "site_summary": read_manifest(cohort_dir)["sites"],
        }
        results.update(subsets=subsets, ablation=ablation, calibration=calibration)
        write_report(results, context, reports_dir)
        write_model_card(results, context, reports_dir)
    step(f"registered model version {version}")
    return version


def _head_aurocs(splits: Splits, risk: np.ndarray) -> dict[str, float]:
    found = {}
    for column, head in enumerate(HEADS):
        rows = splits.test.label_mask[:, column].numpy()
        found[head] = auroc(
            splits.test.labels[rows, column].numpy(), risk[rows, column]
        )
    return found


def _summary(metrics: dict) -> dict:
    keys = (
        "auroc",
        "auroc_ci",
        "best_baseline",
        "best_baseline_auroc",
        "gain_ci",
        "brier",
        "n_test",
    )
    found = {k: metrics[k] for k in keys if k in metrics and not _is_nan(metrics[k])}
    central = metrics["comparisons"].get("centralised", {}).get("auroc")
    if central is not None and not _is_nan(central):
        found["centralised_auroc"] = central
    return found


def _is_nan(value: object) -> bool:
    return isinstance(value, float) and np.isnan(value)
