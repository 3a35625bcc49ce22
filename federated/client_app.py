"""The Flower ClientApp: one site's local training of the shared Lightning module."""

from __future__ import annotations

import functools
import hashlib
import logging
from pathlib import Path

import torch
from flwr.app import (
    ArrayRecord,
    ConfigRecord,
    Context,
    Message,
    MetricRecord,
    RecordDict,
)
from flwr.clientapp import ClientApp

from federated.strategy import EXAMPLES_KEY, count_key
from fusion.config import load_model_config, load_training_config
from fusion.model import FusedRiskModel
from fusion.module import RiskModule, fit
from ingest.cohort import load_cohort
from ingest.config import load_data_config
from ingest.schema import HEADS
from modalities.batch import MODALITIES, ModelInputs, encode_records

logger = logging.getLogger(__name__)


@functools.lru_cache(maxsize=16)
def site_inputs(cohort_dir: str, site: str, split: str) -> ModelInputs:
    """Load and encode one site's records of one split (cached per process)."""
    config = load_data_config()
    records = load_cohort(
        Path(cohort_dir), sites=[site], splits=[split], lead_names=config.ecg.leads
    )
    return encode_records(records, config)


def example_counts(inputs: ModelInputs) -> dict[str, float]:
    """How many examples trained each parameter group (see `parameter_group`)."""
    counts = {EXAMPLES_KEY: float(len(inputs))}
    for index, modality in enumerate(MODALITIES):
        counts[count_key(modality)] = float(inputs.modality_mask[:, index].sum())
    for index, head in enumerate(HEADS):
        counts[count_key(f"label-{head}")] = float(inputs.label_mask[:, index].sum())
    return counts


def resolve_site(context: Context, config: ConfigRecord) -> tuple[str, str]:
    """Return the site and cohort directory of this SuperNode.

    A deployed SuperNode names them in its node config (``site``,
    ``cohort-dir``); a simulated one is given its partition's site by the server.
    """
    node = context.node_config
    if "site" in node:
        return str(node["site"]), str(node.get("cohort-dir", config["cohort-dir"]))
    sites = str(config["sites"]).split(",")
    return sites[int(node["partition-id"])], str(config["cohort-dir"])


app = ClientApp()


@app.train()
def train(msg: Message, context: Context) -> Message:
    """Train the received global model on this site's training split."""
    config = msg.content["config"]
    site, cohort_dir = resolve_site(context, config)
    inputs = site_inputs(cohort_dir, site, "train")

    # Step 1: the global model, as sent.
    data, model_config, training = (
        load_data_config(),
        load_model_config(),
        load_training_config(),
    )
    model = FusedRiskModel(data, model_config)
    model.load_state_dict(msg.content["arrays"].to_torch_state_dict())

    # Step 2: local epochs (a site with no training example sends the model back).
    server_round = int(config["server-round"])
    seed = int(hashlib.sha256(f"{site}:{server_round}".encode()).hexdigest()[:8], 16)
    loss = fit(
        RiskModule(model, model_config, training),
        inputs,
        epochs=int(config["local-epochs"]),
        batch_size=training.batch_size,
        seed=seed,
    )

    # Step 3: weights plus the example counts each parameter group was trained on.
    metrics = example_counts(inputs)
    metrics["train-loss"] = loss if loss == loss else 0.0
    content = RecordDict(
        {
            "arrays": ArrayRecord(model.state_dict()),
            "metrics": MetricRecord(metrics),
            "site": ConfigRecord({"name": site}),
        }
    )
    return Message(content=content, reply_to=msg)


@app.evaluate()
def evaluate(msg: Message, context: Context) -> Message:
    """Validation loss of the received model on this site's validation split."""
    from fusion.model import masked_multitask_loss

    config = msg.content["config"]
    site, cohort_dir = resolve_site(context, config)
    inputs = site_inputs(cohort_dir, site, "validation")
    model = FusedRiskModel(load_data_config(), load_model_config())
    model.load_state_dict(msg.content["arrays"].to_torch_state_dict())
    model.eval()
    with torch.no_grad():
        logits = model(*inputs.forward_args())
        loss = float(masked_multitask_loss(logits, inputs.labels, inputs.label_mask))
    metrics = MetricRecord({EXAMPLES_KEY: float(len(inputs)), "val-loss": loss})
    return Message(content=RecordDict({"metrics": metrics}), reply_to=msg)
