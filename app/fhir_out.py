"""Predictions as FHIR R4 RiskAssessment resources, validated by fhir.resources.

fhir.resources ships its R4-family models as ``R4B`` (FHIR 4.3); RiskAssessment is
the same resource in R4 and R4B, so what is validated here is valid R4.
"""

from __future__ import annotations

from datetime import UTC, datetime

from fhir.resources.R4B.riskassessment import RiskAssessment
from pydantic import BaseModel

from app.i18n import ecg_measurement_text
from app.schemas import Finding, HeadRisk, PredictionResult
from ingest.config import load_yaml

SNOMED = "http://snomed.info/sct"
UCUM = "http://unitsofmeasure.org"
RISK_PROBABILITY = "http://terminology.hl7.org/CodeSystem/risk-probability"


class Coding(BaseModel):
    """A code and its display text."""

    code: str
    display: str


class Outcome(Coding):
    """A head's outcome code and, in words, when the outcome is meant to happen."""

    when: str


class FhirOutConfig(BaseModel):
    """The whole of ``configs/fhir.yaml``."""

    method_system: str
    outcomes: dict[str, Outcome]
    qualitative_risk: dict[str, Coding]


def load_fhir_config() -> FhirOutConfig:
    """Load ``configs/fhir.yaml``."""
    return FhirOutConfig.model_validate(load_yaml("fhir"))


def risk_assessment(
    result: PredictionResult,
    subject: dict | None = None,
    basis: list[dict] | None = None,
    config: FhirOutConfig | None = None,
) -> dict:
    """Write a prediction as a FHIR R4 RiskAssessment and validate it.

    Parameters
    ----------
    result : PredictionResult
        The prediction (one per head).
    subject : dict, optional
        A FHIR Reference to the patient, e.g. ``{"reference": "Patient/f001"}``
        when the input was a FHIR Bundle; a display-only reference otherwise.
    basis : list of dict, optional
        FHIR References to the inputs the prediction used (observations,
        conditions, the ECG file).
    config : FhirOutConfig, optional
        Outcome codes and the model-version system; ``configs/fhir.yaml`` by default.

    Returns
    -------
    dict
        The resource as JSON-ready data (``resourceType`` ``RiskAssessment``).
    """
    config = config or load_fhir_config()
    predictions = [_prediction(head, config) for head in result.risks]
    predictions += [_finding(finding) for finding in result.findings]
    resource = {
        "resourceType": "RiskAssessment",
        "id": result.prediction_id,
        "status": "final",
        "subject": subject or {"display": "patient of this request (not identified)"},
        "occurrenceDateTime": datetime.now(UTC).isoformat(timespec="seconds"),
        "method": {
            "coding": [
                {
                    "system": config.method_system,
                    "code": result.model_version,
                    "display": f"cardiorisk fused model {result.model_version}",
                }
            ],
            "text": "cardiorisk multimodal fused model (federated training)",
        },
        "prediction": predictions,
    }
    if basis:
        resource["basis"] = basis
    notes = [f"Modalities used: {', '.join(result.modalities_used) or 'none'}."]
    if result.ecg_measurements is not None:
        notes.append(ecg_measurement_text(result.ecg_measurements, "en") + ".")
    notes += [f"Warning: {warning}" for warning in result.warnings]
    resource["note"] = [{"text": text} for text in notes]
    validated = RiskAssessment.model_validate(resource)
    return validated.model_dump(mode="json", exclude_none=True, by_alias=True)


def _finding(finding: Finding) -> dict:
    """A finding (what the ECG or image shows now) as a prediction of its concept."""
    coding = {
        "system": SNOMED,
        "code": finding.concept_snomed,
        "display": finding.label,
    }
    return {
        "outcome": {
            "coding": [coding] if finding.concept_snomed else [],
            "text": finding.label,
        },
        "probabilityDecimal": round(finding.probability, 4),
        "rationale": "A finding present now (not a risk), estimated from "
        f"{', '.join(finding.modalities_used)}.",
    }


def _prediction(head: HeadRisk, config: FhirOutConfig) -> dict:
    outcome = config.outcomes[head.head]
    band = config.qualitative_risk[head.band]
    prediction = {
        "outcome": {
            "coding": [
                {"system": SNOMED, "code": outcome.code, "display": outcome.display}
            ],
            "text": head.label,
        },
        "probabilityDecimal": round(head.risk, 4),
        "qualitativeRisk": {
            "coding": [
                {"system": RISK_PROBABILITY, "code": band.code, "display": band.display}
            ]
        },
    }
    if head.horizon_years > 0:
        prediction["whenRange"] = {
            "low": {"value": 0, "unit": "a", "system": UCUM, "code": "a"},
            "high": {
                "value": head.horizon_years,
                "unit": "a",
                "system": UCUM,
                "code": "a",
            },
        }
        prediction["rationale"] = (
            f"{outcome.when} Horizon: {head.horizon_years:g} years."
        )
    else:
        prediction["rationale"] = outcome.when
    if head.reasons:
        named = ", ".join(f"{r.label} ({r.direction})" for r in head.reasons[:3])
        prediction["rationale"] += f" Main reasons: {named}."
    return prediction
