import copy
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from streamlit.testing.v1 import AppTest

from app.dashboard import (
    APIError,
    build_patient_payload,
    contribution_figure,
    ecg_fields,
    ecg_figure,
    error_detail,
    fetch_health,
    finding_rows,
    horizon_text,
    missing_text,
    parse_result,
    read_bundle,
    read_uploaded_ecg,
    request_prediction,
    risk_rows,
)
from app.i18n import translate
from app.schemas import ECGQuality
from ingest.config import data_dir
from ingest.errors import InputError

DASHBOARD = Path(__file__).resolve().parents[2] / "app" / "dashboard.py"
RECORD = data_dir() / "ptbxl_subset" / "records100" / "00000" / "00008_lr"
# Nothing listens on the discard port: the API is unreachable, quickly.
NO_API = "http://127.0.0.1:9"

SAMPLE_RESPONSE = {
    "prediction_id": "p-1",
    "model_version": "2026.12.1",
    "modalities_used": ["tabular", "ecg"],
    "modalities_missing": ["timeline"],
    "risks": [
        {
            "head": "acute_mi",
            "label": "Acute myocardial infarction",
            "risk": 0.82,
            "percent": 82.0,
            "band": "high",
            "horizon_years": 0,
            "reasons": [
                {
                    "name": "ecg:V2",
                    "label": "ECG lead V2",
                    "value": None,
                    "unit": "",
                    "modality": "ecg",
                    "attribution": 1.3,
                    "direction": "raises",
                },
                {
                    "name": "systolic_bp",
                    "label": "Systolic blood pressure",
                    "value": 142.0,
                    "unit": "mmHg",
                    "modality": "tabular",
                    "attribution": 0.2,
                    "direction": "raises",
                },
            ],
            "modality_contributions": {"ecg": 0.5, "tabular": 0.12},
        },
        {
            "head": "stroke",
            "label": "Stroke",
            "risk": 0.064,
            "percent": 6.4,
            "band": "low",
            "horizon_years": 10,
            "reasons": [
                {
                    "name": "hdl_cholesterol",
                    "label": "HDL cholesterol",
                    "value": 62.0,
                    "unit": "mg/dL",
                    "modality": "tabular",
                    "attribution": -0.4,
                    "direction": "lowers",
                }
            ],
            "modality_contributions": {"tabular": -0.01},
        },
    ],
    "findings": [
        {
            "target": "ecg_hypertrophy",
            "label": "Ventricular hypertrophy (ECG)",
            "probability": 0.31,
            "percent": 31.0,
            "concept": "left_ventricular_hypertrophy",
            "concept_snomed": "55827005",
            "modalities_used": ["tabular", "ecg"],
        }
    ],
    "warnings": [],
}


def _record_files():
    header = RECORD.with_suffix(".hea")
    signal = RECORD.with_suffix(".dat")
    return header.name, header.read_bytes(), signal.name, signal.read_bytes()


# --- payload ----------------------------------------------------------------------


def test_payload_leaves_blank_fields_out_and_converts_sex():
    payload = build_patient_payload(
        {
            "age": 61,
            "sex": "Male",
            "systolic_bp": 142.0,
            "diastolic_bp": None,
            "glucose": float("nan"),
            "bmi": "",
            "diabetes": 0.0,
            "current_smoker": "yes",
            "prior_chd": True,
            "asa_class": 3,
        }
    )
    assert payload == {
        "age": 61.0,
        "sex": "male",
        "features": {
            "systolic_bp": 142.0,
            "diabetes": 0.0,
            "current_smoker": 1.0,
            "prior_chd": 1.0,
            "asa_class": 3.0,
        },
        "timeline": [],
    }
    assert build_patient_payload({"sex": "f"})["sex"] == "female"


def test_payload_of_an_empty_form_has_no_age_or_sex():
    assert build_patient_payload({"age": None, "sex": None}) == {
        "features": {},
        "timeline": [],
    }


def test_payload_rejects_unknown_sex_and_text_numbers():
    with pytest.raises(InputError, match="sex"):
        build_patient_payload({"sex": "unknown"})
    with pytest.raises(InputError, match="glucose"):
        build_patient_payload({"glucose": "high"})


# --- response to display rows -----------------------------------------------------


def test_risk_rows_on_sample_response():
    rows = risk_rows(SAMPLE_RESPONSE, "en")
    assert [row.head for row in rows] == ["acute_mi", "stroke"]
    mi, stroke = rows
    assert mi.outcome == "Acute myocardial infarction"
    assert mi.percent_text == "82.0 %"
    assert mi.band_text == "high" and mi.critical
    assert mi.horizon == "present now"
    assert stroke.horizon == "within 10 years" and not stroke.critical
    assert stroke.colour != mi.colour
    # Without an ECG, a high acute-MI risk from risk factors raises no alert.
    no_ecg = {**SAMPLE_RESPONSE, "modalities_used": ["tabular"]}
    assert not risk_rows(no_ecg, "en")[0].critical
    assert mi.reasons[1] == {
        "Factor": "Systolic blood pressure",
        "Value": "142 mmHg",
        "Effect": "raises the risk",
        "Data source": "Clinical and laboratory data",
    }
    assert stroke.reasons[0]["Effect"] == "lowers the risk"


def test_risk_rows_in_vietnamese():
    mi, stroke = risk_rows(SAMPLE_RESPONSE, "vi")
    assert mi.outcome == "Nhồi máu cơ tim cấp"
    assert mi.band_text == "cao"
    assert mi.percent_text == "82,0 %"
    assert stroke.horizon == "trong vòng 10 năm"
    assert stroke.reasons[0]["Yếu tố"] == "HDL-cholesterol"


def test_unknown_head_keeps_the_api_label():
    response = copy.deepcopy(SAMPLE_RESPONSE)
    response["risks"][1]["head"] = "new_head"
    response["risks"][1]["label"] = "A new outcome"
    assert risk_rows(response, "vi")[1].outcome == "A new outcome"


def test_missing_text_and_horizon():
    result = parse_result(SAMPLE_RESPONSE)
    assert "EHR timeline" in missing_text(result, "en")
    result.modalities_missing = []
    assert missing_text(result, "en") == translate("results.missing_none", "en")
    assert horizon_text(2.5, "vi") == "trong vòng 2,5 năm"


def test_contribution_figure_in_percentage_points():
    result = parse_result(SAMPLE_RESPONSE)
    bar = contribution_figure(result.risks[0], "en").data[0]
    assert list(bar.x) == pytest.approx([12.0, 50.0])
    assert list(bar.y) == ["Clinical and laboratory data", "ECG"]


def test_bad_response_is_an_api_error():
    with pytest.raises(APIError) as caught:
        parse_result({"prediction_id": "p-1"})
    assert "cannot read" in caught.value.message("en")


# --- the uploaded ECG -------------------------------------------------------------


def _fields(header_name, header, signal_name, signal):
    return {"ecg_header": (header_name, header), "ecg_signal": (signal_name, signal)}


def test_read_uploaded_ecg_reads_the_real_record():
    ecg = read_uploaded_ecg(_fields(*_record_files()))
    assert ecg.signal.shape == (12, 1000)
    assert ecg.fs == 100
    assert ecg.lead_names[:3] == ["I", "II", "III"] and ecg.lead_names[-1] == "V6"
    figure = ecg_figure(ecg, "en")
    assert len(figure.data) == 12
    assert figure.data[0].x[-1] == pytest.approx(9.99)


def test_the_ecg_figure_greys_and_names_the_leads_read_as_zeros():
    ecg = read_uploaded_ecg(_fields(*_record_files()))
    scores = {lead: 0.95 for lead in ecg.lead_names} | {"V2": 0.31}
    quality = ECGQuality(
        scores=scores,
        reference_lead="II",
        min_score=0.5,
        median=0.95,
        min_median=0.65,
        poor=["V2"],
        used=True,
    )
    figure = ecg_figure(ecg, "vi", quality)
    colours = {trace.name: trace.line.color for trace in figure.data}
    assert colours["V2"] == "#9e9e9e" and colours["V1"] == "#b71c1c"
    assert "được đọc là 0 (màu xám): V2" in figure.layout.title.text
    aside = ecg_figure(ecg, "en", quality.model_copy(update={"used": False}))
    assert "Set aside for its signal quality" in aside.layout.title.text
    assert {trace.line.color for trace in aside.data} == {"#b71c1c"}


def test_read_uploaded_ecg_accepts_other_upload_names():
    _, header, _, signal = _record_files()
    ecg = read_uploaded_ecg(_fields("patient.hea", header, "patient.dat", signal))
    assert ecg.signal.shape == (12, 1000)


def test_read_uploaded_ecg_rejects_a_bad_header():
    with pytest.raises(InputError):
        read_uploaded_ecg(_fields("x.hea", b"not a header\n", "x.dat", b"\x00\x01"))


def test_read_uploaded_dicom_ecg(real_data):
    path = real_data / "imaging_cxr_dicom/pydicom_test_files/waveform_ecg.dcm"
    ecg = read_uploaded_ecg({"ecg_file": ("waveform_ecg.dcm", path.read_bytes())})
    assert len(ecg.lead_names) == 12 and ecg.fs == 1000


def test_read_uploaded_csv_ecg_needs_its_fs():
    content = b"I,II,III\n" + b"0.1,0.2,0.1\n" * 500
    with pytest.raises(InputError, match="fs"):
        read_uploaded_ecg({"ecg_file": ("ecg.csv", content)})
    ecg = read_uploaded_ecg({"ecg_file": ("ecg.csv", content)}, fs=250)
    assert ecg.fs == 250 and ecg.signal.shape == (3, 500)


def test_ecg_fields():
    assert ecg_fields([]) == {}
    pair = ecg_fields([("a.dat", b"1"), ("a.hea", b"2")])
    assert pair == {"ecg_header": ("a.hea", b"2"), "ecg_signal": ("a.dat", b"1")}
    assert ecg_fields([("w.DCM", b"3")]) == {"ecg_file": ("w.DCM", b"3")}
    for bad in ([("a.hea", b"2")], [("a.dcm", b"1"), ("b.csv", b"2")]):
        with pytest.raises(InputError):
            ecg_fields(bad)


def test_read_bundle():
    bundle = read_bundle("b.json", b'\xef\xbb\xbf{"resourceType": "Bundle"}')
    assert bundle == {"resourceType": "Bundle"}
    with pytest.raises(InputError, match="resourceType"):
        read_bundle("p.json", b'{"resourceType": "Patient"}')
    with pytest.raises(InputError, match="not JSON"):
        read_bundle("p.json", b"{nope")


# --- the API client ---------------------------------------------------------------


def test_request_prediction_sends_multipart_and_parses():
    seen = {}

    def handler(request: httpx.Request) -> httpx.Response:
        seen["url"] = str(request.url)
        seen["type"] = request.headers["content-type"]
        seen["body"] = request.read()
        return httpx.Response(200, json=SAMPLE_RESPONSE)

    client = httpx.Client(transport=httpx.MockTransport(handler))
    name, header, signal_name, signal = _record_files()
    patient = build_patient_payload({"age": 61, "sex": "male", "systolic_bp": 142})
    result = request_prediction(
        "http://api", patient, _fields(name, header, signal_name, signal), "vi", client
    )
    assert result.model_version == "2026.12.1"
    assert seen["url"] == "http://api/v1/predictions?language=vi"
    assert seen["type"].startswith("multipart/form-data")
    assert b'name="patient"\r\n' in seen["body"]
    assert json.dumps(patient).encode() in seen["body"]
    assert b'name="ecg_header"; filename="00008_lr.hea"' in seen["body"]
    assert b'name="ecg_signal"; filename="00008_lr.dat"' in seen["body"]
    assert b'name="image_file"' not in seen["body"]
    request_prediction(
        "http://api", patient, None, "en", client, image=("cxr.png", b"\x89PNG")
    )
    assert b'name="image_file"; filename="cxr.png"' in seen["body"]


def test_finding_rows_name_the_concept_in_both_languages():
    result = parse_result(SAMPLE_RESPONSE)
    [row] = finding_rows(result, "en")
    assert row == {
        "Finding": "Ventricular hypertrophy (ECG)",
        "Probability": "31.0 % probability",
        "SNOMED CT": "55827005",
        "Read from": "Clinical and laboratory data, ECG",
    }
    [row] = finding_rows(result, "vi")
    assert row["SNOMED CT"] == "55827005" and "Xác suất" in row


def test_api_error_detail_is_shown():
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(422, json={"detail": "request: field 'age': too old"})

    client = httpx.Client(transport=httpx.MockTransport(handler))
    with pytest.raises(APIError) as caught:
        request_prediction("http://api", {"features": {}}, client=client)
    message = caught.value.message("en")
    assert "422" in message and "field 'age': too old" in message


def test_error_detail_of_validation_list_and_plain_text():
    listed = httpx.Response(
        422, json={"detail": [{"loc": ["body", "patient"], "msg": "Field required"}]}
    )
    assert error_detail(listed) == "body.patient: Field required"
    assert error_detail(httpx.Response(502, text="Bad gateway")) == "Bad gateway"


def test_unreachable_api_gives_a_readable_message():
    with pytest.raises(APIError) as caught:
        fetch_health(NO_API)
    assert caught.value.message("vi").startswith("Không kết nối được")


# --- the page ---------------------------------------------------------------------


@pytest.fixture
def fake_api(monkeypatch):
    """Serve SAMPLE_RESPONSE from a local HTTP server, as the API would."""

    class Handler(BaseHTTPRequestHandler):
        def _answer(self, body):
            data = json.dumps(body).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):  # noqa: N802 (http.server's naming)
            self._answer({"status": "ok", "model_version": "2026.12.1"})

        def do_POST(self):  # noqa: N802
            self.rfile.read(int(self.headers["Content-Length"]))
            self._answer(SAMPLE_RESPONSE)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("CARDIORISK_API_URL", f"http://127.0.0.1:{server.server_port}")
    yield
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("language", ["en", "vi"])
def test_page_renders_without_api(monkeypatch, language):
    monkeypatch.setenv("CARDIORISK_API_URL", NO_API)
    app = AppTest.from_file(str(DASHBOARD), default_timeout=30)
    app.run()
    app.sidebar.selectbox(key="language").set_value(language).run()
    assert not app.exception
    assert app.title[0].value == translate("app.title", language)
    warnings = [item.value for item in app.sidebar.warning]
    assert translate("sidebar.api_unreachable", language, url=NO_API) in warnings

    # Submitting with the API down shows a readable error, not a traceback.
    app.button[0].click().run()
    assert not app.exception
    expected = translate("error.api_unreachable", language, url=NO_API)
    assert [item.value for item in app.error] == [expected]


def test_page_shows_risks_and_the_critical_alert(fake_api):
    app = AppTest.from_file(str(DASHBOARD), default_timeout=30)
    app.run()
    app.number_input[0].set_value(61)
    app.button[0].click().run()
    assert not app.exception
    assert not app.error
    assert [metric.value for metric in app.metric] == ["82.0 %", "6.4 %"]
    alerts = [item.value for item in app.markdown if 'role="alert"' in item.value]
    assert len(alerts) == 1 and "CRITICAL" in alerts[0]
    assert "(risk 82.0 %, high)" in alerts[0]  # one percent sign
    captions = [item.value for item in app.caption]
    assert "Model version: 2026.12.1" in captions

    # The results stay and follow a language switch.
    app.sidebar.selectbox(key="language").set_value("vi").run()
    assert not app.exception
    assert [metric.label for metric in app.metric][0] == "Nhồi máu cơ tim cấp"
    assert "Phiên bản mô hình: 2026.12.1" in [item.value for item in app.caption]
