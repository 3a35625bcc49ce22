"""HL7 v2 lab results (ORU^R01 messages) in, as `PatientRecord`s.

A file (or a byte string from an interface engine) may hold several messages, each
starting with an MSH segment. Segment endings may be CR (the standard), LF or CRLF,
the file may start with a UTF-8 byte order mark, and messages may keep their MLLP
frame (start byte 0x0b, end bytes 0x1c 0x0d); all of this is normalised before
hl7apy parses the segments. Fields are never split by hand: hl7apy parses each
message (without validation, without groups) and, when a vendor quirk such as a
segment unknown to the declared version stops it, each segment on its own.

What is read
------------
- PID-3 (first identifier of type MR, else the first) becomes a pseudonymous patient
  key; PID-7 the birth date (for the age at the result's time); PID-8 the sex.
  Names, addresses and identifiers are never kept or logged.
- OBX with value type NM (a number) or SN (structured numeric: ``<^3`` is "below 3")
  whose OBX-3 is a LOINC code mapped in ``configs/codes.yaml``; the unit (OBX-6) is
  converted to the registry's canonical unit by `ingest.units.to_canonical`.
- The time is OBX-14, else OBR-7 of the order the OBX belongs to; a time without a
  UTC offset takes MSH-7's offset, or UTC when MSH-7 has none.
- OBX-11 status F (final), C (corrected) or P (preliminary). Within one read, a
  corrected result replaces a final one, and a final result a preliminary one, for
  the same patient, code and time; the replaced one is counted as ignored.
- OBX-7 (reference range) and OBX-8 (abnormal flags) are kept on each `LabResult`
  (see `parse_oru`); `LabResult.abnormal` says whether the lab flagged a value or
  it lies outside its range. `read_hl7v2` returns records, which hold values
  only, and names each abnormal result (code and place, not value) in its notes.

What is set aside
-----------------
Quarantined, with the reason: a numeric OBX whose value is not a number, whose unit
is missing or impossible, or whose converted value is implausible (the range is in
the reason); a result that no PID precedes; an unreadable date; a message whose
segments hl7apy cannot parse. Ignored, counted by reason: messages that are not
ORU^R01 (MSH-9 named), non-numeric value types (CWE, TX, ED, RP, ...), statuses
other than F/C/P, codes that are not LOINC or not mapped.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from pathlib import Path

from hl7apy import SUPPORTED_LIBRARIES
from hl7apy.consts import VALIDATION_LEVEL
from hl7apy.exceptions import HL7apyException
from hl7apy.parser import get_message_info, parse_message, parse_segment
from hl7apy.utils import get_datetime_info

from ingest.codes import CodeTables, is_valid_loinc
from ingest.config import FeatureSpec
from ingest.errors import InputError, QuarantineItem
from ingest.observations import (
    Observation,
    PatientFacts,
    ReadResult,
    assemble_records,
    pseudonym,
)
from ingest.units import to_canonical

logger = logging.getLogger(__name__)

READER = "hl7v2"  # `PatientRecord.source` of every record read here
RESULT_MESSAGE = ("ORU", "R01")  # MSH-9.1, MSH-9.2 (v2.1 sends no trigger event)
NUMERIC_TYPES = ("NM", "SN")
# OBX-11 statuses whose values are used, ranked: a higher rank replaces a lower one.
USED_STATUSES = {"P": 1, "F": 2, "C": 3}
STATUS_MEANINGS = {
    "I": "pending",
    "X": "cannot be obtained",
    "D": "deleted",
    "W": "posted in error",
    "R": "entered, not verified",
    "S": "partial",
    "N": "not asked",
    "O": "order detail only",
    "U": "changed to final without a value",
    "A": "amended without a value",
    "": "missing",
}
LOINC_SYSTEMS = {"LN", "LOINC", "2.16.840.1.113883.6.1", "HTTP://LOINC.ORG"}
# A coding-system name (HL7 table 0396: LN, SCT, L, 99zzz, ...): one word, no spaces.
SYSTEM_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")
SN_COMPARATORS = {"": None, "=": None, "<": "<", ">": ">", "<=": "<=", ">=": ">="}
FALLBACK_VERSION = "2.5"  # parses a message whose MSH-12 hl7apy does not know
ENVELOPE_SEGMENTS = ("FHS", "BHS", "BTS", "FTS")  # batch header and trailer
SEGMENTS_READ = ("MSH", "PID", "OBR", "OBX")
COMPONENT_INDEX = re.compile(r"_(\d+)$")
NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)"
RANGE_BETWEEN = re.compile(rf"^\s*({NUMBER})\s*(?:-|–|_|to|\.\.)\s*({NUMBER})\s*$")
RANGE_BOUND = re.compile(rf"^\s*(<=|>=|≤|≥|<|>)\s*({NUMBER})\s*$")
FORMATTING = {".br": "\n", ".sp": "\n", ".fi": "", ".nf": "", ".in": "", ".ti": ""}


@dataclass(frozen=True)
class ReferenceRange:
    """A numeric reference range (OBX-7), in the unit the result was sent in.

    Attributes
    ----------
    low, high : float, optional
        Bounds; None when the range is open on that side (``<200``).
    low_inclusive, high_inclusive : bool
        Whether a value equal to the bound lies inside (``<200`` excludes 200).
    text : str
        The range as sent.
    """

    low: float | None
    high: float | None
    low_inclusive: bool = True
    high_inclusive: bool = True
    text: str = ""

    def contains(self, value: float) -> bool:
        """Return whether ``value`` (in the unit sent) lies inside the range."""
        if self.low is not None:
            if value < self.low or (value == self.low and not self.low_inclusive):
                return False
        if self.high is not None:
            if value > self.high or (value == self.high and not self.high_inclusive):
                return False
        return True


@dataclass(frozen=True)
class LabResult:
    """One usable numeric OBX, with what the lab said about it.

    Attributes
    ----------
    observation : Observation
        The value in the registry's canonical unit, with its time and LOINC code.
    status : str
        OBX-11: ``F`` final, ``C`` corrected or ``P`` preliminary.
    value_sent : float
        OBX-5 as sent.
    unit_sent : str
        OBX-6 as sent (its identifier, or its text when the identifier is empty).
    reference_range : ReferenceRange, optional
        OBX-7, when it is a numeric range; in the unit sent.
    abnormal_flags : tuple of str
        OBX-8 (``H``, ``L``, ``HH``, ``A``, ``N``, ...).
    record_id : str
        Where the result sits in the input (message control id and OBX ordinal).
    """

    observation: Observation
    status: str
    value_sent: float
    unit_sent: str
    reference_range: ReferenceRange | None
    abnormal_flags: tuple[str, ...]
    record_id: str

    @property
    def abnormal(self) -> bool | None:
        """Whether the lab flagged the value, or it lies outside the reference range.

        OBX-8 decides when given (any flag but ``N``); otherwise the reference
        range; None when neither is given.
        """
        flags = [flag for flag in self.abnormal_flags if flag]
        if flags:
            return any(flag != "N" for flag in flags)
        if self.reference_range is None:
            return None
        return not self.reference_range.contains(self.value_sent)


@dataclass
class ORUContent:
    """What the ORU^R01 messages of one input hold, before records are assembled.

    Attributes
    ----------
    results : list of LabResult
        Usable numeric results, in input order.
    facts : dict
        Patient key -> sex and birth date, for patients with at least one result.
    read : ReadResult
        Quarantine and ignored counts so far (no records yet).
    """

    results: list[LabResult] = field(default_factory=list)
    facts: dict[str, PatientFacts] = field(default_factory=dict)
    read: ReadResult = field(default_factory=ReadResult)


def read_hl7v2(
    path_or_bytes: Path | str | bytes,
    *,
    registry: dict[str, FeatureSpec],
    codes: CodeTables,
    timeline_features: list[str],
    max_timeline_steps: int,
    site: str = "hl7v2",
    source: str | None = None,
) -> ReadResult:
    """Read HL7 v2 ORU^R01 lab results into one record per patient.

    Parameters
    ----------
    path_or_bytes : Path, str or bytes
        A file of one or more messages (path), or the messages themselves (bytes,
        with or without MLLP framing).
    registry : dict
        Feature registry (`DataConfig.registry`): canonical units, plausible ranges.
    codes : CodeTables
        Code tables; `CodeTables.feature_for_loinc` maps OBX-3 to features.
    timeline_features : list of str
        Features an earlier day's results may fill in the record's timeline.
    max_timeline_steps : int
        Most recent earlier days kept.
    site : str
        The data holder; also the namespace of the patient pseudonyms.
    source : str, optional
        Name of the input in quarantine items and errors; the file name by
        default (``request`` for bytes). Records name the reader (``hl7v2``).

    Returns
    -------
    ReadResult
        Records (latest value per feature, earlier days as timeline), quarantined
        input with reasons, and ignored input counted by reason.

    Raises
    ------
    InputError
        When the input is empty or holds no MSH segment.
    """
    content = parse_oru(
        path_or_bytes, registry=registry, codes=codes, site=site, source=source
    )
    source_name = _source_name(path_or_bytes, source)

    # Corrected results replace final ones, final ones preliminary ones.
    results = _keep_latest_status(content.results, content.read)

    # One record per patient: latest value per feature, earlier days as timeline.
    records, conflicts = assemble_records(
        [result.observation for result in results],
        content.facts,
        source=READER,
        site=site,
        timeline_features=timeline_features,
        max_timeline_steps=max_timeline_steps,
    )
    read = content.read
    read.records.extend(records)
    read.quarantine.extend(conflicts)

    # Notes for the report: what the lab flagged, without values.
    read.notes.extend(_abnormal_notes(results))
    logger.info(
        "%s: %d records, %d results used, %d quarantined, %d ignored",
        source_name,
        len(records),
        len(results),
        len(read.quarantine),
        sum(read.ignored.values()),
    )
    return read


def parse_oru(
    path_or_bytes: Path | str | bytes,
    *,
    registry: dict[str, FeatureSpec],
    codes: CodeTables,
    site: str = "hl7v2",
    source: str | None = None,
) -> ORUContent:
    """Read the numeric lab results of HL7 v2 ORU^R01 messages.

    Parameters are those of `read_hl7v2` (without the timeline settings).

    Returns
    -------
    ORUContent
        Results with reference ranges and flags, patient facts, quarantine and
        ignored counts.

    Raises
    ------
    InputError
        When the input is empty or holds no MSH segment.
    """
    source_name = _source_name(path_or_bytes, source)
    content = ORUContent()
    text = _decode(path_or_bytes, source_name)
    messages = list(_split_messages(text, content.read))
    if not messages:
        raise InputError(
            source_name, "MSH", "HL7 v2 messages starting with MSH", "no MSH segment"
        )
    for number, message in enumerate(messages, start=1):
        _read_message(message, number, content, registry, codes, site, source_name)

    # Facts only for patients with a result: an age needs a result's time.
    with_results = {result.observation.patient_key for result in content.results}
    content.facts = {
        key: facts for key, facts in content.facts.items() if key in with_results
    }
    outside = sum(result.abnormal is True for result in content.results)
    logger.debug(
        "%s: %d messages, %d results, %d flagged or outside their reference range",
        source_name,
        len(messages),
        len(content.results),
        outside,
    )
    return content


def unescape(text: str, encoding_chars: dict[str, str]) -> str:
    r"""Replace HL7 v2 escape sequences in a text value by what they stand for.

    ``\F\ \S\ \T\ \R\ \E\`` become the field, component, subcomponent,
    repetition and escape characters of the message (MSH-1 and MSH-2);
    ``\Xhh..\`` the bytes ``hh..`` (UTF-8, else Latin-1); ``\.br\`` a line
    break. Highlighting (``\H\``, ``\N\``), character-set switches (``\C..\``,
    ``\M..\``) and local sequences (``\Z..\``) are removed. An escape character
    without a closing one is kept as it is.

    Parameters
    ----------
    text : str
        A value as it stands in the message.
    encoding_chars : dict
        hl7apy's encoding characters (``FIELD``, ``COMPONENT``, ``SUBCOMPONENT``,
        ``REPETITION``, ``ESCAPE``, optionally ``TRUNCATION``).

    Returns
    -------
    str
    """
    escape = encoding_chars["ESCAPE"]
    if escape not in text:
        return text
    named = {
        "F": encoding_chars["FIELD"],
        "S": encoding_chars["COMPONENT"],
        "T": encoding_chars["SUBCOMPONENT"],
        "R": encoding_chars["REPETITION"],
        "E": escape,
        "P": encoding_chars.get("TRUNCATION", "#"),
        "H": "",
        "N": "",
    }
    pattern = re.compile(
        f"{re.escape(escape)}([^{re.escape(escape)}]*){re.escape(escape)}"
    )

    def replace(match: re.Match[str]) -> str:
        sequence = match[1]
        if sequence in named:
            return named[sequence]
        if sequence.lower() in FORMATTING:
            return FORMATTING[sequence.lower()]
        if sequence[:1] == "X" and re.fullmatch(r"(?:[0-9A-Fa-f]{2})+", sequence[1:]):
            raw = bytes.fromhex(sequence[1:])
            try:
                return raw.decode("utf-8")
            except UnicodeDecodeError:
                return raw.decode("latin-1")
        if sequence[:1] in ("C", "M", "Z") or sequence[:1] == ".":
            return ""
        return match[0]

    return pattern.sub(replace, text)


def parse_reference_range(text: str) -> ReferenceRange | None:
    """Parse an OBX-7 reference range such as ``4.3 to 6.2``, ``70-80`` or ``<200``.

    Parameters
    ----------
    text : str
        The range as sent (already unescaped).

    Returns
    -------
    ReferenceRange or None
        None when the text is empty or not a numeric range (``negative``).
    """
    between = RANGE_BETWEEN.match(text)
    if between:
        low, high = float(between[1]), float(between[2])
        return ReferenceRange(min(low, high), max(low, high), text=text.strip())
    bound = RANGE_BOUND.match(text)
    if bound:
        sign = {"≤": "<=", "≥": ">="}.get(bound[1], bound[1])
        limit = float(bound[2])
        inclusive = sign.endswith("=")
        if sign.startswith("<"):
            return ReferenceRange(None, limit, high_inclusive=inclusive, text=text)
        return ReferenceRange(limit, None, low_inclusive=inclusive, text=text)
    return None


# -- input -----------------------------------------------------------------------------


def _source_name(path_or_bytes: Path | str | bytes, source: str | None) -> str:
    if source is not None:
        return source
    if isinstance(path_or_bytes, bytes):
        return "request"
    return Path(path_or_bytes).name


def _decode(path_or_bytes: Path | str | bytes, source: str) -> str:
    """Return the input as text with CR segment endings and no framing bytes."""
    if isinstance(path_or_bytes, bytes):
        raw = path_or_bytes
    else:
        path = Path(path_or_bytes)
        if not path.is_file():
            raise InputError(source, "path", "an HL7 v2 file", f"no file at {path}")
        raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")  # MSH-18 8859/1 senders
    text = text.replace("\ufeff", "").replace("\x0b", "").replace("\x1c", "\r")
    text = text.replace("\r\n", "\r").replace("\n", "\r")
    if not text.strip():
        raise InputError(source, "content", "HL7 v2 messages", "an empty input")
    return text


def _split_messages(text: str, read: ReadResult) -> Iterator[str]:
    """Yield each message (its segments joined by CR); MSH starts a message."""
    current: list[str] = []
    for segment in text.split("\r"):
        segment = segment.strip()
        if not segment:
            continue
        if segment.startswith("MSH"):
            if current:
                yield "\r".join(current)
            current = [segment]
        elif current:
            current.append(segment)
        elif not segment.startswith(ENVELOPE_SEGMENTS):
            read.ignore("segment before the first MSH")
    if current:
        yield "\r".join(current)


# -- one message -----------------------------------------------------------------------


@dataclass
class _Message:
    """What the segments of one message need to know about it."""

    label: str  # MSH-10 control id, or "message <n>"
    chars: dict[str, str]
    default_tz: tzinfo
    source: str
    site: str


def _read_message(
    text: str,
    number: int,
    content: ORUContent,
    registry: dict[str, FeatureSpec],
    codes: CodeTables,
    site: str,
    source: str,
) -> None:
    read = content.read
    label = f"message {number}"

    # Header: encoding characters (MSH-1, MSH-2), version (MSH-12), type (MSH-9).
    try:
        chars, _, declared = get_message_info(text)
        known_version = declared in SUPPORTED_LIBRARIES
        version = declared if known_version else FALLBACK_VERSION
        msh = parse_segment(
            text.split("\r", 1)[0], version, chars, VALIDATION_LEVEL.TOLERANT
        )
    except (HL7apyException, ValueError, IndexError) as error:
        reason = f"MSH segment not readable ({type(error).__name__})"
        read.quarantine.append(QuarantineItem(source, label, "MSH", reason))
        return
    label = _text(msh, 10, chars) or label
    kind = (_text(msh, 9, chars), _text(msh, 9, chars, component=2))
    if kind[0] != RESULT_MESSAGE[0] or kind[1] not in (RESULT_MESSAGE[1], ""):
        found = "^".join(part for part in kind if part) or "nothing"
        read.ignore(f"MSH-9 message type {found} is not ORU^R01 (lab results)")
        return
    try:
        sent = _time_or_none(_text(msh, 7, chars), UTC)
    except ValueError:
        sent = None
    default_tz = sent.tzinfo if sent is not None and sent.tzinfo else UTC
    message = _Message(label, chars, default_tz, source, site)

    # Segments: the whole message with hl7apy, else one by one (vendor quirks).
    segments = _parse_segments(text, version, chars, message, read, known_version)
    if segments is None:
        return

    # Walk: PID sets the patient, OBR the default time, OBX gives a result.
    patient: str | None = None
    order_time: datetime | None = None
    for ordinal, segment in _numbered_obx(segments):
        if segment.name == "PID":
            patient = _read_patient(segment, message, content)
            order_time = None
        elif segment.name == "OBR":
            order_time = _time_field(segment, 7, message, read, f"{label}/OBR")
        elif segment.name == "OBX":
            result = _read_result(
                segment, ordinal, patient, order_time, message, registry, codes, read
            )
            if result is not None:
                content.results.append(result)


def _parse_segments(
    text: str,
    version: str,
    chars: dict[str, str],
    message: _Message,
    read: ReadResult,
    whole: bool,
) -> list | None:
    """The message's segments as hl7apy objects; None when they cannot be read.

    ``whole``: try hl7apy's message parser first (the declared version is known).
    """
    if whole:
        try:
            parsed = parse_message(
                text, validation_level=VALIDATION_LEVEL.TOLERANT, find_groups=False
            )
            return [child for child in parsed.children if child.name in SEGMENTS_READ]
        except (HL7apyException, ValueError, IndexError) as error:
            logger.debug(
                "%s: parsing segment by segment (%s)",
                message.label,
                type(error).__name__,
            )
    segments = []
    for line in text.split("\r"):
        if not line.startswith(SEGMENTS_READ):
            continue
        try:
            segments.append(
                parse_segment(line, version, chars, VALIDATION_LEVEL.TOLERANT)
            )
        except (HL7apyException, ValueError, IndexError) as error:
            reason = (
                f"{line[:3]} segment not readable as HL7 v{version} "
                f"({type(error).__name__}); message set aside"
            )
            read.quarantine.append(
                QuarantineItem(message.source, message.label, line[:3], reason)
            )
            return None
    return segments


def _numbered_obx(segments: list) -> Iterator[tuple[int, object]]:
    """Yield (OBX ordinal within the message, segment); 0 for other segments."""
    ordinal = 0
    for segment in segments:
        if segment.name == "OBX":
            ordinal += 1
            yield ordinal, segment
        else:
            yield 0, segment


def _read_patient(segment, message: _Message, content: ORUContent) -> str | None:
    """Return the pseudonymous key of a PID's patient and record sex and birth date."""
    read, chars = content.read, message.chars
    identifiers = _repetitions(segment, 3)
    chosen = next(
        (rep for rep in identifiers if _component(rep, 5, chars) == "MR"),
        identifiers[0] if identifiers else None,
    )
    number = _component(chosen, 1, chars) if chosen is not None else ""
    if not number:
        reason = "PID-3 has no patient identifier; the patient's results are set aside"
        read.quarantine.append(
            QuarantineItem(message.source, message.label, "PID-3", reason)
        )
        return None
    authority = _component(chosen, 4, chars)
    key = pseudonym(f"{number}^{authority}", message.site)

    # Sex (PID-8) and birth date (PID-7); the age follows from the result's time.
    sex = {"M": 1.0, "F": 0.0}.get(_text(segment, 8, chars).upper())
    born = _time_field(segment, 7, message, read, f"{message.label}/PID")
    facts = PatientFacts(sex, born.date() if born is not None else None)
    known = content.facts.setdefault(key, facts)
    if known is not facts:
        _merge_facts(known, facts, key, message, read)
    return key


def _merge_facts(
    known: PatientFacts,
    new: PatientFacts,
    key: str,
    message: _Message,
    read: ReadResult,
) -> None:
    for name, field_name in (("sex_male", "PID-8"), ("birth_date", "PID-7")):
        before, now = getattr(known, name), getattr(new, name)
        if before is None:
            setattr(known, name, now)
        elif now is not None and now != before:
            setattr(known, name, None)
            reason = f"{field_name} differs between messages of this patient"
            read.quarantine.append(QuarantineItem(message.source, key, name, reason))


def _read_result(
    segment,
    ordinal: int,
    patient: str | None,
    order_time: datetime | None,
    message: _Message,
    registry: dict[str, FeatureSpec],
    codes: CodeTables,
    read: ReadResult,
) -> LabResult | None:
    """Turn one OBX into a `LabResult`, or quarantine or ignore it with the reason."""
    chars, source = message.chars, message.source
    record_id = f"{message.label}/OBX-{ordinal}"

    def set_aside(field_name: str, reason: str) -> None:
        read.quarantine.append(QuarantineItem(source, record_id, field_name, reason))

    # Value type (OBX-2) and status (OBX-11).
    value_type = _text(segment, 2, chars).upper()
    if value_type not in NUMERIC_TYPES:
        read.ignore(f"OBX-2 value type {value_type or 'missing'} is not numeric")
        return None
    status = _text(segment, 11, chars).upper()
    if status not in USED_STATUSES:
        meaning = STATUS_MEANINGS.get(status, "unknown")
        read.ignore(f"OBX-11 status {status or '-'} ({meaning}) is not F, C or P")
        return None
    if patient is None:
        set_aside("PID", "no PID segment with an identifier before this result")
        return None

    # Code (OBX-3): LOINC, mapped to a registry feature.
    code = _loinc(segment, chars)
    if code is None:
        system = _text(segment, 3, chars, component=3) or "none"
        read.ignore(f"OBX-3 coding system {system} is not LOINC")
        return None
    feature = codes.feature_for_loinc(code)
    if feature is None or feature not in registry:
        read.ignore(f"LOINC {code} not mapped")
        return None

    # Value (OBX-5), unit (OBX-6) and time (OBX-14, else OBR-7).
    try:
        comparator, value = _value(segment, value_type, chars)
    except ValueError as error:
        set_aside("OBX-5", str(error))
        return None
    units = _repetitions(segment, 6)
    unit = ""
    if units:
        unit = _component(units[0], 1, chars) or _component(units[0], 2, chars)
    time = _time_field(segment, 14, message, read, record_id)
    time = time if time is not None else order_time

    # Conversion to the canonical unit, with the plausibility check.
    try:
        converted = to_canonical(
            value, unit, registry[feature], feature=feature, source=source
        )
    except InputError as error:
        set_aside(error.field, f"expected {error.expected}, found {error.found}")
        return None

    # Reference range (OBX-7) and abnormal flags (OBX-8), in the unit sent.
    reference = parse_reference_range(_text(segment, 7, chars))
    flags = tuple(_component(rep, 1, chars).upper() for rep in _repetitions(segment, 8))
    return LabResult(
        Observation(patient, feature, converted, time, code, comparator),
        status,
        value,
        unit,
        reference,
        flags,
        record_id,
    )


def _loinc(segment, chars: dict[str, str]) -> str | None:
    """The LOINC code of OBX-3 (first or alternate triplet), or None.

    A code in a triplet whose coding system is LN is LOINC. When the coding system
    is missing or is not a system name at all (the HL7 standard's own example puts
    LOINC's long name there), a code of LOINC form with a right check digit is
    taken as LOINC.
    """
    fields = _repetitions(segment, 3)
    if not fields:
        return None
    identifier = fields[0]
    for code_at, system_at in ((1, 3), (4, 6)):
        code = _component(identifier, code_at, chars).strip()
        system = _component(identifier, system_at, chars).strip()
        if not code:
            continue
        if system.upper() in LOINC_SYSTEMS:
            return code
        if (not system or not SYSTEM_NAME.match(system)) and is_valid_loinc(code):
            return code
    return None


def _value(segment, value_type: str, chars: dict[str, str]) -> tuple[str | None, float]:
    """Return (comparator, number) of OBX-5; ValueError with the reason otherwise."""
    repetitions = _repetitions(segment, 5)
    if not repetitions:
        raise ValueError(f"OBX-5 is empty (value type {value_type})")
    if len(repetitions) > 1:
        raise ValueError(f"OBX-5 repeats ({len(repetitions)} values for one result)")
    field_ = repetitions[0]
    if value_type == "NM":
        comparator, text = None, _component(field_, 1, chars)
    else:
        # SN: comparator ^ number ^ separator or suffix ^ second number.
        sign = _component(field_, 1, chars).strip()
        if _component(field_, 3, chars) or _component(field_, 4, chars):
            raise ValueError("OBX-5 SN holds a range or ratio, not one value")
        if sign not in SN_COMPARATORS:
            raise ValueError(f"OBX-5 SN comparator {sign!r} is not one of <, >, <=, >=")
        comparator, text = SN_COMPARATORS[sign], _component(field_, 2, chars)
    try:
        number = float(text.strip())
    except ValueError:
        raise ValueError(
            f"OBX-5 is not a number (value type {value_type}); "
            "a bound such as <3 is sent as SN"
        ) from None
    return comparator, number


# -- fields and components -------------------------------------------------------------


def _repetitions(segment, number: int) -> list:
    """The repetitions of a segment's field (empty when absent)."""
    try:
        return list(segment.children.get(f"{segment.name}_{number}"))
    except (HL7apyException, KeyError, AttributeError):
        return []


def _component(element, number: int, chars: dict[str, str]) -> str:
    """Unescaped text of a field's component (its first subcomponent)."""
    component = _child(element, number)
    if component is None:
        return ""
    leaf = _child(component, 1) if component.children else None
    if leaf is None:
        return ""
    value = getattr(leaf.value, "value", leaf.value)
    if not isinstance(value, str):  # a date hl7apy already parsed: keep its text
        return leaf.to_er7()
    return unescape(value, chars)


def _child(element, number: int):
    """The child of an hl7apy element with the 1-based position ``number``.

    hl7apy names the children of composite types ``CE_1``, ``VARIES_2``, ... and
    leaves out empty ones; children of plain types carry no number and keep
    their place.
    """
    for position, child in enumerate(element.children, start=1):
        match = COMPONENT_INDEX.search(child.name or "")
        if (int(match[1]) if match else position) == number:
            return child
    return None


def _text(segment, number: int, chars: dict[str, str], component: int = 1) -> str:
    """Unescaped text of a component of the first repetition of a field."""
    repetitions = _repetitions(segment, number)
    return _component(repetitions[0], component, chars).strip() if repetitions else ""


def _time_field(
    segment, number: int, message: _Message, read: ReadResult, record_id: str
) -> datetime | None:
    """A date/time field; an unreadable one is quarantined and read as missing."""
    text = _text(segment, number, message.chars)
    try:
        return _time_or_none(text, message.default_tz)
    except ValueError:
        field_name = f"{segment.name}-{number}"
        reason = (
            f"{field_name} is not an HL7 date/time (YYYYMMDD[HHMM[SS]][+ZZZZ]); "
            "read as missing"
        )
        read.quarantine.append(
            QuarantineItem(message.source, record_id, field_name, reason)
        )
        return None


def _time_or_none(text: str, default_tz: tzinfo) -> datetime | None:
    """Parse an HL7 DTM; a time without an offset takes ``default_tz``."""
    if not text:
        return None
    moment, _, offset, _ = get_datetime_info(text)
    if not offset:
        return moment.replace(tzinfo=default_tz)
    sign = -1 if offset[0] == "-" else 1
    shift = timedelta(hours=int(offset[1:3]), minutes=int(offset[3:5]))
    return moment.replace(tzinfo=timezone(sign * shift))


# -- superseded results ----------------------------------------------------------------


def _keep_latest_status(results: list[LabResult], read: ReadResult) -> list[LabResult]:
    """Drop results replaced by a higher-status one of the same patient, code, time.

    Equal statuses are all kept: `assemble_records` merges agreeing values and
    quarantines conflicting ones.
    """
    best: dict[tuple, int] = {}
    for result in results:
        key = _result_key(result)
        best[key] = max(best.get(key, 0), USED_STATUSES[result.status])
    kept = []
    for result in results:
        if USED_STATUSES[result.status] < best[_result_key(result)]:
            read.ignore(
                f"OBX-11 status {result.status} replaced by a later status "
                "for the same code and time"
            )
            continue
        kept.append(result)
    return kept


def _abnormal_notes(results: list[LabResult]) -> list[str]:
    """One note per result flagged or outside its range, and a summary."""
    notes = []
    for result in results:
        if result.abnormal is not True:
            continue
        obs = result.observation
        flags = "/".join(flag for flag in result.abnormal_flags if flag) or "none"
        reference = result.reference_range.text if result.reference_range else "none"
        notes.append(
            f"{result.record_id}: {obs.feature} (LOINC {obs.code}) abnormal "
            f"(OBX-8 flags {flags}; reference range {reference})"
        )
    summary = f"{len(results)} numeric results used, {len(notes)} abnormal"
    return [summary, *notes] if results else []


def _result_key(result: LabResult) -> tuple:
    obs = result.observation
    return obs.patient_key, obs.code, obs.time


__all__ = [
    "LabResult",
    "ORUContent",
    "ReferenceRange",
    "parse_oru",
    "parse_reference_range",
    "read_hl7v2",
    "unescape",
]
