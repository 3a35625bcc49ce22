"""FHIR Observations to values in the registry's canonical units.

An Observation fills a feature through its LOINC code (``configs/codes.yaml``).
Its value may be a ``valueQuantity`` (with an optional comparator, as in
``<3 ng/L``), a ``valueString`` such as ``"<3 ng/L"`` or ``"3,5 mmol/L"``, a
``valueInteger``, or, for a panel such as the blood-pressure panel 85354-9, the
values of its components. Smoking status (72166-2) answers are SNOMED CT codes.
Every unit goes through `ingest.units.to_canonical`; a value it refuses is
quarantined with the FHIR field that held it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ingest.codes import LOINC_SYSTEM, SNOMED_SYSTEM, CodeTables
from ingest.config import FeatureSpec
from ingest.errors import InputError, QuarantineItem
from ingest.fhir_dates import instant
from ingest.fhir_load import Entry
from ingest.observations import COMPARATORS, Observation, ReadResult
from ingest.units import to_canonical

UCUM_SYSTEM = "http://unitsofmeasure.org"
SKIPPED_STATUSES = {"entered-in-error", "cancelled"}
# "<3 ng/L", "3,5 mmol/L", ">= 40": comparator, number (decimal point or comma), unit.
VALUE_TEXT = re.compile(r"^\s*(<=|>=|<|>)?\s*([-+]?\d+(?:[.,]\d+)?)\s*(.*?)\s*$")
OTHER_VALUES = (
    "valueBoolean",
    "valueDateTime",
    "valuePeriod",
    "valueRange",
    "valueRatio",
    "valueSampledData",
    "valueTime",
)


@dataclass(frozen=True)
class _Target:
    """Where values go: one patient, one time, one source location."""

    patient_key: str
    time: datetime | None
    source: str
    location: str


def read_observation(
    entry: Entry,
    patient_key: str,
    *,
    registry: dict[str, FeatureSpec],
    codes: CodeTables,
    result: ReadResult,
) -> list[Observation]:
    """Turn one FHIR Observation into values of registry features.

    Parameters
    ----------
    entry : Entry
        The validated Observation and where it was found.
    patient_key : str
        Pseudonymous patient key.
    registry : dict
        Feature name -> `FeatureSpec` (canonical unit, plausible range).
    codes : CodeTables
        LOINC, panel and smoking-status tables.
    result : ReadResult
        Receives quarantined values and counts of what was read but not used.

    Returns
    -------
    list of Observation
        Zero, one or (for a panel) several values, in canonical units.
    """
    resource = entry.resource

    # Statuses that withdraw the result.
    if resource.status in SKIPPED_STATUSES:
        result.ignore(f"Observation status {resource.status}")
        return []

    # When it was measured: effective time, else the time the result was issued.
    target = _Target(patient_key, _time(resource), entry.source, entry.location)
    loinc = _loinc_codes(resource.code)

    # Smoking status: a coded answer sets the smoking flags.
    if codes.smoking_status.loinc in loinc:
        return _smoking(resource, target, registry, codes, result)

    # The Observation's own value, when one of its codes fills a feature.
    code, feature = _mapped(loinc, codes)
    values: list[Observation] = []
    if feature is not None:
        path = "Observation"
        values += _read_value(resource, path, feature, code, target, registry, result)

    # Component values (blood-pressure panel and the like).
    parts = [
        (part, *_mapped(_loinc_codes(part.code), codes))
        for part in resource.component or []
    ]
    if feature is None and not any(name for _, _, name in parts):
        if code in codes.panels:
            result.ignore(f"Observation panel LOINC {code} without mapped components")
        else:
            result.ignore(f"Observation LOINC {code or '(none)'} not mapped")
        return values
    for number, (part, part_code, name) in enumerate(parts):
        if name is None:
            shown = part_code or "(none)"
            result.ignore(f"Observation component LOINC {shown} not mapped")
            continue
        path = f"Observation.component[{number}]"
        values += _read_value(part, path, name, part_code, target, registry, result)
    return values


def _read_value(
    holder: Any,
    path: str,
    feature: str,
    code: str,
    target: _Target,
    registry: dict[str, FeatureSpec],
    result: ReadResult,
) -> list[Observation]:
    """Read the value[x] of an Observation or of one of its components."""
    spec = registry.get(feature)
    if spec is None:
        result.ignore(f"feature {feature} not in the registry")
        return []

    # A value the sender says is absent is not an error.
    if holder.dataAbsentReason is not None:
        reason = _first_code(holder.dataAbsentReason) or "given"
        result.ignore(f"Observation dataAbsentReason {reason}")
        return []

    # Number, unit and comparator from whichever value[x] is present.
    try:
        number, unit, comparator, field = _value_parts(holder, path, target.source)
    except InputError as error:
        _quarantine(result, target, error.field, str(error))
        return []
    if number is None:
        if getattr(holder, "component", None):  # a panel: values in components
            return []
        result.ignore(f"Observation LOINC {code} without a value")
        return []

    # Conversion to the canonical unit and the plausibility check.
    try:
        value = to_canonical(number, unit, spec, feature=feature, source=target.source)
    except InputError as error:
        part = "unit" if error.field.endswith(".unit") else "value"
        _quarantine(result, target, f"{field}.{part}", str(error))
        return []
    observation = Observation(
        target.patient_key, feature, value, target.time, code, comparator
    )
    return [observation]


def _value_parts(
    holder: Any, path: str, source: str
) -> tuple[float | None, str | None, str | None, str]:
    """Number, unit, comparator and FHIR field of a value[x] (number None: absent).

    Raises
    ------
    InputError
        For a value that cannot be read as a number (its field named).
    """
    quantity = holder.valueQuantity
    if quantity is not None:
        field = f"{path}.valueQuantity"
        if quantity.value is None:
            raise InputError(source, f"{field}.value", "a number", "none")
        if quantity.comparator is not None and quantity.comparator not in COMPARATORS:
            raise InputError(
                source,
                f"{field}.comparator",
                f"one of {COMPARATORS}",
                quantity.comparator,
            )
        unit = quantity.code if quantity.system == UCUM_SYSTEM else None
        unit = unit or quantity.unit
        return float(quantity.value), unit, quantity.comparator, field
    if holder.valueString is not None:
        field = f"{path}.valueString"
        match = VALUE_TEXT.match(holder.valueString)
        if match is None:
            raise InputError(
                source,
                field,
                "a number with optional comparator and unit (e.g. '<3 ng/L')",
                repr(holder.valueString[:40]),
            )
        comparator, text, unit = match[1], match[2], match[3]
        return float(text.replace(",", ".")), unit or None, comparator, field
    if holder.valueInteger is not None:
        return float(holder.valueInteger), None, None, f"{path}.valueInteger"
    present = [name for name in OTHER_VALUES if getattr(holder, name, None) is not None]
    if holder.valueCodeableConcept is not None:
        present.append("valueCodeableConcept")
    if present:
        raise InputError(
            source,
            f"{path}.{present[0]}",
            "a valueQuantity, valueString or valueInteger",
            present[0],
        )
    return None, None, None, path


def _smoking(
    resource: Any,
    target: _Target,
    registry: dict[str, FeatureSpec],
    codes: CodeTables,
    result: ReadResult,
) -> list[Observation]:
    """Smoking-status answer -> current_smoker and former_smoker (0 or 1)."""
    if resource.dataAbsentReason is not None:
        reason = _first_code(resource.dataAbsentReason) or "given"
        result.ignore(f"Observation dataAbsentReason {reason}")
        return []
    answer = resource.valueCodeableConcept
    answers = [
        coding.code
        for coding in (answer.coding or [] if answer is not None else [])
        if coding.system == SNOMED_SYSTEM and coding.code
    ]
    table = codes.smoking_status
    for code in answers:
        if code in table.current_smoker:
            flags = {"current_smoker": 1.0, "former_smoker": 0.0}
        elif code in table.former_smoker:
            flags = {"current_smoker": 0.0, "former_smoker": 1.0}
        elif code in table.never_smoker:
            flags = {"current_smoker": 0.0, "former_smoker": 0.0}
        else:
            continue
        return [
            Observation(target.patient_key, name, value, target.time, table.loinc)
            for name, value in flags.items()
            if name in registry
        ]
    shown = answers[0] if answers else "(no SNOMED CT answer)"
    result.ignore(f"smoking status answer {shown} not mapped")
    return []


def _time(resource: Any) -> datetime | None:
    period = resource.effectivePeriod
    for value in (
        resource.effectiveDateTime,
        resource.effectiveInstant,
        period.start if period is not None else None,
        resource.issued,
    ):
        moment = instant(value)
        if moment is not None:
            return moment
    return None


def _loinc_codes(concept: Any) -> list[str]:
    """The LOINC codes of a CodeableConcept, in the sender's order."""
    codings = (concept.coding or []) if concept is not None else []
    return [c.code for c in codings if c.system == LOINC_SYSTEM and c.code]


def _mapped(loinc: list[str], codes: CodeTables) -> tuple[str, str | None]:
    """The first LOINC code that fills a feature, and that feature.

    When none does, the first code (or '') and None.
    """
    for code in loinc:
        feature = codes.feature_for_loinc(code)
        if feature is not None:
            return code, feature
    return (loinc[0] if loinc else ""), None


def _first_code(concept: Any) -> str:
    for coding in concept.coding or []:
        if coding.code:
            return coding.code
    return concept.text or ""


def _quarantine(result: ReadResult, target: _Target, field: str, reason: str) -> None:
    item = QuarantineItem(target.source, target.location, field, reason)
    result.quarantine.append(item)
