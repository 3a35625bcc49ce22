import numpy as np

from fusion.baselines import cha2ds2_vasc, ecg_infarct_criteria
from fusion.evaluation import auroc, bootstrap_ci, head_metrics
from ingest.ptbxl import read_ptbxl
from ingest.schema import PatientRecord


def test_auroc_and_ci():
    labels = np.array([0, 0, 1, 1, 0, 1, 0, 1])
    assert auroc(labels, labels.astype(float)) == 1.0
    rng = np.random.default_rng(0)
    scores = labels + rng.normal(0, 1.0, len(labels))
    low, high = bootstrap_ci(labels, scores)
    assert low <= auroc(labels, scores) <= high
    metrics = head_metrics(labels, scores)
    assert metrics["n_test"] == 8 and metrics["n_positive"] == 4


def test_cha2ds2_vasc_points():
    record = PatientRecord(
        "r", "p", "s", "t",
        features={"age": 76, "sex_male": 0.0, "hypertension": 1.0, "diabetes": 1.0},
    )  # fmt: skip
    assert cha2ds2_vasc(record) == 2 + 1 + 1 + 1
    young_man = PatientRecord("r", "p", "s", "t", features={"age": 40, "sex_male": 1.0})
    assert cha2ds2_vasc(young_man) == 0


def test_ecg_criteria_rank_mi_above_normal(real_data, data_config):
    records = read_ptbxl(
        real_data / "ptbxl_subset",
        data_config.sources.ptbxl,
        data_config.ecg,
        data_config.features,
        [],
        limit=200,
    )
    labelled = [r for r in records if "acute_mi" in r.labels]
    labels = np.array([r.labels["acute_mi"] for r in labelled])
    scores = np.array([ecg_infarct_criteria(r) for r in labelled])
    assert auroc(labels, scores) > 0.55  # above chance on real ECGs
