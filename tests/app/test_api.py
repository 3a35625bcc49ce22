import json

import numpy as np
import pytest
from fastapi.testclient import TestClient

from app.api import create_app
from app.service import PredictionService
from app.settings import AppSettings
from ingest.ecg import read_wfdb


@pytest.fixture(scope="module")
def client(model_version):
    models, _ = model_version
    settings = AppSettings(models_dir=str(models), max_upload_mb=1)
    return TestClient(create_app(settings))


def test_the_root_leads_to_the_documentation(client):
    response = client.get("/", follow_redirects=False)
    assert response.status_code == 307 and response.headers["location"] == "/docs"


def test_health_and_openapi(client, model_version):
    assert client.get("/health").json() == {
        "status": "ok",
        "model_version": model_version[1],
    }
    paths = client.get("/openapi.json").json()["paths"]
    assert "/v1/predictions" in paths and "/health" in paths


def test_prediction_with_ecg_upload(client, ecg_upload):
    response = client.post(
        "/v1/predictions",
        data={"patient": json.dumps({"age": 74, "sex": "male"})},
        files=ecg_upload,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert [r["head"] for r in body["risks"]] == [
        "acute_mi", "stroke", "postop", "heart_disease",
    ]  # fmt: skip
    assert body["modalities_used"] == ["tabular", "ecg"]
    assert body["modalities_missing"] == ["timeline", "imaging"]
    mi = body["risks"][0]
    assert 0 <= mi["risk"] <= 1 and mi["band"] in {"low", "moderate", "high"}
    assert len(mi["reasons"]) == 5
    assert set(mi["modality_contributions"]) == {"tabular", "ecg"}


def test_names_in_vietnamese(client):
    response = client.post(
        "/v1/predictions?language=vi",
        data={"patient": json.dumps({"age": 50, "features": {"systolic_bp": 160}})},
    )
    assert response.status_code == 200
    risks = response.json()["risks"]
    assert risks[1]["label"] == "Đột quỵ"
    labels = {reason["name"]: reason["label"] for reason in risks[1]["reasons"]}
    assert labels["systolic_bp"] == "Huyết áp tâm thu"


@pytest.mark.parametrize(
    ("data", "files", "needle"),
    [
        ({"patient": "{not json"}, None, "field 'patient'"),
        ({"patient": "[1, 2]"}, None, "a JSON object"),
        ({"patient": json.dumps({"features": {"sbp": 1}})}, None, "features.sbp"),
        ({"patient": json.dumps({"age": 500})}, None, "field 'age'"),
        ({"patient": "{}"}, None, "at least one feature, an ECG or an earlier visit"),
        ({"patient": '{"features": {}, "timeline": []}'}, None, "no data"),
        ({"patient": "{}"}, {"ecg_header": ("a.hea", b"x 1 100 10\n")}, "both files"),
        (
            {"patient": "{}"},
            {"ecg_header": ("a.hea", b""), "ecg_signal": ("a.dat", b"\x00")},
            "empty file",
        ),
    ],
)
def test_bad_input_gets_a_clear_422(client, data, files, needle):
    response = client.post("/v1/predictions", data=data, files=files)
    assert response.status_code == 422
    assert needle in response.json()["detail"]


def test_oversized_upload_is_refused(client):
    big = b"\x00" * (2 * 1024 * 1024)
    response = client.post(
        "/v1/predictions",
        data={"patient": "{}"},
        files={"ecg_header": ("a.hea", b"a 1 100 10\n"), "ecg_signal": ("a.dat", big)},
    )
    assert response.status_code == 413


def test_prediction_with_a_chest_x_ray(client, real_data):
    image = real_data / "cxr_nih_cardiomegaly_small/images/00000001_001.png"
    response = client.post(
        "/v1/predictions",
        data={"patient": json.dumps({"age": 58, "sex": "male"})},
        files={"image_file": (image.name, image.read_bytes(), "image/png")},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["modalities_used"] == ["tabular", "imaging"]
    findings = {f["target"]: f for f in body["findings"]}
    assert findings["cardiomegaly"]["concept_snomed"] == "8186001"
    assert "imaging" in findings["cardiomegaly"]["modalities_used"]
    assert "ecg_hypertrophy" not in findings  # no ECG given: no ECG finding
    # No risk head learned from images: they say so, and read the rest.
    assert all(risk["modalities_used"] == ["tabular"] for risk in body["risks"])
    assert any(
        w.startswith("imaging: no risk head") and "cardiomegaly" in w
        for w in body["warnings"]
    )


def test_an_image_that_is_not_one_names_the_upload(client):
    response = client.post(
        "/v1/predictions",
        data={"patient": json.dumps({"age": 58})},
        files={"image_file": ("scan.png", b"not an image at all", "image/png")},
    )
    assert response.status_code == 422
    assert "scan.png" in response.json()["detail"]


def test_an_image_the_encoder_never_learned_from_is_read_but_not_used(
    client, real_data
):
    mr = real_data / "imaging_cxr_dicom/pydicom_test_files/MR_small.dcm"
    response = client.post(
        "/v1/predictions?explain=false",
        data={"patient": json.dumps({"age": 58, "sex": "male"})},
        files={"image_file": (mr.name, mr.read_bytes(), "application/dicom")},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert "imaging" not in body["modalities_used"] and not body["findings"]
    assert any("modality MR" in w and "not used" in w for w in body["warnings"])


def test_image_reader_notes_become_warnings_and_a_tiny_image_is_refused(client):
    import io

    import numpy as np
    from PIL import Image as PILImage

    rgba = np.zeros((96, 96, 4), dtype=np.uint8)
    rgba[20:70, 20:70] = (200, 180, 160, 255)
    buffer = io.BytesIO()
    PILImage.fromarray(rgba, "RGBA").save(buffer, format="PNG")
    response = client.post(
        "/v1/predictions?explain=false",
        data={"patient": json.dumps({"age": 58})},
        files={"image_file": ("rgba.png", buffer.getvalue(), "image/png")},
    )
    assert response.status_code == 200, response.text
    assert any(
        w.startswith("image rgba.png: alpha") for w in response.json()["warnings"]
    )
    buffer = io.BytesIO()
    PILImage.fromarray(np.arange(2, dtype=np.uint8).reshape(1, 2)).save(
        buffer, format="PNG"
    )
    response = client.post(
        "/v1/predictions",
        data={"patient": json.dumps({"age": 58})},
        files={"image_file": ("dot.png", buffer.getvalue(), "image/png")},
    )
    assert response.status_code == 422
    assert (
        "field 'pixels': expected at least 64 pixels a side"
        in response.json()["detail"]
    )


def test_a_postop_risk_without_an_operation_says_so(client):
    def warnings(features: dict) -> list[str]:
        response = client.post(
            "/v1/predictions?explain=false",
            data={"patient": json.dumps({"age": 66, "features": features})},
        )
        assert response.status_code == 200, response.text
        return response.json()["warnings"]

    name = "Post-operative complication: no operation is recorded"
    assert any(w.startswith(name) for w in warnings({}))
    planned = warnings({"surgery_major_abdominal": 1, "asa_class": 3})
    assert not any("no operation is recorded" in w for w in planned)


def _csv(signal: np.ndarray, leads: list[str]) -> bytes:
    rows = [",".join(f"{v:.4f}" for v in column) for column in signal.T]
    return (",".join(leads) + "\n" + "\n".join(rows) + "\n").encode()


@pytest.fixture(scope="module")
def real_ecg(real_data):
    return read_wfdb(real_data / "ptbxl_subset/records100/00000/00008_lr")


def _post_ecg(client, patient: dict, signal: np.ndarray, leads: list[str]):
    return client.post(
        "/v1/predictions",
        data={"patient": json.dumps(patient), "ecg_fs": "100"},
        files={"ecg_file": ("noisy.csv", _csv(signal, leads))},
    )


def test_an_ecg_of_noise_is_set_aside_and_alone_is_refused(client, real_ecg):
    noise = np.random.default_rng(0).normal(0, 0.5, real_ecg.signal.shape)
    response = _post_ecg(client, {"age": 60, "sex": "male"}, noise, real_ecg.lead_names)
    assert response.status_code == 200, response.text
    body = response.json()
    assert "ecg" not in body["modalities_used"] and body["ecg_measurements"] is None
    assert any("noisy.csv set aside" in w for w in body["warnings"])
    quality = body["ecg_quality"]
    assert not quality["used"] and quality["median"] < quality["min_median"]
    alone = _post_ecg(client, {}, noise, real_ecg.lead_names)
    assert alone.status_code == 422
    detail = alone.json()["detail"]
    assert "noisy.csv" in detail and "signal quality" in detail


def test_a_noisy_lead_is_read_as_zeros_and_named(client, real_ecg):
    signal = real_ecg.signal.copy()
    v2 = real_ecg.lead_names.index("V2")
    signal[v2] = np.random.default_rng(1).normal(0, 0.5, signal.shape[1])
    response = _post_ecg(client, {"age": 60}, signal, real_ecg.lead_names)
    assert response.status_code == 200, response.text
    body = response.json()
    assert "ecg" in body["modalities_used"]
    assert body["ecg_quality"]["poor"] == ["V2"] and body["ecg_quality"]["used"]
    [warning] = [w for w in body["warnings"] if "poor signal quality" in w]
    assert "V2 0." in warning and "read as zeros" in warning
    assert "V2" not in body["ecg_measurements"]["st_deviation_mv"]
    explained = client.get(f"/v1/predictions/{body['prediction_id']}/explanation")
    assert explained.status_code == 200, explained.text
    assert explained.json()["ecg_quality"]["poor"] == ["V2"]
    mi = explained.json()["heads"][0]
    assert "too noisy to read, read as zeros: V2" in mi["paragraph"]
    vi = client.get(
        f"/v1/predictions/{body['prediction_id']}/explanation?language=vi"
    ).json()["heads"][0]["paragraph"]
    assert "quá nhiễu" in vi


def test_warnings_are_in_the_language_asked_for(client, real_ecg):
    signal = real_ecg.signal[:, :500]  # 5 s: zero-padded to the model's 10 s
    for language, needle in (("en", "5 s long"), ("vi", "ECG dài 5 giây")):
        response = client.post(
            f"/v1/predictions?language={language}",
            data={"patient": json.dumps({"age": 60}), "ecg_fs": "100"},
            files={"ecg_file": ("short.csv", _csv(signal, real_ecg.lead_names))},
        )
        assert response.status_code == 200, response.text
        assert any(needle in w for w in response.json()["warnings"]), language


def test_a_value_beyond_the_training_records_is_named(model_version):
    service = PredictionService(model_version[0])
    service.metadata["seen_ranges"] = {"age": [29.0, 77.0], "potassium": [3.1, 5.6]}
    read = service.record({"age": 91, "sex": "female", "features": {"potassium": 4.2}})
    english = service.predict(read.record, False, read.warnings).warnings
    [age] = [w for w in english if "outside the values" in w]
    assert age.startswith("Age 91 years") and "(29 to 77 years" in age
    vietnamese = service.predict(read.record, False, read.warnings, "vi").warnings
    assert any(w.startswith("Tuổi 91 năm nằm ngoài") for w in vietnamese)
    inside = service.record({"age": 60, "features": {"potassium": 4.2}})
    assert not any(
        "outside the values" in w
        for w in service.predict(inside.record, False, inside.warnings).warnings
    )
