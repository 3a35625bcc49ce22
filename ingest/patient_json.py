"""A patient given as JSON in the native schema (CLI and API input)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ingest.config import FeatureSpec
from ingest.errors import InputError
from ingest.schema import ECG, PatientRecord, TimelineStep


class TimelineInput(BaseModel):
    """An earlier visit: years before now and feature values in canonical units."""

    model_config = ConfigDict(extra="forbid")

    years_before: float = Field(ge=0, description="Years before the current record.")
    values: dict[str, float]


class PatientInput(BaseModel):
    """A patient in the native schema.

    ``features`` holds registry names in canonical units (``configs/data.yaml``),
    e.g. ``{"systolic_bp": 142, "total_cholesterol": 231}``.
    """

    model_config = ConfigDict(extra="forbid")

    age: float | None = Field(None, ge=0, le=120, description="Age in years.")
    sex: Literal["male", "female"] | None = None
    features: dict[str, float] = Field(default_factory=dict)
    timeline: list[TimelineInput] = Field(default_factory=list)


def parse_patient(
    payload: dict,
    registry: dict[str, FeatureSpec],
    source: str = "request",
    ecg: ECG | None = None,
) -> PatientRecord:
    """Validate a native-schema patient and turn it into a `PatientRecord`.

    Parameters
    ----------
    payload : dict
        The decoded JSON.
    registry : dict
        Feature registry; unknown names and implausible values are errors.
    source : str
        File name or ``request``, used in error messages.
    ecg : ECG, optional
        An ECG already conformed to the model's leads and ``fs``.

    Raises
    ------
    InputError
        Naming the field, what was expected and what was found.
    """
    try:
        patient = PatientInput.model_validate(payload)
    except ValidationError as error:
        first = error.errors()[0]
        field = ".".join(str(part) for part in first["loc"]) or "body"
        raise InputError(
            source, field, first["msg"].lower(), "an invalid value"
        ) from error
    features = dict(patient.features)
    if patient.age is not None:
        features["age"] = patient.age
    if patient.sex is not None:
        features["sex_male"] = float(patient.sex == "male")
    _check(features, registry, source, "features")
    for number, step in enumerate(patient.timeline):
        _check(step.values, registry, source, f"timeline[{number}].values")
    timeline = sorted(
        (
            TimelineStep(step.years_before, dict(step.values))
            for step in patient.timeline
        ),
        key=lambda step: step.years_before,
    )
    return PatientRecord(
        record_id="request",
        patient_id="request",
        site="request",
        source=source,
        features=features,
        ecg=ecg,
        timeline=timeline,
    )


def _check(
    values: dict[str, float], registry: dict[str, FeatureSpec], source: str, where: str
) -> None:
    for name, value in values.items():
        if name not in registry:
            raise InputError(
                source,
                f"{where}.{name}",
                "a feature name of configs/data.yaml",
                "unknown name",
            )
        spec = registry[name]
        if not spec.is_plausible(value):
            low, high = spec.range
            raise InputError(
                source,
                f"{where}.{name}",
                f"a value in {low}..{high} {spec.unit}",
                str(value),
            )
