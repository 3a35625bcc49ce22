"""Response models shared by the service, the API, the CLI and the dashboard."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class Reason(BaseModel):
    """One input that moved a risk, named in clinical terms."""

    name: str = Field(
        description="Registry feature name, `ecg:<lead>`, `timeline:<n>` or `image`."
    )
    label: str = Field(description="Clinical name, e.g. 'Systolic blood pressure'.")
    value: float | None = Field(
        None, description="The patient's value, canonical unit."
    )
    unit: str = ""
    modality: Literal["tabular", "ecg", "timeline", "imaging"]
    attribution: float = Field(
        description="Integrated Gradients attribution on the logit scale "
        "(positive raises the risk)."
    )
    direction: Literal["raises", "lowers"]
    concept: str | None = Field(
        None, description="Clinical concept the input belongs to (configs/ontology)."
    )
    concept_snomed: str | None = Field(None, description="Its SNOMED CT code.")


class HeadRisk(BaseModel):
    """The risk for one outcome head."""

    head: str = Field(description="acute_mi | stroke | postop | heart_disease")
    label: str
    risk: float = Field(ge=0, le=1, description="Probability 0..1.")
    percent: float = Field(ge=0, le=100)
    band: Literal["low", "moderate", "high"]
    horizon_years: float = Field(description="0 means a present-state diagnosis.")
    reasons: list[Reason]
    modality_contributions: dict[str, float] = Field(
        description="Exact Shapley value of each present modality, in risk units "
        "(they sum to the risk minus the risk with no modality)."
    )
    modalities_used: list[str] = Field(
        default_factory=list,
        description="The given modalities this head has learned from and read; "
        "others given are ignored by it.",
    )


class Finding(BaseModel):
    """An auxiliary output: what the data show (e.g. ECG hypertrophy), not a risk."""

    target: str = Field(
        description="cardiomegaly | ecg_hypertrophy | ecg_st_t_change | ecg_conduction"
    )
    label: str
    probability: float = Field(ge=0, le=1)
    percent: float = Field(ge=0, le=100)
    concept: str | None = Field(None, description="Clinical concept (ontology).")
    concept_snomed: str | None = Field(None, description="Its SNOMED CT code.")
    modalities_used: list[str]


class ECGSummary(BaseModel):
    """Measurements of the ECG the model read (neurokit2, lead II), for a person.

    Intervals are None where the waves could not be delineated.
    """

    heart_rate_bpm: float = Field(description="Heart rate, per minute.")
    pr_ms: float | None = Field(None, description="PR interval, ms.")
    qrs_ms: float | None = Field(None, description="QRS duration, ms.")
    qt_ms: float | None = Field(None, description="QT interval, ms.")
    qtc_ms: float | None = Field(None, description="QT corrected (Bazett), ms.")
    st_deviation_mv: dict[str, float] = Field(
        default_factory=dict,
        description="ST deviation 60-100 ms after the R peak, per lead, in mV.",
    )


class PredictionResult(BaseModel):
    """A prediction for one patient."""

    prediction_id: str
    model_version: str
    modalities_used: list[str]
    modalities_missing: list[str]
    risks: list[HeadRisk]
    findings: list[Finding] = Field(
        default_factory=list,
        description="Auxiliary findings, only from a modality they learned from.",
    )
    ecg_measurements: ECGSummary | None = Field(
        None, description="Measurements of the uploaded ECG, when one was given."
    )
    warnings: list[str] = Field(default_factory=list)


class Health(BaseModel):
    """Service health."""

    status: Literal["ok"]
    model_version: str
