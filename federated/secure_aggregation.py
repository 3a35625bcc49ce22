"""Secure aggregation (SecAgg+, Bell et al., CCS 2020) of the count-weighted average.

With it on, the server learns the sum of the sites' updates and nothing about
any one site's weights. Flower implements SecAgg+ as a workflow of four message
exchanges per round (`flwr.server.workflow.SecAggPlusWorkflow` on the server,
`flwr.client.mod.secaggplus_mod` on each client): the sites agree on pairwise
masks, each uploads its vector masked so that the masks cancel in the sum, and
the masks of a site that drops out mid-round are rebuilt from the secret shares
its neighbours hold.

That workflow averages one vector per site with one weight per site. Our
aggregation weighs each parameter element by the examples that trained it
(`federated.strategy.aggregate_by_counts`), which is a ratio of two sums, so
each site uploads, for every element, ``n / S * (w - g)`` and ``n / S``: its
example count ``n`` scaled by the bound ``S`` (``max_examples``), times its
update from the global value ``g``, and the scaled count alone. Every site
uploads with the same weight, and the server divides the two secure sums:
``g + sum(n * (w - g)) / sum(n)`` is exactly the count-weighted average.

Precision and limits, in the terms of the configuration
(`federated.config.SecureAggregationConfig`):

- Values are clipped to ``[-clipping_range, clipping_range]`` and quantised,
  with unbiased stochastic rounding, to ``quantization_range`` levels; an
  element's aggregate is off by about ``2 * clipping_range /
  quantization_range / sum(n / S)``. A site reports how many of its values it
  clipped and the server logs it.
- A site checks its own update before masking (the server can no longer see
  it): one with non-finite values, or with more examples than ``S``, uploads
  zeros and says why in the clear, and the round goes on with the rest.
- What stays in the clear: each site's example count and training loss (the
  round's log line and metrics), and which sites took part.
- SecAgg+ protects the sum against an honest-but-curious server; it does not
  detect a site that uploads a poisoned but finite update.
- Flower's implementation draws its masks from NumPy's Mersenne Twister seeded
  with 32 bits folded from the agreed 256-bit key
  (`flwr.common.secure_aggregation.secaggplus_utils.pseudo_rand_gen`); a
  cryptographic stream cipher there would make the masks as strong as the key.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

import numpy as np
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
from flwr.app.message_type import MessageType
from flwr.client.mod import secaggplus_mod
from flwr.clientapp.typing import ClientAppCallable
from flwr.common import (
    Code,
    FitIns,
    FitRes,
    Parameters,
    Status,
    ndarrays_to_parameters,
    parameters_to_ndarrays,
)
from flwr.common.secure_aggregation.secaggplus_constants import RECORD_KEY_CONFIGS
from flwr.compat.common.recorddict_compat import fitres_to_recorddict
from flwr.server.client_manager import ClientManager
from flwr.server.client_proxy import ClientProxy
from flwr.server.compat.grid_client_proxy import GridClientProxy
from flwr.server.compat.legacy_context import LegacyContext
from flwr.server.strategy import Strategy
from flwr.server.workflow import SecAggPlusWorkflow
from flwr.server.workflow.secure_aggregation.secaggplus_workflow import WorkflowState
from flwr.serverapp import Grid
from flwr.supercore.run import Run

from federated.config import SecureAggregationConfig
from federated.strategy import (
    CLIPPED,
    COUNTS,
    EXAMPLES_KEY,
    LEFT_OUT,
    WEIGHTS,
    reply_problem,
)

logger = logging.getLogger(__name__)

MAX_EXAMPLES = "secure-max-examples"
CLIPPING_RANGE = "secure-clipping-range"
_STAGES = ("setup", "share keys", "collect masked vectors", "unmask")


def train_config(settings: SecureAggregationConfig) -> dict[str, float]:
    """What a site needs to know to prepare its upload (empty when off)."""
    if not settings.enabled:
        return {}
    return {
        MAX_EXAMPLES: float(settings.max_examples),
        CLIPPING_RANGE: settings.clipping_range,
    }


# --- the site ---------------------------------------------------------------


def secure_aggregation_mod(
    msg: Message, context: Context, call_next: ClientAppCallable
) -> Message:
    """Client mod: SecAgg+ for the rounds that ask for it, else nothing.

    A train message carrying SecAgg+ settings goes through Flower's
    `secaggplus_mod`; when that asks for the site's vector, the site trains as
    always (``call_next``) and its reply becomes the two vectors of
    `masked_sum_content`. Any other message passes straight through.
    """
    if (
        msg.metadata.message_type != MessageType.TRAIN
        or RECORD_KEY_CONFIGS not in msg.content.config_records
    ):
        return call_next(msg, context)

    def train_then_prepare(message: Message, ctx: Context) -> Message:
        reply = call_next(message, ctx)
        if reply.has_error():
            return reply
        return Message(
            masked_sum_content(reply.content, message.content), reply_to=message
        )

    return secaggplus_mod(msg, context, train_then_prepare)


def masked_sum_content(reply: RecordDict, sent: RecordDict) -> RecordDict:
    """A site's trained reply as the vectors SecAgg+ sums, in Flower's legacy form.

    Parameters
    ----------
    reply : RecordDict
        What the site's training returned: ``arrays``, ``counts``, ``metrics``
        and ``site`` (`federated.client_app`).
    sent : RecordDict
        The train message: the global ``arrays`` and the ``config`` with
        `MAX_EXAMPLES` and `CLIPPING_RANGE`.

    Returns
    -------
    RecordDict
        ``fitres.*`` records holding, per parameter, ``n / S * (w - g)`` and
        then, per parameter, ``n / S`` (broadcast to the parameter's shape),
        with weight 1; beside them, in the clear, the site's ``metrics`` (plus
        `CLIPPED`), its ``site`` and, when it leaves itself out, `LEFT_OUT`.
    """
    config = sent["config"]
    scale = float(config[MAX_EXAMPLES])
    clipping = float(config[CLIPPING_RANGE])
    received = sent[WEIGHTS]
    problem = reply_problem(reply, received)
    metrics = dict(next(iter(reply.metric_records.values()), {}))
    if problem is None and float(metrics[EXAMPLES_KEY]) > scale:
        problem = (
            f"{int(metrics[EXAMPLES_KEY])} training examples, over "
            f"secure_aggregation.max_examples ({int(scale)})"
        )
    updates, shares = [], []
    for name in received.keys():
        base = received[name].numpy().astype(np.float64)
        if problem is None:
            share = np.broadcast_to(reply[COUNTS][name].numpy(), base.shape) / scale
            update = share * (reply[WEIGHTS][name].numpy() - base)
        else:
            share = update = np.zeros(base.shape)
        updates.append(np.ascontiguousarray(update))
        shares.append(np.ascontiguousarray(share))
    clipped = int(sum((np.abs(update) > clipping).sum() for update in updates))
    fitres = FitRes(
        status=Status(code=Code.OK, message=""),
        parameters=ndarrays_to_parameters(updates + shares),
        num_examples=1,
        metrics={},
    )
    content = fitres_to_recorddict(fitres, keep_input=False)
    content["metrics"] = MetricRecord({**metrics, CLIPPED: float(clipped)})
    if "site" in reply.config_records:
        content["site"] = reply["site"]
    if problem is not None:
        content[LEFT_OUT] = ConfigRecord({"reason": problem})
    return content


# --- the server -------------------------------------------------------------


class SecureAggregationGrid(Grid):
    """The grid of a round's SuperNodes, whose train round runs SecAgg+.

    `Strategy.start` sends a round's train messages through
    `send_and_receive`; here they go through the four SecAgg+ exchanges
    instead, and what comes back is one reply per site with its metrics only
    (its weights stay masked), or an error for a site that failed or did not
    answer. The count-weighted average the secure sums give is `merged`, which
    the strategy takes in place of aggregating the replies
    (`federated.strategy.CountWeighted`). Every other message passes through.

    Parameters
    ----------
    grid : Grid
        The SuperNodes.
    settings : SecureAggregationConfig
        Shares, threshold, quantisation and ``max_examples``.
    """

    def __init__(self, grid: Grid, settings: SecureAggregationConfig) -> None:
        self.grid = grid
        self.settings = settings
        self.merged: ArrayRecord | None = None
        self.halted: str | None = None

    # Everything but a train round is the wrapped grid's.
    def set_run(self, run: Run) -> None:
        """Set the run of the wrapped grid."""
        self.grid.set_run(run)

    @property
    def run(self) -> Run:
        """The wrapped grid's run."""
        return self.grid.run

    def create_message(self, *args: object, **kwargs: object) -> Message:
        """As the wrapped grid."""
        return self.grid.create_message(*args, **kwargs)

    def get_node_ids(self) -> Iterable[int]:
        """As the wrapped grid."""
        return self.grid.get_node_ids()

    def push_messages(self, messages: Iterable[Message]) -> Iterable[str]:
        """As the wrapped grid."""
        return self.grid.push_messages(messages)

    def pull_messages(self, message_ids: Iterable[str]) -> Iterable[Message]:
        """As the wrapped grid."""
        return self.grid.pull_messages(message_ids)

    def send_and_receive(
        self, messages: Iterable[Message], *, timeout: float | None = None
    ) -> Iterable[Message]:
        """A train round through SecAgg+; anything else as the wrapped grid."""
        messages = list(messages)
        if not messages or any(
            m.metadata.message_type != MessageType.TRAIN for m in messages
        ):
            return self.grid.send_and_receive(messages, timeout=timeout)
        return self._secure_round(messages)

    def _secure_round(self, messages: list[Message]) -> list[Message]:
        self.merged, self.halted = None, None
        sent = {m.metadata.dst_node_id: m for m in messages}
        recorder = _Recorder(self.grid)
        summed = _SumOnly(list(sent), self.grid)
        context = LegacyContext(
            Context(
                run_id=self.grid.run.run_id,
                node_id=0,
                node_config={},
                state=RecordDict(),
                run_config={},
            ),
            strategy=summed,
        )
        context.state["config"] = ConfigRecord(
            {"current_round": int(messages[0].metadata.group_id or 0)}
        )
        context.state["parameters"] = ArrayRecord()
        settings = self.settings
        workflow = _MaskedSum(
            {nid: m.content for nid, m in sent.items()},
            num_shares=settings.num_shares,
            reconstruction_threshold=settings.reconstruction_threshold,
            max_weight=1.0,
            clipping_range=settings.clipping_range,
            quantization_range=settings.quantization_range,
            modulus_range=2**32,
            timeout=settings.timeout,
        )
        workflow(recorder, context)

        failed = recorder.failures(set(sent))
        answered = recorder.answers(2)
        if summed.total is None:
            self.halted = (
                "secure aggregation halted: fewer sites answered than its "
                f"reconstruction threshold ({len(answered)} of {len(sent)} gave "
                "their masked vector)"
            )
        else:
            self.merged = merge(
                summed.total,
                messages[0].content[WEIGHTS],
                settings.max_examples,
                len(answered),
            )
        replies = []
        for nid, message in sent.items():
            if nid in answered:
                content = answered[nid]
                kept = {
                    key: content[key]
                    for key in ("metrics", "site", LEFT_OUT)
                    if key in content
                }
                replies.append(Message(RecordDict(kept), reply_to=message))
            else:
                stage, reason = _first_failure(failed, nid)
                replies.append(
                    Message(
                        Error(code=0, reason=f"{reason} (SecAgg+ {stage} stage)"),
                        reply_to=message,
                    )
                )
        return replies


def merge(
    total: list[np.ndarray], current: ArrayRecord, scale: float, answered: int
) -> ArrayRecord:
    """The count-weighted average from the secure sums.

    Parameters
    ----------
    total : list of ndarray
        What SecAgg+ returns: the mean over the ``answered`` sites of their
        uploads (`masked_sum_content`), updates then shares.
    current : ArrayRecord
        The global model sent this round, kept where no site trained.
    scale : float
        ``S``, the bound the counts were divided by.
    answered : int
        Sites whose vectors are in the sum.

    Returns
    -------
    ArrayRecord
    """
    names = list(current.keys())
    result = {}
    for i, name in enumerate(names):
        base = current[name].numpy()
        update = total[i] * answered
        share = total[len(names) + i] * answered
        # Any site that trained an element adds at least 1 / S to its share;
        # below half that, none did (the sum of zeros is exact).
        trained = share >= 0.5 / scale
        step = np.where(trained, update / np.where(trained, share, 1.0), 0.0)
        result[name] = Array(np.ascontiguousarray((base + step).astype(base.dtype)))
    return ArrayRecord(result)


class _MaskedSum(SecAggPlusWorkflow):
    """Flower's SecAgg+ workflow, sending each site our own train message."""

    def __init__(self, contents: dict[int, RecordDict], **settings: object) -> None:
        super().__init__(**settings)  # type: ignore[arg-type]
        self.contents = contents

    def collect_masked_vectors_stage(
        self, grid: Grid, context: LegacyContext, state: WorkflowState
    ) -> bool:
        """Send the global arrays and train config as they are (not legacy FitIns)."""
        for nid in state.nid_to_fitins:
            state.nid_to_fitins[nid] = RecordDict(dict(self.contents[nid].items()))
        return super().collect_masked_vectors_stage(grid, context, state)


class _SumOnly(Strategy):
    """The legacy strategy the workflow needs: every node, and keep the sum."""

    def __init__(self, node_ids: list[int], grid: Grid) -> None:
        self.proxies = [GridClientProxy(nid, grid, grid.run.run_id) for nid in node_ids]
        self.total: list[np.ndarray] | None = None

    def configure_fit(
        self,
        server_round: int,
        parameters: Parameters,
        client_manager: ClientManager,
    ) -> list[tuple[ClientProxy, FitIns]]:
        """Every node of the round (the workflow replaces the instructions)."""
        return [(proxy, FitIns(Parameters([], ""), {})) for proxy in self.proxies]

    def aggregate_fit(
        self,
        server_round: int,
        results: list[tuple[ClientProxy, FitRes]],
        failures: list,
    ) -> tuple[Parameters | None, dict]:
        """Keep the unmasked mean the workflow hands every result."""
        if not results:
            return None, {}
        parameters = results[0][1].parameters
        self.total = parameters_to_ndarrays(parameters)
        return parameters, {}

    def initialize_parameters(self, client_manager: ClientManager) -> None:
        """Not used: the global model is ours."""
        return None

    def configure_evaluate(
        self,
        server_round: int,
        parameters: Parameters,
        client_manager: ClientManager,
    ) -> list:
        """No federated evaluation."""
        return []

    def aggregate_evaluate(
        self, server_round: int, results: list, failures: list
    ) -> tuple[None, dict]:
        """No federated evaluation."""
        return None, {}

    def evaluate(self, server_round: int, parameters: Parameters) -> None:
        """No central evaluation here."""
        return None


class _Recorder:
    """The grid as the workflow sees it, keeping each exchange's replies."""

    def __init__(self, grid: Grid) -> None:
        self.grid = grid
        self.exchanges: list[tuple[set[int], list[Message]]] = []

    def send_and_receive(
        self, messages: Iterable[Message], *, timeout: float | None = None
    ) -> list[Message]:
        messages = list(messages)
        replies = list(self.grid.send_and_receive(messages, timeout=timeout))
        self.exchanges.append(({m.metadata.dst_node_id for m in messages}, replies))
        return replies

    def answers(self, stage: int) -> dict[int, RecordDict]:
        """Content of each node that answered exchange ``stage`` without error."""
        if stage >= len(self.exchanges):
            return {}
        return {
            reply.metadata.src_node_id: reply.content
            for reply in self.exchanges[stage][1]
            if not reply.has_error()
        }

    def failures(self, nodes: set[int]) -> dict[int, dict[int, str]]:
        """Per exchange, the nodes asked that failed or never answered, and why."""
        out: dict[int, dict[int, str]] = {}
        for stage, (asked, replies) in enumerate(self.exchanges):
            reasons = {}
            for reply in replies:
                if reply.has_error():
                    lines = (reply.error.reason or "").strip().splitlines()
                    reasons[reply.metadata.src_node_id] = (
                        lines[-1] if lines else "no reason"
                    )[:80]
            got = {reply.metadata.src_node_id for reply in replies}
            for nid in asked & nodes - got:
                reasons[nid] = "no answer"
            out[stage] = reasons
        return out


def _first_failure(failed: dict[int, dict[int, str]], nid: int) -> tuple[str, str]:
    for stage in sorted(failed):
        if nid in failed[stage]:
            return _STAGES[stage], failed[stage][nid]
    return "unmask", "secure aggregation halted before this site's turn"
