"""Integrated Gradients (Captum) over the tabular values, ECG, timeline and image."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from captum.attr import IntegratedGradients

from fusion.model import FusedRiskModel
from modalities.batch import MODALITIES, ModelInputs

N_STEPS = 32  # IG path steps; completeness error is reported per call


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
        Completeness error: sum of attributions minus (logit - baseline logit).
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

    # Only the modalities the record holds are attributed: an absent modality
    # never reaches the fused state, so it has no gradient and no credit.
    present = [bool(inputs.modality_mask[0, i]) for i in range(len(MODALITIES))]
    names = [
        name
        for name, holds in zip(
            ("tabular_values", "ecg", "timeline_steps", "image"), present, strict=True
        )
        if holds
    ]
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

    def forward(*varying: torch.Tensor) -> torch.Tensor:
        arguments = {
            name: getattr(inputs, name).expand(
                varying[0].shape[0], *[-1] * (getattr(inputs, name).dim() - 1)
            )
            for name, _ in inputs.items()
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
        return logits[:, head_index]

    ig = IntegratedGradients(forward)
    attributions, delta = ig.attribute(
        explained,
        baselines=tuple(baselines),
        n_steps=n_steps,
        internal_batch_size=n_steps,
        return_convergence_delta=True,
    )
    found = dict(zip(names, attributions, strict=True))
    return Attribution(
        tabular=_first(found, "tabular_values", inputs.tabular_values),
        ecg=_first(found, "ecg", inputs.ecg),
        timeline=_first(found, "timeline_steps", inputs.timeline_steps),
        image=_first(found, "image", inputs.image),
        delta=float(delta.abs().max()),
    )


def _first(found: dict, name: str, like: torch.Tensor) -> torch.Tensor:
    """Attribution of one record, zeros for a modality it does not hold."""
    return found[name][0].detach() if name in found else torch.zeros_like(like[0])
