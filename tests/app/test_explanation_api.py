"""``GET /v1/predictions/{id}/explanation``: the whole explanation, in two languages."""

from __future__ import annotations

import json

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient

from app.api import create_app
from app.dashboard import (
    APIError,
    chain_figure,
    ecg_attribution_figure,
    request_explanation,
)
from app.i18n import lead_list
from app.settings import AppSettings


@pytest.fixture(scope="module")
def client(model_version):
    models, version = model_version
    settings = AppSettings(models_dir=str(models), model_version=version)
    return TestClient(create_app(settings))


def _predict(client, ecg_upload) -> str:
    patient = {"age": 64, "sex": "male", "features": {"creatinine": 1.8}}
    response = client.post(
        "/v1/predictions",
        data={"patient": json.dumps(patient)},
        files=ecg_upload,
    )
    assert response.status_code == 200, response.text
    return response.json()["prediction_id"]


def test_an_ecg_prediction_is_explained_from_input_to_score(client, ecg_upload):
    prediction = _predict(client, ecg_upload)
    response = client.get(f"/v1/predictions/{prediction}/explanation")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["prediction_id"] == prediction and body["language"] == "en"
    assert body["modalities_present"] == ["tabular", "ecg"]
    # Creatinine 1.8 mg/dL in a man is above 1.35: named with its value.
    creatinine = [a for a in body["anomalies"] if a["name"] == "creatinine"]
    assert creatinine and creatinine[0]["value"] == 1.8
    assert creatinine[0]["limit"] == 1.35 and creatinine[0]["direction"] == "high"
    # The ECG map: the 12 leads as the model read them, both methods per sample.
    ecg = body["ecg"]
    assert ecg["leads"][:3] == ["I", "II", "III"] and ecg["fs"] == 100.0
    assert len(ecg["signal"]) == 12 and len(ecg["signal"][0]) == 1000
    assert len(ecg["integrated_gradients"][0]) == len(ecg["feature_ablation"][0])
    heads = {h["head"]: h for h in body["heads"]}
    assert list(heads) == ["acute_mi", "stroke", "postop", "heart_disease"]
    for head in heads.values():
        shares = sum(head["modality_shares"].values())
        assert abs(shares - (head["risk"] - head["risk_with_no_data"])) < 1e-4
        assert head["integrated_gradients"]["completeness_error"] < 0.05
        assert len(head["ecg_leads"]) == 12
        assert "Creatinine 1.80 mg/dL (high; limit 1.35 mg/dL)" in head["paragraph"]
    assert heads["acute_mi"]["paragraph"].startswith(
        "Acute myocardial infarction: estimated risk"
    )
    assert "The ECG leads that weigh most:" in heads["acute_mi"]["paragraph"]
    # A model version trained before concepts existed says so.
    assert body["concepts_learned"] is False
    assert all(head["concepts"] == [] for head in heads.values())


def test_the_paragraphs_read_in_vietnamese(client, ecg_upload):
    prediction = _predict(client, ecg_upload)
    body = client.get(
        f"/v1/predictions/{prediction}/explanation", params={"language": "vi"}
    ).json()
    [mi] = [h for h in body["heads"] if h["head"] == "acute_mi"]
    assert mi["paragraph"].startswith("Nhồi máu cơ tim cấp: nguy cơ ước tính")
    assert "Creatinin" in mi["paragraph"] or "Creatinine" in mi["paragraph"]
    assert "ngưỡng 1,35 mg/dL" in mi["paragraph"]  # decimal comma


def test_an_unknown_prediction_is_404_and_says_what_to_do(client):
    response = client.get("/v1/predictions/not-a-prediction/explanation")
    assert response.status_code == 404
    assert "post the patient again" in response.json()["detail"]
    bad = client.get("/v1/predictions/x/explanation", params={"language": "fr"})
    assert bad.status_code == 422 and "language" in bad.json()["detail"]


def test_the_dashboard_draws_the_explanation_it_fetches(client, ecg_upload):
    prediction = _predict(client, ecg_upload)
    body = client.get(f"/v1/predictions/{prediction}/explanation").json()

    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.path == f"/v1/predictions/{prediction}/explanation"
        assert request.url.params["language"] == "vi"
        return httpx.Response(200, json=body)

    mock = httpx.Client(transport=httpx.MockTransport(handler))
    explanation = request_explanation("http://api", prediction, "vi", mock)
    # The ECG view: every lead over a band of its attribution, one symmetric scale.
    figure = ecg_attribution_figure(explanation.ecg, "feature_ablation", "en")
    bands = [t for t in figure.data if t.type == "heatmap"]
    lines = [t for t in figure.data if t.type == "scatter"]
    assert len(bands) == len(lines) == 12
    assert {b.zmin for b in bands} == {-bands[0].zmax} and bands[0].zmax > 0
    assert np.allclose(lines[0].y, explanation.ecg.signal[0])
    assert "Feature Ablation" in figure.layout.title.text
    # The chain: inputs -> modalities -> the score.
    [mi] = [h for h in explanation.heads if h.head == "acute_mi"]
    sankey = chain_figure(mi, "en").data[0]
    labels = list(sankey.node.label)
    assert "ECG" in labels and any(
        label.startswith("Acute myocardial") for label in labels
    )
    assert len(sankey.link.source) == len(mi.integrated_gradients.reasons) + len(
        mi.modality_shares
    )


def test_the_dashboard_says_when_a_prediction_is_no_longer_held():
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(404, json={"detail": "prediction x: not held"})

    mock = httpx.Client(transport=httpx.MockTransport(handler))
    with pytest.raises(APIError) as caught:
        request_explanation("http://api", "x", "en", mock)
    assert "404" in caught.value.message("en") and "not held" in caught.value.message(
        "en"
    )


def test_explanations_and_predictions_in_parallel_threads_stay_correct(
    model_version, small_cohort
):
    """Captum's layer hooks sit on the one model: passes must not interleave."""
    from concurrent.futures import ThreadPoolExecutor

    from app.service import PredictionService
    from explain.concepts import LAYERS, ConceptBank, LearnedConcept
    from ingest.cohort import load_cohort

    service = PredictionService(*model_version)
    rng = np.random.default_rng(0)
    cav = rng.normal(size=service.model_config.token_dim)
    service.concepts = ConceptBank(
        [
            LearnedConcept(
                "acute_mi", "myocardial_infarction", LAYERS["ecg"], "22298006",
                "Myocardial infarction", 0.9, [0.9], [0.5], 0.01, 0.8, True, 10,
                [float(v) for v in cav / np.linalg.norm(cav)], 1.0, 0.0,
            )
        ]
    )  # fmt: skip
    records = [r for r in load_cohort(small_cohort) if r.ecg is not None][:6]
    expected = [service.explain(r)["heads"][0]["concepts"] for r in records]

    def explain(i: int) -> list:
        return service.explain(records[i % len(records)])["heads"][0]["concepts"]

    def predict(i: int) -> float:
        return service.predict(records[i % len(records)]).risks[0].risk

    with ThreadPoolExecutor(max_workers=8) as pool:
        explained = [pool.submit(explain, i) for i in range(12)]
        predicted = [pool.submit(predict, i) for i in range(12)]
        for i, future in enumerate(explained):
            assert future.result() == expected[i % len(records)]
        for future in predicted:
            assert 0.0 <= future.result() <= 1.0


def test_many_anomalies_are_ranked_and_counted_and_sex_is_named(client):
    patient = {
        "age": 50,
        "sex": "female",
        "features": {
            "potassium": 6.5, "sodium": 125, "creatinine": 2.5, "hemoglobin": 9.0,
            "platelets": 90, "albumin": 2.5, "ast": 300, "alt": 400, "glucose": 350,
        },
    }  # fmt: skip
    response = client.post("/v1/predictions", data={"patient": json.dumps(patient)})
    prediction = response.json()["prediction_id"]
    body = client.get(f"/v1/predictions/{prediction}/explanation").json()
    assert len(body["anomalies"]) == 9
    paragraph = body["heads"][0]["paragraph"]
    # The six farthest outside their limits are named, the rest counted.
    assert "and 3 more (see the list)" in paragraph
    assert "ALT 400 U/L (high; limit 55 U/L)" in paragraph  # 7x its limit
    assert "Sodium" not in paragraph  # 125 is 7% below 135: among the last
    assert "Male sex" not in paragraph
    from app.explanation_text import reason_text

    female = {"name": "sex_male", "value": 0.0, "unit": "", "modality": "tabular"}
    assert reason_text(female, body, "en") == "Sex (female)"
    assert reason_text(female, body, "vi") == "Giới tính (nữ)"
    one = {"name": "score_rcri", "value": 1.0, "unit": "points", "modality": "tabular"}
    assert reason_text(one, body, "en") == (
        "Revised Cardiac Risk Index (from the record; 1 point)"
    )


def test_q_waves_of_an_inferior_infarct_are_named_beside_the_leads_weighed(
    client, real_data
):
    # PTB-XL 453: inferior MI (SCP IMI, likelihood 100), Q waves in II, III, aVF.
    base = real_data / "ptbxl_subset/records100/00000/00453_lr"
    files = {
        "ecg_header": ("00453_lr.hea", base.with_suffix(".hea").read_bytes()),
        "ecg_signal": ("00453_lr.dat", base.with_suffix(".dat").read_bytes()),
    }
    patient = {"age": 70, "sex": "male"}
    response = client.post(
        "/v1/predictions", data={"patient": json.dumps(patient)}, files=files
    )
    assert response.status_code == 200, response.text
    prediction = response.json()
    assert prediction["ecg_measurements"]["q_wave_leads"] == ["II", "III", "AVF"]
    url = f"/v1/predictions/{prediction['prediction_id']}/explanation"
    body = client.get(url).json()
    [q_waves] = [a for a in body["anomalies"] if a["name"].startswith("q_wave")]
    assert q_waves["name"] == "q_wave:inferior"
    assert q_waves["leads"] == ["II", "III", "AVF"]
    assert body["ecg_infarct_leads"] == ["II", "III", "AVF"]
    [mi] = [h for h in body["heads"] if h["head"] == "acute_mi"]
    assert (
        "Pathological Q waves in the inferior leads (II, III, aVF)" in mi["paragraph"]
    )
    # The paragraph says whether the leads the model weighed most are those.
    top = [row["lead"] for row in mi["ecg_leads"][:3]]
    shown = [lead for lead in top if lead in ("II", "III", "AVF")]
    if shown:
        expected = (
            f"Of these, Q waves or ST elevation were measured in {lead_list(shown)}."
        )
    else:
        expected = (
            "The Q waves or ST elevation measured on the ECG are in other leads "
            "(II, III, aVF)"
        )
    assert expected in mi["paragraph"]
    # The head's traditional tool beside it: the ECG criteria count II, III, aVF.
    criteria = {"name": "score_ecg_criteria", "value": 3.0}
    assert criteria | {"leads": ["II", "III", "AVF"]} in mi["clinical_scores"]
    assert "two or more contiguous): 3 (II, III, aVF)." in mi["paragraph"]
    vi = client.get(url, params={"language": "vi"}).json()
    [mi_vi] = [h for h in vi["heads"] if h["head"] == "acute_mi"]
    assert "Sóng Q bệnh lý ở các chuyển đạo vùng thành dưới" in mi_vi["paragraph"]


def test_the_leads_weighed_are_set_beside_the_measured_changes():
    from app.explanation_text import head_paragraph

    explanation = {
        "anomalies": [
            {"source": "ecg", "name": "q_wave:inferior", "value": 0.3, "unit": "mV",
             "direction": "high", "limit": 0.1, "leads": ["II", "III", "AVF"]},
            {"source": "ecg", "name": "st_elevation:III", "value": 0.15,
             "unit": "mV", "direction": "high", "limit": 0.1, "leads": []},
        ],
        "ecg_infarct_leads": ["II", "III", "AVF"],
    }  # fmt: skip
    entry = {
        "head": "acute_mi", "risk": 0.4, "risk_with_no_data": 0.2,
        "modalities_read": ["ecg"], "modalities_missing": [],
        "modalities_not_used": [], "modality_shares": {"ecg": 0.2},
        "integrated_gradients": {"reasons": []}, "concepts": [],
        "clinical_scores": [],
        "confidence": {"held_out_auroc": 0.8, "subset_auroc": None},
    }  # fmt: skip
    explanation["heads"] = [entry]
    entry["ecg_leads"] = [{"lead": lead} for lead in ("V2", "AVF", "V3", "II")]
    agree = head_paragraph(entry, explanation, "en")
    assert "Of these, Q waves or ST elevation were measured in aVF." in agree
    entry["ecg_leads"] = [{"lead": lead} for lead in ("V2", "V3", "V4", "II")]
    elsewhere = head_paragraph(entry, explanation, "vi")
    assert "nằm ở các chuyển đạo khác (II, III, aVF), mà mô hình" in elsewhere
    # ST depression (often reciprocal) is no infarct criterion: neither sentence.
    explanation["anomalies"][0] |= {"name": "st_depression:inferior", "value": -0.1}
    explanation["ecg_infarct_leads"] = []
    plain = head_paragraph(entry, explanation, "en")
    assert "ST depression in the inferior leads (II, III, aVF)" in plain
    assert "were measured in" not in plain and "other leads" not in plain


def test_missing_samples_are_named_and_the_lead_still_measured(client, real_data):
    base = real_data / "ptbxl_subset/records100/00000/00453_lr"
    samples = np.frombuffer(base.with_suffix(".dat").read_bytes(), dtype="<i2")
    samples = samples.reshape(-1, 12).copy()
    samples[300:360, 1] = -32768  # WFDB's missing code: 0.6 s of lead II
    files = {
        "ecg_header": ("00453_lr.hea", base.with_suffix(".hea").read_bytes()),
        "ecg_signal": ("00453_lr.dat", samples.tobytes()),
    }
    patient = json.dumps({"age": 70, "sex": "male"})
    for language, said in (("en", "II 0.60 s"), ("vi", "II 0,60 s")):
        response = client.post(
            "/v1/predictions",
            data={"patient": patient},
            files=files,
            params={"language": language, "explain": "false"},
        )
        assert response.status_code == 200, response.text
        body = response.json()
        assert any(said in warning for warning in body["warnings"]), body["warnings"]
        assert "II" in body["ecg_measurements"]["q_wave_leads"]


def test_the_paragraph_does_not_overstate_concepts_scores_or_limits():
    from app.explanation_text import anomaly_text, head_paragraph

    # 59.7 /min is not written as its limit, 60 /min.
    slow = {"source": "ecg", "name": "heart_rate_bpm", "value": 59.7,
            "unit": "/min", "direction": "low", "limit": 60.0, "leads": []}  # fmt: skip
    assert anomaly_text(slow, "en") == "ECG heart rate 59.7 /min (low; limit 60.0 /min)"
    concept = {"concept": "conduction_disturbance", "display": "Conduction disturbance",
               "snomed": "44808001", "aligns": True, "sensitivity": -0.2}  # fmt: skip
    entry = {
        "head": "acute_mi", "risk": 0.4, "risk_with_no_data": 0.2,
        "modalities_read": ["ecg"], "modalities_missing": [],
        "modalities_not_used": [], "modality_shares": {"ecg": 0.2},
        "integrated_gradients": {"reasons": []}, "concepts": [concept],
        "clinical_scores": [
            {"name": "score_ecg_criteria", "value": 2.0, "leads": ["III", "AVF"]}
        ],
        "best_tool_held_out_auroc": 0.779, "gain_over_best_tool_ci": [-0.06, 0.17],
        "confidence": {"held_out_auroc": 0.832, "subset_auroc": None},
    }  # fmt: skip
    explanation = {"anomalies": [], "heads": [entry]}
    text = head_paragraph(entry, explanation, "en")
    # A concept along which the score falls says so.
    assert "Conduction disturbance (SNOMED CT 44808001; the score falls along it)" in (
        text
    )
    assert "two or more contiguous): 2 (III, aVF)." in text
    # A gain over the tool whose CI reaches 0 is said not to be shown.
    assert "the gain (−0.06 to +0.17, 95% CI) is not shown to be real" in text
    vi = head_paragraph(entry, explanation, "vi")
    assert "mức chênh (−0,06 đến +0,17, KTC 95%) chưa được chứng minh" in vi
    entry["gain_over_best_tool_ci"] = [0.02, 0.17]
    assert "reached AUROC 0.78, the model 0.83." in head_paragraph(entry, explanation)
    # The tool is named when the version knows which it was.
    entry["best_tool"] = "ecg_criteria"
    assert "the best traditional tool (the ECG infarct criteria) reached AUROC" in (
        head_paragraph(entry, explanation)
    )
    assert "công cụ truyền thống tốt nhất (tiêu chuẩn nhồi máu trên ECG) đạt" in (
        head_paragraph(entry, explanation, "vi")
    )
