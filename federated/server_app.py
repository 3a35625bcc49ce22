"""The Flower ServerApp: rounds of count-weighted FedAvg per stage, over the sites."""

from __future__ import annotations

import logging

from flwr.app import ArrayRecord, ConfigRecord, Context
from flwr.serverapp import Grid, ServerApp

from federated.config import FederatedConfig
from federated.privacy import spent_budget
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
                        **privacy_config(federated),
                    }
                ),
            )
            arrays = outcome.arrays
            result["train_metrics"][stage] = {
                round_: dict(metrics)
                for round_, metrics in outcome.train_metrics_clientapp.items()
            }
        result["arrays"] = arrays
        if federated.privacy.enabled:
            released = sum(rounds for _, rounds in stage_rounds(federated, stages))
            result["privacy"] = {
                "epsilon": spent_budget(
                    federated.privacy.noise_multiplier,
                    released,
                    federated.privacy.delta,
                ),
                "delta": federated.privacy.delta,
                "rounds": released,
                "clipping_norm": federated.privacy.clipping_norm,
                "noise_multiplier": federated.privacy.noise_multiplier,
                "unit": "one site's update per round",
                "accountant": "Renyi DP (dp_accounting), no subsampling",
            }
            logger.info(
                "differential privacy: (epsilon %.2f, delta %g) spent per site over "
                "%d rounds (noise multiplier %.2f, clipping norm %.2f)",
                result["privacy"]["epsilon"],
                federated.privacy.delta,
                released,
                federated.privacy.noise_multiplier,
                federated.privacy.clipping_norm,
            )

    return app


def privacy_config(federated: FederatedConfig) -> dict[str, float]:
    """The clipping norm and noise multiplier clients apply (empty without DP)."""
    privacy = federated.privacy
    if not privacy.enabled:
        return {}
    return {
        "dp-clipping-norm": privacy.clipping_norm,
        "dp-noise-multiplier": privacy.noise_multiplier,
    }


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
