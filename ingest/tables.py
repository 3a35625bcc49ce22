"""Reading CSV tables: unreadable files and non-numeric cells never pass silently."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from ingest.errors import InputError, QuarantineItem


def read_table(path: Path, **options: object) -> pd.DataFrame:
    """Read a CSV file, turning pandas' parse errors into `InputError`.

    Parameters
    ----------
    path : Path
        The file.
    **options
        Passed to `pandas.read_csv`.

    Raises
    ------
    InputError
        Empty, binary or malformed files, naming the file.
    """
    try:
        return pd.read_csv(path, **options)  # type: ignore[arg-type]
    except pd.errors.EmptyDataError as error:
        raise InputError(
            path.name, "content", "a CSV table", "an empty file"
        ) from error
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as error:
        reason = str(error).splitlines()[0][:120]
        raise InputError(
            path.name, "content", "a well-formed CSV table", reason
        ) from error


def require_columns(
    columns: Iterable[str], required: list[str], file_name: str
) -> None:
    """Raise `InputError` naming the file and the required columns it lacks."""
    present = set(columns)
    missing = [column for column in required if column not in present]
    if missing:
        raise InputError(
            file_name, "columns", f"columns {required}", f"missing {missing}"
        )


def numeric_columns(
    table: pd.DataFrame,
    columns: Iterable[str],
    source: str,
    record_ids: pd.Series,
    quarantine: list[QuarantineItem],
) -> pd.DataFrame:
    """Make columns numeric; each cell that is not a number is quarantined.

    A single text cell would otherwise turn a whole column to text and every
    comparison with a code false, silently.

    Parameters
    ----------
    table : pd.DataFrame
    columns : iterable of str
        Columns that must hold numbers (missing cells stay missing).
    source : str
        Source name for the quarantine.
    record_ids : pd.Series
        Record identifier of each row (same index as ``table``).
    quarantine : list
        Receives one item per non-numeric cell, with the column.

    Returns
    -------
    pd.DataFrame
        A copy with the columns numeric and bad cells missing.
    """
    table = table.copy()
    for column in columns:
        numbers = pd.to_numeric(table[column], errors="coerce")
        bad = numbers.isna() & table[column].notna()
        for record_id in record_ids.loc[bad[bad].index]:
            quarantine.append(
                QuarantineItem(source, str(record_id), column, "value is not a number")
            )
        table[column] = numbers
    return table


def quarantine_rows(
    table: pd.DataFrame,
    bad: pd.Series,
    source: str,
    record_ids: pd.Series,
    field: str,
    reason: str,
    quarantine: list[QuarantineItem],
) -> pd.DataFrame:
    """Set aside the rows where ``bad`` holds, with a reason; return the rest."""
    for record_id in record_ids.loc[bad[bad].index]:
        quarantine.append(QuarantineItem(source, str(record_id), field, reason))
    return table[~bad]


def unknown_codes(
    table: pd.DataFrame,
    codes: dict[str, list],
    source: str,
    record_ids: pd.Series,
    quarantine: list[QuarantineItem],
) -> pd.DataFrame:
    """Quarantine cells whose value is not one of their column's codes.

    Returns
    -------
    pd.DataFrame
        A copy with those cells missing.
    """
    table = table.copy()
    for column, allowed in codes.items():
        unknown = table[column].notna() & ~table[column].isin(allowed)
        for record_id in record_ids.loc[unknown[unknown].index]:
            quarantine.append(
                QuarantineItem(
                    source, str(record_id), column, f"code not one of {allowed}"
                )
            )
        table.loc[unknown, column] = None
    return table
