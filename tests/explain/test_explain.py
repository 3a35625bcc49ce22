import torch

from explain.attributions import integrated_gradients
from explain.contributions import modality_shapley
from explain.reasons import reasons
from fusion.versions import load_version
from ingest.cohort import load_cohort
from modalities.batch import encode_records


def _record(small_cohort, data_config, record_id):
    records = load_cohort(small_cohort)
    return next(r for r in records if r.record_id == record_id)


def test_integrated_gradients_completeness(model_version, small_cohort, data_config):
    model, data, _, _ = load_version(*model_version)
    record = _record(small_cohort, data_config, "ptbxl:8")
    inputs = encode_records([record], data)
    attribution = integrated_gradients(model, inputs, head_index=0, n_steps=256)
    total = (
        attribution.tabular.sum() + attribution.ecg.sum() + attribution.timeline.sum()
    )
    with torch.no_grad():
        logit = model(*inputs.forward_args())[0, 0]
        baseline = inputs.select(slice(0, 1))
        baseline.tabular_values = torch.zeros_like(baseline.tabular_values)
        baseline.ecg = torch.zeros_like(baseline.ecg)
        reference = model(*baseline.forward_args())[0, 0]
    # Attributions sum to the logit difference from the reference input
    # (completeness), within 0.01 logit at 256 steps.
    assert abs(float(total) - float(logit - reference)) < 0.01
    assert abs(attribution.delta - abs(float(total) - float(logit - reference))) < 1e-4
    top = reasons(attribution, record, data)
    assert len(top) == 5
    assert {item["modality"] for item in top} <= {"tabular", "ecg"}
    ages = [item for item in top if item["name"] == "age"]
    assert not ages or ages[0]["unit"] == "years"


def test_shapley_values_sum_to_the_effect_of_all_modalities(
    model_version, small_cohort, data_config
):
    model, data, _, _ = load_version(*model_version)
    record = _record(small_cohort, data_config, "ptbxl:8")
    inputs = encode_records([record], data)
    shares = modality_shapley(model, inputs)
    with torch.no_grad():
        full = torch.sigmoid(model(*inputs.forward_args()))[0]
        args = list(inputs.forward_args())
        args[-1] = torch.zeros_like(args[-1])
        empty = torch.sigmoid(model(*args))[0]
    for head, contribution in enumerate(shares):
        assert set(contribution) == {"tabular", "ecg"}
        assert abs(sum(contribution.values()) - float(full[head] - empty[head])) < 1e-5
