"""Integrated Gradients (Captum) over the tabular values, the ECG and the timeline."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from captum.attr import IntegratedGradients

from fusion.model import FusedRiskModel
from modalities.batch import ModelInputs

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
    delta : float
        Completeness error: sum of attributions minus (logit - baseline logit).
    """

    tabular: torch.Tensor
    ecg: torch.Tensor
    timeline: torch.Tensor
    delta: float


def integrated_gradients(
    model: FusedRiskModel, inputs: ModelInputs, head_index: int, n_steps: int = N_STEPS
) -> Attribution:
    """Integrated Gradients of one head's logit for a single record.

    Baselines (reference inputs), chosen so that "no information" is the start
    of the path: tabular values at the registry's reference centre (normalised
    0) with the presence flags kept, so a feature is credited for how far its
    value lies from typical; the ECG as an isoelectric flat line (0 mV); the
    timeline visits at reference values. Presence flags and modality masks are
    not attributed (they are held fixed).

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

    def forward(values, ecg, steps, present, step_mask, modality_mask):  # noqa: ANN001
        logits = model(values, present, ecg, steps, step_mask, modality_mask)
        return logits[:, head_index]

    explained = (inputs.tabular_values, inputs.ecg, inputs.timeline_steps)
    baselines = tuple(torch.zeros_like(x) for x in explained)
    # Keep the time-gap input of each real visit: only values are attributed.
    steps_baseline = baselines[2].clone()
    steps_baseline[..., -1] = inputs.timeline_steps[..., -1]
    baselines = (baselines[0], baselines[1], steps_baseline)
    extra = (inputs.tabular_present, inputs.timeline_mask, inputs.modality_mask)
    ig = IntegratedGradients(forward)
    attributions, delta = ig.attribute(
        explained,
        baselines=baselines,
        additional_forward_args=extra,
        n_steps=n_steps,
        internal_batch_size=n_steps,
        return_convergence_delta=True,
    )
    return Attribution(
        tabular=attributions[0][0].detach(),
        ecg=attributions[1][0].detach(),
        timeline=attributions[2][0].detach(),
        delta=float(delta.abs().max()),
    )
