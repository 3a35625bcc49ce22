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


class ECGQuality(BaseModel):
    """Whether the ECG's beats could be read (neurokit2 template match, 0 to 1).

    Each live lead's beats, cut at the reference lead's R peaks, are correlated
    with the lead's average beat. A lead scoring below ``min_score`` is read as
    zeros; an ECG whose leads' median is below ``min_median`` is not read.
    """

    scores: dict[str, float | None] = Field(
        description="Live lead -> score; None when no beat could be cut from it."
    )
    reference_lead: str = Field(description="The lead whose R peaks cut the beats.")
    min_score: float
    median: float = Field(description="Median score of the live leads.")
    min_median: float
    poor: list[str] = Field(description="Leads read as zeros for their quality.")
    used: bool = Field(description="False when the ECG was set aside.")


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
    q_wave_leads: list[str] = Field(
        default_factory=list,
        description="Leads whose Q wave is pathological (at least 30 ms, 20 ms in "
        "V2-V3, 0.1 mV deep and a quarter of the R wave, or a QS complex; aVR "
        "never). A lone lead is often normal; two contiguous leads suggest an "
        "infarct.",
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
    ecg_quality: ECGQuality | None = Field(
        None, description="The ECG's signal quality, when an ECG was given."
    )
    warnings: list[str] = Field(default_factory=list)


class Health(BaseModel):
    """Service health."""

    status: Literal["ok"]
    model_version: str


class ExplainedInput(BaseModel):
    """One input of the record and what it did to a head's logit."""

    name: str = Field(
        description="Registry feature name, `ecg:<lead>`, `timeline:<n>` or `image`."
    )
    value: float | None = Field(
        None, description="The patient's value, canonical unit."
    )
    unit: str = ""
    modality: Literal["tabular", "ecg", "timeline", "imaging"]
    attribution: float = Field(description="On the logit scale; positive raises risk.")
    direction: Literal["raises", "lowers"]
    concept: str | None = None
    concept_snomed: str | None = None


class AttributionMethod(BaseModel):
    """The top inputs by one attribution method."""

    reasons: list[ExplainedInput]
    completeness_error: float | None = Field(
        None,
        description="Integrated Gradients only: |sum of attributions - (logit - "
        "baseline logit)|.",
    )


class LeadAttribution(BaseModel):
    """Both methods summed over one ECG lead."""

    lead: str
    integrated_gradients: float
    feature_ablation: float


class VisitAttribution(BaseModel):
    """Both methods summed over one earlier visit of the timeline."""

    visit: int = Field(description="0 = the most recent earlier visit.")
    years_before: float
    integrated_gradients: float
    feature_ablation: float


class ConceptAlignment(BaseModel):
    """Where the record's internal state lies on one learned clinical concept."""

    concept: str
    display: str
    snomed: str = Field(description="SNOMED CT concept id.")
    layer: str = Field(
        description="`model.encoders.ecg`, `model.encoders.tabular` "
        "or `fused` (the state the head reads)."
    )
    alignment: float = Field(
        description="0 at random examples' mean projection on the CAV, 1 at the "
        "concept examples' mean."
    )
    aligns: bool = Field(
        description="alignment >= 0.5, and for a lab concept one of its labs measured"
    )
    measured: bool = Field(
        True, description="False for a lab concept none of whose labs was given."
    )
    sensitivity: float = Field(
        description="The head's gradient along the concept at this record "
        "(positive: more of the concept, higher risk)."
    )
    tcav: float = Field(description="TCAV score of the concept for this head.")
    p_value: float = Field(description="Against random concepts (two-sided t-test).")


class Confidence(BaseModel):
    """Held-out accuracy of the head, overall and with only the data given."""

    held_out_auroc: float | None = None
    held_out_auroc_ci: list[float] | None = None
    subset: list[str]
    subset_auroc: float | None = None
    subset_auroc_ci: list[float] | None = None
    subset_n: int | None = None


class ClinicalScore(BaseModel):
    """A traditional score computed from the record, beside the model."""

    name: str
    value: float
    leads: list[str] | None = Field(
        None, description="For the ECG infarct criteria: the leads they count."
    )


class HeadExplanation(BaseModel):
    """Everything that explains one head's risk for this record."""

    head: str
    band: Literal["low", "moderate", "high"]
    risk: float
    risk_with_no_data: float
    modalities_read: list[str]
    modalities_missing: list[str] = Field(
        description="Modalities the head has learned from that the record lacks."
    )
    modalities_not_used: list[str]
    modality_shares: dict[str, float] = Field(
        description="Exact Shapley value of each modality read (risk units); they "
        "sum to risk - risk_with_no_data."
    )
    confidence: Confidence
    clinical_scores: list[ClinicalScore]
    clinical_scores_configured: list[str] = Field(
        default_factory=list,
        description="The traditional scores of this head (configs/explain.yaml).",
    )
    best_tool: str | None = Field(
        None, description="The head's best traditional tool on held-out patients."
    )
    best_tool_held_out_auroc: float | None = None
    gain_over_best_tool_ci: list[float] | None = Field(
        None,
        description="95% bootstrap CI of the model's held-out AUROC minus the best "
        "tool's, paired on the same patients; a gain is not shown when it reaches 0.",
    )
    concepts: list[ConceptAlignment]
    integrated_gradients: AttributionMethod | None = None
    feature_ablation: AttributionMethod | None = None
    methods_agree_on: list[str] = []
    ecg_leads: list[LeadAttribution] = []
    timeline: list[VisitAttribution] = []
    paragraph: str = Field(description="The plain-language explanation.")


class AnomalyOut(BaseModel):
    """A value outside its reference range (configs/reference_ranges.yaml)."""

    source: Literal["lab", "visit", "ecg"]
    name: str
    value: float
    unit: str
    direction: Literal["high", "low"]
    limit: float
    leads: list[str] = []
    years_before: float | None = Field(
        None, description="For a `visit` anomaly: the visit's time before the record."
    )


class ECGAttributionMap(BaseModel):
    """The ECG as the model read it, with both methods per lead and sample."""

    head: str = Field(description="The head these attributions explain.")
    leads: list[str]
    fs: float
    signal: list[list[float]] = Field(description="mV, leads x samples.")
    integrated_gradients: list[list[float]]
    feature_ablation: list[list[float]]


class Explanation(BaseModel):
    """A prediction explained, from input to decision."""

    prediction_id: str
    model_version: str
    language: Literal["en", "vi"]
    concepts_learned: bool = Field(
        description="False for a model version trained before concepts were learned."
    )
    warnings: list[str] = Field(
        default_factory=list,
        description="What reading the input found (lead-off leads, unused data).",
    )
    modalities_present: list[str]
    modalities_absent: list[str]
    anomalies: list[AnomalyOut]
    ecg_infarct_leads: list[str] = Field(
        default_factory=list,
        description="Leads meeting the ECG infarct criteria: ST elevation or a "
        "pathological Q wave where a contiguous lead shows either too.",
    )
    ecg_quality: ECGQuality | None = None
    ecg: ECGAttributionMap | None = None
    heads: list[HeadExplanation]
