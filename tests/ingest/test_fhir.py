"""FHIR R4 in: real Synthea / converter samples and small hand-made Bundles."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fhir.resources.R4B.observation import Observation as FhirObservation

from ingest.codes import CodeTables, load_code_tables
from ingest.config import DataConfig
from ingest.errors import InputError
from ingest.fhir import read_fhir, read_fhir_bundle
from ingest.fhir_load import Entry
from ingest.fhir_observations import read_observation
from ingest.observations import ReadResult, pseudonym

LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
UCUM = "http://unitsofmeasure.org"
ICD10 = "http://hl7.org/fhir/sid/icd-10"
PATIENT_URL = "urn:uuid:5b0e7c7e-0000-4000-8000-00000000000a"


@pytest.fixture(scope="module")
def codes() -> CodeTables:
    return load_code_tables()


@pytest.fixture(scope="module")
def options(data_config: DataConfig, codes: CodeTables) -> dict:
    return {
        "registry": data_config.registry,
        "codes": codes,
        "timeline_features": data_config.timeline_features,
        "max_timeline_steps": data_config.max_timeline_steps,
    }


@pytest.fixture(scope="module")
def fhir_dir(real_data: Path) -> Path:
    folder = real_data / "fhir_r4_synthea"
    if not folder.is_dir():
        pytest.skip(f"FHIR samples not found at {folder} (see its PROVENANCE.md)")
    return folder


# Hand-made resources -------------------------------------------------------------


def _patient(**extra) -> dict:
    return {
        "fullUrl": PATIENT_URL,
        "resource": {
            "resourceType": "Patient",
            "id": "pt-1",
            "gender": "female",
            "birthDate": "1960-06-15",
            **extra,
        },
    }


def _observation(code: str, when: str = "2024-03-01T08:00:00Z", **value) -> dict:
    resource = {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": LOINC, "code": code}]},
        "subject": {"reference": PATIENT_URL},
        "effectiveDateTime": when,
        **value,
    }
    return {"resource": resource}


def _quantity(value: float, unit: str | None, comparator: str | None = None) -> dict:
    quantity: dict = {"value": value}
    if unit is not None:
        quantity.update(unit=unit, system=UCUM, code=unit)
    if comparator:
        quantity["comparator"] = comparator
    return {"valueQuantity": quantity}


def _condition(system: str, code: str, clinical: str = "active") -> dict:
    status_system = "http://terminology.hl7.org/CodeSystem/condition-clinical"
    resource = {
        "resourceType": "Condition",
        "clinicalStatus": {"coding": [{"system": status_system, "code": clinical}]},
        "code": {"coding": [{"system": system, "code": code}]},
        "subject": {"reference": "Patient/pt-1"},
    }
    return {"resource": resource}


def _bundle(*entries: dict, kind: str = "collection") -> dict:
    return {"resourceType": "Bundle", "type": kind, "entry": list(entries)}


def _validated(item: dict) -> FhirObservation:
    return FhirObservation.model_validate(item["resource"])


def _one(result: ReadResult):
    assert len(result.records) == 1, result.quarantine
    return result.records[0]


# Real files ----------------------------------------------------------------------


def test_single_synthea_patient(fhir_dir: Path, options: dict) -> None:
    result = read_fhir(fhir_dir / "single_patient_ktmtwm", **options)
    record = _one(result)
    features = record.features
    # Latest values (2021-07-21) as written in Observation.ndjson.
    assert features["total_cholesterol"] == pytest.approx(181.15)
    assert features["hdl_cholesterol"] == pytest.approx(69.81)
    assert features["systolic_bp"] == pytest.approx(157.0)  # BP panel components
    assert features["diastolic_bp"] == pytest.approx(96.0)
    assert features["bmi"] == pytest.approx(27.85)
    assert features["platelets"] == pytest.approx(216.99)  # 10*3/uL
    assert features["current_smoker"] == 0.0  # never smoker
    assert features["hypertension"] == 1.0  # SNOMED 59621000
    assert features["bp_medication"] == 1.0  # active lisinopril / HCTZ requests
    assert features["sex_male"] == 0.0
    assert features["age"] == pytest.approx(66.9, abs=0.05)  # born 1954-08-25
    assert len(record.timeline) == options["max_timeline_steps"]
    assert record.patient_id == pseudonym(
        "Patient/913e9363-b137-25f7-9585-ce7970dce7b2", "fhir"
    )
    assert "913e9363" not in record.record_id  # no raw identifier kept
    assert result.quarantine == []
    assert result.ignored["MedicationRequest status stopped"] == 113
    assert result.ignored["Encounter resources not read"] == 75


def test_bulk_export_joins_files_by_patient(fhir_dir: Path, options: dict) -> None:
    folder = fhir_dir / "bulk_10_patients_smart"
    result = read_fhir(folder, **options)
    # 13 Patient resources (10 people, some exported twice), no Observations.
    assert len(result.records) == 13
    assert result.quarantine == []
    by_key = {record.patient_id: record.features for record in result.records}
    ischemic = set()
    with (folder / "Condition.000.ndjson").open() as handle:
        for line in handle:
            condition = json.loads(line)
            if condition["code"]["coding"][0]["code"] == "414545008":
                ischemic.add(pseudonym(condition["subject"]["reference"], "fhir"))
    assert len(ischemic) == 2
    for key in ischemic:
        assert by_key[key]["prior_chd"] == 1.0
    assert sum(f.get("hypertension", 0) for f in by_key.values()) == 2
    assert sum(f.get("diabetes", 0) for f in by_key.values()) == 1
    # Three deceased patients have no dated observation: age left missing, said so.
    assert sum("age" not in f for f in by_key.values()) == 3
    assert all("sex_male" in f for f in by_key.values())


def test_converter_bundle_glucose_and_unwrapped_entry(
    fhir_dir: Path, options: dict
) -> None:
    path = fhir_dir / "ms_fhir_converter_samples/ObservationBundle.json"
    assert path.read_bytes().startswith(b"\xef\xbb\xbf")  # the BOM is read through
    result = read_fhir(path, **options)
    record = _one(result)
    # 6.3 mmol/L x 180.16 g/mol / 10 = 113.5 mg/dL
    assert record.features["glucose"] == pytest.approx(113.50, abs=0.01)
    assert record.features["sex_male"] == 1.0
    assert [(q.record_id, q.field) for q in result.quarantine] == [
        ("entry 2", "Bundle.entry.resource")
    ]


# Hand-made Bundles ---------------------------------------------------------------


def test_observation_without_status_is_quarantined_rest_counts(options) -> None:
    bad = _observation("8867-4", **_quantity(80, "/min"))
    del bad["resource"]["status"]
    bundle = _bundle(_patient(), _observation("2160-0", **_quantity(1.1, "mg/dL")), bad)
    result = read_fhir_bundle(bundle, **options)
    record = _one(result)
    assert record.features["creatinine"] == pytest.approx(1.1)
    assert "heart_rate" not in record.features
    [item] = result.quarantine
    assert (item.source, item.record_id, item.field) == (
        "request",
        "entry 3",
        "Observation.status",
    )
    assert "required" in item.reason


def test_codes_outside_their_value_set_and_deep_nesting(options) -> None:
    garbage = _observation("8867-4", **_quantity(80, "/min"))
    garbage["resource"]["status"] = "ZZ"
    nested: dict = {"url": "http://example.org/x", "valueString": "end"}
    for _ in range(150):
        nested = {"url": "http://example.org/x", "extension": [nested]}
    deep = _observation("8480-6", **_quantity(120, "mm[Hg]"))
    deep["resource"]["extension"] = [nested]
    good = _observation("2160-0", **_quantity(1.1, "mg/dL"))
    result = read_fhir_bundle(_bundle(_patient(), good, garbage, deep), **options)
    assert _one(result).features["creatinine"] == pytest.approx(1.1)
    fields = {item.field: item.reason for item in result.quarantine}
    assert "expected one of" in fields["Observation.status"]
    assert "nested too deeply" in fields["Observation"]


@pytest.mark.parametrize(
    "value",
    [_quantity(3, "ng/L", comparator="<"), {"valueString": "<3 ng/L"}],
    ids=["valueQuantity.comparator", "valueString"],
)
def test_troponin_below_detection_limit(value, options, codes) -> None:
    bundle = _bundle(_patient(), _observation("89579-7", **value))
    result = read_fhir_bundle(bundle, **options)
    assert _one(result).features["troponin_i"] == 3.0
    # Said aloud: the record holds the bound itself as the value.
    bound = "troponin_i sent as a bound (<): the bound is used as its value"
    assert result.ignored[bound] == 1
    # The bound is kept on the observation itself.
    entry = Entry("request", "entry 2", None, _validated(bundle["entry"][1]))
    [observation] = read_observation(
        entry, "key", registry=options["registry"], codes=codes, result=ReadResult()
    )
    assert (observation.value, observation.comparator) == (3.0, "<")


def test_troponin_in_ng_per_ml_and_ng_per_l(options) -> None:
    earlier = _observation(
        "10839-9", "2024-03-01T08:00:00Z", **_quantity(0.05, "ng/mL")
    )
    later = _observation("10839-9", "2024-03-01T11:00:00Z", **_quantity(48, "ng/L"))
    result = read_fhir_bundle(_bundle(_patient(), earlier, later), **options)
    assert _one(result).features["troponin_i"] == pytest.approx(48.0)

    # Same time, same amount in two units: one value, not a conflict.
    same_ml = _observation(
        "10839-9", "2024-03-01T08:00:00Z", **_quantity(0.048, "ng/mL")
    )
    same_l = _observation("10839-9", "2024-03-01T08:00:00Z", **_quantity(48, "ng/L"))
    result = read_fhir_bundle(_bundle(_patient(), same_ml, same_l), **options)
    assert _one(result).features["troponin_i"] == pytest.approx(48.0)
    assert result.quarantine == []


def test_creatinine_micromol_to_mg_per_dl(options) -> None:
    value = {"valueQuantity": {"value": 88.4, "unit": "µmol/L"}}  # display unit only
    result = read_fhir_bundle(
        _bundle(_patient(), _observation("14682-9", **value)), **options
    )
    assert _one(result).features["creatinine"] == pytest.approx(1.0, abs=0.001)


@pytest.mark.parametrize(
    ("unit", "found"),
    [(None, "no unit"), ("mmHg", "'mmHg'")],
    ids=["missing", "impossible"],
)
def test_bad_unit_quarantined_with_its_field(unit, found, options) -> None:
    bad = _observation("2160-0", **_quantity(1.2, unit))
    bundle = _bundle(_patient(), bad, _observation("8867-4", **_quantity(70, "/min")))
    result = read_fhir_bundle(bundle, **options)
    assert _one(result).features["heart_rate"] == 70.0
    [item] = result.quarantine
    assert item.field == "Observation.valueQuantity.unit"
    assert "creatinine.unit" in item.reason and found in item.reason


def test_implausible_value_and_unreadable_string(options) -> None:
    bundle = _bundle(
        _patient(),
        _observation("8480-6", **_quantity(1200, "mm[Hg]")),
        _observation("2345-7", valueString="high"),
    )
    result = read_fhir_bundle(bundle, **options)
    fields = sorted(item.field for item in result.quarantine)
    assert fields == ["Observation.valueQuantity.value", "Observation.valueString"]


def test_data_absent_and_withdrawn_results_are_counted(options) -> None:
    absent = _observation("2093-3")
    absent["resource"]["dataAbsentReason"] = {"coding": [{"code": "not-performed"}]}
    withdrawn = _observation("2085-9", **_quantity(50, "mg/dL"))
    withdrawn["resource"]["status"] = "entered-in-error"
    unmapped = _observation("4544-3", **_quantity(41, "%"))
    panel = _observation("85354-9")
    panel["resource"]["component"] = [
        {
            "code": {"coding": [{"system": LOINC, "code": "8480-6"}]},
            "dataAbsentReason": {"coding": [{"code": "not-performed"}]},
        }
    ]
    bundle = _bundle(_patient(), absent, withdrawn, unmapped, panel)
    result = read_fhir_bundle(bundle, **options)
    assert result.quarantine == []
    assert result.ignored["Observation dataAbsentReason not-performed"] == 2
    assert result.ignored["Observation status entered-in-error"] == 1
    assert result.ignored["Observation LOINC 4544-3 not mapped"] == 1
    assert set(_one(result).features) == {"sex_male", "age"}


def test_conditions_resolved_refuted_and_icd10(options) -> None:
    refuted = _condition(ICD10, "I48.0")  # atrial fibrillation, ruled out
    refuted["resource"]["verificationStatus"] = {"coding": [{"code": "refuted"}]}
    bundle = _bundle(
        _patient(),
        _condition(SNOMED, "38341003", clinical="resolved"),  # hypertension, over
        _condition(ICD10, "I21.4"),  # NSTEMI
        _condition(ICD10, "I63.9", clinical="resolved"),  # a stroke stays a prior one
        refuted,
    )
    result = read_fhir_bundle(bundle, **options)
    features = _one(result).features
    assert "hypertension" not in features
    ignored = result.ignored
    assert ignored["Condition clinicalStatus resolved: hypertension not set"] == 1
    assert "atrial_fibrillation" not in features
    assert ignored["Condition verificationStatus refuted: no flag set"] == 1
    assert features["prior_mi"] == 1.0 and features["prior_chd"] == 1.0
    assert features["prior_stroke"] == 1.0


def test_smoking_medication_and_procedure(options) -> None:
    smoking = _observation("72166-2")
    smoking["resource"]["valueCodeableConcept"] = {
        "coding": [{"system": SNOMED, "code": "449868002"}]
    }
    statement = {
        "resourceType": "MedicationStatement",
        "status": "active",
        "medicationCodeableConcept": {"text": "Amlodipine 5 mg tablet"},
        "subject": {"reference": "Patient/pt-1"},
    }
    surgery = {
        "resourceType": "Procedure",
        "status": "completed",
        "code": {"coding": [{"system": SNOMED, "code": "45595009"}]},
        "subject": {"reference": "Patient/pt-1"},
    }
    bundle = _bundle(
        _patient(), smoking, {"resource": statement}, {"resource": surgery}
    )
    features = _one(read_fhir_bundle(bundle, **options)).features
    assert (features["current_smoker"], features["former_smoker"]) == (1.0, 0.0)
    assert features["bp_medication"] == 1.0
    assert features["surgery_major_abdominal"] == 1.0
    assert features["surgery_laparoscopic"] == 1.0


def test_only_the_index_operation_sets_the_surgery_context(options) -> None:
    def colectomy(when: str, status: str = "completed") -> dict:
        return {
            "resource": {
                "resourceType": "Procedure",
                "status": status,
                "code": {"coding": [{"system": SNOMED, "code": "23968004"}]},
                "subject": {"reference": "Patient/pt-1"},
                "performedDateTime": when,
            }
        }

    latest_value = _observation(
        "8480-6", "2024-03-01T08:00:00Z", **_quantity(130, "mm[Hg]")
    )
    old = _bundle(_patient(), latest_value, colectomy("1994-05-02"))
    result = read_fhir_bundle(old, **options)
    assert "surgery_major_abdominal" not in _one(result).features
    assert any("not the index operation" in reason for reason in result.ignored)
    recent = _bundle(_patient(), latest_value, colectomy("2024-02-20"))
    features = _one(read_fhir_bundle(recent, **options)).features
    assert features["surgery_major_abdominal"] == 1.0


def test_ndjson_with_a_broken_line(tmp_path: Path, options) -> None:
    pulse = _observation("8867-4", **_quantity(64, "/min"))["resource"]
    pulse["subject"] = {"reference": "Patient/pt-1"}  # NDJSON has no fullUrl
    lines = [
        json.dumps(_patient()["resource"]),
        '{"resourceType": "Observation", "status": "final", ',  # cut short
        json.dumps(pulse),
        json.dumps({**_condition(SNOMED, "38341003")["resource"]}),
    ]
    (tmp_path / "export.ndjson").write_text("\n".join(lines) + "\n")
    result = read_fhir(tmp_path, **options)
    features = _one(result).features
    assert features["heart_rate"] == 64.0 and features["hypertension"] == 1.0
    [item] = result.quarantine
    assert (item.source, item.record_id, item.field) == (
        "export.ndjson",
        "line 2",
        "line",
    )
    assert "not valid JSON" in item.reason


def test_subject_that_is_not_a_patient(options) -> None:
    stray = _observation("8867-4", **_quantity(70, "/min"))
    stray["resource"]["subject"] = {"reference": "Group/ward-3"}
    result = read_fhir_bundle(_bundle(_patient(), stray), **options)
    [item] = result.quarantine
    assert item.field == "Observation.subject" and "Group" in item.reason
    assert "ward-3" not in item.reason


def test_payload_that_is_not_fhir(options) -> None:
    with pytest.raises(InputError, match="JSON"):
        read_fhir_bundle(b"\xef\xbb\xbf{not json", **options)
    with pytest.raises(InputError, match="resourceType"):
        read_fhir_bundle({"entry": []}, **options)


def test_heart_failure_and_an_insulin_request(options) -> None:
    request = {
        "resourceType": "MedicationRequest",
        "status": "active",
        "intent": "order",
        "medicationCodeableConcept": {
            "coding": [
                {
                    "system": "http://www.nlm.nih.gov/research/umls/rxnorm",
                    "code": "311034",
                    "display": "insulin regular, human 100 UNT/ML",
                }
            ]
        },
        "subject": {"reference": "Patient/pt-1"},
    }
    stopped = {**request, "status": "stopped", "id": "old"}
    stopped["medicationCodeableConcept"] = {"text": "Lisinopril 10 mg tablet"}
    bundle = _bundle(
        _patient(),
        _condition(SNOMED, "84114007"),  # heart failure
        _condition(ICD10, "I50.9"),  # the same, by ICD-10
        {"resource": request},
        {"resource": stopped},
    )
    features = _one(read_fhir_bundle(bundle, **options)).features
    assert features["heart_failure"] == 1.0
    assert features["insulin_therapy"] == 1.0
    assert "bp_medication" not in features  # a stopped request sets no flag
