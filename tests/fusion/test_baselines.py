import numpy as np

from fusion.baselines import BASELINES, baseline_scores, ecg_infarct_criteria
from fusion.evaluation import auroc
from ingest.ptbxl import read_ptbxl
from ingest.schema import HEADS


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
    tools = baseline_scores("acute_mi", labelled[:20], [], data_config.feature_names)
    assert set(tools) == set(BASELINES["acute_mi"])
    assert all(len(scores) == 20 for scores in tools.values())
    # The HEART-like ECG part is 0-2 and age scores 0-2: at most 10 in all.
    assert ((tools["heart"] >= 0) & (tools["heart"] <= 10)).all()


def test_every_head_has_tools():
    assert set(BASELINES) == set(HEADS)
    assert all(len(tools) >= 1 for tools in BASELINES.values())
