import numpy as np
import torch

from ingest.schema import ECG, PatientRecord, TimelineStep
from modalities.batch import MODALITIES, encode_records
from modalities.ecg import ECGEncoder


def test_masks_and_alignment(data_config):
    names = data_config.feature_names
    with_everything = PatientRecord(
        "a", "a", "s", "t",
        features={"age": 70.0, "systolic_bp": 150.0},
        ecg=ECG(np.ones((12, 1000), dtype=np.float32), 100, data_config.ecg.leads),
        timeline=[TimelineStep(2.0, {"age": 68.0}), TimelineStep(4.0, {"age": 66.0})],
        labels={"stroke": 1},
    )  # fmt: skip
    tabular_only = PatientRecord("b", "b", "s", "t", features={"age": 40.0})
    inputs = encode_records([with_everything, tabular_only], data_config)
    assert MODALITIES == ("tabular", "ecg", "timeline", "imaging")
    assert inputs.modality_mask.tolist() == [
        [True, True, True, False],
        [True, False, False, False],
    ]
    age = names.index("age")
    spec = data_config.features["age"]
    assert torch.isclose(
        inputs.tabular_values[0, age], torch.tensor((70 - spec.center) / spec.scale)
    )
    assert inputs.tabular_present[1].sum() == 1  # only age was given
    # Timeline right-aligned: newest visit (2 years before) in the last slot.
    steps = inputs.timeline_mask[0].tolist()
    assert steps == [False, False, True, True]
    assert torch.isclose(inputs.timeline_steps[0, -1, -1], torch.tensor(0.2))
    assert inputs.label_mask[0].tolist() == [False, True] + [False] * 6
    assert not inputs.label_mask[1].any()
    assert len(MODALITIES) == inputs.modality_mask.shape[1]


def test_ecg_encoder_shapes_and_batch_independence():
    torch.manual_seed(0)
    encoder = ECGEncoder(12, 16, [8, 16], 7).eval()
    signal = torch.randn(3, 12, 1000)
    tokens = encoder(signal)
    assert tokens.shape == (3, 16)
    # Group norm: a record's token does not depend on the rest of the batch.
    assert torch.allclose(encoder(signal[:1]), tokens[:1], atol=1e-5)
