"""The Flower ClientApp: one site's local training of the shared Lightning module."""

from __future__ import annotations

import functools
import hashlib
import logging
from pathlib import Path

import numpy as np
from flwr.app import (
    Array,
    ArrayRecord,
    ConfigRecord,
    Context,
    Message,
    MetricRecord,
    RecordDict,
)
from flwr.clientapp import ClientApp

from federated.privacy import privatise_update
from federated.secure_aggregation import secure_aggregation_mod
from federated.strategy import COUNTS, EXAMPLES_KEY, WEIGHTS
from fusion.config import (
    ModelConfig,
    TrainingConfig,
    load_model_config,
    load_training_config,
)
from fusion.model import FusedRiskModel, set_coverage, training_counts
from fusion.stages import run_stage
from ingest.cohort import load_cohort
from ingest.config import DataConfig, load_data_config
from modalities.batch import ModelInputs, encode_records

logger = logging.getLogger(__name__)


@functools.lru_cache(maxsize=1)
def configs() -> tuple[DataConfig, ModelConfig, TrainingConfig]:
    """The data, model and training configuration (read once per process)."""
    return load_data_config(), load_model_config(), load_training_config()


@functools.lru_cache(maxsize=16)
def site_inputs(cohort_dir: str, site: str, split: str) -> ModelInputs:
    """Load and encode one site's records of one split (cached per process)."""
    records = load_cohort(Path(cohort_dir), sites=[site], splits=[split])
    return encode_records(records, configs()[0])


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


# Rounds run with SecAgg+ pass through its client mod; others go straight in.
app = ClientApp(mods=[secure_aggregation_mod])


@app.train()
def train(msg: Message, context: Context) -> Message:
    """Train the received global model on this site's training split, one stage."""
    config = msg.content["config"]
    site, cohort_dir = resolve_site(context, config)
    inputs = site_inputs(cohort_dir, site, "train")
    stage = str(config.get("stage", "supervised"))

    # A site with no training records this time says so and trains nothing:
    # zero counts leave every element of the global model to the others.
    if not len(inputs):
        logger.warning("site %s holds no training records; nothing trained", site)
        arrays = msg.content["arrays"]
        zeros = {
            name: Array(np.zeros((1,) * arrays[name].numpy().ndim, dtype=np.float32))
            for name in arrays.keys()
        }
        return _reply(msg, arrays, ArrayRecord(zeros), site, 0, 0.0)

    # Step 1: the global model, as sent, and what this site's labels cover.
    data, model_config, training = configs()
    model = FusedRiskModel(data, model_config)
    model.load_state_dict(msg.content["arrays"].to_torch_state_dict())
    set_coverage(model, inputs)

    # Step 2: local epochs of the stage (a site with nothing to learn in it,
    # e.g. alignment with one modality, sends the model back unchanged).
    server_round = int(config["server-round"]) + int(config.get("round-offset", 0))
    seed = int(
        hashlib.sha256(f"{site}:{stage}:{server_round}".encode()).hexdigest()[:8], 16
    )
    loss = run_stage(
        stage,
        model,
        inputs,
        int(config["local-epochs"]),
        data,
        model_config,
        training,
        seed=seed,
        proximal_mu=float(config.get("proximal-mu", 0.0)),
    )

    # Step 3: weights plus how many examples trained each parameter element;
    # with differential privacy, the update is clipped and noised here first.
    weights = {k: v.detach().numpy() for k, v in model.state_dict().items()}
    if "dp-clipping-norm" in config:
        received = msg.content["arrays"].to_numpy_ndarrays()
        weights, norm = privatise_update(
            dict(zip(msg.content["arrays"].keys(), received, strict=True)),
            weights,
            [name for name, _ in model.named_parameters()],
            float(config["dp-clipping-norm"]),
            float(config["dp-noise-multiplier"]),
        )
        logger.info("site %s: update norm %.3f before clipping", site, norm)
    return _reply(
        msg,
        ArrayRecord({k: Array(np.ascontiguousarray(v)) for k, v in weights.items()}),
        ArrayRecord(training_counts(model, inputs, stage)),
        site,
        len(inputs),
        loss if loss == loss else 0.0,
    )


def _reply(
    msg: Message,
    weights: ArrayRecord,
    counts: ArrayRecord,
    site: str,
    examples: int,
    loss: float,
) -> Message:
    metrics = {EXAMPLES_KEY: float(examples), "train-loss": loss}
    content = RecordDict(
        {
            WEIGHTS: weights,
            COUNTS: counts,
            "metrics": MetricRecord(metrics),
            "site": ConfigRecord({"name": site}),
        }
    )
    return Message(content=content, reply_to=msg)
