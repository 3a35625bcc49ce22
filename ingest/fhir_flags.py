"""FHIR Conditions, Procedures and medications to the record's 0/1 flags.

Codes are looked up in ``configs/codes.yaml``: conditions by SNOMED CT or ICD-10,
procedures by SNOMED CT (surgery context; a procedure that implies a condition,
such as PCI for coronary heart disease, also through the conditions table), and
medications by RxNorm, ATC or ingredient word. A flag is only ever set to 1 here;
a patient without a matching resource has the flag missing, not 0.

What is read but does not set a flag is counted with its reason: a code no table
lists, a Condition that is refuted or not confirmed, a condition no longer active
(except the history flags ``prior_*``: a resolved myocardial infarction is still a
prior one), a Procedure not done, a prescription not active or completed.
"""

from __future__ import annotations

from typing import Any

from ingest.codes import (
    ATC_SYSTEM,
    ICD10_SYSTEMS,
    LOINC_SYSTEM,
    RXNORM_SYSTEM,
    SNOMED_SYSTEM,
    CodeTables,
)
from ingest.fhir_load import Entry
from ingest.observations import ReadResult

# Condition.verificationStatus values that do not make a diagnosis.
NOT_CONFIRMED = {
    "refuted",
    "entered-in-error",
    "unconfirmed",
    "provisional",
    "differential",
}
# Condition.clinicalStatus values of a condition the patient no longer has.
NOT_ACTIVE = {"inactive", "resolved", "remission"}
HISTORY_PREFIX = "prior_"  # flags that stay true once the event has happened
PROCEDURE_DONE = {"preparation", "in-progress", "completed"}
MEDICATION_TAKEN = {"active", "completed"}
SYSTEM_NAMES = {  # short names of code systems, for ignore reasons
    SNOMED_SYSTEM: "SNOMED",
    LOINC_SYSTEM: "LOINC",
    ATC_SYSTEM: "ATC",
    RXNORM_SYSTEM: "RxNorm",
    **{system: "ICD-10" for system in ICD10_SYSTEMS},
}


def condition_flags(entry: Entry, codes: CodeTables, result: ReadResult) -> set[str]:
    """Flags one Condition sets.

    Parameters
    ----------
    entry : Entry
        The validated Condition.
    codes : CodeTables
        The condition table (SNOMED CT exact codes, ICD-10 prefixes).
    result : ReadResult
        Counts the Conditions, or flags, that are not set and why.

    Returns
    -------
    set of str
        Flag names to set to 1 (may be empty).
    """
    resource = entry.resource
    flags = _concept_flags(resource.code, codes.condition_flags)
    if not flags:
        result.ignore(f"Condition {_describe(resource.code)} maps to no flag")
        return set()

    # A diagnosis that was refuted, entered in error, or never confirmed.
    verification = _status(resource.verificationStatus)
    if verification in NOT_CONFIRMED:
        result.ignore(f"Condition verificationStatus {verification}: no flag set")
        return set()

    # A condition that is over: only the history flags remain true.
    clinical = _status(resource.clinicalStatus)
    if clinical in NOT_ACTIVE:
        for flag in sorted(flags):
            if not flag.startswith(HISTORY_PREFIX):
                result.ignore(f"Condition clinicalStatus {clinical}: {flag} not set")
        flags = {flag for flag in flags if flag.startswith(HISTORY_PREFIX)}
    return flags


def procedure_flags(entry: Entry, codes: CodeTables, result: ReadResult) -> set[str]:
    """Flags one Procedure sets (surgery context, implied conditions).

    Parameters
    ----------
    entry : Entry
        The validated Procedure.
    codes : CodeTables
        The procedure table, and the condition table for procedures that imply a
        condition.
    result : ReadResult
        Counts Procedures that set no flag and why.

    Returns
    -------
    set of str
        Flag names to set to 1 (may be empty).
    """
    resource = entry.resource
    if resource.status not in PROCEDURE_DONE:
        result.ignore(f"Procedure status {resource.status}")
        return set()
    flags = _concept_flags(resource.code, codes.procedure_flags)
    flags |= _concept_flags(resource.code, codes.condition_flags)
    if not flags:
        result.ignore(f"Procedure {_describe(resource.code)} maps to no flag")
    return flags


def medication_flags(
    entry: Entry,
    codes: CodeTables,
    medications: dict[str, Any],
    result: ReadResult,
) -> set[str]:
    """Flags one MedicationRequest or MedicationStatement sets.

    Parameters
    ----------
    entry : Entry
        The validated MedicationRequest or MedicationStatement.
    codes : CodeTables
        The medication table (ATC prefixes, RxNorm codes, ingredient words).
    medications : dict
        Medication resources of the input by reference (``Medication/<id>`` and
        fullUrl), for a ``medicationReference``.
    result : ReadResult
        Counts prescriptions that set no flag and why.

    Returns
    -------
    set of str
        Flag names to set to 1 (may be empty).
    """
    resource, kind = entry.resource, entry.resource_type
    if resource.status not in MEDICATION_TAKEN:
        result.ignore(f"{kind} status {resource.status}")
        return set()
    if getattr(resource, "doNotPerform", None):
        result.ignore(f"{kind} doNotPerform")
        return set()

    # The medication's concept: given inline, contained, or a Medication resource.
    concept = resource.medicationCodeableConcept
    if concept is None and resource.medicationReference is not None:
        concept = _referenced_code(resource, medications)
        if concept is None:
            result.ignore(f"{kind}.medicationReference not found in the input")
            return set()

    flags: set[str] = set()
    text = (concept.text or "") if concept is not None else ""
    for coding in (concept.coding or []) if concept is not None else []:
        words = f"{coding.display or ''} {text}"
        flags |= set(
            codes.medication_flags(coding.system or "", coding.code or "", words)
        )
    if concept is not None and not concept.coding and text:
        flags |= set(codes.medication_flags("", "", text))
    if not flags:
        result.ignore(f"{kind} {_describe(concept)} maps to no flag")
    return flags


def _concept_flags(concept: Any, lookup: Any) -> set[str]:
    flags: set[str] = set()
    for coding in (concept.coding or []) if concept is not None else []:
        if coding.system and coding.code:
            flags |= set(lookup(coding.system, coding.code))
    return flags


def _referenced_code(resource: Any, medications: dict[str, Any]) -> Any:
    reference = resource.medicationReference.reference or ""
    if reference.startswith("#"):
        for contained in resource.contained or []:
            if contained.get_resource_type() == "Medication" and (
                contained.id == reference[1:]
            ):
                return contained.code
        return None
    medication = medications.get(reference.strip())
    return medication.code if medication is not None else None


def _status(concept: Any) -> str:
    for coding in (concept.coding or []) if concept is not None else []:
        if coding.code:
            return coding.code
    return ""


def _describe(concept: Any) -> str:
    """Short name of a concept's first coding for a reason (``SNOMED 38341003``)."""
    for coding in (concept.coding or []) if concept is not None else []:
        if coding.code:
            return f"{SYSTEM_NAMES.get(coding.system or '', 'code')} {coding.code}"
    return "without a code"
