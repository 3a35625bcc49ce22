"""Missing modalities: each head's AUROC for every subset of modalities the data has.

For a subset S, the records evaluated are those labelled for the head that
hold every modality in S; the fused model sees only S (the rest hidden, as if
missing). It is set beside the best model trained on S alone: the unimodal
model when S is one modality, the HAIM-style trees for exactly S when they
exist. The comparator is picked by its AUROC on these same records, which
favours the comparator, never the fused model.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np

from fusion.comparisons import HAIMModel, holding, only
from fusion.evaluation import auroc, bootstrap_ci, paired_bootstrap_difference
from fusion.model import FusedRiskModel
from fusion.module import predict_proba
from modalities.batch import MODALITIES, ModelInputs

MIN_POSITIVES = 5  # fewer cases (or controls) in a subset: not evaluated


def subset_table(
    model: FusedRiskModel,
    test: ModelInputs,
    unimodal: dict[str, FusedRiskModel],
    haim: HAIMModel,
    features: dict[str, np.ndarray],
    heads: Sequence[str],
    seed: int = 0,
) -> list[dict]:
    """One row per head and modality subset with enough held-out records.

    Parameters
    ----------
    model : FusedRiskModel
        The (calibrated) fused model.
    test : ModelInputs
        Held-out inputs.
    unimodal : dict
        Modality -> unimodal model (`fusion.comparisons.train_unimodal`).
    haim : HAIMModel
        Fitted HAIM-style trees.
    features : dict
        Per-modality embeddings of ``test`` (`fusion.comparisons.embeddings`).
    heads : sequence of str
        Head names in logit-column order.
    seed : int
        Bootstrap seed.

    Returns
    -------
    list of dict
        ``head``, ``modalities``, ``n``, ``n_positive``, ``fused_auroc`` with
        ``fused_auroc_ci``, ``comparator`` and ``comparator_auroc``, and the
        paired ``difference`` with ``difference_ci`` (fused minus comparator).
    """
    rows_out = []
    for entry in fused_subsets(model, test, heads, seed):
        column = list(heads).index(entry["head"])
        subset = tuple(entry["modalities"])
        rows = (test.label_mask[:, column] & holding(test, subset)).numpy()
        labels = test.labels[rows, column].numpy().astype(int)
        sub = test.select(np.flatnonzero(rows))
        fused = predict_proba(model, only(sub, subset)).numpy()[:, column]
        candidates = _comparators(subset, sub, column, unimodal, haim, features, rows)
        scored = {
            name: (auroc(labels, scores), scores)
            for name, scores in candidates.items()
            if np.isfinite(scores).all()
        }
        if scored:
            name = max(scored, key=lambda key: scored[key][0])
            value, scores = scored[name]
            difference, low, high = paired_bootstrap_difference(
                labels, fused, scores, seed=seed
            )
            entry.update(
                comparator=name,
                comparator_auroc=value,
                difference=difference,
                difference_ci=[low, high],
            )
        rows_out.append(entry)
    return rows_out


def fused_subsets(
    model: FusedRiskModel,
    test: ModelInputs,
    heads: Sequence[str],
    seed: int = 0,
) -> list[dict]:
    """The fused model's held-out AUROC with only each modality subset visible.

    One row per head and subset whose held-out records (those holding every
    modality of the subset) have at least `MIN_POSITIVES` of each class: the
    confidence an explanation quotes for a record that holds just that subset.

    Returns
    -------
    list of dict
        ``head``, ``modalities``, ``n``, ``n_positive``, ``fused_auroc`` and
        ``fused_auroc_ci``.
    """
    rows_out = []
    subsets = [
        combination
        for size in range(1, len(MODALITIES) + 1)
        for combination in itertools.combinations(MODALITIES, size)
    ]
    for column, head in enumerate(heads):
        for subset in subsets:
            rows = (test.label_mask[:, column] & holding(test, subset)).numpy()
            labels = test.labels[rows, column].numpy().astype(int)
            positives = int(labels.sum())
            if min(positives, len(labels) - positives) < MIN_POSITIVES:
                continue
            sub = test.select(np.flatnonzero(rows))
            fused = predict_proba(model, only(sub, subset)).numpy()[:, column]
            rows_out.append(
                {
                    "head": head,
                    "modalities": list(subset),
                    "n": int(len(labels)),
                    "n_positive": positives,
                    "fused_auroc": auroc(labels, fused),
                    "fused_auroc_ci": list(bootstrap_ci(labels, fused, seed=seed)),
                }
            )
    return rows_out


def _comparators(
    subset: tuple[str, ...],
    sub: ModelInputs,
    column: int,
    unimodal: dict[str, FusedRiskModel],
    haim: HAIMModel,
    features: dict[str, np.ndarray],
    rows: np.ndarray,
) -> dict[str, np.ndarray]:
    """Scores of the models trained on exactly ``subset``, on the subset's records."""
    candidates = {}
    if len(subset) == 1 and subset[0] in unimodal:
        model = unimodal[subset[0]]
        candidates[f"unimodal {subset[0]}"] = predict_proba(
            model, only(sub, subset)
        ).numpy()[:, column]
    trees = haim.risk_of(column, subset, features, rows)
    if trees is not None:
        candidates["HAIM trees"] = trees
    return candidates
