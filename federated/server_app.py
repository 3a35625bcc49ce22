"""The Flower ServerApp: rounds of count-weighted FedAvg per stage, over the sites."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from flwr.app import ArrayRecord, ConfigRecord, Context
from flwr.serverapp import Grid, ServerApp

from federated.checkpoints import ResumePoint, save_checkpoint
from federated.config import FederatedConfig
from federated.privacy import spent_budget
from federated.secure_aggregation import SecureAggregationGrid
from federated.secure_aggregation import train_config as secure_train_config
from federated.strategy import CountWeighted, make_strategy

logger = logging.getLogger(__name__)


def make_server_app(**run: object) -> ServerApp:
    """The simulation's ServerApp: `run_rounds` with ``run`` as its arguments.

    Returns
    -------
    ServerApp
    """
    app = ServerApp()

    @app.main()
    def main(grid: Grid, context: Context) -> None:
        run_rounds(grid, **run)  # type: ignore[arg-type]

    return app


def run_rounds(
    grid: Grid,
    initial: ArrayRecord,
    sites: list[str],
    cohort_dir: str,
    federated: FederatedConfig,
    result: dict,
    stages: list[str],
    checkpoint_dir: str | None = None,
    resume: ResumePoint | None = None,
    run_hash: str = "",
) -> None:
    """Every stage's rounds over the SuperNodes of ``grid``.

    Shared by the simulation (`make_server_app`) and the deployed ServerApp
    (`federated.deployment`).

    Parameters
    ----------
    grid : Grid
        The connected SuperNodes.
    initial : ArrayRecord
        The starting global model.
    sites : list of str
        Site of each SuperNode (by partition id in a simulation).
    cohort_dir : str
        Cohort store a simulated client reads its site from (a deployed
        SuperNode names its own).
    federated : FederatedConfig
        Strategy, rounds of each stage, local epochs, privacy.
    result : dict
        Receives ``arrays`` (the final global model), ``train_metrics`` (per
        stage, per round) and, with differential privacy, ``privacy``.
    stages : list of str
        The stages to run, in order (`fusion.stages.enabled_stages`).
    checkpoint_dir : str, optional
        Where the global model of every round is written (`save_checkpoint`).
    resume : ResumePoint, optional
        Go on after this checkpoint's round instead of starting over, with the
        strategy's own state (``fedadam``'s moments) as it was.
    run_hash : str
        The run's configuration hash, written with each checkpoint.
    """
    if federated.secure_aggregation.enabled and len(sites) < 2:
        raise ValueError(
            "secure_aggregation.enabled: SecAgg+ sums the updates of two or more "
            f"sites; this run has {len(sites)}"
        )
    arrays = ArrayRecord(resume.weights) if resume is not None else initial
    result["train_metrics"] = {}
    for stage, rounds in stage_rounds(federated, stages):
        done = _rounds_done(stage, stages, resume)
        if done >= rounds:
            continue
        strategy = make_strategy(
            federated.strategy,
            stage,
            rounds,
            len(sites),
            proximal_mu=federated.proximal_mu,
            server_learning_rate=federated.server_learning_rate,
        )
        strategy.round_offset = done
        if resume is not None and stage == resume.stage:
            strategy.load_server_state(resume.server_state)
        stage_grid: Grid = grid
        if federated.secure_aggregation.enabled:
            strategy.secure = SecureAggregationGrid(grid, federated.secure_aggregation)
            stage_grid = strategy.secure
        outcome = strategy.start(
            grid=stage_grid,
            initial_arrays=arrays,
            num_rounds=rounds - done,
            train_config=ConfigRecord(
                {
                    "stage": stage,
                    "round-offset": done,  # a resumed stage's rounds go on counting
                    "local-epochs": federated.local_epochs,
                    "sites": ",".join(sites),
                    "cohort-dir": cohort_dir,
                    **privacy_config(federated),
                    **secure_train_config(federated.secure_aggregation),
                }
            ),
            evaluate_fn=_checkpointer(
                checkpoint_dir, strategy, federated, sites, run_hash
            ),
        )
        arrays = outcome.arrays
        result["train_metrics"][stage] = {
            round_ + done: dict(metrics)
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


def _rounds_done(stage: str, stages: list[str], resume: ResumePoint | None) -> int:
    """Rounds of ``stage`` a resumed run already holds (all, for earlier stages)."""
    if resume is None:
        return 0
    if stages.index(stage) < stages.index(resume.stage):
        return 10**9
    return resume.round if stage == resume.stage else 0


def _checkpointer(
    folder: str | None,
    strategy: CountWeighted,
    federated: FederatedConfig,
    sites: list[str],
    run_hash: str,
) -> Callable[[int, ArrayRecord], None] | None:
    """The callback that writes a checkpoint after each round (None: none kept)."""
    if folder is None:
        return None

    def save(server_round: int, arrays: ArrayRecord) -> None:
        if server_round == 0:
            return  # the starting model is not a round's result
        round_ = server_round + strategy.round_offset
        save_checkpoint(
            Path(folder),
            strategy.stage,
            round_,
            arrays,
            {
                "rounds": strategy.num_rounds,
                "strategy": federated.strategy,
                "sites": sites,
                "metrics": dict(strategy.last_metrics or {}),
                "config_hash": run_hash,
            },
            strategy.server_state(),
        )

    return save


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
