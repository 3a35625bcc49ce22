"""A model trained briefly on real records, for explanation tests.

The cohort is the small one's sources (UCI's four hospitals) with the first 300
PTB-XL records instead of 60: enough myocardial infarction, ST/T change and
conduction disturbance examples for concept activation vectors.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import torch

from fusion.config import load_model_config, load_training_config
from fusion.model import FusedRiskModel, set_coverage
from fusion.stages import train_stages
from ingest.cohort import load_cohort
from ingest.schema import PatientRecord
from modalities.batch import ModelInputs, encode_records


@dataclass
class Trained:
    model: FusedRiskModel
    records: dict[str, list[PatientRecord]]
    inputs: dict[str, ModelInputs]


EXPLAIN_PTBXL = 300


@pytest.fixture(scope="session")
def explain_cohort(small_config, real_data, tmp_path_factory, cohort_builder):
    """UCI plus 300 PTB-XL records, as a cohort store."""
    out = tmp_path_factory.mktemp("explain_cohort")
    return cohort_builder(small_config, real_data, out, EXPLAIN_PTBXL)


@pytest.fixture(scope="session")
def trained(explain_cohort, small_config) -> Trained:
    """Supervised training only, 15 epochs, on the cohort's training split."""
    torch.manual_seed(0)
    records = {
        split: load_cohort(explain_cohort, splits=[split])
        for split in ("train", "validation", "test")
    }
    inputs = {split: encode_records(r, small_config) for split, r in records.items()}
    model = FusedRiskModel(small_config, load_model_config())
    set_coverage(model, inputs["train"])
    training = load_training_config().without("pretraining", "alignment")
    train_stages(
        model, inputs["train"], small_config, load_model_config(), training, 15
    )
    model.eval()
    return Trained(model, records, inputs)
