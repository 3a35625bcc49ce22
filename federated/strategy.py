"""FedAvg where each parameter group is weighted by the examples that trained it."""

from __future__ import annotations

import logging
from collections.abc import Iterable

import numpy as np
from flwr.app import Array, ArrayRecord, ConfigRecord, Message, MetricRecord
from flwr.serverapp import Grid
from flwr.serverapp.strategy import FedAvg

from ingest.schema import HEADS
from modalities.batch import MODALITIES

logger = logging.getLogger(__name__)

EXAMPLES_KEY = "num-examples"


def count_key(group: str) -> str:
    """Metric key under which a client reports the examples that trained ``group``."""
    return f"n-{group}"


def parameter_group(name: str) -> str:
    """The group a parameter belongs to: a modality encoder, a head, or shared.

    ``encoders.ecg.*`` is trained only by records with an ECG, ``heads.stroke.*``
    only by records labelled for stroke; everything else by every record.
    """
    parts = name.split(".")
    if parts[0] == "encoders" and parts[1] in MODALITIES:
        return parts[1]
    if parts[0] == "heads" and parts[1] in HEADS:
        return f"label-{parts[1]}"
    return "shared"


class FedAvgByModality(FedAvg):
    """FedAvg whose weights differ per parameter group.

    Sites hold different modalities and labels. Plain FedAvg would average a
    site's untouched ECG encoder (it has no ECG) with the encoders that did
    train, shrinking every update towards the old model. Here each group is
    averaged over the sites that trained it, weighted by their example counts;
    a group no site trained this round keeps its current value. Replies holding
    NaN or infinite values are left out, and the round goes on with the rest.
    """

    def __init__(self, **kwargs: object) -> None:
        super().__init__(fraction_evaluate=0.0, **kwargs)  # type: ignore[arg-type]
        self.current: ArrayRecord | None = None
        self.num_rounds = 0

    def configure_train(
        self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid
    ) -> Iterable[Message]:
        """Remember the global arrays (needed for untrained groups), then sample."""
        self.current = arrays
        return super().configure_train(server_round, arrays, config, grid)

    def aggregate_train(
        self, server_round: int, replies: Iterable[Message]
    ) -> tuple[ArrayRecord | None, MetricRecord | None]:
        """Average each parameter group over the sites that trained it."""
        replies = list(replies)
        valid, failed = self._check_and_log_replies(replies, is_train=True)
        finite = [message for message in valid if _all_finite(message)]
        for message in valid:
            if message not in finite:
                logger.warning(
                    "round %d: site %s returned non-finite weights; left out",
                    server_round,
                    _site(message),
                )
        if not finite or self.current is None:
            logger.warning(
                "round %d: no usable reply; the model is unchanged", server_round
            )
            return None, None
        contents = [message.content for message in finite]
        arrays = aggregate_by_group(contents, self.current)
        metrics = self.train_metrics_aggr_fn(contents, self.weighted_by_key)
        loss = metrics.get("train-loss", float("nan")) if metrics else float("nan")
        logger.info(
            "round %d/%d: %d/%d sites answered (%s), train loss %.4f",
            server_round,
            self.num_rounds,
            len(finite),
            len(replies),
            ", ".join(sorted(_site(message) for message in finite)),
            loss,
        )
        return arrays, metrics


def aggregate_by_group(contents: list, current: ArrayRecord) -> ArrayRecord:
    """Weighted average per parameter, weights from each reply's group counts.

    Parameters
    ----------
    contents : list of RecordDict
        Reply contents, each with one ArrayRecord and one MetricRecord.
    current : ArrayRecord
        The global arrays sent this round (kept where no site trained a group).

    Returns
    -------
    ArrayRecord
    """
    arrays = [next(iter(content.array_records.values())) for content in contents]
    metrics = [next(iter(content.metric_records.values())) for content in contents]
    result = {}
    for name in current.keys():
        group = parameter_group(name)
        key = EXAMPLES_KEY if group == "shared" else count_key(group)
        weights = np.array([float(metric.get(key, 0.0)) for metric in metrics])
        if weights.sum() <= 0:
            result[name] = current[name]
            continue
        weights = weights / weights.sum()
        stacked = sum(
            weight * record[name].numpy()
            for weight, record in zip(weights, arrays, strict=True)
            if weight > 0
        )
        result[name] = Array(np.asarray(stacked, dtype=current[name].numpy().dtype))
    return ArrayRecord(result)


def _all_finite(message: Message) -> bool:
    record = next(iter(message.content.array_records.values()))
    return all(np.isfinite(array.numpy()).all() for array in record.values())


def _site(message: Message) -> str:
    configs = message.content.config_records
    if "site" in configs:
        return str(configs["site"].get("name", "?"))
    return f"node {message.metadata.src_node_id}"
