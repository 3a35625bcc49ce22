"""Exact Shapley values of the modalities present, by masking subsets of them."""

from __future__ import annotations

import itertools
import math

import torch

from fusion.model import FusedRiskModel
from modalities.batch import MODALITIES, ModelInputs


@torch.no_grad()
def modality_shapley(
    model: FusedRiskModel, inputs: ModelInputs
) -> list[dict[str, float]]:
    """Exact Shapley value of each present modality, per head, in risk units.

    The value of a coalition of modalities is the risk the model gives with
    only those modalities visible (the modality mask makes every coalition one
    forward pass). The values sum to the risk with every present modality
    minus the risk with none.

    Parameters
    ----------
    model : FusedRiskModel
    inputs : ModelInputs
        Exactly one record.

    Returns
    -------
    list of dict
        One mapping per head: modality -> contribution.
    """
    if len(inputs) != 1:
        raise ValueError(f"modality_shapley explains one record; got {len(inputs)}")
    model.eval()
    present = [i for i, _ in enumerate(MODALITIES) if bool(inputs.modality_mask[0, i])]
    subsets = [
        frozenset(c) for size in range(len(present) + 1)
        for c in itertools.combinations(present, size)
    ]  # fmt: skip
    masks = torch.zeros(len(subsets), len(MODALITIES), dtype=torch.bool)
    for row, subset in enumerate(subsets):
        masks[row, list(subset)] = True
    repeated = inputs.select(torch.zeros(len(subsets), dtype=torch.long))
    args = list(repeated.forward_args())
    args[-1] = masks
    risks = torch.sigmoid(model(*args))  # (subsets, heads)
    value = {subset: risks[row] for row, subset in enumerate(subsets)}
    n = len(present)
    shapley = {i: torch.zeros(risks.shape[1]) for i in present}
    for i in present:
        for subset in subsets:
            if i in subset:
                continue
            weight = math.factorial(len(subset)) * math.factorial(n - len(subset) - 1)
            weight /= math.factorial(n)
            shapley[i] += weight * (value[subset | {i}] - value[subset])
    return [
        {MODALITIES[i]: float(shapley[i][head]) for i in present}
        for head in range(risks.shape[1])
    ]
