"""FHIR JSON in: files, payloads and Bundles to validated R4 resources.

A source is a ``.json`` file holding one resource or a Bundle (of any type; a
UTF-8 byte-order mark is allowed), an ``.ndjson`` bulk-export file (one resource
per line), or a payload sent to the API. Bundles are opened entry by entry, so one
bad entry is quarantined and the others still count. Each resource of a type the
FHIR reader uses is validated on its own against the `fhir.resources.R4B` model;
resources of other types are counted as not read, without validation.
"""

from __future__ import annotations

import codecs
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fhir.resources.R4B import get_fhir_model_class
from pydantic import ValidationError

from ingest.errors import InputError, QuarantineItem
from ingest.observations import ReadResult

# Resource types the FHIR reader turns into values or flags.
READ_TYPES = frozenset(
    {
        "Patient",
        "Observation",
        "Condition",
        "Procedure",
        "MedicationRequest",
        "MedicationStatement",
        "Medication",
    }
)
SUFFIXES = (".json", ".ndjson")


@dataclass(frozen=True)
class Entry:
    """One validated resource and where it was found.

    Attributes
    ----------
    source : str
        File name, or ``request`` for an API payload.
    location : str
        Place within the source (``line 12``, ``entry 3``, ``resource``); used as
        the quarantine record id, never a patient identifier.
    full_url : str, optional
        The Bundle entry's ``fullUrl`` (``urn:uuid:...``), which references may use.
    resource : Any
        The validated `fhir.resources.R4B` model.
    """

    source: str
    location: str
    full_url: str | None
    resource: Any

    @property
    def resource_type(self) -> str:
        """The resource's type name (``Observation``)."""
        return self.resource.get_resource_type()


def load_file(path: Path, result: ReadResult) -> list[Entry]:
    """Read one ``.json`` or ``.ndjson`` file into validated resources.

    Parameters
    ----------
    path : Path
        The file.
    result : ReadResult
        Receives quarantined entries or lines and counts of resources not read.

    Returns
    -------
    list of Entry
        The resources that passed validation.

    Raises
    ------
    InputError
        When the file's suffix is neither ``.json`` nor ``.ndjson``, or a ``.json``
        file is not a JSON FHIR resource at all.
    """
    if path.suffix.lower() not in SUFFIXES:
        raise InputError(path.name, "file", "a .json or .ndjson FHIR file", path.suffix)
    data = path.read_bytes()
    if path.suffix.lower() == ".ndjson":
        return _ndjson(data, path.name, result)
    return load_payload(data, path.name, result)


def load_payload(
    payload: dict | bytes | str, source: str, result: ReadResult
) -> list[Entry]:
    """Read one JSON document (a resource or a Bundle) into validated resources.

    Parameters
    ----------
    payload : dict, bytes or str
        The document, parsed or as sent.
    source : str
        File name or ``request``, for quarantine reasons and errors.
    result : ReadResult
        Receives quarantined entries and counts of resources not read.

    Returns
    -------
    list of Entry
        The resources that passed validation.

    Raises
    ------
    InputError
        When the payload is not UTF-8, not JSON, or not a FHIR resource.
    """
    document = payload if isinstance(payload, dict) else _parse(payload, source)
    if not isinstance(document, dict) or not isinstance(
        document.get("resourceType"), str
    ):
        raise InputError(
            source, "resourceType", "a FHIR resource or Bundle (JSON object)", "none"
        )
    entries: list[Entry] = []
    _collect(document, source, "resource", None, result, entries)
    return entries


def _parse(payload: bytes | str, source: str) -> Any:
    if isinstance(payload, bytes):
        try:
            payload = payload.decode("utf-8-sig")
        except UnicodeDecodeError as error:
            raise InputError(
                source, "content", "UTF-8 text", f"byte {error.start}"
            ) from error
    try:
        return json.loads(payload.removeprefix("\ufeff"))
    except json.JSONDecodeError as error:
        found = f"{error.msg} at line {error.lineno}, column {error.colno}"
        raise InputError(source, "content", "JSON", found) from error
    except RecursionError as error:
        raise InputError(
            source, "content", "JSON", "nesting too deep to read"
        ) from error


def _ndjson(data: bytes, source: str, result: ReadResult) -> list[Entry]:
    entries: list[Entry] = []
    lines = data.removeprefix(codecs.BOM_UTF8).split(b"\n")
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        location = f"line {number}"
        try:
            document = json.loads(raw.decode("utf-8"))
        except UnicodeDecodeError:
            _quarantine(result, source, location, "line", "not UTF-8 text")
            continue
        except json.JSONDecodeError as error:
            reason = f"not valid JSON ({error.msg} at column {error.colno})"
            _quarantine(result, source, location, "line", reason)
            continue
        except RecursionError:
            _quarantine(result, source, location, "line", "JSON nested too deep")
            continue
        _collect(document, source, location, None, result, entries)
    return entries


def _collect(
    document: Any,
    source: str,
    location: str,
    full_url: str | None,
    result: ReadResult,
    entries: list[Entry],
) -> None:
    """Validate one resource, or open a Bundle and collect each of its entries."""
    if not isinstance(document, dict):
        _quarantine(result, source, location, "resource", "not a JSON object")
        return
    resource_type = document.get("resourceType")
    if not isinstance(resource_type, str) or not resource_type:
        _quarantine(result, source, location, "resourceType", "missing")
        return

    # A Bundle: each entry on its own, so that one bad entry spares the others.
    if resource_type == "Bundle":
        _bundle(document, source, location, result, entries)
        return

    # A type the reader does not use: counted, not validated.
    if resource_type not in READ_TYPES:
        try:
            get_fhir_model_class(resource_type)
        except ValueError:
            reason = f"'{resource_type[:40]}' is not a FHIR R4 resource type"
            _quarantine(result, source, location, "resourceType", reason)
            return
        result.ignore(f"{resource_type} resources not read")
        return

    # A type the reader uses: validated against the R4 model.
    try:
        model = get_fhir_model_class(resource_type).model_validate(document)
    except ValidationError as error:
        problems = error.errors()
        first = problems[0]
        path = ".".join(str(part) for part in first["loc"])
        field = f"{resource_type}.{path}" if path else resource_type
        reason = f"not valid FHIR R4: {first['msg']}"
        if len(problems) > 1:
            reason += f" (and {len(problems) - 1} more problems)"
        _quarantine(result, source, location, field, reason)
        return
    except RecursionError:
        reason = "nested too deeply (extensions within extensions) to validate"
        _quarantine(result, source, location, resource_type, reason)
        return

    # Coded values fhir.resources does not check against their value sets.
    for name, allowed in VALUE_SETS.get(resource_type, {}).items():
        value = getattr(model, name, None)
        if value is not None and value not in allowed:
            expected = f"one of {', '.join(sorted(allowed))}"
            reason = (
                f"not valid FHIR R4: expected {expected}, found {str(value)[:20]!r}"
            )
            _quarantine(result, source, location, f"{resource_type}.{name}", reason)
            return
    entries.append(Entry(source, location, full_url, model))


# Required value sets of the coded elements the reader acts on (FHIR R4).
VALUE_SETS = {
    "Observation": {
        "status": {
            "registered", "preliminary", "final", "amended", "corrected",
            "cancelled", "entered-in-error", "unknown",
        },
    },
    "Patient": {"gender": {"male", "female", "other", "unknown"}},
    "Procedure": {
        "status": {
            "preparation", "in-progress", "not-done", "on-hold", "stopped",
            "completed", "entered-in-error", "unknown",
        },
    },
}  # fmt: skip


def _bundle(
    bundle: dict,
    source: str,
    location: str,
    result: ReadResult,
    entries: list[Entry],
) -> None:
    items = bundle.get("entry") or []
    if not isinstance(items, list):
        _quarantine(result, source, location, "Bundle.entry", "not a list")
        return
    prefix = "" if location == "resource" else f"{location} "
    for number, item in enumerate(items, start=1):
        where = f"{prefix}entry {number}"
        if not isinstance(item, dict):
            _quarantine(result, source, where, "Bundle.entry", "not a JSON object")
        elif "resource" in item:
            full_url = item.get("fullUrl")
            full_url = full_url if isinstance(full_url, str) else None
            _collect(item["resource"], source, where, full_url, result, entries)
        elif "resourceType" in item:
            reason = "resource placed directly in the entry, not under 'resource'"
            _quarantine(result, source, where, "Bundle.entry.resource", reason)
        elif "response" in item or "request" in item:
            # A batch-response or transaction entry that carries no resource.
            result.ignore("Bundle entries without a resource (request/response only)")
        else:
            _quarantine(result, source, where, "Bundle.entry.resource", "missing")


def _quarantine(
    result: ReadResult, source: str, location: str, field: str, reason: str
) -> None:
    result.quarantine.append(QuarantineItem(source, location, field, reason))
