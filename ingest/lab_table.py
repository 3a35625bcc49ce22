"""CSV lab exports in, as `PatientRecord`s.

Two layouts are read, told apart by their header:

- **long**: one result per row, with columns for the patient, the time (optional),
  a LOINC ``code`` or a registry ``feature``, the ``value`` and its ``unit``;
- **wide**: one row per patient and time, one column per feature (a registry name
  or a LOINC code). A column's unit is given in its header (``creatinine [umol/L]``),
  in a ``<column>_unit`` column beside it, or in a unit row under the header (its
  patient cell reads ``unit``, or is empty and no other cell is a number).

The separator (``,``, ``;``, tab or ``|``) is the one that splits the header into
more than one cell and most lines into as many cells as the header. The decimal
mark is ``,`` only in a file not separated by commas whose values hold ``3,5``-like
numbers; a number with the other mark is then quarantined, never guessed (``1.234``
could be 1234).

Cells holding one of the source's missing-value codes (``?``, ``-9``, ...; a numeric
code also as ``-9.0``) are missing and counted, never read as numbers. A cell may
hold a comparator and a unit (``<3 ng/L``). Each cell that is not a number is
quarantined naming its row (the line of the file) and column; so is a value whose
unit is missing (for a feature that has one), impossible, or whose converted value
is implausible. Times are ISO 8601; a time without an offset is taken as UTC.

`parse_lab_table` returns the values as `Observation`s (with comparators);
`read_lab_table` assembles them into records, which hold values only.
"""

from __future__ import annotations

import csv
import io
import logging
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from ingest.codes import CodeTables
from ingest.config import FeatureSpec
from ingest.errors import InputError, QuarantineItem
from ingest.observations import Observation, ReadResult, assemble_records, pseudonym
from ingest.tables import require_columns
from ingest.units import to_canonical

logger = logging.getLogger(__name__)

READER = "lab_table"  # `PatientRecord.source` of every record read here
SEPARATORS = (",", ";", "\t", "|")
SNIFF_LINES = 50
PATIENT_COLUMNS = ("patient", "patient_id", "patientid", "subject", "subject_id", "pid")
TIME_COLUMNS = (
    "time", "datetime", "date", "date_time", "timestamp", "effective",
    "effective_time", "collected", "collection_time", "sample_time",
)  # fmt: skip
CODE_COLUMNS = ("code", "loinc", "loinc_code")
FEATURE_COLUMNS = ("feature",)
VALUE_COLUMNS = ("value", "result", "result_value")
UNIT_COLUMNS = ("unit", "units")
UNIT_ROW_LABELS = ("unit", "units", "[unit]")
UNIT_SUFFIX = "_unit"
COMPARATORS = {
    "<": "<",
    ">": ">",
    "<=": "<=",
    ">=": ">=",
    "≤": "<=",
    "≥": ">=",
    "=": None,
}
CELL = re.compile(
    r"^(?P<cmp><=|>=|≤|≥|<|>|=)?\s*"
    r"(?P<number>[-+]?(?:\d+(?:[.,]\d*)?|[.,]\d+)(?:[eE][-+]?\d+)?)"
    r"(?P<rest>.*)$"
)
DECIMAL_COMMA = re.compile(r"^\s*(?:<=|>=|≤|≥|<|>|=)?\s*[-+]?\d+,\d+(?:\s.*)?$")
UNIT_START = re.compile(r"^(?:\s+\S|[A-Za-zµμ%\[{/°])")
HEADER_UNIT = re.compile(r"^(?P<name>[^\[(]+?)\s*[\[(](?P<unit>.*)[\])]\s*$")

DEFAULT_MISSING_CODES = ("?", "-9", "", "NA", "N/A")  # cells that mean "not measured"


@dataclass(frozen=True)
class _Cell:
    """One value of the table, with everything needed to read it."""

    line: int  # line of the file (the header is line 1)
    column: str  # header text, for the quarantine
    patient: str
    time: str
    feature: str | None  # registry name, None when the column or code is unknown
    code: str  # LOINC code or registry name as written
    value: str
    unit: str
    unknown: str = ""  # why `feature` is None, counted when the cell holds a value


def read_lab_table(
    path: Path | str,
    *,
    registry: dict[str, FeatureSpec],
    codes: CodeTables,
    timeline_features: list[str],
    max_timeline_steps: int,
    missing_codes: tuple[str, ...] = DEFAULT_MISSING_CODES,
    decimal: str | None = None,
    sep: str | None = None,
    site: str = "lab_table",
    source: str | None = None,
) -> ReadResult:
    """Read a CSV lab export (long or wide layout) into one record per patient.

    Parameters
    ----------
    path : Path or str
        The CSV file (UTF-8, with or without BOM; Latin-1 is accepted).
    registry : dict
        Feature registry (`DataConfig.registry`): canonical units, plausible ranges.
    codes : CodeTables
        Code tables; LOINC codes in a ``code`` column or a column header are mapped
        with `CodeTables.feature_for_loinc`.
    timeline_features : list of str
        Features an earlier day's values may fill in the record's timeline.
    max_timeline_steps : int
        Most recent earlier days kept.
    missing_codes : tuple of str
        This source's codes for a missing value; numeric codes (``-9``) also match
        the same number written otherwise (``-9.0``).
    decimal : {".", ","}, optional
        Decimal mark; detected when None (see the module's description).
    sep : str, optional
        Cell separator; detected when None.
    site : str
        The data holder; also the namespace of the patient pseudonyms.
    source : str, optional
        Name of the file in quarantine items; the file name by default. Records
        name the reader (``lab_table``).

    Returns
    -------
    ReadResult
        Records, quarantined cells with reasons, ignored cells counted by reason.

    Raises
    ------
    InputError
        When the file is missing, empty, holds only a header, or lacks a patient
        column (or, in the long layout, a value and a code or feature column).
    """
    source_name = source or Path(path).name
    observations, result = parse_lab_table(
        path,
        registry=registry,
        codes=codes,
        missing_codes=missing_codes,
        decimal=decimal,
        sep=sep,
        site=site,
        source=source_name,
    )

    # One record per patient: latest value per feature, earlier days as timeline.
    records, conflicts = assemble_records(
        observations,
        {},
        source=READER,
        site=site,
        timeline_features=timeline_features,
        max_timeline_steps=max_timeline_steps,
    )
    result.records.extend(records)
    result.quarantine.extend(conflicts)
    logger.info(
        "%s: %d records from %d values, %d quarantined, %d ignored",
        source_name,
        len(records),
        len(observations),
        len(result.quarantine),
        sum(result.ignored.values()),
    )
    return result


def parse_lab_table(
    path: Path | str,
    *,
    registry: dict[str, FeatureSpec],
    codes: CodeTables,
    missing_codes: tuple[str, ...] = DEFAULT_MISSING_CODES,
    decimal: str | None = None,
    sep: str | None = None,
    site: str = "lab_table",
    source: str | None = None,
) -> tuple[list[Observation], ReadResult]:
    """Read the values of a CSV lab export, before records are assembled.

    Parameters are those of `read_lab_table` (without the timeline settings).

    Returns
    -------
    observations : list of Observation
        Values in canonical units, with comparators (``<3 ng/L``) and times.
    result : ReadResult
        Quarantined cells and ignored counts (no records yet).

    Raises
    ------
    InputError
        As `read_lab_table`.
    """
    path = Path(path)
    source_name = source or path.name
    if decimal not in (None, ".", ","):
        raise ValueError(
            f"decimal must be '.' or ',' (or None to detect), not {decimal!r}"
        )
    result = ReadResult()

    # Text and separator.
    text = _read_text(path)
    separator = sep or _detect_separator(text)

    # Rows with their line numbers; the header first.
    rows = _rows(text, separator)
    if not rows:
        raise InputError(path.name, "content", "a CSV table", "an empty file")
    (_, header), body = rows[0], rows[1:]
    header = [cell.strip() for cell in header]
    if not body:
        expected = "a header row and at least one data row"
        raise InputError(path.name, "content", expected, "only a header row")
    duplicated = sorted({name for name in header if header.count(name) > 1})
    if duplicated:
        raise InputError(path.name, "header", "distinct column names", f"{duplicated}")

    # Cells, from either layout.
    columns = {name.lower(): index for index, name in enumerate(header)}
    layout = _long_cells if _is_long(columns) else _wide_cells
    cells = layout(
        header, columns, body, registry, codes, path.name, source_name, result
    )

    # Decimal mark: a comma only in a file not separated by commas.
    if decimal is None:
        decimal = "," if separator != "," and _has_decimal_commas(cells) else "."

    layout_name = "long" if layout is _long_cells else "wide"
    result.notes.append(
        f"{path.name}: {layout_name} layout, separator {separator!r}, "
        f"decimal mark {decimal!r}"
    )

    # Each cell becomes an observation, or is counted missing, ignored or set aside.
    missing = _MissingCodes(missing_codes)
    observations = []
    for cell in cells:
        observation = _observe(
            cell, registry, decimal, missing, site, source_name, result
        )
        if observation is not None:
            observations.append(observation)
    return observations, result


# -- text, separator, rows -------------------------------------------------------------


def _read_text(path: Path) -> str:
    if not path.is_file():
        raise InputError(path.name, "path", "a CSV file", f"no file at {path}")
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")  # spreadsheet exports with µ as one byte
    if not text.strip():
        raise InputError(path.name, "content", "a CSV table", "an empty file")
    return text


def _detect_separator(text: str) -> str:
    """The separator that splits the sampled lines like the header, most often.

    Candidates that leave the header one cell lose; then the share of lines with
    as many cells as the header decides, then the number of cells. Ragged rows are
    quarantined later, so one of them does not change the separator.
    """
    sample = [line for line in text.splitlines()[:SNIFF_LINES] if line.strip()]

    def score(candidate: str) -> tuple[bool, float, int]:
        widths = [len(row) for row in csv.reader(sample, delimiter=candidate)]
        same = sum(width == widths[0] for width in widths) / len(widths)
        return widths[0] > 1, same, widths[0]

    return max(SEPARATORS, key=score)


def _rows(text: str, separator: str) -> list[tuple[int, list[str]]]:
    """Non-blank rows with the file line each ends on (the header is line 1)."""
    reader = csv.reader(io.StringIO(text), delimiter=separator)
    rows = []
    for row in reader:
        if any(cell.strip() for cell in row):
            rows.append((reader.line_num, row))
    return rows


# -- layouts ---------------------------------------------------------------------------


def _is_long(columns: dict[str, int]) -> bool:
    has_value = any(name in columns for name in VALUE_COLUMNS)
    has_code = any(name in columns for name in CODE_COLUMNS + FEATURE_COLUMNS)
    return has_value and has_code


def _find(columns: dict[str, int], names: tuple[str, ...]) -> int | None:
    return next((columns[name] for name in names if name in columns), None)


def _patient_column(columns: dict[str, int], file_name: str) -> int:
    index = _find(columns, PATIENT_COLUMNS)
    if index is None:
        require_columns(columns, ["patient (or patient_id, subject_id)"], file_name)
    return index  # type: ignore[return-value]


def _long_cells(
    header: list[str],
    columns: dict[str, int],
    body: list[tuple[int, list[str]]],
    registry: dict[str, FeatureSpec],
    codes: CodeTables,
    file_name: str,
    source: str,
    result: ReadResult,
) -> list[_Cell]:
    """One cell per row: patient, time, code or feature, value, unit."""
    patient_at = _patient_column(columns, file_name)
    time_at = _find(columns, TIME_COLUMNS)
    code_at = _find(columns, CODE_COLUMNS)
    feature_at = _find(columns, FEATURE_COLUMNS)
    value_at = _find(columns, VALUE_COLUMNS)
    unit_at = _find(columns, UNIT_COLUMNS)
    cells = []
    for line, row in body:
        if not _row_fits(row, header, line, source, result):
            continue
        name = row[feature_at].strip() if feature_at is not None else ""
        code = row[code_at].strip() if code_at is not None else ""
        feature, unknown = _feature_named(name, code, registry, codes)
        cells.append(
            _Cell(
                line,
                header[value_at],  # type: ignore[index]
                row[patient_at].strip(),
                row[time_at].strip() if time_at is not None else "",
                feature,
                code or name,
                row[value_at],  # type: ignore[index]
                row[unit_at].strip() if unit_at is not None else "",
                unknown,
            )
        )
    return cells


def _feature_named(
    name: str, code: str, registry: dict[str, FeatureSpec], codes: CodeTables
) -> tuple[str | None, str]:
    """The registry feature of a long row (its feature name, else its LOINC code).

    Returns the feature, or None and the reason it is unknown.
    """
    if name:
        if name.lower() in registry:
            return name.lower(), ""
        return None, f"feature {name!r} not in the registry"
    feature = codes.feature_for_loinc(code)
    if feature is None or feature not in registry:
        return None, f"LOINC {code or '(empty)'} not mapped"
    return feature, ""


def _wide_cells(
    header: list[str],
    columns: dict[str, int],
    body: list[tuple[int, list[str]]],
    registry: dict[str, FeatureSpec],
    codes: CodeTables,
    file_name: str,
    source: str,
    result: ReadResult,
) -> list[_Cell]:
    """One cell per feature column and row; units from header, column or unit row."""
    patient_at = _patient_column(columns, file_name)
    time_at = _find(columns, TIME_COLUMNS)

    # Which columns hold which feature, and where their units are written.
    unit_columns = {
        name[: -len(UNIT_SUFFIX)]: index
        for name, index in columns.items()
        if name.endswith(UNIT_SUFFIX)
    }
    value_columns: list[tuple[int, str | None, str, str]] = []
    for index, title in enumerate(header):
        if index in (patient_at, time_at) or index in unit_columns.values():
            continue
        match = HEADER_UNIT.match(title)
        name, unit = (match["name"], match["unit"].strip()) if match else (title, "")
        feature = _feature_of_column(name.strip(), registry, codes)
        value_columns.append((index, feature, name.strip(), unit))

    # A unit row under the header.
    unit_row: list[str] = []
    _, first = body[0]
    if _is_unit_row(first, patient_at, [index for index, *_ in value_columns]):
        unit_row, body = first, body[1:]
        if not body:
            expected = "a header row and at least one data row"
            raise InputError(file_name, "content", expected, "a header and unit row")

    cells = []
    for line, row in body:
        if not _row_fits(row, header, line, source, result):
            continue
        for index, feature, name, header_unit in value_columns:
            unit_at = unit_columns.get(name.lower())
            unit = (
                (row[unit_at].strip() if unit_at is not None else "")
                or header_unit
                or (unit_row[index].strip() if index < len(unit_row) else "")
            )
            cells.append(
                _Cell(
                    line,
                    header[index],
                    row[patient_at].strip(),
                    row[time_at].strip() if time_at is not None else "",
                    feature,
                    name,
                    row[index],
                    unit,
                    f"column {name!r}: not a registry feature or mapped LOINC",
                )
            )
    return cells


def _feature_of_column(
    name: str, registry: dict[str, FeatureSpec], codes: CodeTables
) -> str | None:
    key = name.lower().replace(" ", "_")
    if key in registry:
        return key
    feature = codes.feature_for_loinc(name)
    return feature if feature in registry else None


def _is_unit_row(row: list[str], patient_at: int, value_at: list[int]) -> bool:
    label = row[patient_at].strip().lower() if patient_at < len(row) else ""
    if label in UNIT_ROW_LABELS:
        return True
    cells = [row[index].strip() for index in value_at if index < len(row)]
    filled = [cell for cell in cells if cell]
    return not label and bool(filled) and not any(CELL.match(cell) for cell in filled)


def _row_fits(
    row: list[str], header: list[str], line: int, source: str, result: ReadResult
) -> bool:
    if len(row) == len(header):
        return True
    reason = f"row has {len(row)} cells, the header {len(header)}; row set aside"
    result.quarantine.append(QuarantineItem(source, f"row {line}", "row", reason))
    return False


def _has_decimal_commas(cells: list[_Cell]) -> bool:
    return any(DECIMAL_COMMA.match(cell.value) for cell in cells)


# -- one cell --------------------------------------------------------------------------


class _MissingCodes:
    """A source's missing-value codes, as text and, when numeric, as numbers."""

    def __init__(self, codes: tuple[str, ...]) -> None:
        self.texts = {code.strip().lower() for code in codes}
        self.numbers = set()
        for code in codes:
            try:
                self.numbers.add(float(code))
            except ValueError:
                continue

    def code_of(self, text: str, decimal: str) -> str | None:
        """The missing code ``text`` stands for, or None when it is a value."""
        cleaned = text.strip().lower()
        if cleaned in self.texts:
            return cleaned
        try:
            number = float(cleaned.replace(decimal, "."))
        except ValueError:
            return None
        return f"{number:g}" if number in self.numbers else None


def _observe(
    cell: _Cell,
    registry: dict[str, FeatureSpec],
    decimal: str,
    missing: _MissingCodes,
    site: str,
    source: str,
    result: ReadResult,
) -> Observation | None:
    """Turn one cell into an `Observation`, or count or quarantine it."""
    record_id = f"row {cell.line}"

    def set_aside(field_name: str, reason: str) -> None:
        result.quarantine.append(QuarantineItem(source, record_id, field_name, reason))

    # Missing values and unknown columns are counted, not read.
    code = missing.code_of(cell.value, decimal)
    if code is not None:
        result.ignore(f"missing value {code!r} (a missing-value code of this source)")
        return None
    if cell.feature is None:
        result.ignore(cell.unknown)
        return None
    if not cell.patient or missing.code_of(cell.patient, decimal) is not None:
        set_aside("patient", f"column {cell.column!r}: no patient identifier")
        return None

    # The number, its comparator and unit (the cell's own unit, else the column's).
    try:
        comparator, value, cell_unit = _number(cell.value, decimal)
    except ValueError as error:
        set_aside(cell.column, f"row {cell.line}, column {cell.column!r}: {error}")
        return None
    unit = cell.unit if missing.code_of(cell.unit, decimal) is None else ""
    if cell_unit and unit and cell_unit != unit:
        set_aside(
            cell.column,
            f"row {cell.line}: the cell's unit {cell_unit!r} differs from the "
            f"column's unit {unit!r}",
        )
        return None
    unit = cell_unit or unit

    # The time (ISO 8601; UTC when no offset is given).
    try:
        time = _time(cell.time, missing, decimal)
    except ValueError:
        set_aside("time", f"row {cell.line}: time is not ISO 8601 (YYYY-MM-DD[ HH:MM])")
        return None

    # Conversion to the canonical unit, with the plausibility check.
    try:
        converted = to_canonical(
            value, unit, registry[cell.feature], feature=cell.feature, source=source
        )
    except InputError as error:
        set_aside(
            cell.column,
            f"row {cell.line}: expected {error.expected}, found {error.found}",
        )
        return None
    patient = pseudonym(cell.patient, site)
    return Observation(patient, cell.feature, converted, time, cell.code, comparator)


def _number(text: str, decimal: str) -> tuple[str | None, float, str]:
    """Return (comparator, number, unit written in the cell) of a value cell."""
    match = CELL.match(text.strip())
    rest = match["rest"] if match else ""
    if match is None or (rest and not UNIT_START.match(rest)):
        raise ValueError("not a number (nor a missing-value code of this source)")
    number = match["number"]
    other = "." if decimal == "," else ","
    if other in number:
        raise ValueError(
            f"{other!r} in a number, but this file's decimal mark is {decimal!r}"
        )
    return (
        COMPARATORS.get(match["cmp"] or "="),
        float(number.replace(",", ".")),
        rest.strip(),
    )


def _time(text: str, missing: _MissingCodes, decimal: str) -> datetime | None:
    if not text or missing.code_of(text, decimal) is not None:
        return None
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
