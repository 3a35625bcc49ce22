"""Other multimodal approaches, trained on the same splits, to compare fusion with.

- **Unimodal models**: the same architecture trained and used with one modality
  visible, on the records that hold it. They are the "best model trained on
  the modalities that remain" when a record lacks the others.
- **Late fusion**: each record's risk is the mean of the unimodal models' risks
  over the modalities it holds.
- **HAIM-style** (Soenksen et al., npj Digit. Med. 2022): per-modality
  embeddings concatenated into gradient-boosted trees, one per head and per
  modality combination. Embeddings are the tabular values themselves (NaN where
  not measured) and the unimodal encoders' tokens for the ECG and the timeline.
  A record is scored by the trees of its own combination of modalities.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from sklearn.ensemble import HistGradientBoostingClassifier

from fusion.config import ModelConfig, TrainingConfig
from fusion.model import FusedRiskModel
from fusion.module import predict_proba
from fusion.stages import run_stage
from ingest.config import DataConfig
from modalities.batch import MODALITIES, ModelInputs

logger = logging.getLogger(__name__)

MIN_TREE_RECORDS = 30  # per class and combination; fewer: no trees for it


def only(inputs: ModelInputs, modalities: Sequence[str]) -> ModelInputs:
    """The same records with every modality outside ``modalities`` hidden."""
    keep = torch.tensor([name in modalities for name in MODALITIES])
    restricted = inputs.select(slice(None))
    restricted.modality_mask = inputs.modality_mask & keep
    return restricted


def holding(inputs: ModelInputs, modalities: Sequence[str]) -> torch.Tensor:
    """Bool ``(N,)``: records that hold every modality in ``modalities``."""
    columns = [MODALITIES.index(name) for name in modalities]
    return inputs.modality_mask[:, columns].all(dim=1)


def train_unimodal(
    data: DataConfig,
    model_config: ModelConfig,
    training: TrainingConfig,
    train: ModelInputs,
    epochs: int,
) -> dict[str, FusedRiskModel]:
    """One model per modality, trained on the records holding it, that alone visible.

    Returns
    -------
    dict
        Modality -> trained model (modalities no training record holds are left out).
    """
    models = {}
    for name in MODALITIES:
        rows = holding(train, [name]).nonzero(as_tuple=True)[0]
        if not len(rows):
            continue
        torch.manual_seed(training.seed)
        model = FusedRiskModel(data, model_config)
        run_stage(
            "supervised",
            model,
            only(train.select(rows), [name]),
            epochs,
            data,
            model_config,
            training,
        )
        logger.info("unimodal %s model trained on %d records", name, len(rows))
        models[name] = model
    return models


def unimodal_risk(
    models: dict[str, FusedRiskModel], inputs: ModelInputs
) -> dict[str, np.ndarray]:
    """Risk ``(N, H)`` of each unimodal model; NaN where a record lacks its modality."""
    risks = {}
    for name, model in models.items():
        risk = predict_proba(model, only(inputs, [name])).numpy()
        risk[~holding(inputs, [name]).numpy()] = np.nan
        risks[name] = risk
    return risks


def late_fusion_risk(unimodal: dict[str, np.ndarray]) -> np.ndarray:
    """Mean of the unimodal risks over the modalities each record holds."""
    stacked = np.stack(list(unimodal.values()))
    counts = np.isfinite(stacked).sum(axis=0)
    total = np.nansum(stacked, axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, total / np.maximum(counts, 1), np.nan)


@torch.no_grad()
def embeddings(
    models: dict[str, FusedRiskModel], inputs: ModelInputs
) -> dict[str, np.ndarray]:
    """Per-modality embedding ``(N, d)`` of each record, NaN where it lacks it."""
    present = inputs.tabular_present.numpy()
    values = np.where(present, inputs.tabular_values.numpy(), np.nan)
    result = {"tabular": values}
    arguments = {
        "ecg": (inputs.ecg,),
        "timeline": (inputs.timeline_steps, inputs.timeline_mask),
        "imaging": (inputs.image,),
    }
    for name, args in arguments.items():
        if name not in models:
            continue
        encoder = models[name].encoders[name].eval()
        rows = holding(inputs, [name])
        width = models[name].summary_token.shape[-1]
        out = np.full((len(inputs), width), np.nan, dtype=np.float32)
        index = rows.nonzero(as_tuple=True)[0]
        for start in range(0, len(index), 256):
            chunk = index[start : start + 256]
            out[chunk.numpy()] = encoder(*(x[chunk] for x in args)).numpy()
        result[name] = out
    return result


@dataclass
class HAIMModel:
    """Gradient-boosted trees per head and modality combination, on embeddings.

    Attributes
    ----------
    trees : dict
        ``(head index, combination)`` -> fitted classifier.
    columns : dict
        ``(head index, combination)`` -> the embedding columns its classifier
        reads: those with at least two distinct measured values among its
        training records (a constant or never-measured column carries nothing,
        and the binning cannot split it).
    """

    seed: int = 0
    trees: dict = field(default_factory=dict)
    columns: dict = field(default_factory=dict)

    def fit(self, features: dict[str, np.ndarray], train: ModelInputs) -> HAIMModel:
        """Fit one classifier per head and per combination with enough records."""
        for head in range(train.labels.shape[1]):
            labelled = train.label_mask[:, head]
            for combination in _combinations(features):
                rows = (labelled & holding(train, combination)).numpy()
                labels = train.labels[rows, head].numpy().astype(int)
                positives = int(labels.sum())
                if min(positives, len(labels) - positives) < MIN_TREE_RECORDS:
                    continue
                trees = HistGradientBoostingClassifier(
                    max_iter=200,
                    learning_rate=0.05,
                    max_leaf_nodes=15,
                    l2_regularization=1.0,
                    random_state=self.seed,
                )
                matrix = _matrix(features, combination, rows)
                columns = _informative(matrix)
                if not len(columns):
                    continue
                trees.fit(matrix[:, columns], labels)
                self.trees[head, combination] = trees
                self.columns[head, combination] = columns
        return self

    def risk(self, features: dict[str, np.ndarray], inputs: ModelInputs) -> np.ndarray:
        """Risk ``(N, H)``; each record scored by the trees of its own combination.

        A record whose combination has no trees uses the largest combination
        within its modalities that has (NaN when none has).
        """
        out = np.full(tuple(inputs.labels.shape), np.nan)
        held = inputs.modality_mask.numpy()
        owns = [
            tuple(name for i, name in enumerate(MODALITIES) if row[i]) for row in held
        ]
        for head in range(out.shape[1]):
            chosen: dict[tuple[str, ...], list[int]] = {}
            for row, own in enumerate(owns):
                combination = next(
                    (c for c in _within(own) if (head, c) in self.trees), None
                )
                if combination is not None:
                    chosen.setdefault(combination, []).append(row)
            for combination, rows in chosen.items():
                out[rows, head] = self.risk_of(
                    head, combination, features, np.array(rows)
                )
        return out

    def risk_of(
        self,
        head: int,
        combination: tuple[str, ...],
        features: dict[str, np.ndarray],
        rows: np.ndarray,
    ) -> np.ndarray | None:
        """Risk of ``rows`` by the trees of exactly ``combination`` (None: none)."""
        trees = self.trees.get((head, combination))
        if trees is None:
            return None
        matrix = _matrix(features, combination, rows)
        return trees.predict_proba(matrix[:, self.columns[head, combination]])[:, 1]


def _combinations(features: dict[str, np.ndarray]) -> list[tuple[str, ...]]:
    names = [m for m in MODALITIES if m in features]
    return [
        combination
        for size in range(1, len(names) + 1)
        for combination in itertools.combinations(names, size)
    ]


def _within(own: tuple[str, ...]) -> list[tuple[str, ...]]:
    """Combinations inside ``own``, largest first (``own`` itself first)."""
    return [
        combination
        for size in range(len(own), 0, -1)
        for combination in itertools.combinations(own, size)
    ]


def _matrix(
    features: dict[str, np.ndarray], combination: tuple[str, ...], rows: np.ndarray
) -> np.ndarray:
    return np.concatenate([features[name][rows] for name in combination], axis=1)


def _informative(matrix: np.ndarray) -> np.ndarray:
    """Indices of the columns holding at least two distinct finite values."""
    finite = np.where(np.isfinite(matrix), matrix, np.nan)
    spread = np.nanmax(finite, axis=0, initial=-np.inf) > np.nanmin(
        finite, axis=0, initial=np.inf
    )
    return np.flatnonzero(spread)
