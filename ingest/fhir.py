"""FHIR R4 in: Bundles, single resources and bulk-export NDJSON to `PatientRecord`s.

`read_fhir` reads files (a whole bulk export joins up by patient reference across
its files); `read_fhir_bundle` reads one JSON payload for the API. Both validate
each resource on its own against `fhir.resources.R4B`, quarantine what is invalid
with the FHIR field and the reason, count what is read but not used, and keep the
rest. Patients are keyed by `ingest.observations.pseudonym`; nothing about a patient
is logged but counts.

Steps: load and validate (`ingest.fhir_load`), index patients
(`ingest.fhir_patients`), read observations (`ingest.fhir_observations`) and flags
(`ingest.fhir_flags`), then assemble one record per patient
(`ingest.observations.assemble_records`).
"""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Any

from ingest.codes import CodeTables
from ingest.config import FeatureSpec
from ingest.errors import InputError, QuarantineItem
from ingest.fhir_dates import instant
from ingest.fhir_flags import condition_flags, medication_flags, procedure_flags
from ingest.fhir_load import SUFFIXES, Entry, load_file, load_payload
from ingest.fhir_observations import read_observation
from ingest.fhir_patients import PatientIndex, patient_facts
from ingest.observations import (
    Observation,
    PatientFacts,
    ReadResult,
    assemble_records,
    pseudonym,
)

logger = logging.getLogger(__name__)

READER = "fhir"
MEDICATION_TYPES = ("MedicationRequest", "MedicationStatement")
SURGERY_CONTEXT_DAYS = 30  # an operation this close to the record is its index one


def read_fhir(
    paths: list[Path] | Path,
    *,
    registry: dict[str, FeatureSpec],
    codes: CodeTables,
    timeline_features: list[str],
    max_timeline_steps: int,
    site: str = "fhir",
) -> ReadResult:
    """Read FHIR R4 files into one record per patient.

    Parameters
    ----------
    paths : Path or list of Path
        ``.json`` files (a Bundle of any type, or one resource), ``.ndjson``
        bulk-export files (one resource per line), or folders holding them. All
        files are read together, so resources of one export join up by patient.
    registry : dict
        Feature name -> `FeatureSpec` (``DataConfig.registry``).
    codes : CodeTables
        ``configs/codes.yaml``.
    timeline_features : list of str
        Features an earlier day may hold in the record's timeline.
    max_timeline_steps : int
        Most recent earlier days kept.
    site : str
        The data holder; also salts the patient pseudonyms.

    Returns
    -------
    ReadResult
        Records, quarantined input (file, line or entry, FHIR field, reason) and
        counts of input read but not used.

    Raises
    ------
    InputError
        For a path that does not exist, a file that is neither ``.json`` nor
        ``.ndjson``, or a ``.json`` file that is not a JSON FHIR resource.
    """
    result = ReadResult()

    # 1. Load every file; each resource validated on its own.
    entries: list[Entry] = []
    files = _files([paths] if isinstance(paths, Path) else paths)
    for path in files:
        entries += load_file(path, result)
    logger.info("FHIR: %d resources validated from %d files", len(entries), len(files))

    # 2. Turn them into records.
    return _records(
        entries,
        result,
        registry=registry,
        codes=codes,
        timeline_features=timeline_features,
        max_timeline_steps=max_timeline_steps,
        site=site,
    )


def read_fhir_bundle(
    payload: dict | bytes | str,
    source: str = "request",
    *,
    registry: dict[str, FeatureSpec],
    codes: CodeTables,
    timeline_features: list[str],
    max_timeline_steps: int,
    site: str = "fhir",
) -> ReadResult:
    """Read one FHIR R4 JSON payload (a Bundle or one resource), as the API gets it.

    Parameters
    ----------
    payload : dict, bytes or str
        The JSON document, parsed or as sent (UTF-8, a byte-order mark allowed).
    source : str
        Name used in quarantine reasons and errors.
    registry, codes, timeline_features, max_timeline_steps, site
        As for `read_fhir`.

    Returns
    -------
    ReadResult
        Records, quarantined entries and counts of input read but not used.

    Raises
    ------
    InputError
        When the payload is not UTF-8 JSON or not a FHIR resource at all; bad
        entries inside a Bundle are quarantined instead.
    """
    result = ReadResult()
    entries = load_payload(payload, source, result)
    return _records(
        entries,
        result,
        registry=registry,
        codes=codes,
        timeline_features=timeline_features,
        max_timeline_steps=max_timeline_steps,
        site=site,
    )


def _records(
    entries: list[Entry],
    result: ReadResult,
    *,
    registry: dict[str, FeatureSpec],
    codes: CodeTables,
    timeline_features: list[str],
    max_timeline_steps: int,
    site: str,
) -> ReadResult:
    """Validated resources -> one record per patient, added to ``result``."""
    # 1. Index patients (every way the input refers to them) and medications.
    index = PatientIndex()
    facts: dict[str, PatientFacts] = {}
    deceased: set[str] = set()
    medications: dict[str, Any] = {}
    for entry in entries:
        if entry.resource_type == "Patient":
            key = pseudonym(index.add(entry), site)
            _add_basis(result, key, entry)  # the Patient heads its record's basis
            facts[key], died = patient_facts(entry.resource, result)
            if died:
                deceased.add(key)
        elif entry.resource_type == "Medication":
            if entry.resource.id:
                medications[f"Medication/{entry.resource.id}"] = entry.resource
            if entry.full_url:
                medications[entry.full_url] = entry.resource

    # 2. Observations become values; Conditions, Procedures and medications flags.
    observations: list[Observation] = []
    flags: dict[str, set[str]] = defaultdict(set)
    operations: dict[str, list[tuple[datetime | None, set[str]]]] = defaultdict(list)
    for entry in entries:
        kind = entry.resource_type
        if kind in ("Patient", "Medication"):
            continue
        raw_key, problem = index.key_for(entry.resource.subject)
        if raw_key is None:
            reason = f"expected a reference to a Patient, found {problem}"
            item = QuarantineItem(
                entry.source, entry.location, f"{kind}.subject", reason
            )
            result.quarantine.append(item)
            continue
        key = pseudonym(raw_key, site)
        if kind == "Observation":
            values = read_observation(
                entry, key, registry=registry, codes=codes, result=result
            )
            observations += values
            used = bool(values)
        else:
            found = _flags(entry, codes, medications, result)
            surgery = found & set(codes.procedures)
            if kind == "Procedure" and surgery:
                operations[key].append((_performed(entry.resource), surgery))
                found -= surgery
            flags[key] |= found
            used = bool(found or surgery)
        if used:
            _add_basis(result, key, entry)

    # 3. Surgery context comes from the index operation only: one planned or under
    # way, or done within SURGERY_CONTEXT_DAYS of the patient's latest value.
    latest: dict[str, datetime] = {}
    for obs in observations:
        if obs.time is not None and (
            obs.patient_key not in latest or obs.time > latest[obs.patient_key]
        ):
            latest[obs.patient_key] = obs.time
    for key, done in operations.items():
        dated = [when for when, _ in done if when is not None]
        anchor = latest.get(key) or max(dated, default=None)
        for when, surgery in done:
            if when is None or anchor is None or _recent(when, anchor):
                flags[key] |= surgery
            else:
                result.ignore(
                    f"surgery more than {SURGERY_CONTEXT_DAYS} days before the "
                    "record: history, not the index operation"
                )

    # 4. Flags join the facts; a deceased patient's age needs a dated observation.
    for key, names in flags.items():
        patient = facts.setdefault(key, PatientFacts())
        patient.flags.update({name: 1.0 for name in sorted(names) if name in registry})
    dated = {obs.patient_key for obs in observations if obs.time is not None}
    for key in deceased - dated:
        if facts[key].birth_date is not None:
            facts[key].birth_date = None
            result.ignore(
                "Patient.birthDate of a deceased patient without dated observations:"
                " age left missing"
            )

    # 5. One record per patient.
    records, conflicts = assemble_records(
        observations,
        facts,
        source=READER,
        site=site,
        timeline_features=timeline_features,
        max_timeline_steps=max_timeline_steps,
        on_bound=result.ignore,
    )
    result.records.extend(records)
    result.quarantine.extend(conflicts)
    kinds = Counter(entry.resource_type for entry in entries)
    shown = ", ".join(f"{n} {kind}" for kind, n in sorted(kinds.items()))
    result.notes.append(f"FHIR resources read: {shown or 'none'}")
    logger.info(
        "FHIR: %d records, %d values, %d quarantined, %d read but not used",
        len(records),
        len(observations),
        len(result.quarantine),
        sum(result.ignored.values()),
    )
    return result


def _flags(
    entry: Entry, codes: CodeTables, medications: dict[str, Any], result: ReadResult
) -> set[str]:
    """Flags from a Condition, Procedure, MedicationRequest or MedicationStatement."""
    kind = entry.resource_type
    if kind == "Condition":
        return condition_flags(entry, codes, result)
    if kind == "Procedure":
        return procedure_flags(entry, codes, result)
    if kind in MEDICATION_TYPES:
        return medication_flags(entry, codes, medications, result)
    return set()


def _performed(resource: Any) -> datetime | None:
    """When a Procedure was done (performedDateTime or the period's start)."""
    period = getattr(resource, "performedPeriod", None)
    return instant(getattr(resource, "performedDateTime", None)) or (
        instant(period.start) if period is not None else None
    )


def _recent(when: datetime, anchor: datetime) -> bool:
    """Whether an operation is the index one: at most N days before the anchor."""
    return abs((anchor - when).days) <= SURGERY_CONTEXT_DAYS


def _add_basis(result: ReadResult, key: str, entry: Entry) -> None:
    """Note the resource as part of the record's basis (``Observation/<id>``)."""
    # A Bundle's own references (urn:uuid: fullUrls) first, as its entries use them.
    resource = entry.resource
    reference = entry.full_url if (entry.full_url or "").startswith("urn:") else None
    if reference is None:
        reference = (
            f"{entry.resource_type}/{resource.id}" if resource.id else entry.full_url
        )
    references = result.basis.setdefault(key, [])
    if reference and reference not in references:
        references.append(reference)


def _files(paths: Iterable[Path]) -> list[Path]:
    """The FHIR files named, folders expanded (sorted, so reading is repeatable)."""
    files: list[Path] = []
    for path in paths:
        path = Path(path)
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.suffix.lower() in SUFFIXES)
            files += found
        elif path.is_file():
            files.append(path)
        else:
            raise InputError(
                path.name, "path", "an existing FHIR file or folder", "nothing there"
            )
    return files
