"""A patient given as JSON in the native schema (CLI and API input)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ingest.clinical_scores import SCORES
from ingest.config import FeatureSpec
from ingest.errors import InputError
from ingest.schema import ECG, PatientRecord, TimelineStep

MAX_YEARS_BEFORE = 120.0
INTEGER_UNITS = {"count", "class"}


class TimelineInput(BaseModel):
    """An earlier visit: years before now and feature values in canonical units."""

    model_config = ConfigDict(extra="forbid", strict=True)

    years_before: float = Field(
        gt=0, le=MAX_YEARS_BEFORE, description="Years before the current record."
    )
    values: dict[str, float] = Field(min_length=1)


class PatientInput(BaseModel):
    """A patient in the native schema.

    ``features`` holds registry names in canonical units (``configs/data.yaml``),
    e.g. ``{"systolic_bp": 142, "total_cholesterol": 231}``. Types are strict:
    ``true`` is not a number and ``"148"`` is not 148.
    """

    model_config = ConfigDict(extra="forbid", strict=True)

    age: float | None = Field(None, ge=0, le=120, description="Age in years.")
    sex: Literal["male", "female"] | None = None
    features: dict[str, float] = Field(default_factory=dict)
    timeline: list[TimelineInput] = Field(default_factory=list)


def parse_patient(
    payload: dict,
    registry: dict[str, FeatureSpec],
    source: str = "request",
    ecg: ECG | None = None,
    timeline_features: list[str] | None = None,
) -> PatientRecord:
    """Validate a native-schema patient and turn it into a `PatientRecord`.

    Parameters
    ----------
    payload : dict
        The decoded JSON.
    registry : dict
        Feature registry; unknown names, implausible values, flags other than
        0/1 and fractional counts are errors.
    source : str
        File name or ``request``, used in error messages.
    ecg : ECG, optional
        An ECG already conformed to the model's leads and ``fs``.
    timeline_features : list of str, optional
        The features a timeline visit may hold (default: any registry feature).

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
        expected = str(first["msg"]).removeprefix("Input should be ")
        if first["type"] == "extra_forbidden":
            expected = "only age, sex, features and timeline (years_before, values)"
        found = repr(first.get("input"))
        raise InputError(source, field, expected, found[:60]) from error
    features = dict(patient.features)
    for name, value in (("age", patient.age), ("sex_male", _male(patient.sex))):
        if value is None:
            continue
        if name in features and features[name] != value:
            expected = f"the top-level value {value:g}"
            raise InputError(
                source, f"features.{name}", expected, f"{features[name]:g}"
            )
        features[name] = value
    _check(features, registry, source, "features", None)
    seen: dict[float, int] = {}  # years_before -> the visit that has it
    for number, step in enumerate(patient.timeline):
        _check(
            step.values,
            registry,
            source,
            f"timeline[{number}].values",
            timeline_features,
        )
        _check_visit_age(step.years_before, step.values, features, source, number)
        if step.years_before in seen:
            raise InputError(
                source,
                f"timeline[{number}].years_before",
                f"one visit per time (timeline[{seen[step.years_before]}] is also "
                f"{step.years_before:g} years before)",
                f"{step.years_before:g}",
            )
        seen[step.years_before] = number
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


AGE_TOLERANCE_YEARS = 1.0  # ages are whole years; dates are rounded


def _check_visit_age(
    years_before: float,
    values: dict[str, float],
    features: dict[str, float],
    source: str,
    number: int,
) -> None:
    """Refuse a visit whose age or time cannot be this patient's."""
    age = features.get("age")
    if age is not None and years_before > age + AGE_TOLERANCE_YEARS:
        raise InputError(
            source,
            f"timeline[{number}].years_before",
            f"at most the patient's age ({age:g})",
            f"{years_before:g}",
        )
    visit_age = values.get("age")
    if age is not None and visit_age is not None:
        expected = age - years_before
        if abs(visit_age - expected) > AGE_TOLERANCE_YEARS:
            raise InputError(
                source,
                f"timeline[{number}].values.age",
                f"about {expected:g} (age {age:g} minus {years_before:g} years)",
                f"{visit_age:g}",
            )


def _male(sex: str | None) -> float | None:
    return None if sex is None else float(sex == "male")


def _check(
    values: dict[str, float],
    registry: dict[str, FeatureSpec],
    source: str,
    where: str,
    allowed: list[str] | None,
) -> None:
    for name, value in values.items():
        field = f"{where}.{name}"
        if name in SCORES:
            raise InputError(
                source,
                field,
                "measured values only (guideline scores are computed from the "
                "record's own fields)",
                "a score",
            )
        if name not in registry or (allowed is not None and name not in allowed):
            names = "a feature name of configs/data.yaml"
            if allowed is not None:
                names = f"one of {', '.join(allowed)}"
            raise InputError(source, field, names, "unknown name")
        spec = registry[name]
        if spec.unit == "flag" and value not in (0.0, 1.0):
            raise InputError(source, field, "0 or 1", f"{value:g}")
        if spec.unit in INTEGER_UNITS and value != int(value):
            raise InputError(
                source, field, f"a whole number ({spec.unit})", f"{value:g}"
            )
        if not spec.is_plausible(value):
            expected = f"a value in {spec.range_text}"
            raise InputError(source, field, expected, f"{value:g}")
