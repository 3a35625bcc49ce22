import numpy as np
import pytest
import torch

from federated import simulation
from federated.config import FederatedConfig, PrivacyConfig
from federated.privacy import privatise_update, spent_budget
from fusion.config import load_model_config
from fusion.model import FusedRiskModel


def test_the_update_is_clipped_to_its_norm_and_buffers_pass_through():
    received = {"w": np.zeros(4), "b": np.zeros(2), "coverage": np.ones(3)}
    trained = {"w": np.full(4, 3.0), "b": np.full(2, 4.0), "coverage": np.ones(3)}
    sent, norm = privatise_update(received, trained, ["w", "b"], 1.0, 0.0)
    assert norm == pytest.approx(np.sqrt(4 * 9 + 2 * 16))
    update = np.concatenate([sent["w"], sent["b"]])
    assert np.linalg.norm(update) == pytest.approx(1.0)
    assert np.allclose(sent["w"] / sent["w"][0], 1.0)  # direction kept
    assert np.array_equal(sent["coverage"], trained["coverage"])
    small = {"w": np.full(4, 0.1), "b": np.zeros(2), "coverage": np.ones(3)}
    kept, _ = privatise_update(received, small, ["w", "b"], 1.0, 0.0)
    assert np.allclose(kept["w"], 0.1)  # inside the bound: unchanged


def test_noise_has_the_stated_standard_deviation():
    np.random.seed(0)
    received = {"w": np.zeros(20000)}
    sent, _ = privatise_update(received, {"w": np.zeros(20000)}, ["w"], 0.5, 2.0)
    assert sent["w"].std() == pytest.approx(2.0 * 0.5, rel=0.03)


def test_the_budget_grows_with_rounds_and_shrinks_with_noise():
    assert spent_budget(1.0, 1, 1e-5) < spent_budget(1.0, 10, 1e-5)
    assert spent_budget(2.0, 10, 1e-5) < spent_budget(1.0, 10, 1e-5)
    # One Gaussian release with z = 2 at delta 1e-5: epsilon about 2.
    assert 1.0 < spent_budget(2.0, 1, 1e-5) < 3.0
    assert spent_budget(1.0, 0, 1e-5) == 0.0


@pytest.mark.slow
def test_a_private_run_reports_its_budget_and_stays_finite(small_cohort, small_config):
    torch.manual_seed(0)
    model = FusedRiskModel(small_config, load_model_config())
    before = {k: v.clone() for k, v in model.state_dict().items()}
    federated = FederatedConfig(
        num_rounds=2,
        local_epochs=1,
        privacy=PrivacyConfig(enabled=True, clipping_norm=1.0, noise_multiplier=1.0),
    )
    history = simulation.train_federated(
        model, ["uci_cleveland", "uci_hungarian"], small_cohort, federated
    )
    spent = history["privacy"]
    assert spent["rounds"] == 2 and spent["delta"] == 1e-5
    assert spent["epsilon"] == pytest.approx(spent_budget(1.0, 2, 1e-5))
    assert all(torch.isfinite(v).all() for v in model.state_dict().values())
    weights = dict(model.named_parameters())
    moved = sum(float(((weights[k].detach() - before[k]) ** 2).sum()) for k in weights)
    assert 0 < moved  # noise and clipped updates arrived
    assert torch.equal(
        model.coverage, torch.maximum(before["coverage"], model.coverage)
    )
