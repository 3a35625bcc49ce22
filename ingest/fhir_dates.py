"""FHIR dates and date-times, complete or partial, as Python dates.

FHIR lets a sender give ``2021``, ``2021-07``, ``2021-07-21`` or a full date-time
with its zone. `fhir.resources` hands back a `datetime`, a `date` or, for the partial
forms, the string itself; these helpers turn each into one comparable value.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime

PARTIAL_DATE = re.compile(r"^(\d{4})(?:-(\d{2}))?$")  # FHIR's year or year-month


def instant(value: object) -> datetime | None:
    """Return a timezone-aware datetime for a FHIR date or date-time.

    Parameters
    ----------
    value : datetime, date, str or None
        As `fhir.resources` gives it. A date without a time is taken at midnight
        UTC; a partial date (``2021``, ``2021-07``) at the start of its period.

    Returns
    -------
    datetime or None
        None when the value is absent or not a date.
    """
    if isinstance(value, datetime):
        return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    if isinstance(value, str):
        match = PARTIAL_DATE.match(value.strip())
        if match:
            year, month = int(match[1]), int(match[2] or 1)
            return datetime(year, month, 1, tzinfo=UTC)
    return None


def birth_date(value: object) -> date | None:
    """Return a birth date; a partial one is placed in the middle of its period.

    Parameters
    ----------
    value : date, str or None
        ``Patient.birthDate`` as `fhir.resources` gives it. ``1954`` becomes
        1 July 1954 and ``1954-08`` becomes 15 August 1954, so that the age
        computed from it is off by at most half the period.

    Returns
    -------
    date or None
        None when the value is absent or not a date.
    """
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        match = PARTIAL_DATE.match(value.strip())
        if match:
            if match[2] is None:
                return date(int(match[1]), 7, 1)
            return date(int(match[1]), int(match[2]), 15)
    return None
