"""The ontology of clinical concepts (configs/ontology.yaml)."""

import pytest

from ingest.codes import is_valid_snomed, load_code_tables
from ingest.config import load_yaml
from ingest.ontology import Ontology, load_ontology
from ingest.schema import TARGETS


@pytest.fixture(scope="module")
def ontology() -> Ontology:
    return load_ontology()


def test_snomed_identifiers_carry_their_verhoeff_digit():
    for code in ("22298006", "55827005", "38341003", "49436004", "8186001"):
        assert is_valid_snomed(code), code
    for code in ("22298007", "055827005", "12345", "5582700x"):
        assert not is_valid_snomed(code), code


def test_a_mistyped_concept_code_fails_loading():
    content = load_yaml("ontology")
    content["concepts"]["left_ventricular_hypertrophy"]["snomed"] = "55827004"
    with pytest.raises(ValueError, match="55827004"):
        Ontology.model_validate(content)


def test_every_concept_input_is_a_feature_and_every_target_is_named(
    ontology, data_config
):
    ontology.check_features(data_config.registry)
    named = {t for c in ontology.concepts.values() for t in c.targets}
    assert named <= set(TARGETS)
    assert ontology.concept_of_target("acute_mi") == "myocardial_infarction"
    assert ontology.concept_of_target("ecg_hypertrophy") == (
        "left_ventricular_hypertrophy"
    )
    assert ontology.ptbxl_targets() == {
        "ecg_hypertrophy": "HYP", "ecg_st_t_change": "STTC", "ecg_conduction": "CD",
    }  # fmt: skip


def test_codes_of_a_concept_join_snomed_icd10_and_loinc(ontology):
    codes = ontology.codes("myocardial_infarction", load_code_tables())
    assert codes["snomed"][0] == "22298006"
    assert any(code.startswith("I2") for code in codes["icd10"])  # I21, I25.2 ...
    assert "89579-7" in codes["loinc"]  # troponin I, high sensitivity
    diabetes = ontology.codes("diabetes", load_code_tables())
    assert any(code.startswith("E1") for code in diabetes["icd10"])


def test_evidence_names_the_feature_and_its_cut_off(ontology):
    found = ontology.evidence(
        {"total_cholesterol": 260.0, "creatinine": 1.0, "rest_ecg_lvh": 1.0}
    )
    pairs = {(e.concept, e.feature, e.rule) for e in found}
    assert ("dyslipidaemia", "total_cholesterol", ">= 240") in pairs
    assert ("left_ventricular_hypertrophy", "rest_ecg_lvh", "flag") in pairs
    assert not any(e.concept == "renal_impairment" for e in found)
    assert ontology.concept_of_feature("ldl_cholesterol") == "dyslipidaemia"
