import numpy as np
import pytest
import torch
from sklearn.metrics import brier_score_loss

from app.pipeline import Splits, centralised_model, load_splits
from federated.config import FederatedConfig
from fusion.calibration import calibrate, fit_affine
from fusion.config import load_model_config, load_training_config
from fusion.model import FusedRiskModel
from ingest.schema import TARGETS


def test_temperature_softens_overconfident_logits():
    rng = np.random.default_rng(0)
    true_logit = rng.normal(0, 1.5, 4000)
    labels = (rng.uniform(size=4000) < 1 / (1 + np.exp(-true_logit))).astype(int)
    overconfident = 4 * true_logit
    scale, bias = fit_affine(overconfident, labels, "temperature")
    assert scale == pytest.approx(0.25, rel=0.15) and bias == 0.0
    raw = 1 / (1 + np.exp(-overconfident))
    fitted = 1 / (1 + np.exp(-scale * overconfident))
    assert brier_score_loss(labels, fitted) < brier_score_loss(labels, raw)
    platt_scale, platt_bias = fit_affine(overconfident + 2.0, labels, "platt")
    assert platt_bias == pytest.approx(-2.0 * platt_scale, abs=0.2)
    # Too few cases of a class: identity, never a fit on noise.
    assert fit_affine(overconfident[:6], np.array([0, 0, 0, 0, 1, 1]), "platt") == (
        1.0,
        0.0,
    )
    with pytest.raises(ValueError, match="isotonic"):
        fit_affine(overconfident, labels, "isotonic")


class Untouchable:
    """Stands for the test split: any use of it fails the test."""

    def __getattr__(self, name):
        raise AssertionError(f"the test split was touched ({name})")

    def __len__(self):
        raise AssertionError("the test split was touched (len)")


def test_training_and_calibration_never_touch_the_test_split(
    small_cohort, small_config
):
    splits = load_splits(small_cohort, ["uci_cleveland", "uci_hungarian"], small_config)
    hidden = Splits(
        splits.train_records,
        splits.validation_records,
        Untouchable(),
        splits.train,
        splits.validation,
        Untouchable(),
    )
    model_config, training = load_model_config(), load_training_config()
    torch.manual_seed(0)
    initial = FusedRiskModel(small_config, model_config).state_dict()
    federated = FederatedConfig(
        num_rounds=1,
        pretraining_rounds=1,
        alignment_rounds=1,
        local_epochs=1,
        strategy="fedavg",
        client_cpus=1,
    )
    model = centralised_model(
        small_config, model_config, training, federated, hidden, initial
    )
    heart = TARGETS.index("heart_disease")
    assert model.calibration_scale[heart] != 1.0  # fitted, on validation alone
    # The same fit, by hand on the validation split, gives the same map.
    again = FusedRiskModel(small_config, model_config)
    again.load_state_dict(model.state_dict())
    summary = calibrate(again, splits.validation, training.calibration, TARGETS)
    assert summary["heart_disease"]["n_validation"] == int(
        splits.validation.label_mask[:, heart].sum()
    )
    assert again.calibration_scale[heart] == pytest.approx(
        float(model.calibration_scale[heart]), rel=1e-4
    )
