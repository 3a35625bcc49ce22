"""Who a FHIR resource is about: patient references and demographics.

Resources of one bulk export, or of one Bundle, point at their patient as
``Patient/<id>``, as an absolute URL ending in ``Patient/<id>``, as the Bundle's
``urn:uuid:`` fullUrl, or by identifier. `PatientIndex` maps every such form to one
raw key; the reader pseudonymises that key before it leaves the reader.
"""

from __future__ import annotations

import re
from typing import Any

from ingest.fhir_dates import birth_date
from ingest.fhir_load import Entry
from ingest.observations import PatientFacts, ReadResult

PATIENT_PATH = re.compile(r"(?:^|/)Patient/([A-Za-z0-9\-.]{1,64})$")
OTHER_TYPE = re.compile(r"(?:^|/)([A-Z][A-Za-z]+)/[A-Za-z0-9\-.]{1,64}$")
HISTORY = re.compile(r"/_history/[^/]+$")
SEX_MALE = {"male": 1.0, "female": 0.0}


class PatientIndex:
    """Every way the input refers to a patient, mapped to one raw key.

    The raw key is ``Patient/<id>`` when the Patient resource has an id, else its
    fullUrl; it is an identifier of the source, so it must go through
    `ingest.observations.pseudonym` before it is stored.
    """

    def __init__(self) -> None:
        self._aliases: dict[str, str] = {}

    def add(self, entry: Entry) -> str:
        """Register a Patient resource and return its raw key."""
        patient = entry.resource
        key = f"Patient/{patient.id}" if patient.id else entry.full_url
        key = key or f"{entry.source}:{entry.location}"
        self._aliases[key] = key
        if entry.full_url:
            self._aliases[_strip(entry.full_url)] = key
        for identifier in patient.identifier or []:
            if identifier.value:
                self._aliases[_identifier_key(identifier)] = key
        return key

    def key_for(self, reference: Any) -> tuple[str | None, str]:
        """Return the raw patient key a `Reference` points at.

        Parameters
        ----------
        reference : Reference or None
            A resource's ``subject`` (or ``patient``).

        Returns
        -------
        key : str or None
            The raw key, or None when the reference names no patient.
        problem : str
            Why there is no key (empty when there is one); names the referenced
            type, never an identifier.
        """
        if reference is None:
            return None, "no subject"
        if reference.reference:
            text = _strip(reference.reference)
            if text in self._aliases:
                return self._aliases[text], ""
            match = PATIENT_PATH.search(text)
            if match:
                key = f"Patient/{match[1]}"
                return self._aliases.get(key, key), ""
            other = OTHER_TYPE.search(text)
            if other:
                return None, f"a reference to a {other[1]}, not a Patient"
            if text.startswith(("urn:uuid:", "urn:oid:")):
                return text, ""  # a Patient outside the input; still one patient
            return None, "a reference of unknown form"
        if reference.identifier is not None and reference.identifier.value:
            key = _identifier_key(reference.identifier)
            return self._aliases.get(key, key), ""
        return None, "a reference without target"


def patient_facts(patient: Any, result: ReadResult) -> tuple[PatientFacts, bool]:
    """Sex and birth date of a Patient resource, and whether the patient died.

    Parameters
    ----------
    patient : Patient
        A validated `fhir.resources.R4B` Patient.
    result : ReadResult
        Counts a gender that gives no sex (``other``, ``unknown``, absent).

    Returns
    -------
    facts : PatientFacts
        ``sex_male`` (1 male, 0 female, None otherwise) and the birth date.
    deceased : bool
        True when ``deceasedBoolean`` is true or ``deceasedDateTime`` is given.
    """
    sex_male = SEX_MALE.get(patient.gender or "")
    if sex_male is None:
        result.ignore(
            f"Patient.gender {patient.gender or 'absent'}: sex_male left missing"
        )
    deceased = bool(patient.deceasedBoolean) or patient.deceasedDateTime is not None
    return PatientFacts(sex_male, birth_date(patient.birthDate)), deceased


def _strip(reference: str) -> str:
    return HISTORY.sub("", reference.strip())


def _identifier_key(identifier: Any) -> str:
    return f"identifier:{identifier.system or ''}|{identifier.value}"
