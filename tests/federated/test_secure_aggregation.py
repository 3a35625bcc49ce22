"""SecAgg+ of the count-weighted average, over Flower's real protocol.

The four exchanges run in-process: a grid hands each message to its node's
ClientApp (our mod around a site's training), so the keys, shares and masks
are Flower's own. The secure result must equal the plain count-weighted
average within the quantisation bound, with sites that fail or send NaN left
out, and no site's upload may reveal its update.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable

import numpy as np
import pytest
from flwr.app import (
    Array,
    ArrayRecord,
    ConfigRecord,
    Context,
    Error,
    Message,
    MetricRecord,
    RecordDict,
)
from flwr.clientapp import ClientApp
from flwr.common import bytes_to_ndarray
from flwr.serverapp import Grid
from flwr.supercore.run import Run
from flwr.supercore.task_identity import TaskIdentity

from federated.config import SecureAggregationConfig
from federated.secure_aggregation import (
    SecureAggregationGrid,
    secure_aggregation_mod,
    train_config,
)
from federated.strategy import (
    COUNTS,
    EXAMPLES_KEY,
    WEIGHTS,
    FedAvgByExamples,
    aggregate_by_counts,
)

SHAPES = {"encoder.weight": (12, 30), "encoder.bias": (12,), "head.weight": (8, 12)}
SETTINGS = SecureAggregationConfig(enabled=True)


class InProcessGrid(Grid):
    """Nodes 1..n, each a ClientApp with its own context, called in turn."""

    def __init__(self, apps: dict[int, ClientApp]) -> None:
        self.apps = apps
        self.contexts = {
            nid: Context(
                run_id=1, node_id=nid, node_config={}, state=RecordDict(), run_config={}
            )
            for nid in apps
        }
        self.seen: list[Message] = []

    def set_run(self, run: Run) -> None:  # noqa: D102
        raise NotImplementedError

    @property
    def run(self) -> Run:  # noqa: D102
        return Run.create_empty(1)

    def create_message(self, *args: object, **kwargs: object) -> Message:  # noqa: D102
        raise NotImplementedError

    def get_node_ids(self) -> Iterable[int]:  # noqa: D102
        return list(self.apps)

    def push_messages(self, messages: Iterable[Message]) -> Iterable[str]:  # noqa: D102
        raise NotImplementedError

    def pull_messages(self, message_ids: Iterable[str]) -> Iterable[Message]:  # noqa: D102
        raise NotImplementedError

    def send_and_receive(
        self, messages: Iterable[Message], *, timeout: float | None = None
    ) -> Iterable[Message]:
        replies = []
        for message in messages:
            nid = message.metadata.dst_node_id
            try:
                # A copy, as a transport would deliver it.
                reply = self.apps[nid](copy.deepcopy(message), self.contexts[nid])
            except Exception as error:  # a node's failure is its error reply
                reply = Message(Error(code=1, reason=repr(error)), reply_to=message)
            self.seen.append(reply)
            replies.append(reply)
        return replies


@pytest.fixture(autouse=True)
def _task_identity(monkeypatch):
    monkeypatch.setattr(TaskIdentity, "_run_id", 1)
    monkeypatch.setattr(TaskIdentity, "_node_id", 0)
    monkeypatch.setattr(TaskIdentity, "_task_id", 1)


def _global() -> ArrayRecord:
    rng = np.random.default_rng(0)
    return ArrayRecord(
        {
            name: Array(rng.normal(0, 0.3, shape).astype(np.float32))
            for name, shape in SHAPES.items()
        }
    )


def _site_reply(site: int, current: ArrayRecord, poisoned: bool = False) -> RecordDict:
    """Site ``site``'s trained weights and per-element counts (site 3: none)."""
    rng = np.random.default_rng(100 + site)
    examples = [120, 480, 75, 0][site]
    weights, counts = {}, {}
    for name in current.keys():
        base = current[name].numpy()
        weights[name] = base + rng.normal(0, 0.05, base.shape).astype(np.float32)
        if name == "encoder.weight":  # per input column, some unmeasured here
            count = np.full((1, base.shape[1]), float(examples), dtype=np.float32)
            count[0, site::4] = 0.0
        elif name == "head.weight":  # per output: head 5 is labelled nowhere
            count = np.full((base.shape[0], 1), float(examples), dtype=np.float32)
            count[5] = 0.0
        else:
            count = np.full((1,), float(examples), dtype=np.float32)
        counts[name] = count
    if poisoned:
        weights["encoder.bias"][3] = np.nan
    return RecordDict(
        {
            WEIGHTS: ArrayRecord({k: Array(v) for k, v in weights.items()}),
            COUNTS: ArrayRecord({k: Array(v) for k, v in counts.items()}),
            "metrics": MetricRecord({EXAMPLES_KEY: float(examples), "train-loss": 0.5}),
            "site": ConfigRecord({"name": f"site{site}"}),
        }
    )


def _app(site: int, fails: bool = False, poisoned: bool = False) -> ClientApp:
    app = ClientApp(mods=[secure_aggregation_mod])

    @app.train()
    def train(msg: Message, context: Context) -> Message:
        if fails:
            raise RuntimeError("disk failed mid-round")
        return Message(_site_reply(site, msg.content[WEIGHTS], poisoned), reply_to=msg)

    return app


def _round(apps: dict[int, ClientApp], settings=SETTINGS):
    """One secure train round: the strategy's messages through the secure grid."""
    current = _global()
    grid = SecureAggregationGrid(InProcessGrid(apps), settings)
    strategy = FedAvgByExamples(fraction_evaluate=0.0)
    strategy.secure, strategy.num_rounds = grid, 1
    config = ConfigRecord({**train_config(settings), "server-round": 1})
    messages = [
        Message(
            RecordDict({WEIGHTS: current, "config": config}),
            dst_node_id=nid,
            message_type="train",
            group_id="1",
        )
        for nid in apps
    ]
    strategy.current = current
    replies = list(grid.send_and_receive(messages))
    arrays, metrics = strategy.aggregate_train(1, replies)
    return current, grid, replies, arrays


def _bound(current: ArrayRecord, sites: list[int]) -> dict[str, np.ndarray]:
    """Quantisation bound per element: sites * step / (sum of n / S).

    Each site's upload is off by at most one quantisation step per value.
    """
    step = 2 * SETTINGS.clipping_range / SETTINGS.quantization_range
    out = {}
    for name in current.keys():
        share = (
            sum(
                np.broadcast_to(
                    _site_reply(s, current)[COUNTS][name].numpy(),
                    current[name].numpy().shape,
                )
                for s in sites
            )
            / SETTINGS.max_examples
        )
        out[name] = len(sites) * step / np.where(share > 0, share, np.inf) + 1e-6
    return out


def _plain(current: ArrayRecord, sites: list[int]) -> ArrayRecord:
    return aggregate_by_counts([_site_reply(s, current) for s in sites], current)


def test_secure_sum_equals_the_count_weighted_average():
    current, grid, replies, arrays = _round({n: _app(n - 1) for n in (1, 2, 3, 4)})
    plain = _plain(current, [0, 1, 2, 3])
    bound = _bound(current, [0, 1, 2, 3])
    for name in current.keys():
        secure, expected = arrays[name].numpy(), plain[name].numpy()
        assert np.all(np.abs(secure - expected) <= bound[name]), name
    # Elements no site trained keep the global value exactly.
    untouched = current["head.weight"].numpy()[5]
    assert np.array_equal(arrays["head.weight"].numpy()[5], untouched)
    # Every site is used, the one with no examples included (it adds zeros).
    assert not any(reply.has_error() for reply in replies)
    assert all(WEIGHTS not in reply.content.array_records for reply in replies)


def test_the_server_never_sees_a_sites_update():
    current, grid, replies, arrays = _round({n: _app(n - 1) for n in (1, 2, 3, 4)})
    masked = [
        r
        for r in grid.grid.seen
        if "secaggplus_configs" in r.content.config_records
        and "masked_params" in r.content.config_records["secaggplus_configs"]
    ]
    assert len(masked) == 4
    # Site 1's upload (after the mask factor: its first parameter's update) is
    # uncorrelated with that update, and spread over the whole mask range.
    upload = bytes_to_ndarray(
        masked[1].content.config_records["secaggplus_configs"]["masked_params"][1]
    )
    update = (
        _site_reply(1, current)[WEIGHTS]["encoder.weight"].numpy()
        - current["encoder.weight"].numpy()
    )
    assert upload.shape == update.shape
    assert abs(np.corrcoef(upload.ravel().astype(float), update.ravel())[0, 1]) < 0.2
    # Unmasked, every value would sit below 2**24 (the quantisation range);
    # masked, they spread over [0, 2**32): nearly all lie above it.
    assert (upload >= 2**24).mean() > 0.9 and upload.max() > 2**31
    # The replies the strategy sees carry metrics, never weights.
    assert all(set(reply.content.keys()) <= {"metrics", "site"} for reply in replies)


def test_a_failing_and_a_poisoned_site_are_left_out(caplog):
    apps = {1: _app(0), 2: _app(1, fails=True), 3: _app(2), 4: _app(3, poisoned=True)}
    with caplog.at_level("INFO", logger="federated.strategy"):
        current, grid, replies, arrays = _round(apps)
    plain = _plain(current, [0, 2])
    bound = _bound(current, [0, 2])
    for name in current.keys():
        assert np.all(np.abs(arrays[name].numpy() - plain[name].numpy()) <= bound[name])
        assert np.isfinite(arrays[name].numpy()).all()
    line = next(m for m in caplog.messages if "supervised round 1/1" in m)
    assert "2/4 sites used (site0, site2), securely aggregated" in line
    assert "site3 (non-finite values in 'encoder.bias')" in line
    assert "disk failed mid-round" in line and "collect masked vectors stage" in line


def test_too_few_sites_halt_the_round_and_keep_the_model(caplog):
    apps = {n: _app(n - 1, fails=n > 1) for n in (1, 2, 3, 4)}
    with caplog.at_level("INFO", logger="federated.strategy"):
        current, grid, replies, arrays = _round(apps)
    assert arrays is None and grid.merged is None
    assert "reconstruction threshold" in grid.halted
    assert any("model unchanged" in m for m in caplog.messages)


def test_a_site_over_max_examples_leaves_itself_out(caplog):
    settings = SETTINGS.model_copy(update={"max_examples": 200})
    with caplog.at_level("INFO", logger="federated.strategy"):
        _, grid, replies, arrays = _round(
            {n: _app(n - 1) for n in (1, 2, 3, 4)}, settings
        )
    line = next(m for m in caplog.messages if "supervised round 1/1" in m)
    assert "site1 (480 training examples, over secure_aggregation.max_examples" in line
    assert arrays is not None
