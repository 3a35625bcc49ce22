"""Stage 1: self-supervised pretraining of each encoder on its own modality.

No label is used, so every training record of a site teaches the encoders of
the modalities it holds:

- **tabular**: masked-feature modelling. A fraction of the measured features
  is hidden (they enter as missing) and the encoder's token must give their
  normalised values back (mean squared error on the hidden ones).
- **timeline**: the same on earlier visits: hidden visit values are
  reconstructed from the timeline token.
- **ECG** and **imaging**: contrastive views (SimCLR-style NT-Xent). Two random
  views of a recording (ECG: time shift, amplitude scaling, baseline noise,
  leads dropped; image: small shifts, contrast change, noise) must map to
  tokens closer to each other than to any other record's in the batch.

The pretext heads (`FusedRiskModel.pretext`) are used only here.
"""

from __future__ import annotations

import torch
from torch import nn

from fusion.config import PretrainingConfig, TrainingConfig
from fusion.model import FusedRiskModel
from fusion.module import SelfSupervisedModule
from modalities.batch import MODALITIES, ModelInputs

ECG_SHIFT_S = 1.0  # views are rolled by up to this many seconds
ECG_SCALE = (0.8, 1.2)  # amplitude factor range of a view
ECG_NOISE_MV = 0.05  # standard deviation of the added baseline noise
ECG_LEAD_DROP = 0.15  # chance of a lead being zeroed in a view
IMAGE_SHIFT_PX = 4
IMAGE_GAMMA = (0.8, 1.25)
IMAGE_NOISE = 0.1  # in standardised pixel units


def nt_xent(
    first: torch.Tensor, second: torch.Tensor, temperature: float
) -> torch.Tensor:
    """Normalised temperature-scaled cross-entropy of paired views ``(B, D)``.

    Each view's positive is its pair; the other ``2B - 2`` views are negatives.
    """
    views = nn.functional.normalize(torch.cat([first, second]), dim=1)
    similarity = views @ views.T / temperature
    n = first.shape[0]
    similarity.fill_diagonal_(float("-inf"))
    targets = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)])
    return nn.functional.cross_entropy(similarity, targets.to(views.device))


def ecg_view(
    signal: torch.Tensor, fs: float, generator: torch.Generator
) -> torch.Tensor:
    """A random view of ``(B, leads, samples)`` ECGs in mV (see module docstring)."""
    batch, leads, samples = signal.shape
    shift = int(ECG_SHIFT_S * fs)
    offsets = torch.randint(-shift, shift + 1, (batch,), generator=generator)
    rolled = torch.stack(
        [
            torch.roll(trace, int(offset), dims=-1)
            for trace, offset in zip(signal, offsets, strict=True)
        ]
    )
    low, high = ECG_SCALE
    scale = low + (high - low) * torch.rand(batch, 1, 1, generator=generator)
    noise = ECG_NOISE_MV * torch.randn(batch, leads, samples, generator=generator)
    kept = torch.rand(batch, leads, 1, generator=generator) >= ECG_LEAD_DROP
    return (rolled * scale + noise) * kept


def image_view(pixels: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """A random view of ``(B, 1, H, W)`` standardised images."""
    batch = pixels.shape[0]
    shifts = torch.randint(
        -IMAGE_SHIFT_PX, IMAGE_SHIFT_PX + 1, (batch, 2), generator=generator
    )
    moved = torch.stack(
        [
            torch.roll(image, (int(dy), int(dx)), dims=(-2, -1))
            for image, (dy, dx) in zip(pixels, shifts, strict=True)
        ]
    )
    low, high = IMAGE_GAMMA
    gamma = low + (high - low) * torch.rand(batch, 1, 1, 1, generator=generator)
    noise = IMAGE_NOISE * torch.randn(pixels.shape, generator=generator)
    return torch.sign(moved) * moved.abs() ** gamma + noise


def hide(
    present: torch.Tensor, fraction: float, generator: torch.Generator
) -> torch.Tensor:
    """Bool mask of present entries to hide (about ``fraction`` of them)."""
    draw = torch.rand(present.shape, generator=generator)
    return present.bool() & (draw < fraction)


class PretrainingModule(SelfSupervisedModule):
    """Self-supervised losses of every modality a batch holds, summed.

    Parameters
    ----------
    model : FusedRiskModel
        The network; its encoders and pretext heads are trained.
    fs : float
        The model's ECG sampling frequency (Hz), for the time shifts.
    config : PretrainingConfig
        Mask fraction and contrastive temperature.
    training : TrainingConfig
        Learning rate and weight decay.
    """

    combine = "sum"
    trained = "pretext"

    def __init__(
        self,
        model: FusedRiskModel,
        fs: float,
        config: PretrainingConfig,
        training: TrainingConfig,
    ) -> None:
        super().__init__(model, training)
        self.fs = fs
        self.config = config
        self.generator = torch.Generator().manual_seed(training.seed)

    def losses(self, batch: ModelInputs) -> dict[str, torch.Tensor]:
        """Each modality's pretext loss on the records of ``batch`` that hold it."""
        held = {name: batch.modality_mask[:, i] for i, name in enumerate(MODALITIES)}
        found: dict[str, torch.Tensor] = {}
        model, g = self.model, self.generator

        # Step 1: tabular, masked features.
        rows = held["tabular"]
        if rows.any():
            values, present = batch.tabular_values[rows], batch.tabular_present[rows]
            hidden = hide(present, self.config.mask_fraction, g)
            if hidden.any():
                visible = present * ~hidden
                token = model.encode("tabular", values, visible)
                guess = model.pretext["tabular"](token)
                found["tabular"] = ((guess - values)[hidden] ** 2).mean()

        # Step 2: timeline, masked visit values.
        rows = held["timeline"]
        if rows.any():
            steps, step_mask = batch.timeline_steps[rows], batch.timeline_mask[rows]
            width = (steps.shape[-1] - 1) // 2
            present = steps[..., width : 2 * width]
            hidden = hide(present, self.config.mask_fraction, g)
            if hidden.any():
                masked = steps.clone()
                masked[..., :width] = steps[..., :width] * ~hidden
                masked[..., width : 2 * width] = present * ~hidden
                token = model.encode("timeline", masked, step_mask)
                guess = model.pretext["timeline"](token).reshape(present.shape)
                found["timeline"] = ((guess - steps[..., :width])[hidden] ** 2).mean()

        # Step 3: ECG and images, two views each.
        for name, view in (
            ("ecg", lambda x: ecg_view(x, self.fs, g)),
            ("imaging", lambda x: image_view(x, g)),
        ):
            rows = held[name]
            if int(rows.sum()) < 2:
                continue  # a contrastive loss needs another record
            signal = batch.ecg[rows] if name == "ecg" else batch.image[rows]
            first = model.pretext[name](model.encode(name, view(signal)))
            second = model.pretext[name](model.encode(name, view(signal)))
            found[name] = nt_xent(first, second, self.config.temperature)
        return found
