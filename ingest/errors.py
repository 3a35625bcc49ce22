"""The project's root exception and the quarantine log for bad input."""

from __future__ import annotations

from dataclasses import asdict, dataclass


class CardioriskError(Exception):
    """Root of every error cardiorisk raises on purpose."""


class InputError(CardioriskError, ValueError):
    """Bad input: names the file, the field, what was expected and what was found.

    Parameters
    ----------
    source : str
        File name (or "request") the bad value came from.
    field : str
        The field, column or header item that was wrong.
    expected : str
        What a valid value looks like.
    found : str
        What was found instead (never a patient's identifier).
    """

    def __init__(self, source: str, field: str, expected: str, found: str) -> None:
        self.source, self.field, self.expected, self.found = (
            source,
            field,
            expected,
            found,
        )
        super().__init__(
            f"{source}: field '{field}': expected {expected}, found {found}"
        )


@dataclass(frozen=True)
class QuarantineItem:
    """One piece of input set aside, with the reason, instead of being dropped.

    Attributes
    ----------
    source : str
        Source name (e.g. ``vitaldb``).
    record_id : str
        Record identifier within the source (a row or case number, not a name).
    field : str
        The field that caused the quarantine.
    reason : str
        Why it was set aside.
    """

    source: str
    record_id: str
    field: str
    reason: str

    def to_dict(self) -> dict[str, str]:
        """Return the item as a plain dictionary."""
        return asdict(self)
