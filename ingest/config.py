"""Typed configuration for data sources, sites, splits and the feature registry."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, Field, model_validator

from ingest.errors import CardioriskError

PROJECT_ROOT = Path(__file__).resolve().parent.parent
CONFIG_DIR = PROJECT_ROOT / "configs"


def load_yaml(name: str, config_dir: Path | None = None) -> dict[str, Any]:
    """Read one YAML file of the config directory.

    Parameters
    ----------
    name : str
        File name without the ``.yaml`` suffix (e.g. ``"data"``).
    config_dir : Path, optional
        Directory to read from; ``configs/`` of the project by default, or
        ``CARDIORISK_CONFIG_DIR`` when set.

    Returns
    -------
    dict
        The parsed mapping.
    """
    directory = config_dir or Path(os.environ.get("CARDIORISK_CONFIG_DIR", CONFIG_DIR))
    path = directory / f"{name}.yaml"
    if not path.is_file():
        raise CardioriskError(f"config file {path} is missing; expected a YAML mapping")
    with path.open(encoding="utf-8") as handle:
        content = yaml.safe_load(handle) or {}
    if not isinstance(content, dict):
        raise CardioriskError(f"{path}: expected a YAML mapping at the top level")
    return content


def data_dir() -> Path:
    """Return the real-data folder (``CARDIORISK_DATA``, default ``../shared/data``)."""
    default = PROJECT_ROOT.parent / "shared" / "data"
    return Path(os.environ.get("CARDIORISK_DATA", default)).resolve()


class FeatureSpec(BaseModel):
    """One tabular feature: its canonical unit, normalisation and plausible range.

    Its clinical name, in each language, is in the message catalog
    (``app/locales``, key ``field.<name>``).
    """

    unit: str
    center: float
    scale: float = Field(gt=0)
    range: tuple[float, float]
    molar_mass: float | None = Field(None, gt=0, description="g/mol, for mmol/L")
    valence: int | None = Field(None, gt=0, description="charge of an ion, for mEq/L")
    derived: bool = Field(
        False,
        description="computed from the record (a guideline score), never read",
    )
    unit_implied: bool = Field(
        False,
        description="a value sent without a unit is taken in `unit` (age in years, "
        "blood pressure in mmHg); never for labs, whose units differ by country",
    )

    def normalise(self, value: float) -> float:
        """Map a value in the canonical unit to a unit-free model input."""
        return (value - self.center) / self.scale

    def is_plausible(self, value: float) -> bool:
        """Return whether a value lies inside the plausible range."""
        return self.range[0] <= value <= self.range[1]

    @property
    def range_text(self) -> str:
        """The plausible range with its unit, e.g. ``50..300 mmHg``."""
        return f"{self.range[0]:g}..{self.range[1]:g} {self.unit}"


class UCISource(BaseModel):
    """UCI Heart Disease: one file per hospital."""

    enabled: bool = True
    sites: dict[str, str]


class FraminghamSource(BaseModel):
    """Framingham teaching set: exams as a timeline, incident stroke as label."""

    enabled: bool = True
    file: str
    site: str
    stroke_horizon_years: float = Field(gt=0)


class TableSource(BaseModel):
    """A single-table, single-site source."""

    enabled: bool = True
    file: str
    site: str


class PTBXLSource(BaseModel):
    """PTB-XL subset: WFDB ECGs with SCP-ECG statements."""

    enabled: bool = True
    dir: str
    site_prefix: str
    test_folds: list[int]
    validation_folds: list[int]


class VitalDBSource(TableSource):
    """VitalDB cases table with the post-operative proxy label."""

    departments: list[str]
    prolonged_stay_quantile: float = Field(gt=0, lt=1)
    max_stay_days: float = Field(gt=0)


class ImageSource(BaseModel):
    """A folder of labelled images (``labels.csv`` beside ``images/``)."""

    enabled: bool = True
    dir: str
    site: str


class Sources(BaseModel):
    """Every configured source."""

    uci_heart_disease: UCISource
    framingham: FraminghamSource
    stroke_table: TableSource
    ptbxl: PTBXLSource
    vitaldb: VitalDBSource
    nih_cxr: ImageSource


class ECGSpec(BaseModel):
    """The ECG the model reads: leads, sampling frequency and duration.

    ``min_lead_quality`` and ``min_ecg_quality`` are the signal-quality gate
    (`ingest.ecg_quality.assess_signal_quality`): a lead whose beats match its
    average beat below the first is read as zeros, and an ECG whose live leads'
    median score is below the second is not read at all.
    """

    fs: float = Field(gt=0)
    duration_s: float = Field(gt=0)
    leads: list[str]
    min_lead_quality: float = Field(0.5, ge=0, le=1)
    min_ecg_quality: float = Field(0.65, ge=0, le=1)

    @property
    def n_samples(self) -> int:
        """Number of samples per lead."""
        return int(round(self.fs * self.duration_s))


class ImagingSpec(BaseModel):
    """The image the model reads: one grey channel, ``size`` x ``size`` pixels.

    ``modalities`` are the DICOM Modality values (PNG for a PNG file) the
    encoder learned from; ``min_side`` the fewest pixels an image's shorter
    side may have.
    """

    size: int = Field(ge=16, le=1024)
    modalities: list[str] = Field(default_factory=lambda: ["CR", "DX", "PNG"])
    min_side: int = Field(64, ge=1)


class SplitFractions(BaseModel):
    """Patient-wise split fractions."""

    train: float
    validation: float
    test: float

    @model_validator(mode="after")
    def _sums_to_one(self) -> SplitFractions:
        total = self.train + self.validation + self.test
        if abs(total - 1.0) > 1e-6:
            raise ValueError(f"split fractions must sum to 1, found {total}")
        return self


class DataConfig(BaseModel):
    """The whole of ``configs/data.yaml``."""

    cohort_dir: str
    seed: int
    split: SplitFractions
    sources: Sources
    ecg: ECGSpec
    imaging: ImagingSpec
    features: dict[str, FeatureSpec]
    recorded_features: dict[str, FeatureSpec] = Field(default_factory=dict)
    timeline_features: list[str]
    max_timeline_steps: int = Field(gt=0)

    @model_validator(mode="after")
    def _timeline_in_registry(self) -> DataConfig:
        unknown = [name for name in self.timeline_features if name not in self.features]
        if unknown:
            raise ValueError(f"timeline_features not in the registry: {unknown}")
        return self

    @model_validator(mode="after")
    def _recorded_apart(self) -> DataConfig:
        twice = sorted(set(self.features) & set(self.recorded_features))
        if twice:
            raise ValueError(f"features and recorded_features both name {twice}")
        return self

    @property
    def registry(self) -> dict[str, FeatureSpec]:
        """Every feature a reader may fill: model inputs, then recorded-only ones.

        Recorded features (troponin, LDL cholesterol, ...) are read, converted,
        checked and reported, but no model version has been trained on them.
        Derived features (guideline scores) are computed, never read.
        """
        read = {name: spec for name, spec in self.features.items() if not spec.derived}
        return {**read, **self.recorded_features}

    @property
    def feature_names(self) -> list[str]:
        """Feature names in registry order (the tabular vector's order)."""
        return list(self.features)

    def cohort_path(self) -> Path:
        """Cohort store directory (``CARDIORISK_COHORT`` overrides the config)."""
        path = Path(os.environ.get("CARDIORISK_COHORT", self.cohort_dir))
        return path if path.is_absolute() else PROJECT_ROOT / path


def load_data_config(config_dir: Path | None = None) -> DataConfig:
    """Load and validate ``configs/data.yaml``."""
    return DataConfig.model_validate(load_yaml("data", config_dir))
