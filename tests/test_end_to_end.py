"""Real files in, federated training over several sites, a prediction via the API."""

import json

import pytest
from fastapi.testclient import TestClient

from app.api import create_app
from app.pipeline import train_and_evaluate
from app.settings import AppSettings
from federated.config import FederatedConfig
from fusion.config import load_model_config, load_training_config
from fusion.versions import current_version, load_version
from ingest.cohort import read_manifest

SITES = ["uci_cleveland", "uci_hungarian", "uci_va_long_beach", "ptbxl_site0"]


@pytest.mark.slow
def test_federated_training_then_prediction(
    small_cohort, small_config, ecg_upload, tmp_path
):
    assert set(SITES) <= set(read_manifest(small_cohort)["sites"])
    models, reports = tmp_path / "models", tmp_path / "reports"
    training = load_training_config()
    version = train_and_evaluate(
        small_config,
        load_model_config(),
        training,
        FederatedConfig(
            num_rounds=2,
            pretraining_rounds=1,
            alignment_rounds=1,
            local_epochs=1,
            strategy="fedavg",
            client_cpus=1,
        ),
        small_cohort,
        models,
        reports,
        sites=SITES,
        centralised=True,
        full=True,
        command="pytest tests/test_end_to_end.py",
    )

    # The report covers the heads these sites hold, measured on held-out patients.
    report = json.loads((reports / "evaluation.json").read_text())
    assert report["context"]["model_version"] == version
    assert report["context"]["stages"] == ["pretraining", "alignment", "supervised"]
    heart = report["heads"]["heart_disease"]
    assert heart["n_test"] > 50 and 0 <= heart["auroc"] <= 1
    assert heart["auroc"] > 0.6  # learnt something in two rounds on real patients
    low, high = heart["auroc_ci"]
    assert low <= heart["auroc"] <= high
    assert set(heart["comparisons"]) == {"centralised", "late_fusion", "haim"}
    assert set(heart["baselines"]) == {"logistic", "heart"}
    assert 0 <= heart["brier"] <= 1 and len(heart["calibration_curve"]) >= 5
    heart_alone = next(
        s for s in report["subsets"] if s["head"] == "heart_disease"
    )  # UCI holds one modality: one subset, the table alone
    assert heart_alone["modalities"] == ["tabular"]
    assert heart_alone["comparator"] in {"unimodal tabular", "HAIM trees"}
    assert set(report["ablation"]) == {
        "all three stages", "supervised only",
        "pretraining + supervised", "alignment + supervised",
    }  # fmt: skip
    markdown = (reports / "evaluation.md").read_text()
    assert "| heart_disease |" in markdown and "## Stage ablation" in markdown
    for head in ("acute_mi", "heart_disease"):
        assert (reports / "figures" / f"roc_{head}.png").stat().st_size > 1000
        assert (reports / "figures" / f"calibration_{head}.png").exists()
    card = (reports / "model_card.md").read_text()
    assert version in card and "## Out of scope" in card

    # The trained version answers through the API.
    client = TestClient(create_app(AppSettings(models_dir=str(models))))
    assert client.get("/health").json()["model_version"] == version
    response = client.post(
        "/v1/predictions",
        data={"patient": json.dumps({"age": 74, "sex": "male"})},
        files=ecg_upload,
    )
    assert response.status_code == 200, response.text
    risks = {risk["head"]: risk for risk in response.json()["risks"]}
    assert risks["acute_mi"]["reasons"] and response.json()["model_version"] == version
    # Its explanation: concepts were learned with the version (TCAV), and
    # every held-out subset confidence it quotes comes from the version.
    assert (models / version / "concepts.pt").is_file()
    explained = client.get(
        f"/v1/predictions/{response.json()['prediction_id']}/explanation"
    ).json()
    assert explained["concepts_learned"] is True
    [mi] = [h for h in explained["heads"] if h["head"] == "acute_mi"]
    assert mi["confidence"]["held_out_auroc"] is not None
    assert mi["paragraph"] and explained["ecg"]["head"] == "acute_mi"

    # An administrator adds data and retrains from the current version: a new
    # registered version that names its parent and starts from its weights.
    retrained = train_and_evaluate(
        small_config,
        load_model_config(),
        training.without("pretraining", "alignment"),
        FederatedConfig(num_rounds=1, local_epochs=1),
        small_cohort,
        models,
        reports,
        sites=SITES[:2],
        centralised=False,
        from_current=True,
    )
    assert retrained != version
    _, _, _, metadata = load_version(models, retrained)
    assert metadata["parent_version"] == version
    assert current_version(models) == retrained
