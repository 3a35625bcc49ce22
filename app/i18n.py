"""The message catalog: every user-facing string, in English and Vietnamese.

Catalogs live in ``app/locales/<language>.yaml`` as nested mappings and are addressed
with dotted keys (``head.acute_mi``). A key missing from a non-English catalog falls
back to English; a key missing from English too is an error, never shown as the key.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from types import MappingProxyType
from typing import Any

from app.schemas import ECGSummary
from ingest.config import load_yaml
from ingest.errors import CardioriskError

logger = logging.getLogger(__name__)

LANGUAGES = ("en", "vi")
DEFAULT_LANGUAGE = "en"
LOCALES_DIR = Path(__file__).resolve().parent / "locales"


def translate(key: str, language: str = DEFAULT_LANGUAGE, **values: Any) -> str:
    """Return the message for ``key`` in ``language``, formatted with ``values``.

    Parameters
    ----------
    key : str
        Dotted message key, e.g. ``"head.stroke"``.
    language : str
        One of `LANGUAGES`. A key the language lacks falls back to English.
    **values
        Placeholder values, applied with `str.format`.

    Returns
    -------
    str
        The formatted message.

    Raises
    ------
    ValueError
        When ``language`` is not one of `LANGUAGES`.
    KeyError
        When no catalog holds ``key``, or the message needs a value not given.
    """
    template = _lookup(key, language)
    try:
        return template.format(**values)
    except KeyError as error:
        raise KeyError(
            f"message '{key}' ({language}) needs the value {error.args[0]!r}; "
            f"given: {sorted(values) or 'none'}"
        ) from error


@dataclass(frozen=True)
class Notice:
    """A warning for the user, put in words only when the answer is given.

    Attributes
    ----------
    key : str
        Message key under ``warning.`` in the catalog.
    values : dict
        Placeholder values: strings as they are, numbers written for the
        language (``2.5`` reads ``2,5`` in Vietnamese), and callables given
        the language (a clinical name, `input_label`).
    """

    key: str
    values: dict[str, Any] = field(default_factory=dict)

    def text(self, language: str = DEFAULT_LANGUAGE) -> str:
        """The warning in ``language``."""
        values = {name: _written(v, language) for name, v in self.values.items()}
        return translate(f"warning.{self.key}", language, **values)


def _written(value: Any, language: str) -> Any:
    if callable(value):
        return value(language)
    if isinstance(value, float | int) and not isinstance(value, bool):
        text = f"{value:g}"
        return text.replace(".", ",") if language == "vi" else text
    return value


def format_number(value: float, language: str, decimals: int = 1) -> str:
    """Format a number for ``language`` (a decimal comma in Vietnamese)."""
    text = f"{value:.{decimals}f}"
    return text.replace(".", ",") if language == "vi" else text


def format_value(
    value: float | None, unit: str, language: str = DEFAULT_LANGUAGE
) -> str:
    """A reason's value as a person reads it, with its unit.

    ``yes``/``no`` for a flag (no unit, 0 or 1); a whole number without decimals;
    others with one decimal from 10 up, two below (68.7 years, 1.30 mg/dL); empty
    when there is no value.
    """
    if value is None:
        return ""
    if not unit and value in (0.0, 1.0):
        return translate("form.flag_yes" if value else "form.flag_no", language)
    if float(value).is_integer():
        decimals = 0
    else:
        decimals = 1 if abs(value) >= 10 else 2
    return f"{format_number(value, language, decimals)} {unit}".strip()


def unit_label(unit: str, language: str = DEFAULT_LANGUAGE) -> str:
    """A unit as written in ``language`` (``years`` -> ``năm``); others as given."""
    if unit and has_message(f"unit.{unit}", language):
        return translate(f"unit.{unit}", language)
    return unit


# Augmented limb leads as clinicians write them (the schema's names are upper case).
LEAD_LABELS = {"AVR": "aVR", "AVL": "aVL", "AVF": "aVF"}


def lead_label(lead: str) -> str:
    """A lead as clinicians write it: ``AVF`` -> ``aVF``; others as they are."""
    return LEAD_LABELS.get(lead, lead)


def lead_list(leads: Iterable[str]) -> str:
    """Leads as clinicians write them, comma-separated."""
    return ", ".join(lead_label(lead) for lead in leads)


def input_label(
    name: str, language: str = DEFAULT_LANGUAGE, years_before: float | None = None
) -> str:
    """Clinical name of a model input as reasons and explanations name it.

    ``systolic_bp`` -> "Systolic blood pressure"; ``ecg:V2`` -> "ECG lead V2";
    ``timeline:0`` -> "Visit 2.0 years earlier" (given ``years_before``);
    ``image`` -> "The image".
    """
    kind, _, detail = name.partition(":")
    if kind == "image":
        return translate("reason.image", language)
    if kind == "ecg":
        return translate("reason.ecg_lead", language, lead=lead_label(detail))
    if kind == "timeline":
        years = (
            format_number(years_before, language)
            if years_before is not None
            else detail
        )
        return translate("reason.visit", language, years=years)
    return translate(f"field.{name}", language)


def has_message(key: str, language: str = DEFAULT_LANGUAGE) -> bool:
    """Return whether ``key`` resolves in ``language`` (English fallback included)."""
    try:
        _lookup(key, language)
    except KeyError:
        return False
    return True


def catalog(language: str) -> Mapping[str, str]:
    """Return one language's own messages as a read-only flat mapping.

    Parameters
    ----------
    language : str
        One of `LANGUAGES`.

    Returns
    -------
    Mapping
        Dotted key -> message template, without the English fallback.
    """
    _check_language(language)
    return _load_catalog(language)


def _lookup(key: str, language: str) -> str:
    _check_language(language)
    messages = _load_catalog(language)
    if key in messages:
        return messages[key]
    english = _load_catalog(DEFAULT_LANGUAGE)
    if key in english:
        logger.debug("message %r missing from %s; using English", key, language)
        return english[key]
    raise KeyError(
        f"message key '{key}' is in no catalog; add it to "
        f"{LOCALES_DIR / (DEFAULT_LANGUAGE + '.yaml')}"
    )


def _check_language(language: str) -> None:
    if language not in LANGUAGES:
        raise ValueError(
            f"language must be one of {', '.join(LANGUAGES)}; found {language!r}"
        )


@lru_cache(maxsize=len(LANGUAGES))
def _load_catalog(language: str) -> Mapping[str, str]:
    path = LOCALES_DIR / f"{language}.yaml"
    content = load_yaml(language, LOCALES_DIR)
    flat: dict[str, str] = {}
    _flatten(content, "", flat, path)
    logger.debug("loaded %d messages from %s", len(flat), path)
    return MappingProxyType(flat)


def _flatten(node: dict, prefix: str, out: dict[str, str], path: Path) -> None:
    for name, value in node.items():
        if not isinstance(name, str):
            # YAML 1.1 reads bare yes/no/on/off keys as booleans: quote or rename.
            raise CardioriskError(
                f"{path}: key {name!r} under '{prefix or '<top>'}' is not a string"
            )
        key = f"{prefix}.{name}" if prefix else name
        if isinstance(value, dict):
            _flatten(value, key, out, path)
        elif isinstance(value, str):
            out[key] = value
        else:
            raise CardioriskError(
                f"{path}: message '{key}' must be text; found {type(value).__name__}"
            )


def ecg_measurement_text(summary: ECGSummary | None, language: str) -> str:
    """One line of rate, intervals (``-`` where not found) and Q-wave leads."""
    if summary is None:
        return translate("ecg.no_measurements", language)

    def number(value: float | None) -> str:
        return "-" if value is None else format_number(value, language, 0)

    line = translate(
        "ecg.measurements",
        language,
        hr=number(summary.heart_rate_bpm),
        pr=number(summary.pr_ms),
        qrs=number(summary.qrs_ms),
        qt=number(summary.qt_ms),
        qtc=number(summary.qtc_ms),
    )
    if summary.q_wave_leads:
        leads = lead_list(summary.q_wave_leads)
        line += translate("ecg.q_waves", language, leads=leads)
    return line
