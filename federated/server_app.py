"""The Flower ServerApp: rounds of count-weighted FedAvg per stage, over the sites."""

from __future__ import annotations

import logging

from flwr.app import ArrayRecord, ConfigRecord, Context
from flwr.serverapp import Grid, ServerApp

from federated.config import FederatedConfig
from federated.strategy import make_strategy

logger = logging.getLogger(__name__)


def make_server_app(
    initial: ArrayRecord,
    sites: list[str],
    cohort_dir: str,
    federated: FederatedConfig,
    result: dict,
    stages: list[str],
) -> ServerApp:
    """Build the ServerApp for one federated run.

    Parameters
    ----------
    initial : ArrayRecord
        The starting global model.
    sites : list of str
        Site of each simulated SuperNode, by partition id.
    cohort_dir : str
        Cohort store each client reads its site from.
    federated : FederatedConfig
        Rounds of each stage, local epochs.
    result : dict
        Receives ``arrays`` (the final global model) and ``train_metrics`` (per
        stage, per round).
    stages : list of str
        The stages to run, in order (`fusion.stages.enabled_stages`).

    Returns
    -------
    ServerApp
    """
    app = ServerApp()

    @app.main()
    def main(grid: Grid, context: Context) -> None:
        arrays = initial
        result["train_metrics"] = {}
        for stage, rounds in stage_rounds(federated, stages):
            strategy = make_strategy(
                federated.strategy,
                stage,
                rounds,
                len(sites),
                proximal_mu=federated.proximal_mu,
                server_learning_rate=federated.server_learning_rate,
            )
            outcome = strategy.start(
                grid=grid,
                initial_arrays=arrays,
                num_rounds=rounds,
                train_config=ConfigRecord(
                    {
                        "stage": stage,
                        "local-epochs": federated.local_epochs,
                        "sites": ",".join(sites),
                        "cohort-dir": cohort_dir,
                    }
                ),
            )
            arrays = outcome.arrays
            result["train_metrics"][stage] = {
                round_: dict(metrics)
                for round_, metrics in outcome.train_metrics_clientapp.items()
            }
        result["arrays"] = arrays

    return app


def stage_rounds(
    federated: FederatedConfig, stages: list[str]
) -> list[tuple[str, int]]:
    """``(stage, rounds)`` of each stage that runs, in order (none of 0 rounds)."""
    rounds = {
        "pretraining": federated.pretraining_rounds,
        "alignment": federated.alignment_rounds,
        "supervised": federated.num_rounds,
    }
    return [(stage, rounds[stage]) for stage in stages if rounds[stage] > 0]
