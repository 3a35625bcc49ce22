"""FHIR in and out through the API and the CLI: Bundle, DICOM ECG, RiskAssessment."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from fhir.resources.R4B.riskassessment import RiskAssessment
from typer.testing import CliRunner

from app.api import create_app
from app.cli import cli
from app.service import PredictionService
from app.settings import AppSettings
from ingest.ecg import read_wfdb

BUNDLE = {
    "resourceType": "Bundle",
    "type": "collection",
    "entry": [
        {
            "fullUrl": "urn:uuid:7f1c0e52-0000-4000-8000-000000000001",
            "resource": {
                "resourceType": "Patient",
                "id": "p1",
                "gender": "male",
                "birthDate": "1956-04-02",
            },
        },
        {
            "resource": {
                "resourceType": "Observation",
                "id": "bp",
                "status": "final",
                "code": {"coding": [{"system": "http://loinc.org", "code": "85354-9"}]},
                "subject": {
                    "reference": "urn:uuid:7f1c0e52-0000-4000-8000-000000000001"
                },
                "effectiveDateTime": "2026-11-30T08:00:00Z",
                "component": [
                    {
                        "code": {
                            "coding": [{"system": "http://loinc.org", "code": "8480-6"}]
                        },
                        "valueQuantity": {"value": 152, "unit": "mm[Hg]"},
                    },
                    {
                        "code": {
                            "coding": [{"system": "http://loinc.org", "code": "8462-4"}]
                        },
                        "valueQuantity": {"value": 91, "unit": "mm[Hg]"},
                    },
                ],
            },
        },
        {
            "fullUrl": "urn:uuid:7f1c0e52-0000-4000-8000-00000000c401",
            "resource": {
                "resourceType": "Observation",
                "id": "chol",
                "status": "final",
                "code": {"coding": [{"system": "http://loinc.org", "code": "14647-2"}]},
                "subject": {
                    "reference": "urn:uuid:7f1c0e52-0000-4000-8000-000000000001"
                },
                "effectiveDateTime": "2026-11-30T08:00:00Z",
                "valueQuantity": {
                    "value": 6.2,
                    "unit": "mmol/L",
                    "system": "http://unitsofmeasure.org",
                    "code": "mmol/L",
                },
            },
        },
        {
            "resource": {
                "resourceType": "Observation",
                "id": "no-status",
                "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
                "subject": {
                    "reference": "urn:uuid:7f1c0e52-0000-4000-8000-000000000001"
                },
                "valueQuantity": {"value": 80, "unit": "/min"},
            },
        },
        {
            "resource": {
                "resourceType": "Condition",
                "id": "htn",
                "code": {
                    "coding": [{"system": "http://snomed.info/sct", "code": "59621000"}]
                },
                "subject": {
                    "reference": "urn:uuid:7f1c0e52-0000-4000-8000-000000000001"
                },
            },
        },
    ],
}


@pytest.fixture(scope="module")
def client(model_version) -> TestClient:
    models, _ = model_version
    return TestClient(create_app(AppSettings(models_dir=str(models))))


@pytest.fixture(scope="module")
def dicom_ecg(real_data: Path) -> Path:
    return real_data / "imaging_cxr_dicom/pydicom_test_files/waveform_ecg.dcm"


def test_bundle_in_risk_assessment_out(client: TestClient, dicom_ecg: Path) -> None:
    response = client.post(
        "/v1/predictions?format=fhir",
        data={"patient": json.dumps(BUNDLE)},
        files={"ecg_file": ("waveform_ecg.dcm", dicom_ecg.read_bytes())},
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/fhir+json")
    body = response.json()
    resource = RiskAssessment.model_validate(body)  # valid FHIR
    assert resource.status == "final"
    assert body["subject"] == {
        "reference": "urn:uuid:7f1c0e52-0000-4000-8000-000000000001"
    }
    assert (
        body["method"]["coding"][0]["code"]
        == client.get("/health").json()["model_version"]
    )
    outcomes = [p["outcome"]["coding"][0]["code"] for p in body["prediction"]]
    # The four heads, then the ECG findings by their SNOMED CT concepts.
    assert outcomes[:4] == ["57054005", "230690007", "116223007", "53741008"]
    assert outcomes[4:] == ["55827005", "428750005", "44808001"]
    assert all("not a risk" in p["rationale"] for p in body["prediction"][4:])
    for prediction in body["prediction"][:4]:
        assert 0 <= prediction["probabilityDecimal"] <= 1
        band = prediction["qualitativeRisk"]["coding"][0]["code"]
        assert band in {"low", "moderate", "high"}
    stroke = body["prediction"][1]
    assert stroke["whenRange"]["high"] == {
        "value": 10.0,
        "unit": "a",
        "system": "http://unitsofmeasure.org",
        "code": "a",
    }
    basis = [item.get("reference") or item.get("display") for item in body["basis"]]
    assert "ECG waveform_ecg.dcm" in basis
    # Entries are referred to as the Bundle refers to them: fullUrl, else Type/id.
    assert "urn:uuid:7f1c0e52-0000-4000-8000-00000000c401" in basis
    assert "Observation/bp" in basis and "Condition/htn" in basis
    # The Observation without status was set aside and said so, not dropped.
    notes = " ".join(note["text"] for note in body["note"])
    assert "entry 4, Observation.status" in notes
    # The DICOM ECG's measurements (pydicom's waveform_ecg.dcm: 61 /min).
    assert "heart rate 61/min" in notes


def test_bundle_values_reach_the_model(client: TestClient, model_version) -> None:
    response = client.post("/v1/predictions", data={"patient": json.dumps(BUNDLE)})
    assert response.status_code == 200, response.text
    assert response.json()["modalities_used"] == ["tabular"]
    # The record the service builds from the same Bundle, value by value.
    models, _ = model_version
    features = PredictionService(models).record(BUNDLE).record.features
    # 6.2 mmol/L total cholesterol is 239.7 mg/dL; BP from the panel components.
    assert features["total_cholesterol"] == pytest.approx(239.7, abs=0.1)
    assert (features["systolic_bp"], features["diastolic_bp"]) == (152, 91)
    assert features["hypertension"] == 1.0 and features["sex_male"] == 1.0
    assert "heart_rate" not in features  # its Observation lacks status


def test_bundle_with_a_wfdb_ecg_as_risk_assessment(
    client: TestClient, ecg_upload: dict
) -> None:
    response = client.post(
        "/v1/predictions?format=fhir",
        data={"patient": json.dumps(BUNDLE)},
        files=ecg_upload,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    RiskAssessment.model_validate(body)
    basis = [item.get("reference") or item.get("display") for item in body["basis"]]
    assert "ECG 00008_lr.hea" in basis
    assert len(body["prediction"]) == 4 + 3  # heads, then the ECG findings


def test_a_bundle_without_a_patient_is_refused(client: TestClient) -> None:
    empty = {"resourceType": "Bundle", "type": "collection", "entry": []}
    response = client.post("/v1/predictions", data={"patient": json.dumps(empty)})
    assert response.status_code == 422
    assert "one Patient" in response.json()["detail"]


def test_ecg_file_and_wfdb_pair_together_are_refused(
    client: TestClient, dicom_ecg: Path, ecg_upload: dict
) -> None:
    response = client.post(
        "/v1/predictions",
        data={"patient": json.dumps({"age": 60})},
        files={"ecg_file": ("w.dcm", dicom_ecg.read_bytes()), **ecg_upload},
    )
    assert response.status_code == 422
    assert "ecg_file" in response.json()["detail"]


def test_cli_predict_bundle_with_dicom_ecg_as_fhir(
    model_version, dicom_ecg: Path, tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.setenv("CARDIORISK_MODELS_DIR", str(model_version[0]))
    bundle = tmp_path / "bundle.json"
    bundle.write_text(json.dumps(BUNDLE), encoding="utf-8")
    result = CliRunner().invoke(
        cli, ["predict", str(bundle), "--ecg", str(dicom_ecg), "--fhir"]
    )
    assert result.exit_code == 0, result.output
    resource = RiskAssessment.model_validate_json(result.output)
    assert len(resource.prediction) == 4 + 3  # heads, then the ECG findings
    assert resource.subject.reference.startswith("urn:uuid:")


def test_the_converter_bundle_with_its_byte_order_mark(
    client: TestClient, real_data: Path
) -> None:
    path = (
        real_data / "fhir_r4_synthea/ms_fhir_converter_samples/ObservationBundle.json"
    )
    text = path.read_text(encoding="utf-8")  # keeps the BOM, as curl -F 'patient=<'
    assert text.startswith("\ufeff")
    response = client.post("/v1/predictions?format=fhir", data={"patient": text})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["subject"] == {"reference": "Patient/f001"}
    notes = " ".join(note["text"] for note in body["note"])
    assert "Bundle.entry" in notes  # the entry without `resource`, said aloud


@pytest.fixture(scope="module")
def csv_ecg(real_data: Path) -> bytes:
    """Leads I, II and III of PTB-XL ecg_id 1 at 500 Hz, as a CSV in mV (no fs)."""
    ecg = read_wfdb(real_data / "ptbxl_subset/records500/00000/00001_hr")
    rows = [",".join(f"{v:.4f}" for v in column) for column in ecg.signal[:3].T]
    return ("I,II,III\n" + "\n".join(rows) + "\n").encode()


def test_a_csv_ecg_without_fs_names_the_form_field(
    client: TestClient, csv_ecg: bytes
) -> None:
    content = csv_ecg
    response = client.post(
        "/v1/predictions",
        data={"patient": json.dumps({"age": 60})},
        files={"ecg_file": ("ecg.csv", content)},
    )
    assert response.status_code == 422
    assert "ecg_fs" in response.json()["detail"]
    answered = client.post(
        "/v1/predictions",
        data={"patient": json.dumps({"age": 60}), "ecg_fs": "500"},
        files={"ecg_file": ("ecg.csv", content)},
    )
    assert answered.status_code == 200, answered.text
    assert "ecg" in answered.json()["modalities_used"]
    assert 50 < answered.json()["ecg_measurements"]["heart_rate_bpm"] < 80


def test_cli_names_the_missing_ecg_fs_and_one_answer_format(
    model_version, tmp_path: Path, monkeypatch, csv_ecg: bytes
) -> None:
    monkeypatch.setenv("CARDIORISK_MODELS_DIR", str(model_version[0]))
    patient = tmp_path / "p.json"
    patient.write_text(json.dumps({"age": 60}), encoding="utf-8")
    ecg = tmp_path / "ecg.csv"
    ecg.write_bytes(csv_ecg)
    result = CliRunner().invoke(cli, ["predict", str(patient), "--ecg", str(ecg)])
    assert result.exit_code == 2 and "--ecg-fs" in result.output
    both = CliRunner().invoke(cli, ["predict", str(patient), "--json", "--fhir"])
    assert both.exit_code == 2 and "choose one" in both.output


def test_the_subject_is_the_patient_the_data_belong_to(client: TestClient) -> None:
    # Patient A without data, Patient B with an Observation: answering for "the
    # first Patient" would put B's risk on A's record.
    other = {
        "fullUrl": "urn:uuid:7f1c0e52-0000-4000-8000-0000000000b0",
        "resource": {"resourceType": "Patient", "id": "b", "gender": "female"},
    }
    two = {**BUNDLE, "entry": [other, *BUNDLE["entry"]]}
    response = client.post(
        "/v1/predictions?format=fhir", data={"patient": json.dumps(two)}
    )
    assert response.status_code == 422
    assert "one Patient" in response.json()["detail"]
    # Data that refer to a Patient the Bundle does not hold: refused too.
    orphan = {**BUNDLE, "entry": BUNDLE["entry"][1:]}
    response = client.post("/v1/predictions", data={"patient": json.dumps(orphan)})
    assert response.status_code == 422


def test_a_library_error_in_a_reader_is_bad_input_not_a_500(
    client: TestClient, dicom_ecg: Path, tmp_path: Path
) -> None:
    import pydicom

    dataset = pydicom.dcmread(dicom_ecg)
    del dataset.WaveformSequence[0].NumberOfWaveformChannels
    broken = tmp_path / "broken.dcm"
    dataset.save_as(broken)
    response = client.post(
        "/v1/predictions",
        data={"patient": json.dumps({"age": 60})},
        files={"ecg_file": ("broken.dcm", broken.read_bytes())},
    )
    assert response.status_code == 422
    assert response.json()["detail"].startswith("broken.dcm: field")
