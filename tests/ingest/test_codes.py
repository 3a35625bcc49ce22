"""The code tables of configs/codes.yaml."""

from __future__ import annotations

import pytest

from ingest.codes import (
    ICD10_SYSTEMS,
    RXNORM_SYSTEM,
    SNOMED_SYSTEM,
    CodeTables,
    is_valid_loinc,
    load_code_tables,
    loinc_check_digit,
)
from ingest.config import DataConfig, load_yaml


@pytest.fixture(scope="module")
def codes() -> CodeTables:
    return load_code_tables()


def test_loinc_check_digit_matches_published_codes() -> None:
    # LOINC's own worked example, and codes printed on LOINC's pages.
    assert loinc_check_digit("12345") == 5
    for code in ("8480-6", "2093-3", "2160-0", "718-7", "89579-7", "15074-8"):
        assert is_valid_loinc(code), code
    for code in ("8480-5", "2160-1", "2160", "abc-1", "12345678-9"):
        assert not is_valid_loinc(code), code


def test_every_table_entry_names_a_registry_feature(
    codes: CodeTables, data_config: DataConfig
) -> None:
    codes.check_features(data_config.registry)
    assert codes.feature_for_loinc("2160-0") == "creatinine"
    assert codes.feature_for_loinc("14682-9") == "creatinine"  # moles/volume
    assert codes.feature_for_loinc("89579-7") == "troponin_i"
    assert codes.feature_for_loinc("4544-3") is None  # haematocrit: not used


def test_a_wrong_check_digit_fails_loading() -> None:
    content = load_yaml("codes")
    content["loinc"]["2160-1"] = {"feature": "creatinine", "display": "typo"}
    with pytest.raises(ValueError, match="2160-1"):
        CodeTables.model_validate(content)


def test_an_unknown_feature_fails_the_check(
    codes: CodeTables, data_config: DataConfig
) -> None:
    broken = codes.model_copy(deep=True)
    broken.loinc["2160-0"].feature = "kreatinin"
    with pytest.raises(ValueError, match="kreatinin"):
        broken.check_features(data_config.registry)


def test_conditions_by_snomed_and_icd10_prefix(codes: CodeTables) -> None:
    assert codes.condition_flags(SNOMED_SYSTEM, "59621000") == ["hypertension"]
    assert codes.condition_flags(SNOMED_SYSTEM, "15777000") == []  # prediabetes
    assert set(codes.condition_flags(ICD10_SYSTEMS[0], "I21.4")) == {
        "prior_mi",
        "prior_chd",
    }
    assert codes.condition_flags(ICD10_SYSTEMS[1], "I48.91") == ["atrial_fibrillation"]
    assert codes.condition_flags(SNOMED_SYSTEM, "I10") == []  # wrong system


def test_medications_by_rxnorm_and_ingredient(codes: CodeTables) -> None:
    assert codes.medication_flags(RXNORM_SYSTEM, "314076") == ["bp_medication"]
    assert codes.medication_flags(
        RXNORM_SYSTEM, "999999", "Amlodipine 5 MG Oral Tablet"
    ) == ["bp_medication"]
    assert codes.medication_flags(RXNORM_SYSTEM, "849574", "Naproxen 220 MG") == []
    assert codes.medication_flags("", "", "insulin glargine 100 UNT/ML") == [
        "insulin_therapy"
    ]
