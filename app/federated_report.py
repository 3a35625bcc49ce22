"""The federated comparison: local-only training at each site vs federated vs pooled.

`compare` trains, from the same initial weights and for the same passes over
the data:

- one **local-only** model per site, on that site's training split alone;
- the **federated** model (Flower simulation, one SuperNode per site);
- the same federated run with **secure aggregation** (SecAgg+: the server
  sees only the sum of the updates), whose cost is SecAgg+'s quantisation;
- the same federated run with **differential privacy** (each site's update
  clipped and noised), with the (epsilon, delta) it spent;
- the **centralised** model on the pooled training splits.

Each is scored on the same held-out patients: per head and per site, the
site's own test records; per head, all of them. For the four UCI Heart
Disease hospitals it adds the accuracy (threshold 0.5) beside FLamby's
Fed-Heart-Disease benchmark (Ogier du Terrail et al., NeurIPS 2022: pooled
0.791, FedAvg 0.776), on our own patient-wise split, not FLamby's.
`write_federated_report` writes ``reports/federated.{md,json}``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from app.pipeline import (
    centralised_model,
    federated_model,
    initial_weights,
    load_splits,
    same_passes,
)
from federated.config import FederatedConfig
from fusion.config import ModelConfig, TrainingConfig
from fusion.evaluation import auroc
from fusion.model import FusedRiskModel
from fusion.module import predict_proba
from fusion.stages import train_stages
from ingest.cohort import read_manifest
from ingest.config import DataConfig
from ingest.schema import HEADS

logger = logging.getLogger(__name__)

UCI_SITES = ["uci_cleveland", "uci_hungarian", "uci_switzerland", "uci_va_long_beach"]
FLAMBY = {"pooled": 0.791, "FedAvg": 0.776}  # Fed-Heart-Disease, mean accuracy


def compare(
    data: DataConfig,
    model_config: ModelConfig,
    training: TrainingConfig,
    federated: FederatedConfig,
    cohort_dir: Path,
    on_step: Callable[[str], None] | None = None,
    sites: list[str] | None = None,
) -> dict:
    """Train the four kinds of model and score them on the same test patients.

    ``sites`` defaults to every site in the cohort store.
    """
    step = on_step or (lambda text: logger.info("%s", text))
    sites = sites or list(read_manifest(cohort_dir)["sites"])
    splits = load_splits(cohort_dir, sites, data)
    initial = initial_weights(data, model_config, training.seed)
    test_sites = np.array([r.site for r in splits.test_records])
    risks: dict[str, np.ndarray] = {}

    step(f"federated training over {len(sites)} sites")
    model, _, _ = federated_model(
        data, model_config, training, federated, cohort_dir, sites, splits, initial
    )
    risks["federated"] = predict_proba(model, splits.test).numpy()

    step("federated training with secure aggregation (SecAgg+)")
    secure = federated.model_copy(
        update={
            "secure_aggregation": federated.secure_aggregation.model_copy(
                update={"enabled": True}
            )
        }
    )
    secure_model, _, _ = federated_model(
        data, model_config, training, secure, cohort_dir, sites, splits, initial
    )
    risks["federated + SecAgg+"] = predict_proba(secure_model, splits.test).numpy()

    step("federated training with differential privacy")
    private = federated.model_copy(
        update={"privacy": federated.privacy.model_copy(update={"enabled": True})}
    )
    dp_model, dp_history, _ = federated_model(
        data, model_config, training, private, cohort_dir, sites, splits, initial
    )
    risks["federated + DP"] = predict_proba(dp_model, splits.test).numpy()

    step("centralised training (pooled data)")
    twin = centralised_model(data, model_config, training, federated, splits, initial)
    risks["centralised"] = predict_proba(twin, splits.test).numpy()

    # Local-only: each site's own model, the same stages and passes.
    local = np.full_like(risks["federated"], np.nan)
    train_sites = np.array([r.site for r in splits.train_records])
    local_training = same_passes(training, federated)
    for site in sites:
        rows = np.flatnonzero(train_sites == site)
        test_rows = np.flatnonzero(test_sites == site)
        if not len(rows) or not len(test_rows):
            continue
        step(f"local-only training at {site}")
        alone = FusedRiskModel(data, model_config)
        alone.load_state_dict(initial)
        train_stages(
            alone,
            splits.train.select(torch.as_tensor(rows)),
            data,
            model_config,
            local_training,
            supervised_epochs=federated.num_rounds * federated.local_epochs,
        )
        local[test_rows] = predict_proba(
            alone, splits.test.select(torch.as_tensor(test_rows))
        ).numpy()
    risks["local-only"] = local
    return {
        "heads": _tables(splits, test_sites, risks),
        "uci_accuracy": _uci_accuracy(splits, test_sites, risks),
        "privacy": dp_history.get("privacy"),
        "settings": {
            "sites": sites,
            "strategy": federated.strategy,
            "rounds": {
                "pretraining": federated.pretraining_rounds,
                "alignment": federated.alignment_rounds,
                "supervised": federated.num_rounds,
            },
            "local_epochs": federated.local_epochs,
        },
    }


APPROACHES = (
    "local-only",
    "federated",
    "federated + SecAgg+",
    "federated + DP",
    "centralised",
)


def _tables(splits, test_sites: np.ndarray, risks: dict) -> dict:
    """Head -> rows of (site or 'all sites', n, positives, AUROC per approach)."""
    tables = {}
    for column, head in enumerate(HEADS):
        labelled = splits.test.label_mask[:, column].numpy()
        labels = splits.test.labels[:, column].numpy()
        rows = []
        for site in [*sorted(set(test_sites[labelled])), "all sites"]:
            chosen = labelled & ((test_sites == site) | (site == "all sites"))
            entry = {
                "site": site,
                "n": int(chosen.sum()),
                "n_positive": int(labels[chosen].sum()),
            }
            for name in APPROACHES:
                scores = risks[name][chosen, column]
                finite = np.isfinite(scores)
                entry[name] = (
                    auroc(labels[chosen][finite], scores[finite])
                    if finite.all()
                    else float("nan")
                )
            rows.append(entry)
        tables[head] = rows
    return tables


def _uci_accuracy(splits, test_sites: np.ndarray, risks: dict) -> dict:
    """Accuracy at 0.5 on the pooled UCI test patients, per approach."""
    column = HEADS.index("heart_disease")
    chosen = np.isin(test_sites, UCI_SITES) & splits.test.label_mask[:, column].numpy()
    labels = splits.test.labels[chosen, column].numpy()
    found = {"n": int(chosen.sum())}
    for name in APPROACHES:
        scores = risks[name][chosen, column]
        found[name] = float(((scores >= 0.5) == (labels == 1)).mean())
    return found


def write_federated_report(results: dict, command: str, out_dir: Path) -> Path:
    """Write ``federated.json`` and the readable ``federated.md``; return the .md."""
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "federated.json").write_text(
        json.dumps(results, indent=1, default=float), "utf-8"
    )
    settings = results["settings"]
    rounds = settings["rounds"]
    lines = [
        "# cardiorisk: local-only vs federated vs centralised",
        "",
        f"Regenerate: `{command}`. Same initial weights and passes over the data "
        f"for every model: stages pretraining {rounds['pretraining']}, alignment "
        f"{rounds['alignment']}, supervised {rounds['supervised']} rounds x "
        f"{settings['local_epochs']} local epoch(s); strategy "
        f"`{settings['strategy']}`; {len(settings['sites'])} sites. Held-out "
        "patients only (the patient-wise test split); AUROC.",
        "",
    ]
    for head, rows in results["heads"].items():
        lines += [
            f"## {head}",
            "",
            "| test patients of | n (pos.) | " + " | ".join(APPROACHES) + " |",
            "|---|---|" + "---|" * len(APPROACHES),
        ]
        for row in rows:
            cells = " | ".join(_f(row[name]) for name in APPROACHES)
            lines.append(
                f"| {row['site']} | {row['n']} ({row['n_positive']}) | {cells} |"
            )
        lines.append("")
    uci = results["uci_accuracy"]
    lines += [
        "## UCI Heart Disease beside FLamby's Fed-Heart-Disease",
        "",
        f"Accuracy at a 0.5 threshold on our pooled test patients of the four UCI "
        f"hospitals (n = {uci['n']}), beside FLamby's published means (their own "
        "split and a logistic model, so the comparison is indicative only).",
        "",
        "| | ours | FLamby |",
        "|---|---|---|",
        f"| pooled / centralised | {_f(uci['centralised'])} | {FLAMBY['pooled']} |",
        f"| federated (FedAvg) | {_f(uci['federated'])} | {FLAMBY['FedAvg']} |",
        f"| federated + SecAgg+ | {_f(uci['federated + SecAgg+'])} | |",
        f"| federated + DP | {_f(uci['federated + DP'])} | |",
        f"| local-only (each hospital its own model) | {_f(uci['local-only'])} | |",
        "",
    ]
    lines += [
        "## Secure aggregation",
        "",
        "The `federated + SecAgg+` run is the federated run with Flower's SecAgg+ "
        "(`federated.secure_aggregation`): the server saw only the sum of the "
        "sites' masked updates, never one site's weights. It differs from "
        "`federated` only by SecAgg+'s stochastic quantisation of each upload.",
        "",
    ]
    privacy = results.get("privacy")
    if privacy:
        lines += [
            "## Privacy budget of the DP run",
            "",
            f"Each site clipped its update to L2 norm {privacy['clipping_norm']:g} "
            f"and added Gaussian noise of {privacy['noise_multiplier']:g} x that "
            f"norm, every round; over {privacy['rounds']} rounds it spent epsilon "
            f"**{privacy['epsilon']:.2f}** at delta {privacy['delta']:g} "
            f"({privacy['accountant']}). The unit of privacy is {privacy['unit']}, "
            "not one patient. Its cost is the `federated + DP` column against "
            "`federated`.",
            "",
        ]
    path = out_dir / "federated.md"
    path.write_text("\n".join(lines), "utf-8")
    return path


def _f(value: float) -> str:
    return "n/a" if value is None or value != value else f"{value:.3f}"
