"""Attributions (Captum) over the tabular values, ECG, timeline and image.

Two methods: Integrated Gradients (`integrated_gradients`), along the straight path
from each modality's baseline, and Feature Ablation (`feature_ablation`), removing
one group of inputs at a time. Both start from the same baselines.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from captum.attr import FeatureAblation, IntegratedGradients

from fusion.model import FusedRiskModel
from modalities.batch import MODALITIES, ModelInputs

N_STEPS = 32  # IG path steps; completeness error is reported per call
ECG_WINDOW_S = 1.0  # Feature Ablation: ECG windows removed together, per lead
IMAGE_PATCH = 16  # Feature Ablation: image patches, pixels a side


@dataclass
class Attribution:
    """Attributions of one record's inputs to one head's logit.

    Attributes
    ----------
    tabular : torch.Tensor
        ``(F,)`` per feature value.
    ecg : torch.Tensor
        ``(leads, samples)``.
    timeline : torch.Tensor
        ``(S, W)`` per step and step input.
    image : torch.Tensor
        ``(1, H, W)`` per pixel.
    delta : float
        Completeness error: sum of attributions minus (logit - baseline logit)
        (Integrated Gradients; NaN for Feature Ablation, which has none).
    """

    tabular: torch.Tensor
    ecg: torch.Tensor
    timeline: torch.Tensor
    image: torch.Tensor
    delta: float


def integrated_gradients(
    model: FusedRiskModel, inputs: ModelInputs, head_index: int, n_steps: int = N_STEPS
) -> Attribution:
    """Integrated Gradients of one head's logit for a single record.

    Baselines (reference inputs), chosen so that "no information" is the start
    of the path: tabular values at the registry's reference centre (normalised
    0) with the presence flags kept, so a feature is credited for how far its
    value lies from typical; the ECG as an isoelectric flat line (0 mV); the
    timeline visits at reference values; the image as mid-grey (standardised
    0). Presence flags and modality masks are not attributed (they are held
    fixed).

    Parameters
    ----------
    model : FusedRiskModel
    inputs : ModelInputs
        Exactly one record.
    head_index : int
        Index of the head in ``HEADS``.
    n_steps : int
        Riemann steps along the path.
    """
    if len(inputs) != 1:
        raise ValueError(f"integrated_gradients explains one record; got {len(inputs)}")
    model.eval()
    names, explained, baselines = _explained(inputs)
    ig = IntegratedGradients(_forward(model, inputs, names, head_index))
    attributions, delta = ig.attribute(
        explained,
        baselines=baselines,
        n_steps=n_steps,
        internal_batch_size=n_steps,
        return_convergence_delta=True,
    )
    return _attribution(names, attributions, inputs, float(delta.abs().max()))


def feature_ablation(
    model: FusedRiskModel,
    inputs: ModelInputs,
    head_index: int,
    ecg_window_s: float = ECG_WINDOW_S,
    fs: float = 100.0,
) -> Attribution:
    """Feature Ablation (Captum) of one head's logit for a single record.

    See `feature_ablation_heads`, which ablates once for several heads.
    """
    return feature_ablation_heads(model, inputs, [head_index], ecg_window_s, fs)[0]


def feature_ablation_heads(
    model: FusedRiskModel,
    inputs: ModelInputs,
    heads: list[int],
    ecg_window_s: float = ECG_WINDOW_S,
    fs: float = 100.0,
) -> list[Attribution]:
    """Feature Ablation (Captum) of several heads' logits for a single record.

    Each group of inputs is set to its baseline (the same reference inputs as
    `integrated_gradients`) on its own, and the drop in each logit is that
    group's attribution: each tabular feature the record holds (the absent
    ones, already at the baseline, form one group of no effect); each ECG lead
    over each window of ``ecg_window_s`` seconds; each timeline visit; each
    image patch of `IMAGE_PATCH` pixels a side. Every element of a group
    carries the group's value divided by its size, so a lead's or a visit's
    sum is what removing it costs. Every head is read from the same perturbed
    passes. Unlike Integrated Gradients it measures what removing an input
    does, with no path and no completeness guarantee (``delta`` is NaN).

    Parameters
    ----------
    model : FusedRiskModel
    inputs : ModelInputs
        Exactly one record.
    heads : list of int
        Indices of the heads in ``HEADS``.
    ecg_window_s : float
        Length of the ECG windows ablated together.
    fs : float
        The ECG's sampling frequency.

    Returns
    -------
    list of Attribution
        One per head of ``heads``, in order.
    """
    if len(inputs) != 1:
        raise ValueError(f"feature_ablation explains one record; got {len(inputs)}")
    model.eval()
    names, explained, baselines = _explained(inputs)
    masks, offset = [], 0
    for name, tensor in zip(names, explained, strict=True):
        mask = _groups(name, tensor, max(1, round(ecg_window_s * fs)))
        if name == "tabular_values":  # absent features: one group, no effect
            absent = ~inputs.tabular_present.bool()
            mask = torch.where(absent, mask.new_tensor(int(mask.max()) + 1), mask)
            mask = torch.unique(mask, return_inverse=True)[1]
        mask = mask + offset
        offset = int(mask.max()) + 1
        masks.append(mask)
    head_logits = _forward(model, inputs, names, heads)
    attributions = FeatureAblation(head_logits).attribute(
        explained,
        baselines=baselines,
        feature_mask=tuple(masks),
        perturbations_per_eval=64,
    )
    # Captum gives every element its group's whole effect; spread it instead.
    # With several heads each attribution holds one row per head.
    per_head = []
    for row in range(len(heads)):
        spread = []
        for attribution, mask in zip(attributions, masks, strict=True):
            sizes = torch.bincount(mask.flatten())[mask]
            value = attribution[row : row + 1] if len(heads) > 1 else attribution
            spread.append(value / sizes)
        per_head.append(_attribution(names, tuple(spread), inputs, float("nan")))
    return per_head


_EXPLAINED = ("tabular_values", "ecg", "timeline_steps", "image")


def _explained(
    inputs: ModelInputs,
) -> tuple[list[str], tuple[torch.Tensor, ...], tuple[torch.Tensor, ...]]:
    """The attributed inputs of the modalities present, and their baselines."""
    # Only the modalities the record holds are attributed: an absent modality
    # never reaches the fused state, so it has no gradient and no credit.
    present = [bool(inputs.modality_mask[0, i]) for i in range(len(MODALITIES))]
    names = [name for name, holds in zip(_EXPLAINED, present, strict=True) if holds]
    if not names:
        raise ValueError("the record holds no modality: there is nothing to attribute")
    explained = tuple(getattr(inputs, name) for name in names)
    baselines = []
    for name, tensor in zip(names, explained, strict=True):
        baseline = torch.zeros_like(tensor)
        if name == "timeline_steps":
            # Keep each visit's time gap: only the visit's values are attributed.
            baseline[..., -1] = tensor[..., -1]
        baselines.append(baseline)
    return names, explained, tuple(baselines)


def _forward(
    model: FusedRiskModel,
    inputs: ModelInputs,
    names: list[str],
    head_index: int | list[int],
) -> Callable[..., torch.Tensor]:
    """The head's logit (heads': ``(B, H)``) as a function of the attributed inputs.

    The inputs not attributed stay as the record has them.
    """

    def forward(*varying: torch.Tensor) -> torch.Tensor:
        batch = varying[0].shape[0]
        arguments = {
            name: value.expand(batch, *[-1] * (value.dim() - 1))
            for name, value in inputs.items()
        }
        arguments.update(zip(names, varying, strict=True))
        logits = model(
            arguments["tabular_values"],
            arguments["tabular_present"],
            arguments["ecg"],
            arguments["timeline_steps"],
            arguments["timeline_mask"],
            arguments["image"],
            arguments["modality_mask"],
        )
        if isinstance(head_index, list):
            return (
                logits[:, head_index[0]]
                if len(head_index) == 1
                else logits[:, head_index]
            )
        return logits[:, head_index]

    return forward


def _groups(name: str, tensor: torch.Tensor, ecg_window: int) -> torch.Tensor:
    """Feature ids of one attributed input ``(1, ...)``, numbered from 0."""
    shape = tensor.shape
    if name == "tabular_values":
        return torch.arange(shape[1]).reshape(1, -1)
    if name == "ecg":  # (1, leads, samples): lead x window
        windows = -(-shape[2] // ecg_window)
        lead = torch.arange(shape[1]).reshape(-1, 1)
        window = (torch.arange(shape[2]) // ecg_window).reshape(1, -1)
        return (lead * windows + window).unsqueeze(0)
    if name == "timeline_steps":  # (1, steps, values): one group per visit
        return torch.arange(shape[1]).reshape(1, -1, 1).expand(shape).clone()
    # image (1, 1, H, W): square patches
    rows = torch.arange(shape[-2]) // IMAGE_PATCH
    cols = torch.arange(shape[-1]) // IMAGE_PATCH
    per_row = -(-shape[-1] // IMAGE_PATCH)
    patch = rows.reshape(-1, 1) * per_row + cols.reshape(1, -1)
    return patch.expand(shape).clone()


def _attribution(
    names: list[str],
    attributions: tuple[torch.Tensor, ...],
    inputs: ModelInputs,
    delta: float,
) -> Attribution:
    found = dict(zip(names, attributions, strict=True))
    return Attribution(
        tabular=_first(found, "tabular_values", inputs.tabular_values),
        ecg=_first(found, "ecg", inputs.ecg),
        timeline=_first(found, "timeline_steps", inputs.timeline_steps),
        image=_first(found, "image", inputs.image),
        delta=delta,
    )


def _first(found: dict, name: str, like: torch.Tensor) -> torch.Tensor:
    """Attribution of one record, zeros for a modality it does not hold."""
    return found[name][0].detach() if name in found else torch.zeros_like(like[0])
