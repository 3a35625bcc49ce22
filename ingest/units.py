"""Unit conversion to the registry's canonical units, with pint.

Hospitals spell units many ways: UCUM codes (``mm[Hg]``, ``10*3/uL``, ``{cells}/uL``),
the micro sign as ``µ``, ``μ`` or ``u``, upper-case lab printouts (``MG/DL``), and
HL7 v2 legacy forms (``giga.l-1``). This module rewrites a spelling into one pint
understands, then lets pint do every conversion. Substance-to-mass conversions
(mmol/L to mg/dL) use the feature's molar mass from ``configs/data.yaml`` through
pint's ``chemistry`` context, and equivalents (mEq/L) the ion's valence from the
same file; no conversion factor is written here by hand.

A value whose unit is missing (for a feature that has a physical unit), cannot be
parsed, or has the wrong dimension raises `InputError`; readers quarantine it.
"""

from __future__ import annotations

import math
import re
from functools import cache, lru_cache

import pint

from ingest.config import FeatureSpec
from ingest.errors import InputError

# Canonical units that carry no physical dimension: values are taken as given.
UNITLESS = {"flag", "count", "class", "units"}

# Whole-unit spellings pint cannot read, mapped to ones it can (lower-case keys).
ALIASES = {
    "mm[hg]": "mmHg",
    "cel": "degC",
    "[degf]": "degF",
    "[iu]": "IU",
    "bpm": "1/min",
    "giga.l-1": "1e9/L",
    "giga/l": "1e9/L",
    "tera.l-1": "1e12/L",
    "tera/l": "1e12/L",
    "10^3/ul": "1e3/uL",
    "10^6/ul": "1e6/uL",
    "10^9/l": "1e9/L",
    "10^12/l": "1e12/L",
    "/hpf": "1",
    "[in_i]": "inch",
    "[ft_i]": "foot",
    "[lb_av]": "lb",
    "[oz_av]": "oz",
    "°c": "degC",
    "°f": "degF",
    "u/l": "U/L",  # enzyme units per litre, never atomic mass units
    "iu/l": "U/L",
    "%": "percent",
    "1": "dimensionless",
}
ANNOTATION = re.compile(r"\{[^}]*\}")  # UCUM annotations such as {cells} or {beats}
POWER_OF_TEN = re.compile(r"10\*(-?\d+)")  # UCUM 10*3 -> 1e3
EXPONENT = re.compile(r"(?<=[A-Za-z])(-?\d+)")  # UCUM m2, l-1 -> m**2, l**-1
EQUIVALENT = re.compile(r"eq(?=/|$)", re.IGNORECASE)  # mEq/L, meq/l
MAX_UNIT_CHARS = 40  # longer "units" are not units
# Letters, digits, / . * ^ % [ ] { } ( ) and spaces; no '**' (pint would evaluate
# powers of powers: '10**10**10' never ends) and at most 2-digit exponents.
UNIT_CHARACTERS = re.compile(r"^[A-Za-z0-9µμ°/.*^%\[\]{}() _-]*$")
NESTED_POWER = re.compile(r"\*\*|\^.*\^|\d{3,}\s*$|[*^]-?\d{3,}")
COUNT_WORDS = re.compile(r"\b(beats|beat|cells|cell|breaths)\b", re.IGNORECASE)


@cache
def registry() -> pint.UnitRegistry:
    """The one pint registry (created on first use, never modified after)."""
    return pint.UnitRegistry(autoconvert_offset_to_baseunit=True)


def normalise_spelling(unit: str) -> str:
    """Rewrite a hospital's unit spelling into one pint parses.

    Parameters
    ----------
    unit : str
        The unit as sent (UCUM code, printout text or HL7 v2 legacy form).

    Returns
    -------
    str
        A pint expression, e.g. ``"mg/dL"`` for ``"MG/DL"`` and ``"1e3/uL"`` for
        ``"10*3/uL"``.
    """
    text = _case_folded(unit.strip())
    text = text.replace("µ", "u").replace("μ", "u").replace("mcg", "ug")
    text = ANNOTATION.sub("", text)
    text = COUNT_WORDS.sub("", text).replace(" ", "")
    if text.lower() in ALIASES:
        return ALIASES[text.lower()]
    text = text.replace(".", "*") if "." in text and not _is_number(text) else text
    text = EXPONENT.sub(r"**\1", text)
    text = POWER_OF_TEN.sub(r"1e\1", text)
    if text.startswith("/"):
        text = "1" + text
    return text or "dimensionless"


def _case_folded(unit: str) -> str:
    """Lower-case an all-capitals printout (MG/DL, MMOL/L, MEQ/L).

    Lab prefixes are lower case, and no lab unit is mega-anything.
    """
    if unit.upper() == unit and any(c.isalpha() for c in unit):
        return unit.lower()
    return unit


def to_canonical(
    value: float,
    unit: str | None,
    spec: FeatureSpec,
    *,
    feature: str,
    source: str,
) -> float:
    """Convert a value to its feature's canonical unit and check it is plausible.

    Parameters
    ----------
    value : float
        The number as sent.
    unit : str or None
        Its unit as sent; ``None`` or ``""`` when the sender gave none.
    spec : FeatureSpec
        The feature's registry entry (canonical unit, plausible range, molar mass).
    feature : str
        Registry name, used in error messages.
    source : str
        File name (or ``request``), used in error messages.

    Returns
    -------
    float
        The value in ``spec.unit``.

    Raises
    ------
    InputError
        When the unit is missing, unreadable or of the wrong dimension, or when the
        converted value lies outside the feature's plausible range.
    """
    field = f"{feature}.unit"
    expected = f"a unit convertible to {spec.unit}"
    if not math.isfinite(value):
        raise InputError(source, feature, "a finite number", "not a number")
    if spec.unit in UNITLESS:
        if unit not in (None, "", "1", "{score}", spec.unit):
            raise InputError(source, field, f"no unit ({spec.unit})", repr(unit))
        converted = float(value)
        if spec.unit == "flag" and converted not in (0.0, 1.0):
            raise InputError(source, feature, "0 or 1", f"{converted:g}")
        if spec.unit in {"count", "class"} and not converted.is_integer():
            expected = f"a whole number ({spec.unit})"
            raise InputError(source, feature, expected, f"{converted:g}")
    elif not unit or not unit.strip():
        if not spec.unit_implied:
            raise InputError(source, field, expected, "no unit")
        converted = float(value)
    else:
        converted = _convert(float(value), unit, spec, source, field, expected)
    if not spec.is_plausible(converted):
        raise InputError(
            source,
            feature,
            f"a value in {spec.range_text}",
            f"{converted:.4g} {spec.unit} (sent as {value:g} {unit or ''})".strip(),
        )
    return converted


def _convert(
    value: float,
    unit: str,
    spec: FeatureSpec,
    source: str,
    field: str,
    expected: str,
) -> float:
    units = registry()
    target = _parse(spec.unit, source, "registry unit", "a pint-readable unit")
    # Equivalents (mEq/L) become moles through the ion's valence.
    unit = _case_folded(unit.strip())
    if EQUIVALENT.search(unit):
        if spec.valence is None:
            raise InputError(
                source, field, f"{expected} (no valence known)", repr(unit)
            )
        unit = EQUIVALENT.sub("mol", unit)
        value = value / spec.valence
    candidates = [unit]
    # "u/l" for U/L and similar: the same letters as the canonical unit, other case.
    if unit.strip().lower() == spec.unit.lower() and unit.strip() != spec.unit:
        candidates.append(spec.unit)
    for candidate in candidates:
        try:
            given = value * _parse(candidate, source, field, expected)
        except InputError:
            if candidate is candidates[-1]:
                raise
            continue
        try:
            if spec.molar_mass is not None:
                mass = spec.molar_mass * units("g/mol")
                moved = given.to(target.units, "chemistry", mw=mass)
            else:
                moved = given.to(target.units)
        except pint.DimensionalityError:
            continue
        except (ArithmeticError, ValueError) as error:
            raise InputError(source, field, expected, repr(unit)) from error
        result = float(moved.magnitude / target.magnitude)
        if not math.isfinite(result):
            raise InputError(source, field, expected, repr(unit))
        return result
    raise InputError(source, field, expected, repr(unit))


def _parse(unit: str, source: str, field: str, expected: str) -> pint.Quantity:
    if (
        len(unit) > MAX_UNIT_CHARS
        or not UNIT_CHARACTERS.match(unit)
        or NESTED_POWER.search(unit)
    ):
        raise InputError(source, field, expected, repr(unit[:MAX_UNIT_CHARS]))
    parsed = _parsed(unit)
    if parsed is None:
        raise InputError(source, field, expected, repr(unit))
    return parsed


@lru_cache(maxsize=4096)
def _parsed(unit: str) -> pint.Quantity | None:
    """Pint's reading of a unit, or None; cached (a lab table repeats its units)."""
    units = registry()
    try:
        parsed = units.parse_expression(normalise_spelling(unit))
    except Exception:  # noqa: BLE001 - pint raises many types on bad text
        return None
    if not isinstance(parsed, pint.Quantity):  # a bare number such as "10"
        parsed = units.Quantity(parsed, "dimensionless")
    magnitude = float(parsed.magnitude)
    return parsed if math.isfinite(magnitude) and magnitude > 0 else None


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
