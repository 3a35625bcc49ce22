import numpy as np
import torch
from flwr.app import Array, ArrayRecord, MetricRecord, RecordDict

from federated.strategy import aggregate_by_counts, reply_problem
from fusion.config import load_model_config
from fusion.model import FusedRiskModel, training_counts
from ingest.schema import ECG, PatientRecord
from modalities.batch import encode_records

NAMES = ("encoders.ecg.w", "tabular.first", "fusion.w")


def _reply(value: float, counts: dict) -> RecordDict:
    arrays = ArrayRecord({name: Array(np.full((1, 2), value)) for name in NAMES})
    count_record = ArrayRecord(
        {
            name: Array(np.asarray(counts.get(name, 0.0), dtype=float).reshape(1, -1))
            for name in NAMES
        }
    )
    return RecordDict(
        {
            "arrays": arrays,
            "counts": count_record,
            "metrics": MetricRecord({"num-examples": 1.0}),
        }
    )


def test_each_element_averaged_over_the_sites_that_trained_it():
    current = _reply(7.0, {})["arrays"]
    ecg_site = _reply(
        1.0, {"encoders.ecg.w": 100.0, "fusion.w": 100.0, "tabular.first": [100.0, 0.0]}
    )
    other = _reply(3.0, {"fusion.w": 300.0, "tabular.first": [100.0, 50.0]})
    result = aggregate_by_counts([ecg_site, other], current)
    # ECG encoder: only the ECG site trained it (plain FedAvg would give 2.5).
    assert np.allclose(result["encoders.ecg.w"].numpy(), 1.0)
    assert np.allclose(result["fusion.w"].numpy(), 2.5)  # 100 and 300 examples
    # Per column: the first feature at both sites, the second only at one.
    assert np.allclose(result["tabular.first"].numpy(), [[2.0, 3.0]])


def test_untrained_elements_keep_the_global_value():
    current = _reply(7.0, {})["arrays"]
    only = _reply(1.0, {"fusion.w": 10.0})
    result = aggregate_by_counts([only], current)
    assert np.allclose(result["encoders.ecg.w"].numpy(), 7.0)
    assert np.allclose(result["fusion.w"].numpy(), 1.0)


def test_non_finite_or_malformed_replies_are_refused():
    current = _reply(0.0, {})["arrays"]
    bad = _reply(float("nan"), {"fusion.w": 1.0})
    assert "non-finite" in reply_problem(bad, current)
    missing = RecordDict(
        {"arrays": current, "metrics": MetricRecord({"num-examples": 1.0})}
    )
    assert "counts" in reply_problem(missing, current)
    assert reply_problem(_reply(1.0, {"fusion.w": 1.0}), current) is None


def test_training_counts_follow_what_each_record_holds(data_config):
    torch.manual_seed(0)
    model = FusedRiskModel(data_config, load_model_config())
    records = [
        PatientRecord("a", "a", "s", "t", features={"age": 60.0}, labels={"stroke": 1}),
        PatientRecord(
            "b", "b", "s", "t",
            features={"age": 50.0, "systolic_bp": 120.0},
            ecg=ECG(np.zeros((12, 1000), np.float32), 100, data_config.ecg.leads),
        ),
    ]  # fmt: skip
    counts = training_counts(model, encode_records(records, data_config))
    assert float(counts["encoders.ecg.project.weight"]) == 1  # one ECG
    assert float(counts["encoders.timeline.project.weight"]) == 0  # no timeline
    assert (
        float(counts["heads.stroke.weight"]) == 1
        and float(counts["heads.postop.bias"]) == 0
    )
    assert float(counts["summary_token"]) == 2
    first = counts["encoders.tabular.net.0.weight"]
    names = data_config.feature_names
    assert first.shape == (1, 2 * len(names))
    assert (
        first[0, names.index("age")] == 2 and first[0, names.index("systolic_bp")] == 1
    )
    assert first[0, names.index("asa_class")] == 0
