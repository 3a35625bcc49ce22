"""Reading an ECG exported as CSV: a header row of lead names, one column per lead.

The layout hospitals' ECG carts and Holter software export::

    time_ms;I;II;III;aVR;...
    0;0,012;-0,034;...

The separator is ``,``, ``;`` or a tab; with ``;`` or a tab the decimal mark
may be a comma. An optional time column (``time``, ``t``, ``time_s`` in
seconds; ``time_ms``, ``ms`` or ``time (ms)`` in milliseconds) gives ``fs``;
without one, ``fs`` must be given. An optional sample-number column (``sample``,
``index``) is skipped. Amplitudes are in mV unless given (``units``) or written
beside a lead's name (``II [uV]``, ``V1 (mV)``).
"""

from __future__ import annotations

import csv
import logging
import math
import re
from pathlib import Path

import numpy as np

from ingest.ecg import FS_RANGE_HZ, UNIT_TO_MV, canonical_leads
from ingest.errors import InputError
from ingest.schema import ECG

logger = logging.getLogger(__name__)

MAX_CSV_BYTES = 200 * 2**20
TIME_UNITS_S = {"s": 1.0, "sec": 1.0, "seconds": 1.0, "ms": 1e-3, "milliseconds": 1e-3}
TIME_NAMES = {"time", "t", "times", "timestamp", "elapsed"}
INDEX_NAMES = {"sample", "samples", "index", "idx", "n", "#", "sample_number"}
BRACKET_UNIT = re.compile(r"[\[(]\s*([^\])]*?)\s*[\])]\s*$")  # "II [uV]", "t (ms)"
REGULAR_TOLERANCE = 0.5  # times may stray this many sample intervals from a grid


def read_ecg_csv(
    path: str | Path,
    fs: float | None = None,
    units: str = "mV",
    source: str | None = None,
) -> ECG:
    """Read an ECG CSV file (see the module's description of the layout).

    Parameters
    ----------
    path : str or Path
        The CSV file.
    fs : float, optional
        Sampling frequency in Hz; needed when there is no time column (a time
        column, when present, wins).
    units : str
        Unit of lead columns that do not state theirs: ``mV`` (default),
        ``uV``/``µV`` or ``V``.
    source : str, optional
        Name used in error messages; the file name by default.

    Returns
    -------
    ECG
        Leads x samples in mV, in the file's column order.

    Raises
    ------
    InputError
        See `parse_ecg_csv`; also a missing or too large file.
    """
    path = Path(path)
    source = source or path.name
    if not path.is_file():
        raise InputError(source, "file", "an existing CSV file", "no such file")
    if path.stat().st_size > MAX_CSV_BYTES:
        limit = f"at most {MAX_CSV_BYTES // 2**20} MB"
        raise InputError(source, "file", limit, "a larger file")
    return parse_ecg_csv(path.read_bytes(), fs=fs, units=units, source=source)


def parse_ecg_csv(
    content: bytes | str,
    fs: float | None = None,
    units: str = "mV",
    source: str = "upload.csv",
) -> ECG:
    """Parse the content of an ECG CSV file.

    Parameters
    ----------
    content : bytes or str
        The file's content (UTF-8, or Latin-1 when it is not UTF-8).
    fs : float, optional
        Sampling frequency in Hz; needed when there is no time column.
    units : str
        Unit of lead columns that do not state theirs (mV, uV, µV, V).
    source : str
        Name used in error messages.

    Returns
    -------
    ECG
        Leads x samples in mV.

    Raises
    ------
    InputError
        No header or no lead column (field ``header``); an unknown unit
        (``units``); a row with too few or too many cells, or a cell that is not
        a finite number (field ``row N, column NAME``, N counting the file's
        lines from 1 at the header); no sampling frequency, or an implausible
        one, or uneven times (field ``fs`` or ``time``); a lead named twice.
    """
    # Step 1: the rows, with their line numbers in the file.
    lines = _lines(_text(content), source)
    delimiter = _delimiter(lines[0][1])
    decimal_comma = delimiter != ","
    rows = [
        (number, cells)
        for number, cells in zip(
            (number for number, _ in lines),
            csv.reader((line for _, line in lines), delimiter=delimiter),
            strict=True,
        )
    ]
    header_line, header = rows[0]
    header = [cell.strip() for cell in header]
    while header and not header[-1]:
        header.pop()  # a trailing separator

    # Step 2: the columns: time, sample number, leads and their units.
    default_factor = _unit_factor(units, source, "units")
    time_column, time_factor, lead_columns = None, 1.0, []
    for column, name in enumerate(header):
        if not name:
            raise InputError(
                source, f"column {column + 1} name", "a lead name", "an empty cell"
            )
        base, unit = _split_unit(name)
        key = re.sub(r"[\s_-]+", "_", base.lower()).strip("_")
        if key in INDEX_NAMES:
            continue
        time_unit = _time_unit(key, unit)
        if time_unit is not None and time_column is None:
            time_column, time_factor = column, time_unit
            continue
        factor = default_factor if unit is None else _unit_factor(unit, source, name)
        lead_columns.append((column, base, factor))
    if not lead_columns:
        raise InputError(
            source, "header", "a header row of lead names (I, II, ..., V6)", "none"
        )

    # Step 3: every cell a number.
    data = _numbers(rows[1:], header, decimal_comma, source)

    # Step 4: fs from the time column, else as given.
    fs = _fs(data, time_column, time_factor, fs, source)

    # Step 5: the ECG in mV, one row per lead.
    signal = np.stack([data[:, column] * factor for column, _, factor in lead_columns])
    leads = canonical_leads([name for _, name, _ in lead_columns], source)
    return ECG(signal=signal.astype(np.float32), fs=fs, lead_names=leads)


def _text(content: bytes | str) -> str:
    """Decode the file: UTF-8 (with or without BOM), else Latin-1."""
    if isinstance(content, str):
        return content
    try:
        return content.decode("utf-8-sig")
    except UnicodeDecodeError:
        return content.decode("latin-1")


def _lines(text: str, source: str) -> list[tuple[int, str]]:
    """Non-blank lines with their 1-based numbers, from the header row on."""
    lines = [
        (number, line)
        for number, line in enumerate(text.splitlines(), start=1)
        if line.strip()
    ]
    while lines and lines[0][1].lstrip().startswith("#"):
        lines.pop(0)
    if len(lines) < 2:
        raise InputError(
            source, "header", "a header row and at least one row of samples", "none"
        )
    return lines


def _delimiter(header: str) -> str:
    """The separator: ``;`` or a tab when the header has one, else ``,``."""
    for candidate in (";", "\t"):
        if candidate in header:
            return candidate
    return ","


def _split_unit(name: str) -> tuple[str, str | None]:
    """``II [uV]`` -> (``II``, ``uV``); a bracket that is not a unit stays."""
    match = BRACKET_UNIT.search(name)
    if match:
        unit = match.group(1).strip().lower()
        if unit in UNIT_TO_MV or unit in TIME_UNITS_S:
            return name[: match.start()].strip(), unit
    return name, None


def _time_unit(key: str, unit: str | None) -> float | None:
    """Seconds per unit of a time column; None when the column is not time."""
    if key in TIME_NAMES:
        return TIME_UNITS_S.get(unit or "s")
    prefix, _, suffix = key.rpartition("_")
    if prefix in TIME_NAMES and suffix in TIME_UNITS_S:
        return TIME_UNITS_S[suffix]
    if not prefix and key in TIME_UNITS_S and key != "s":
        return TIME_UNITS_S[key]  # a column named "ms" or "seconds"
    return None


def _unit_factor(unit: str, source: str, field: str) -> float:
    """Factor from a voltage unit to mV."""
    factor = UNIT_TO_MV.get(unit.strip().lower())
    if factor is None:
        raise InputError(source, field, "a voltage unit (mV, uV, µV, V)", repr(unit))
    return factor


def _numbers(
    rows: list[tuple[int, list[str]]],
    header: list[str],
    decimal_comma: bool,
    source: str,
) -> np.ndarray:
    """The data rows as a samples x columns float array, every cell checked."""
    width = len(header)
    cells = []
    for number, row in rows:
        # A trailing separator adds empty cells: drop them.
        if len(row) > width and not any(cell.strip() for cell in row[width:]):
            row = row[:width]
        if len(row) != width:
            raise InputError(
                source,
                f"row {number}",
                f"{width} cells as in the header",
                str(len(row)),
            )
        cells.append([cell.replace(",", ".") for cell in row] if decimal_comma else row)

    # Fast path: numpy parses the whole table; else cell by cell, naming the bad one.
    try:
        data = np.array(cells, dtype=np.float64)
    except ValueError:
        data = _parse_cells(rows, cells, header, source)
    if np.isinf(data).any():
        _parse_cells(rows, cells, header, source)  # raises, naming the cell
    return data


def _parse_cells(
    rows: list[tuple[int, list[str]]],
    cells: list[list[str]],
    header: list[str],
    source: str,
) -> np.ndarray:
    """Parse cell by cell; the first that is not a finite number is an error."""
    data = np.empty((len(cells), len(header)), dtype=np.float64)
    for index, ((number, _), row) in enumerate(zip(rows, cells, strict=True)):
        for column, cell in enumerate(row):
            field = f"row {number}, column {header[column]}"
            if not cell.strip():
                raise InputError(source, field, "a number", "an empty cell")
            try:
                value = float(cell)
            except ValueError:
                # The cell's text is not echoed: it might be a patient detail.
                raise InputError(source, field, "a number", "text") from None
            if math.isinf(value):
                raise InputError(source, field, "a finite number", "infinity")
            data[index, column] = value
    return data


def _fs(
    data: np.ndarray,
    time_column: int | None,
    seconds_per_unit: float,
    given: float | None,
    source: str,
) -> float:
    """Sampling frequency from evenly spaced times, else the one given."""
    low, high = FS_RANGE_HZ
    if time_column is None:
        if given is None:
            raise InputError(
                source,
                "fs",
                "a sampling frequency in Hz (give fs, or a time column in s or ms)",
                "none",
            )
        if not low <= given <= high:
            raise InputError(
                source,
                "fs",
                f"a sampling frequency of {low:g}..{high:g} Hz",
                str(given),
            )
        return float(given)

    # Times, in s: increasing, on a regular grid (rounding aside), in range.
    times = data[:, time_column] * seconds_per_unit
    if times.size < 2 or not np.all(np.diff(times) > 0):
        raise InputError(
            source, "time", "increasing times, one row per sample", "times not rising"
        )
    step = (times[-1] - times[0]) / (times.size - 1)
    stray = np.abs(times - (times[0] + step * np.arange(times.size))).max()
    if stray > REGULAR_TOLERANCE * step:
        raise InputError(
            source,
            "time",
            "evenly spaced times (a constant fs)",
            f"a time {stray / step:.1f} sample intervals off the grid",
        )
    fs = 1.0 / step
    if not low <= fs <= high:
        raise InputError(
            source,
            "fs",
            f"a sampling frequency of {low:g}..{high:g} Hz from the time column "
            "(name it time_ms when the times are in milliseconds)",
            f"{fs:.4g} Hz",
        )
    if given is not None and not math.isclose(fs, given, rel_tol=0.01):
        logger.warning(
            "%s: fs %g Hz given, the time column says %g Hz: using the column's",
            source,
            given,
            fs,
        )
    return fs
