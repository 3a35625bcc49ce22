"""Response models shared by the service, the API, the CLI and the dashboard."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class Reason(BaseModel):
    """One input that moved a risk, named in clinical terms."""

    name: str = Field(
        description="Registry feature name, `ecg:<lead>` or `timeline:<n>`."
    )
    label: str = Field(description="Clinical name, e.g. 'Systolic blood pressure'.")
    value: float | None = Field(
        None, description="The patient's value, canonical unit."
    )
    unit: str = ""
    modality: Literal["tabular", "ecg", "timeline"]
    attribution: float = Field(
        description="Integrated Gradients attribution on the logit scale "
        "(positive raises the risk)."
    )
    direction: Literal["raises", "lowers"]


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


class PredictionResult(BaseModel):
    """A prediction for one patient."""

    prediction_id: str
    model_version: str
    modalities_used: list[str]
    modalities_missing: list[str]
    risks: list[HeadRisk]
    warnings: list[str] = Field(default_factory=list)


class Health(BaseModel):
    """Service health."""

    status: Literal["ok"]
    model_version: str
