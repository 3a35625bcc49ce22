"""The deployed ServerApp: the same rounds as the simulation, over real SuperNodes.

A coordinating SuperLink runs it when a run is submitted (``flwr run``); each
hospital runs a SuperNode whose node config names its site and cohort store
(``site="uci_cleveland" cohort-dir="/data/cohort"``), and the SuperNode runs the
same `federated.client_app.app` as the simulation. Run settings come from
``configs/federated.yaml`` and ``configs/training.yaml``, overridden by the run
config (``[tool.flwr.app.config]`` in ``pyproject.toml``, or ``flwr run
--run-config 'num-rounds=2'``):

- ``num-rounds``, ``local-epochs``, ``strategy``: as in ``configs/federated.yaml``;
- ``stages``: comma-separated stages to run (default: those enabled);
- ``secure-aggregation``: ``true`` to sum the sites' updates with SecAgg+
  (`federated.secure_aggregation`; default ``false``);
- ``sites``: the sites expected (their number is the nodes each round needs);
- ``out-dir``: where the final global model (``model.pt``) and the round
  history (``history.json``) are written; checkpoints go to its
  ``checkpoints/`` folder.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import torch
from flwr.app import ArrayRecord, Context
from flwr.serverapp import Grid, ServerApp

from federated.checkpoints import config_hash
from federated.config import load_federated_config
from federated.server_app import run_rounds
from fusion.config import load_model_config, load_training_config
from fusion.model import FusedRiskModel
from fusion.stages import enabled_stages
from ingest.config import load_data_config

logger = logging.getLogger(__name__)

server_app = ServerApp()


@server_app.main()
def main(grid: Grid, context: Context) -> None:
    """Run every stage's rounds over the connected SuperNodes; save the result."""
    # One line per round from the strategy (Flower's own logger has its handler).
    ours = logging.getLogger("federated")
    if not ours.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(name)s: %(message)s"))
        ours.addHandler(handler)
        ours.setLevel(logging.INFO)
    run = context.run_config
    overrides = {
        key: run[name]
        for key, name in (
            ("num_rounds", "num-rounds"),
            ("local_epochs", "local-epochs"),
            ("strategy", "strategy"),
        )
        if name in run
    }
    federated = load_federated_config().model_copy(update=overrides)
    if "secure-aggregation" in run:
        secure = federated.secure_aggregation.model_copy(
            update={"enabled": bool(run["secure-aggregation"])}
        )
        federated = federated.model_copy(update={"secure_aggregation": secure})
    training = load_training_config()
    stages = (
        str(run["stages"]).split(",") if run.get("stages") else enabled_stages(training)
    )
    sites = [s for s in str(run.get("sites", "")).split(",") if s]
    if not sites:
        raise ValueError("run config 'sites': expected the sites taking part")
    out = Path(str(run.get("out-dir", "var/deployment")))
    torch.manual_seed(training.seed)
    model = FusedRiskModel(load_data_config(), load_model_config())
    result: dict = {}
    run_rounds(
        grid,
        ArrayRecord(model.state_dict()),
        sites,
        "",
        federated,
        result,
        stages,
        checkpoint_dir=str(out / "checkpoints"),
        run_hash=config_hash(federated, stages, sites),
    )
    out.mkdir(parents=True, exist_ok=True)
    torch.save(result["arrays"].to_torch_state_dict(), out / "model.pt")
    history = {
        "train_metrics": {
            stage: {str(r): dict(m) for r, m in rounds.items()}
            for stage, rounds in result["train_metrics"].items()
        },
        "privacy": result.get("privacy"),
        "sites": sites,
        "strategy": federated.strategy,
        "secure_aggregation": federated.secure_aggregation.enabled,
    }
    (out / "history.json").write_text(json.dumps(history, indent=1), "utf-8")
    logger.info("deployment run finished; model and history in %s", out)
