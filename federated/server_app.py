"""The Flower ServerApp: rounds of count-weighted FedAvg over the sites."""

from __future__ import annotations

import logging

from flwr.app import ArrayRecord, ConfigRecord, Context
from flwr.serverapp import Grid, ServerApp

from federated.config import FederatedConfig
from federated.strategy import FedAvgByExamples

logger = logging.getLogger(__name__)


def make_server_app(
    initial: ArrayRecord,
    sites: list[str],
    cohort_dir: str,
    federated: FederatedConfig,
    result: dict,
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
        Rounds, local epochs.
    result : dict
        Receives ``arrays`` (the final global model) and ``train_metrics``.

    Returns
    -------
    ServerApp
    """
    app = ServerApp()

    @app.main()
    def main(grid: Grid, context: Context) -> None:
        strategy = FedAvgByExamples(
            num_rounds=federated.num_rounds,
            fraction_train=1.0,
            min_train_nodes=len(sites),
            min_available_nodes=len(sites),
        )
        outcome = strategy.start(
            grid=grid,
            initial_arrays=initial,
            num_rounds=federated.num_rounds,
            train_config=ConfigRecord(
                {
                    "local-epochs": federated.local_epochs,
                    "sites": ",".join(sites),
                    "cohort-dir": cohort_dir,
                }
            ),
        )
        result["arrays"] = outcome.arrays
        result["train_metrics"] = {
            round_: dict(metrics)
            for round_, metrics in outcome.train_metrics_clientapp.items()
        }

    return app
