"""Unit conversion to canonical units: spellings, molar masses, bad units."""

from __future__ import annotations

import pytest

from ingest.config import DataConfig
from ingest.errors import InputError
from ingest.units import normalise_spelling, to_canonical


@pytest.mark.parametrize(
    ("value", "unit", "feature", "expected"),
    [
        (88.4, "µmol/L", "creatinine", 1.0),  # micro sign U+00B5
        (88.4, "μmol/L", "creatinine", 1.0),  # Greek mu U+03BC
        (88.4, "umol/l", "creatinine", 1.0),
        (5.2, "mmol/L", "total_cholesterol", 201.06),
        (5.2, "MMOL/L", "total_cholesterol", 201.06),
        (5.5, "mmol/L", "glucose", 99.09),
        (182, "mg/dl", "glucose", 182.0),
        (2.0, "MG/DL", "creatinine", 2.0),
        (0.05, "ng/mL", "troponin_t", 50.0),
        (48, "ng/L", "troponin_t", 48.0),
        (7.0, "mmol/L", "urea_nitrogen", 19.61),
        (140, "mEq/L", "sodium", 140.0),
        (120, "mm[Hg]", "systolic_bp", 120.0),
        (60, "{beats}/min", "heart_rate", 60.0),
        (210000, "{cells}/uL", "platelets", 210.0),
        (220, "giga.l-1", "platelets", 220.0),
        (250, "10*3/uL", "platelets", 250.0),
        (134, "g/L", "hemoglobin", 13.4),
        (25, "u/l", "ast", 25.0),
        (98.6, "[degF]", "body_temperature", 37.0),
        (30, "kg/m2", "bmi", 30.0),
        (1, None, "hypertension", 1.0),
    ],
)
def test_converts_to_the_canonical_unit(
    data_config: DataConfig, value: float, unit: str, feature: str, expected: float
) -> None:
    spec = data_config.registry[feature]
    converted = to_canonical(value, unit, spec, feature=feature, source="lab.csv")
    assert converted == pytest.approx(expected, abs=0.01)


@pytest.mark.parametrize(
    ("unit", "feature", "field", "found"),
    [
        (None, "troponin_i", "troponin_i.unit", "no unit"),
        ("", "creatinine", "creatinine.unit", "no unit"),
        ("mmHg", "troponin_i", "troponin_i.unit", "'mmHg'"),  # wrong dimension
        ("g/l-1", "hemoglobin", "hemoglobin.unit", "'g/l-1'"),  # g·L: impossible
        ("furlong", "glucose", "glucose.unit", "'furlong'"),
        ("mEq/L", "creatinine", "creatinine.unit", "'mEq/L'"),  # no valence known
        ("mmol/L", "systolic_bp", "systolic_bp.unit", "'mmol/L'"),
    ],
)
def test_missing_or_impossible_unit_names_file_and_field(
    data_config: DataConfig, unit: str | None, feature: str, field: str, found: str
) -> None:
    spec = data_config.registry[feature]
    with pytest.raises(InputError) as error:
        to_canonical(3.0, unit, spec, feature=feature, source="lab.csv")
    assert error.value.source == "lab.csv"
    assert error.value.field == field
    assert error.value.found == found
    assert spec.unit in error.value.expected


def test_implausible_after_conversion_is_an_error(data_config: DataConfig) -> None:
    # 12.5 g/mL haemoglobin (a real LRI test message) is 1250 g/dL.
    spec = data_config.registry["hemoglobin"]
    with pytest.raises(InputError, match=r"2\.\.25 g/dL") as error:
        to_canonical(12.5, "g/mL", spec, feature="hemoglobin", source="lri.hl7")
    assert "1250" in error.value.found


def test_unitless_features_refuse_a_physical_unit(data_config: DataConfig) -> None:
    spec = data_config.registry["diabetes"]
    with pytest.raises(InputError, match="no unit"):
        to_canonical(1, "mg/dL", spec, feature="diabetes", source="x")


def test_spellings_pint_reads() -> None:
    assert normalise_spelling("10*3/uL") == "1e3/uL"
    assert normalise_spelling("kg/m2") == "kg/m**2"
    assert normalise_spelling("µg/L") == "ug/L"
    assert normalise_spelling("/min") == "1/min"


def test_an_implied_unit_only_where_one_unit_is_used_everywhere(
    data_config: DataConfig,
) -> None:
    registry = data_config.registry
    assert to_canonical(61, None, registry["age"], feature="age", source="x") == 61
    assert to_canonical(
        148, "", registry["systolic_bp"], feature="systolic_bp", source="x"
    ) == pytest.approx(148)
    # Labs differ by country (mg/dL or mmol/L): never assumed.
    with pytest.raises(InputError, match="no unit"):
        to_canonical(5.2, None, registry["glucose"], feature="glucose", source="x")


@pytest.mark.parametrize(
    "unit",
    ["10**10**10", "9**999", "mmHg/0", "mm[Hg", "1/", "ng/L^2^3", "x" * 100],
)
def test_hostile_units_are_refused_at_once(data_config: DataConfig, unit: str) -> None:
    # pint would evaluate 10**10**10 for ever, or raise OverflowError,
    # ZeroDivisionError or a tokenizer error: each is one clear InputError.
    spec = data_config.registry["troponin_i"]
    with pytest.raises(InputError, match="troponin_i.unit"):
        to_canonical(3.0, unit, spec, feature="troponin_i", source="hostile.csv")


@pytest.mark.parametrize(
    ("value", "unit", "feature", "expected"),
    [
        (4.2, "MEQ/L", "potassium", 4.2),  # all capitals: not mega-equivalents
        (70, "[in_i]", "height", 177.8),
        (180, "[lb_av]", "weight", 81.65),
        (37, "°C", "body_temperature", 37.0),
    ],
)
def test_capitals_and_ucum_us_units(
    data_config: DataConfig, value: float, unit: str, feature: str, expected: float
) -> None:
    spec = data_config.registry[feature]
    converted = to_canonical(value, unit, spec, feature=feature, source="x")
    assert converted == pytest.approx(expected, abs=0.01)


@pytest.mark.parametrize(
    ("value", "feature", "expected"),
    [(0.5, "sex_male", "0 or 1"), (1.5, "major_vessels", "a whole number")],
)
def test_flags_and_counts_checked_for_every_reader(
    data_config: DataConfig, value: float, feature: str, expected: str
) -> None:
    spec = data_config.registry[feature]
    with pytest.raises(InputError, match=expected):
        to_canonical(value, None, spec, feature=feature, source="lab.csv")
