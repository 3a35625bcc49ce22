"""The one record schema every reader produces."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

HEADS = ("acute_mi", "stroke", "postop", "heart_disease")
# Labels that are not risk heads: findings that train the encoders (and name the
# clinical concepts explanations use), never shown as a risk.
AUXILIARY_TARGETS = (
    "cardiomegaly",  # chest X-ray (NIH ChestX-ray14)
    "ecg_hypertrophy",  # PTB-XL diagnostic superclass HYP
    "ecg_st_t_change",  # PTB-XL STTC
    "ecg_conduction",  # PTB-XL CD
)
TARGETS = HEADS + AUXILIARY_TARGETS  # model output columns, heads first
SPLITS = ("train", "validation", "test")


@dataclass
class ECG:
    """A multi-lead ECG.

    Attributes
    ----------
    signal : np.ndarray
        Leads x samples, in millivolts.
    fs : float
        Sampling frequency in Hz.
    lead_names : list of str
        Lead names in the order of the signal's rows (``I``, ``II``, ..., ``V6``).
    """

    signal: np.ndarray
    fs: float
    lead_names: list[str]

    @property
    def duration_s(self) -> float:
        """Length of the recording in seconds."""
        return self.signal.shape[1] / self.fs


@dataclass
class Image:
    """One medical image, de-identified, as the readers hand it on.

    Attributes
    ----------
    pixels : np.ndarray
        Rows x columns, float32, in the modality's output unit after the modality
        LUT / rescale (e.g. Hounsfield units for CT); larger means brighter
        (``MONOCHROME1`` is inverted on reading).
    modality : str
        DICOM modality code (``CR``, ``DX``, ``CT``, ``MR``) or ``PNG``.
    pixel_spacing_mm : tuple of float, optional
        Row and column spacing in millimetres, when the file gives it.
    view : str, optional
        View position (``PA``, ``AP``, ``LL``), when the file gives it.
    """

    pixels: np.ndarray
    modality: str
    pixel_spacing_mm: tuple[float, float] | None = None
    view: str | None = None


@dataclass
class TimelineStep:
    """One earlier visit of an EHR timeline.

    Attributes
    ----------
    years_before : float
        Time of the visit before the record's index time, in years (>= 0).
    values : dict
        Feature name -> value in the canonical unit of the registry.
    """

    years_before: float
    values: dict[str, float]


@dataclass
class PatientRecord:
    """One patient's data at one time, from one site.

    Attributes
    ----------
    record_id : str
        Identifier unique within the cohort (source prefix + source row id).
    patient_id : str
        Pseudonymous patient key used for patient-wise splits.
    site : str
        The data holder (a federated SuperNode serves one site).
    source : str
        The reader that produced the record.
    features : dict
        Tabular features in canonical units, keyed by registry name; absent
        features are simply not in the mapping.
    ecg : ECG, optional
        The 12-lead ECG, if any.
    timeline : list of TimelineStep
        Earlier visits, most recent first; empty when there is no history.
    images : list of Image
        Medical images, read and de-identified; the model reads the first.
    labels : dict
        Target name (a head or an auxiliary target) -> 0/1, only for the
        targets this record has a label for.
    split : str
        ``train``, ``validation`` or ``test``.
    """

    record_id: str
    patient_id: str
    site: str
    source: str
    features: dict[str, float] = field(default_factory=dict)
    ecg: ECG | None = None
    timeline: list[TimelineStep] = field(default_factory=list)
    images: list[Image] = field(default_factory=list)
    labels: dict[str, int] = field(default_factory=dict)
    split: str = "train"

    @property
    def modalities(self) -> list[str]:
        """Names of the modalities this record holds."""
        present = ["tabular"] if self.features else []
        if self.ecg is not None:
            present.append("ecg")
        if self.timeline:
            present.append("timeline")
        if self.images:
            present.append("imaging")
        return present
