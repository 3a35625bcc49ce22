"""FedAvg where each parameter element is weighted by the examples that trained it."""

from __future__ import annotations

import logging
from collections.abc import Iterable

import numpy as np
from flwr.app import Array, ArrayRecord, ConfigRecord, Message, MetricRecord, RecordDict
from flwr.serverapp import Grid
from flwr.serverapp.strategy import FedAvg

logger = logging.getLogger(__name__)

EXAMPLES_KEY = "num-examples"
WEIGHTS = "arrays"
COUNTS = "counts"


class FedAvgByExamples(FedAvg):
    """FedAvg whose weights differ per parameter element.

    Sites hold different modalities, labels and features. Plain FedAvg would
    average a site's untouched ECG encoder (it has no ECG) with the encoders
    that did train, shrinking every update towards the old model. Here each
    client sends, beside its weights, how many of its examples trained each
    parameter element (`fusion.model.training_counts`); each element is averaged
    over the sites that trained it, weighted by those counts, and an element no
    site trained this round keeps its current value. Replies holding NaN or
    infinite values are left out and the round goes on with the rest.
    """

    def __init__(
        self, num_rounds: int, stage: str = "supervised", **kwargs: object
    ) -> None:
        super().__init__(fraction_evaluate=0.0, **kwargs)  # type: ignore[arg-type]
        self.current: ArrayRecord | None = None
        self.num_rounds = num_rounds
        self.stage = stage

    def configure_train(
        self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid
    ) -> Iterable[Message]:
        """Remember the global arrays (kept where no site trained), then sample."""
        self.current = arrays
        return super().configure_train(server_round, arrays, config, grid)

    def aggregate_train(
        self, server_round: int, replies: Iterable[Message]
    ) -> tuple[ArrayRecord | None, MetricRecord | None]:
        """Average each parameter element over the sites that trained it."""
        replies = list(replies)
        valid, _ = self._check_and_log_replies(replies, is_train=True, validate=False)
        usable = []
        for message in valid:
            problem = _problem(message.content, self.current)
            if problem:
                logger.warning(
                    "round %d: reply from %s left out: %s",
                    server_round,
                    _site(message),
                    problem,
                )
            else:
                usable.append(message)
        if not usable or self.current is None:
            logger.warning("round %d: no usable reply; model unchanged", server_round)
            return None, None
        contents = [message.content for message in usable]
        arrays = aggregate_by_counts(contents, self.current)
        metrics = self.train_metrics_aggr_fn(contents, self.weighted_by_key)
        loss = metrics.get("train-loss", float("nan")) if metrics else float("nan")
        logger.info(
            "%s round %d/%d: %d/%d sites answered (%s), train loss %.4f",
            self.stage,
            server_round,
            self.num_rounds,
            len(usable),
            len(replies),
            ", ".join(sorted(_site(message) for message in usable)),
            loss,
        )
        return arrays, metrics


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


def _problem(content: RecordDict, current: ArrayRecord | None) -> str | None:
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


def _site(message: Message) -> str:
    configs = message.content.config_records
    if "site" in configs:
        return str(configs["site"].get("name", "?"))
    return f"node {message.metadata.src_node_id}"
