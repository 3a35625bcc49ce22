import torch

from fusion.config import load_model_config, load_training_config
from fusion.model import (
    FusedRiskModel,
    drop_leads,
    drop_modalities,
    masked_multitask_loss,
)
from fusion.module import RiskModule, fit
from ingest.cohort import load_cohort
from modalities.batch import encode_records


def test_loss_ignores_unlabelled_heads():
    labels = torch.tensor([[1.0, 0.0], [0.0, 0.0]])
    mask = torch.tensor([[True, False], [True, False]])
    logits = torch.tensor([[2.0, 0.0], [-1.0, 0.0]])
    changed = logits.clone()
    changed[:, 1] = 50.0  # an unlabelled head's logit
    assert masked_multitask_loss(logits, labels, mask) == masked_multitask_loss(
        changed, labels, mask
    )
    no_labels = torch.zeros_like(mask)
    assert masked_multitask_loss(logits, labels, no_labels) == 0


def test_modality_dropout_keeps_one_and_only_present():
    mask = torch.tensor([[True, True, True], [True, False, False]] * 200)
    dropped = drop_modalities(mask, 0.9, torch.Generator().manual_seed(0))
    assert dropped.any(dim=1).all()
    assert not (dropped & ~mask).any()
    assert (dropped.sum() < mask.sum()).item()


def test_lead_dropout_zeroes_whole_leads_at_its_rate():
    ecg = torch.ones(400, 12, 50)
    dropped = drop_leads(ecg, 0.1, torch.Generator().manual_seed(0))
    per_lead = dropped.sum(dim=2)
    assert set(per_lead.unique().tolist()) == {0.0, 50.0}  # a lead is off or kept
    assert 0.08 < (per_lead == 0).float().mean().item() < 0.12
    assert drop_leads(ecg, 0.0) is ecg


def test_absent_modality_has_no_influence(small_cohort, data_config):
    torch.manual_seed(0)
    model = FusedRiskModel(data_config, load_model_config()).eval()
    model.coverage.fill_(1.0)  # every output may read every modality it is given
    records = load_cohort(small_cohort, sites=["uci_cleveland"])
    inputs = encode_records(records[:4], data_config)
    before = model(*inputs.forward_args())
    inputs.ecg.normal_()  # garbage where no ECG is present
    after = model(*inputs.forward_args())
    assert torch.allclose(before, after)


def test_training_lowers_the_loss_on_real_records(small_cohort, data_config):
    torch.manual_seed(0)
    model_config = load_model_config()
    model = FusedRiskModel(data_config, model_config)
    records = load_cohort(small_cohort, splits=["train"])
    inputs = encode_records(records, data_config)

    def loss() -> float:
        model.eval()
        with torch.no_grad():
            logits = model(*inputs.forward_args())
        return float(masked_multitask_loss(logits, inputs.labels, inputs.label_mask))

    start = loss()
    fit(RiskModule(model, model_config, load_training_config()), inputs, 3, 32, seed=0)
    assert loss() < start * 0.9
