"""Shared fixtures: the real-data folder, a small real cohort and a model version."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from fusion.config import load_model_config
from fusion.model import FusedRiskModel
from fusion.versions import save_version
from ingest.cohort import read_sources, write_cohort
from ingest.config import DataConfig, data_dir, load_data_config
from ingest.schema import AUXILIARY_TARGETS, HEADS, TARGETS
from modalities.batch import MODALITIES

SMALL_PTBXL = 60  # PTB-XL rows in the small cohort (ecg_id 1..60)


@pytest.fixture(scope="session")
def real_data() -> Path:
    """The real-data folder; the suite needs it (see README, 'Data')."""
    folder = data_dir()
    assert (folder / "ptbxl_subset").is_dir(), (
        f"real data not found at {folder}; set CARDIORISK_DATA"
    )
    return folder


@pytest.fixture(scope="session")
def data_config() -> DataConfig:
    return load_data_config()


@pytest.fixture(scope="session")
def small_config(data_config: DataConfig) -> DataConfig:
    """Config reading UCI (four hospitals) and the first PTB-XL rows only."""
    sources = data_config.sources.model_copy(deep=True)
    sources.framingham.enabled = False
    sources.stroke_table.enabled = False
    sources.vitaldb.enabled = False
    return data_config.model_copy(update={"sources": sources})


@pytest.fixture(scope="session")
def small_cohort(small_config: DataConfig, real_data: Path, tmp_path_factory) -> Path:
    """A cohort store built from real files: UCI sites plus 60 PTB-XL records."""
    return build_cohort(
        small_config, real_data, tmp_path_factory.mktemp("cohort"), SMALL_PTBXL
    )


@pytest.fixture(scope="session")
def cohort_builder():
    """`build_cohort`, for fixtures elsewhere that need a cohort of their own."""
    return build_cohort


def build_cohort(
    config: DataConfig, real_data: Path, out: Path, ptbxl_limit: int
) -> Path:
    """Read the configured real sources (the first PTB-XL rows) into a cohort store."""
    records, quarantine, hashes = read_sources(
        config, real_data, ptbxl_limit=ptbxl_limit
    )
    write_cohort(records, quarantine, hashes, out, config)
    return out


@pytest.fixture(scope="session")
def model_version(data_config: DataConfig, tmp_path_factory) -> tuple[Path, str]:
    """A registered (untrained, seeded) model version for service and API tests.

    Its coverage is that of the real sites: the risk heads read the tabular
    values, the ECG and the timeline; the ECG findings the ECG; cardiomegaly
    the image (each beside the tabular values).
    """
    models = tmp_path_factory.mktemp("models")
    torch.manual_seed(0)
    model_config = load_model_config()
    model = FusedRiskModel(data_config, model_config)
    reads = {target: ("tabular", "ecg", "timeline") for target in HEADS}
    reads |= {target: ("tabular", "ecg") for target in AUXILIARY_TARGETS}
    reads["cardiomegaly"] = ("tabular", "imaging")
    for i, target in enumerate(TARGETS):
        for j, modality in enumerate(MODALITIES):
            model.coverage[i, j] = float(modality in reads[target])
    version = save_version(
        model, data_config, model_config, models, {"training": "none"}
    )
    return models, version


@pytest.fixture(scope="session")
def ecg_upload(real_data: Path) -> dict:
    """Multipart files of PTB-XL ecg_id 8 (inferior MI), 100 Hz, for API tests."""
    base = real_data / "ptbxl_subset/records100/00000/00008_lr"
    return {
        "ecg_header": ("00008_lr.hea", base.with_suffix(".hea").read_bytes()),
        "ecg_signal": ("00008_lr.dat", base.with_suffix(".dat").read_bytes()),
    }
