"""Strategies that weigh each parameter element by the examples that trained it.

Three strategies share that aggregation (`CountWeighted`), chosen by name in
``configs/federated.yaml``:

- ``fedavg``: the count-weighted average is the new global model.
- ``fedprox`` (Li et al., MLSys 2020): the same, and each client adds the
  proximal term ``mu / 2 * ||w - w_global||^2`` to its local loss (Flower's
  `FedProx` sends ``proximal-mu`` to the clients).
- ``fedadam`` (Reddi et al., ICLR 2021): the count-weighted average minus the
  global model is a pseudo-gradient, and Flower's `FedAdam` takes an Adam step
  along it with the server learning rate.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING

import numpy as np
from flwr.app import Array, ArrayRecord, ConfigRecord, Message, MetricRecord, RecordDict
from flwr.serverapp import Grid
from flwr.serverapp.strategy import FedAdam, FedAvg, FedProx

if TYPE_CHECKING:
    from federated.secure_aggregation import SecureAggregationGrid

logger = logging.getLogger(__name__)

EXAMPLES_KEY = "num-examples"
WEIGHTS = "arrays"
COUNTS = "counts"
LEFT_OUT = "left-out"  # a site's own reason to leave itself out (secure rounds)
CLIPPED = "secure-clipped-values"


class CountWeighted(FedAvg):
    """FedAvg whose weights differ per parameter element.

    Sites hold different modalities, labels and features. Plain FedAvg would
    average a site's untouched ECG encoder (it has no ECG) with the encoders
    that did train, shrinking every update towards the old model. Here each
    client sends, beside its weights, how many of its examples trained each
    parameter element (`fusion.model.training_counts`); each element is averaged
    over the sites that trained it, weighted by those counts, and an element no
    site trained this round keeps its current value. Replies holding NaN or
    infinite values are left out and the round goes on with the rest.

    `make_strategy` builds one and sets ``stage`` and ``num_rounds`` (for the
    one log line per round).
    """

    current: ArrayRecord | None = None
    secure: SecureAggregationGrid | None = None  # set when SecAgg+ is on
    stage = "supervised"
    num_rounds = 0
    round_offset = 0  # rounds of this stage done before (a resumed run)
    last_metrics: MetricRecord | None = None

    def configure_train(
        self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid
    ) -> Iterable[Message]:
        """Remember the global arrays (kept where no site trained), then sample."""
        self.current = arrays
        return super().configure_train(server_round, arrays, config, grid)

    def aggregate_train(
        self, server_round: int, replies: Iterable[Message]
    ) -> tuple[ArrayRecord | None, MetricRecord | None]:
        """Average each parameter element over the sites that trained it.

        Replies that carry an error (a client that failed or dropped out) or
        that cannot be aggregated (`reply_problem`) are left out; the round goes on
        with the rest, and its one log line names both.
        """
        replies = list(replies)
        usable, left_out = [], []
        for message in replies:
            if message.has_error():
                reason = message.error.reason.strip().splitlines()
                left_out.append(
                    f"node {message.metadata.src_node_id} "
                    f"(failed: {(reason[-1] if reason else 'no reason')[:80]})"
                )
                continue
            if self.secure is not None:
                problem = secure_reply_problem(message.content)
            else:
                problem = reply_problem(message.content, self.current)
            if problem:
                left_out.append(f"{_site(message)} ({problem})")
            else:
                usable.append(message)
        head = f"{self.stage} round {self.stage_round(server_round)}/{self.num_rounds}"
        dropped = f"; left out: {', '.join(left_out)}" if left_out else ""
        if self.secure is not None and self.secure.halted:
            dropped += f"; {self.secure.halted}"
        unmerged = self.secure is not None and self.secure.merged is None
        if not usable or self.current is None or unmerged:
            logger.warning(
                "%s: no usable reply from %d site(s)%s; model unchanged",
                head,
                len(replies),
                dropped,
            )
            return None, None
        contents = [message.content for message in usable]
        if self.secure is None:
            arrays = aggregate_by_counts(contents, self.current)
        else:
            # The weights stayed masked; the secure sums give the average.
            arrays = self.secure.merged
            _warn_clipped(head, usable)
        metrics = self.train_metrics_aggr_fn(contents, self.weighted_by_key)
        loss = metrics.get("train-loss", float("nan")) if metrics else float("nan")
        self.last_metrics = metrics
        logger.info(
            "%s: %d/%d sites used (%s)%s%s, train loss %.4f",
            head,
            len(usable),
            len(replies),
            ", ".join(sorted(_site(message) for message in usable)),
            ", securely aggregated" if self.secure is not None else "",
            dropped,
            loss,
        )
        return arrays, metrics

    def stage_round(self, server_round: int) -> int:
        """The round of the stage ``server_round`` of this run is (after a resume)."""
        return server_round + self.round_offset

    def server_state(self) -> dict[str, np.ndarray]:
        """What the server itself learns across rounds, for checkpoints (none)."""
        return {}

    def load_server_state(self, state: dict[str, np.ndarray]) -> None:
        """Restore `server_state` from a checkpoint (nothing to restore)."""


class FedAvgByExamples(CountWeighted):
    """``fedavg``: the count-weighted average is the new global model."""


class FedProxByExamples(FedProx, CountWeighted):
    """``fedprox``: count-weighted average; clients add the proximal term."""


class FedAdamByExamples(FedAdam, CountWeighted):
    """``fedadam``: an Adam step along the count-weighted pseudo-gradient.

    Its moments (``m_t``, ``v_t``) and the round number of the bias correction
    carry over a resumed run (`server_state`), so a run stopped and resumed
    takes the same steps as one that never stopped.
    """

    def aggregate_train(
        self, server_round: int, replies: Iterable[Message]
    ) -> tuple[ArrayRecord | None, MetricRecord | None]:
        """The Adam step; a step that is not finite leaves the model as it was."""
        # FedAdam's bias correction counts the stage's rounds, not this run's.
        stage_round = server_round + self.round_offset
        arrays, metrics = super().aggregate_train(stage_round, replies)
        if arrays is not None and not all(
            np.isfinite(arrays[name].numpy()).all() for name in arrays.keys()
        ):
            logger.warning(
                "%s round %d/%d: the Adam step is not finite; model unchanged",
                self.stage,
                stage_round,
                self.num_rounds,
            )
            return None, metrics
        return arrays, metrics

    def stage_round(self, server_round: int) -> int:
        """Already the stage's round (`aggregate_train` added the offset)."""
        return server_round

    def server_state(self) -> dict[str, np.ndarray]:
        """Adam's first and second moments, one entry per parameter each."""
        state = {}
        for moment in ("m_t", "v_t"):
            for name, value in (getattr(self, moment) or {}).items():
                state[f"{moment}.{name}"] = np.asarray(value)
        return state

    def load_server_state(self, state: dict[str, np.ndarray]) -> None:
        """Restore the moments saved by `server_state`."""
        for moment in ("m_t", "v_t"):
            prefix = f"{moment}."
            values = {
                key.removeprefix(prefix): np.asarray(value)
                for key, value in state.items()
                if key.startswith(prefix)
            }
            setattr(self, moment, values or None)


STRATEGIES = {
    "fedavg": FedAvgByExamples,
    "fedprox": FedProxByExamples,
    "fedadam": FedAdamByExamples,
}


def make_strategy(
    name: str,
    stage: str,
    num_rounds: int,
    n_sites: int,
    proximal_mu: float = 0.0,
    server_learning_rate: float = 0.01,
) -> CountWeighted:
    """The strategy ``name`` for one stage's rounds over ``n_sites`` sites.

    Parameters
    ----------
    name : str
        One of `STRATEGIES`.
    stage : str
        The training stage these rounds run (named in the round log).
    num_rounds : int
        Rounds of the stage.
    n_sites : int
        Sites expected; every one is asked each round. A round goes on with
        those that answer usably (at least one).
    proximal_mu : float
        ``fedprox`` only: weight of the proximal term.
    server_learning_rate : float
        ``fedadam`` only: the server's Adam step size (``eta``).
    """
    if name not in STRATEGIES:
        raise ValueError(
            f"strategy '{name}' unknown; expected one of {list(STRATEGIES)}"
        )
    common = {
        "fraction_train": 1.0,
        "fraction_evaluate": 0.0,
        "min_train_nodes": n_sites,
        "min_available_nodes": n_sites,
    }
    if name == "fedprox":
        strategy: CountWeighted = FedProxByExamples(**common, proximal_mu=proximal_mu)
    elif name == "fedadam":
        strategy = FedAdamByExamples(
            **common, eta=server_learning_rate, beta_1=0.9, beta_2=0.99, tau=1e-3
        )
    else:
        strategy = FedAvgByExamples(**common)
    strategy.stage, strategy.num_rounds = stage, num_rounds
    return strategy


def aggregate_by_counts(
    contents: list[RecordDict], current: ArrayRecord
) -> ArrayRecord:
    """Count-weighted average per parameter element.

    Parameters
    ----------
    contents : list of RecordDict
        Replies, each with ``arrays`` (weights) and ``counts`` (examples that
        trained each element, broadcastable to the weight's shape).
    current : ArrayRecord
        The global arrays sent this round, kept where every count is zero.

    Returns
    -------
    ArrayRecord
    """
    result = {}
    for name in current.keys():
        base = current[name].numpy()
        total = np.zeros(base.shape, dtype=np.float64)
        weight = np.zeros(base.shape, dtype=np.float64)
        for content in contents:
            count = np.broadcast_to(content[COUNTS][name].numpy(), base.shape)
            total += count * content[WEIGHTS][name].numpy()
            weight += count
        trained = weight > 0
        merged = np.where(trained, total / np.where(trained, weight, 1.0), base)
        result[name] = Array(np.ascontiguousarray(merged.astype(base.dtype)))
    return ArrayRecord(result)


def reply_problem(content: RecordDict, current: ArrayRecord | None) -> str | None:
    """Why a reply cannot be aggregated, or None when it can."""
    if WEIGHTS not in content.array_records or COUNTS not in content.array_records:
        return f"expected ArrayRecords '{WEIGHTS}' and '{COUNTS}'"
    if EXAMPLES_KEY not in next(iter(content.metric_records.values()), {}):
        return f"metrics lack '{EXAMPLES_KEY}'"
    weights, counts = content[WEIGHTS], content[COUNTS]
    if current is not None and set(weights.keys()) != set(current.keys()):
        return "its parameters differ from the global model's"
    if set(counts.keys()) != set(weights.keys()):
        return "counts do not cover every parameter"
    for name in weights.keys():
        if not np.isfinite(weights[name].numpy()).all():
            return f"non-finite values in '{name}'"
        if (counts[name].numpy() < 0).any():
            return f"negative example counts for '{name}'"
    return None


def secure_reply_problem(content: RecordDict) -> str | None:
    """Why a site's securely aggregated reply is left out, or None.

    Its weights stayed masked, so the site checked them itself
    (`federated.secure_aggregation.masked_sum_content`) and says why it
    uploaded zeros.
    """
    if LEFT_OUT in content.config_records:
        return str(content[LEFT_OUT].get("reason", "left itself out"))
    if EXAMPLES_KEY not in next(iter(content.metric_records.values()), {}):
        return f"metrics lack '{EXAMPLES_KEY}'"
    return None


def _warn_clipped(head: str, replies: list[Message]) -> None:
    """Log the sites that clipped values of their secure upload."""
    for message in replies:
        metrics = next(iter(message.content.metric_records.values()), {})
        clipped = int(metrics.get(CLIPPED, 0))
        if clipped:
            logger.warning(
                "%s: %s clipped %d values of its secure upload to "
                "secure_aggregation.clipping_range",
                head,
                _site(message),
                clipped,
            )


def _site(message: Message) -> str:
    configs = message.content.config_records
    if "site" in configs:
        return str(configs["site"].get("name", "?"))
    return f"node {message.metadata.src_node_id}"
