import json
import logging

import pytest
import torch

from federated import simulation
from federated.checkpoints import resume_point
from federated.config import FederatedConfig
from fusion.config import load_model_config
from fusion.model import FusedRiskModel
from ingest.errors import CardioriskError

SITES = ["uci_cleveland", "uci_hungarian"]


@pytest.mark.slow
def test_a_checkpoint_per_round_and_a_resumed_run(
    small_cohort, small_config, tmp_path, caplog
):
    config = FederatedConfig(num_rounds=2, local_epochs=1, strategy="fedprox")
    torch.manual_seed(0)
    start = FusedRiskModel(small_config, load_model_config()).state_dict()
    model = FusedRiskModel(small_config, load_model_config())
    model.load_state_dict(start)
    simulation.train_federated(
        model, SITES, small_cohort, config, checkpoint_dir=tmp_path
    )
    [folder] = list(tmp_path.iterdir())  # named by the configuration's hash
    written = sorted(p.name for p in folder.iterdir())
    assert written == [
        "supervised-round-1.json", "supervised-round-1.pt",
        "supervised-round-2.json", "supervised-round-2.pt",
    ]  # fmt: skip
    meta = json.loads((folder / "supervised-round-2.json").read_text())
    assert meta["round"] == 2 and meta["rounds"] == 2
    assert meta["strategy"] == "fedprox" and meta["sites"] == SITES
    assert "train-loss" in meta["metrics"] and meta["config_hash"] == folder.name
    final = torch.load(folder / "supervised-round-2.pt", weights_only=True)
    assert all(torch.equal(final[k], v) for k, v in model.state_dict().items())

    # Stopped after round 1: the resumed run trains round 2 only.
    for suffix in (".pt", ".json"):
        (folder / f"supervised-round-2{suffix}").unlink()
    resumed = FusedRiskModel(small_config, load_model_config())
    resumed.load_state_dict(start)
    with caplog.at_level(logging.INFO, logger="federated.strategy"):
        history = simulation.train_federated(
            resumed, SITES, small_cohort, config, checkpoint_dir=tmp_path, resume=True
        )
    rounds = [m for m in caplog.messages if "supervised round" in m]
    assert len(rounds) == 1 and rounds[0].startswith("supervised round 2/2")
    assert list(history["train_metrics"]["supervised"]) == [2]
    assert (folder / "supervised-round-2.pt").exists()


def test_a_checkpoint_of_another_configuration_is_refused(tmp_path):
    (tmp_path / "supervised-round-1.json").write_text(
        json.dumps({"stage": "supervised", "round": 1, "config_hash": "abc"})
    )
    with pytest.raises(CardioriskError, match="field 'config_hash': expected def"):
        resume_point(tmp_path, ["supervised"], "def")
    with pytest.raises(CardioriskError, match="no checkpoint"):
        resume_point(tmp_path / "empty", ["supervised"], "def")


@pytest.mark.slow
def test_a_resumed_fedadam_run_takes_the_steps_of_one_that_never_stopped(
    small_cohort, small_config, tmp_path
):
    config = FederatedConfig(
        num_rounds=2, local_epochs=1, strategy="fedadam", server_learning_rate=0.05
    )
    torch.manual_seed(0)
    start = FusedRiskModel(small_config, load_model_config()).state_dict()
    straight = FusedRiskModel(small_config, load_model_config())
    straight.load_state_dict(start)
    simulation.train_federated(
        straight, SITES, small_cohort, config, checkpoint_dir=tmp_path
    )
    [folder] = list(tmp_path.iterdir())
    moments = torch.load(folder / "supervised-round-1.server.pt", weights_only=True)
    assert {k.split(".")[0] for k in moments} == {"m_t", "v_t"}
    assert any(v.abs().sum() > 0 for v in moments.values())

    # Stop after round 1, resume: round 2 starts from round 1's moments.
    for suffix in (".pt", ".json", ".server.pt"):
        (folder / f"supervised-round-2{suffix}").unlink()
    resumed = FusedRiskModel(small_config, load_model_config())
    resumed.load_state_dict(start)
    simulation.train_federated(
        resumed, SITES, small_cohort, config, checkpoint_dir=tmp_path, resume=True
    )
    for name, value in straight.state_dict().items():
        assert torch.allclose(resumed.state_dict()[name], value, atol=1e-6), name
