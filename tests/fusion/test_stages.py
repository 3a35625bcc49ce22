"""Each training stage on a few real records: its loss falls, shapes and masks hold."""

import numpy as np
import pytest
import torch

from fusion.alignment import AlignmentModule
from fusion.config import load_model_config, load_training_config
from fusion.model import FusedRiskModel, set_coverage
from fusion.module import fit
from fusion.pretraining import PretrainingModule
from fusion.stages import enabled_stages, run_stage, train_stages
from ingest.cohort import load_cohort
from ingest.framingham import read_framingham
from ingest.schema import TARGETS
from modalities.batch import MODALITIES, encode_records


@pytest.fixture(scope="module")
def mixed_inputs(small_cohort, data_config, real_data):
    """Real records holding every modality: UCI, PTB-XL ECGs, CXRs, Framingham."""
    records = load_cohort(small_cohort, splits=["train"])
    by_site = {}
    for record in records:
        by_site.setdefault(record.site, []).append(record)
    chosen = by_site["uci_cleveland"][:40] + by_site["ptbxl_site0"] + by_site["nih_cxr"]
    framingham = read_framingham(
        real_data / data_config.sources.framingham.file,
        "framingham",
        10,
        data_config.registry,
        [],
    )
    chosen += [r for r in framingham if r.timeline][:60]
    inputs = encode_records(chosen, data_config)
    assert inputs.modality_mask.sum(dim=0).min() >= 10  # each modality is there
    return inputs


def _pretext_losses(module: PretrainingModule, inputs, seed: int) -> dict:
    module.generator.manual_seed(seed)  # the same masks and views each time
    module.model.eval()
    with torch.no_grad():
        return {k: float(v) for k, v in module.losses(inputs).items()}


def test_pretraining_loss_falls_for_every_modality(mixed_inputs, data_config):
    torch.manual_seed(0)
    training = load_training_config()
    model = FusedRiskModel(data_config, load_model_config())
    module = PretrainingModule(
        model, data_config.ecg.fs, training.stages.pretraining, training
    )
    before = _pretext_losses(module, mixed_inputs, seed=1)
    assert set(before) == set(MODALITIES)
    heads_before = {k: v.clone() for k, v in model.heads.state_dict().items()}
    fit(module, mixed_inputs, epochs=6, batch_size=64, seed=0, by_modalities=True)
    after = _pretext_losses(module, mixed_inputs, seed=1)
    for name in MODALITIES:
        assert after[name] < before[name], (name, before[name], after[name])
    # Stage 1 trains encoders and pretext heads, never the risk heads.
    for key, value in model.heads.state_dict().items():
        assert torch.equal(value, heads_before[key])


def test_alignment_loss_falls_on_records_holding_two_modalities(
    mixed_inputs, data_config
):
    torch.manual_seed(0)
    training = load_training_config()
    model = FusedRiskModel(data_config, load_model_config())
    module = AlignmentModule(model, training.stages.alignment, training)

    def losses() -> dict:
        model.eval()
        with torch.no_grad():
            return {k: float(v) for k, v in module.losses(mixed_inputs).items()}

    before = losses()
    # PTB-XL and the CXRs hold tabular beside their signal; Framingham a timeline.
    assert {("tabular", "ecg"), ("tabular", "imaging"), ("tabular", "timeline")} <= (
        set(before)
    )
    assert ("ecg", "imaging") not in before  # no record holds both
    fit(module, mixed_inputs, epochs=6, batch_size=64, seed=0, by_modalities=True)
    after = losses()
    assert np.mean(list(after.values())) < 0.9 * np.mean(list(before.values()))


def test_supervised_stage_respects_label_and_modality_masks(mixed_inputs, data_config):
    torch.manual_seed(0)
    model_config, training = load_model_config(), load_training_config()
    model = FusedRiskModel(data_config, model_config)
    loss = run_stage(
        "supervised", model, mixed_inputs, 2, data_config, model_config, training
    )
    assert np.isfinite(loss)
    # Coverage: each target reads only the modalities its labelled records held.
    cover = dict(zip(TARGETS, model.coverage.bool().tolist(), strict=True))
    column = {name: i for i, name in enumerate(MODALITIES)}
    assert cover["acute_mi"][column["ecg"]]  # PTB-XL labels MI with an ECG
    assert not cover["heart_disease"][column["ecg"]]  # UCI has no waveform
    assert cover["cardiomegaly"][column["imaging"]]
    assert not cover["cardiomegaly"][column["ecg"]]
    # So an ECG cannot move the heart-disease risk, and an image moves the finding.
    model.eval()
    inputs = mixed_inputs.select(slice(0, 120))
    logits = model(*inputs.forward_args())
    assert logits.shape == (120, len(TARGETS))
    altered = inputs.select(slice(None))
    altered.ecg = altered.ecg + torch.randn_like(altered.ecg)
    moved = model(*altered.forward_args())
    heart = TARGETS.index("heart_disease")
    assert torch.allclose(logits[:, heart], moved[:, heart])
    assert not torch.allclose(logits[:, TARGETS.index("acute_mi")], moved[:, 0])


def test_stages_can_be_skipped(mixed_inputs, data_config):
    training = load_training_config()
    assert enabled_stages(training) == ["pretraining", "alignment", "supervised"]
    skipped = training.without("pretraining", "alignment")
    assert enabled_stages(skipped) == ["supervised"]
    model = FusedRiskModel(data_config, load_model_config())
    encoder = {k: v.clone() for k, v in model.encoders.state_dict().items()}
    pretext = {k: v.clone() for k, v in model.pretext.state_dict().items()}
    losses = train_stages(
        model,
        mixed_inputs.select(slice(0, 64)),
        data_config,
        load_model_config(),
        skipped,
        supervised_epochs=1,
    )
    assert list(losses) == ["supervised"]
    assert any(
        not torch.equal(v, encoder[k]) for k, v in model.encoders.state_dict().items()
    )
    assert all(
        torch.equal(v, pretext[k]) for k, v in model.pretext.state_dict().items()
    )


def test_coverage_is_a_union_over_fits(mixed_inputs, data_config):
    model = FusedRiskModel(data_config, load_model_config())
    ptbxl = mixed_inputs.modality_mask[:, MODALITIES.index("ecg")]
    set_coverage(model, mixed_inputs.select(ptbxl.nonzero(as_tuple=True)[0]))
    first = model.coverage.clone()
    set_coverage(model, mixed_inputs.select((~ptbxl).nonzero(as_tuple=True)[0]))
    assert (model.coverage >= first).all() and model.coverage.sum() > first.sum()
