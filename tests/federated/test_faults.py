"""Faults in a federated run: a client that fails, one with no training
examples, one that sends NaN or infinite weights. The run finishes with the
rest, the event is logged, and the global model stays finite."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch
from flwr.app import Array, ArrayRecord, Context, Message
from flwr.clientapp import ClientApp

from federated import simulation
from federated.client_app import train as site_train
from federated.config import FederatedConfig, SecureAggregationConfig
from federated.secure_aggregation import secure_aggregation_mod
from federated.strategy import WEIGHTS
from fusion.config import load_model_config
from fusion.model import FusedRiskModel
from ingest.cohort import load_cohort, read_manifest, write_cohort

SITES = ["uci_cleveland", "uci_hungarian", "uci_switzerland", "uci_va_long_beach"]
FAILING, POISONED = "uci_hungarian", "uci_switzerland"

faulty_app = ClientApp()


@faulty_app.train()
def faulty_train(msg: Message, context: Context) -> Message:
    """The real client, except that one site fails and one sends NaN and inf."""
    sites = str(msg.content["config"]["sites"]).split(",")
    site = sites[int(context.node_config["partition-id"])]
    if site == FAILING:
        raise RuntimeError("the site's disk failed mid-round")
    reply = site_train(msg, context)
    if site == POISONED:
        weights = reply.content[WEIGHTS]
        poisoned = {}
        for i, name in enumerate(weights.keys()):
            array = weights[name].numpy().copy()
            if array.size:
                array.flat[0] = np.nan if i % 2 else np.inf
            poisoned[name] = Array(array)
        reply.content[WEIGHTS] = ArrayRecord(poisoned)
    return reply


def _config(rounds: int = 2, **changes) -> FederatedConfig:
    return FederatedConfig(num_rounds=rounds, local_epochs=1, **changes)


def _finite(model: FusedRiskModel) -> bool:
    return all(torch.isfinite(v).all() for v in model.state_dict().values())


@pytest.mark.slow
def test_failing_and_poisoned_clients_leave_a_finite_model(
    small_cohort, small_config, monkeypatch, caplog
):
    torch.manual_seed(0)
    model = FusedRiskModel(small_config, load_model_config())
    before = {k: v.clone() for k, v in model.state_dict().items()}
    monkeypatch.setattr(simulation, "client_app", faulty_app)
    with caplog.at_level(logging.INFO, logger="federated.strategy"):
        history = simulation.train_federated(model, SITES, small_cohort, _config())
    assert _finite(model)
    assert any(not torch.equal(v, before[k]) for k, v in model.state_dict().items())
    rounds = [r for r in caplog.messages if "supervised round" in r]
    assert len(rounds) == 2
    # One line per round: the sites used, and those left out with the reason.
    for line in rounds:
        assert "2/4 sites used (uci_cleveland, uci_va_long_beach)" in line
        assert "uci_switzerland (non-finite values in" in line
        assert "(failed:" in line and "disk failed mid-round" in line
    assert len(history["train_metrics"]["supervised"]) == 2


@pytest.mark.slow
def test_a_site_with_no_training_records_trains_nothing(
    small_cohort, small_config, tmp_path, caplog
):
    # A store where one site holds only validation records.
    records = load_cohort(small_cohort, sites=["uci_cleveland", "uci_switzerland"])
    for record in records:
        if record.site == "uci_switzerland":
            record.site, record.split = "new_hospital", "validation"
    hashes = read_manifest(small_cohort)["sources"]
    write_cohort(records, [], hashes, tmp_path, small_config)
    torch.manual_seed(0)
    model = FusedRiskModel(small_config, load_model_config())
    with caplog.at_level(logging.INFO):
        simulation.train_federated(
            model, ["uci_cleveland", "new_hospital"], tmp_path, _config(rounds=1)
        )
    assert _finite(model)
    # Its reply counts no examples; the round used both sites' replies.
    assert any(
        "2/2 sites used (new_hospital, uci_cleveland)" in m for m in caplog.messages
    )


@pytest.mark.slow
@pytest.mark.parametrize("strategy", ["fedprox", "fedadam"])
def test_every_strategy_trains_a_finite_model(
    small_cohort, small_config, strategy, caplog
):
    torch.manual_seed(0)
    model = FusedRiskModel(small_config, load_model_config())
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with caplog.at_level(logging.INFO, logger="federated.strategy"):
        simulation.train_federated(
            model, SITES[:2], small_cohort, _config(rounds=2, strategy=strategy)
        )
    assert _finite(model)
    moved = [k for k, v in model.state_dict().items() if not torch.equal(v, before[k])]
    assert any(k.startswith("heads.heart_disease") for k in moved)
    assert sum("supervised round" in m for m in caplog.messages) == 2


def test_fedavg_is_the_default_and_unknown_strategies_are_refused():
    config = FederatedConfig(num_rounds=1, local_epochs=1)
    assert config.strategy == "fedavg" and config.proximal_mu > 0
    with pytest.raises(ValueError, match="fedavg"):
        FederatedConfig(num_rounds=1, local_epochs=1, strategy="fedsgd")


secure_faulty_app = ClientApp(mods=[secure_aggregation_mod])
secure_faulty_app.train()(faulty_train)


@pytest.mark.slow
def test_secure_aggregation_matches_plain_and_survives_the_same_faults(
    small_cohort, small_config, monkeypatch, caplog
):
    secure = {"secure_aggregation": SecureAggregationConfig(enabled=True)}
    finals = {}
    for name, changes in (("plain", {}), ("secure", secure)):
        torch.manual_seed(0)
        model = FusedRiskModel(small_config, load_model_config())
        simulation.train_federated(model, SITES, small_cohort, _config(1, **changes))
        finals[name] = model.state_dict()
    # Same round, same local training: the two global models differ only by
    # SecAgg+'s quantisation (about 1e-6 per value, more where few examples
    # trained an element).
    gaps = torch.cat(
        [
            (finals["plain"][k] - finals["secure"][k]).abs().ravel()
            for k in finals["plain"]
        ]
    )
    assert gaps.max() < 0.02 and gaps.median() < 1e-5

    monkeypatch.setattr(simulation, "client_app", secure_faulty_app)
    torch.manual_seed(0)
    model = FusedRiskModel(small_config, load_model_config())
    with caplog.at_level(logging.INFO, logger="federated.strategy"):
        simulation.train_federated(model, SITES, small_cohort, _config(2, **secure))
    assert _finite(model)
    rounds = [r for r in caplog.messages if "supervised round" in r]
    assert len(rounds) == 2
    for line in rounds:
        assert "2/4 sites used (uci_cleveland, uci_va_long_beach)" in line
        assert "securely aggregated" in line
        assert "uci_switzerland (non-finite values in" in line
        assert "disk failed mid-round" in line
