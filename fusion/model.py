"""The fused risk model: one token per present modality, attention, heads per target."""

from __future__ import annotations

import torch
from torch import nn

from fusion.config import ModelConfig
from ingest.config import DataConfig
from ingest.schema import AUXILIARY_TARGETS, HEADS, TARGETS
from modalities.batch import MODALITIES, ModelInputs
from modalities.ecg import ECGEncoder
from modalities.imaging import ImageEncoder
from modalities.tabular import TabularEncoder
from modalities.timeline import TimelineEncoder


class FusedRiskModel(nn.Module):
    """Encoders per modality, a transformer over the present tokens, a head per target.

    A learned summary token attends over the tokens of the modalities a record
    holds (absent ones are masked out of attention, not zero-filled). Every
    output (the four risk heads, then the auxiliary targets) reads the summary
    token's final state together with the present tokens themselves (absent
    ones as zeros), so it can weigh each modality's own evidence beside the
    fused one.

    An output reads only the modalities it has learned from: ``coverage``
    (targets x modalities, 1 where training records labelled for the target
    held the modality) hides the others from it, so an ECG never moves the
    post-operative head that no ECG ever trained, and an image informs only
    the findings images were labelled for. Coverage is set from the training
    data (`set_coverage`) before each fit.

    Parameters
    ----------
    data : DataConfig
        Feature registry, ECG spec and timeline settings (input shapes).
    model : ModelConfig
        Widths, depth, dropout and heads.
    """

    def __init__(self, data: DataConfig, model: ModelConfig) -> None:
        super().__init__()
        dim = model.token_dim
        self.encoders = nn.ModuleDict(
            {
                "tabular": TabularEncoder(
                    len(data.features),
                    dim,
                    model.tabular_encoder["hidden"],
                    model.dropout,
                ),
                "ecg": ECGEncoder(
                    len(data.ecg.leads),
                    dim,
                    model.ecg_encoder["channels"],
                    model.ecg_encoder["kernel_size"],
                ),
                "timeline": TimelineEncoder(
                    2 * len(data.timeline_features) + 1,
                    dim,
                    model.timeline_encoder["hidden"],
                ),
                "imaging": ImageEncoder(
                    dim,
                    model.imaging_encoder["channels"],
                    model.imaging_encoder["kernel_size"],
                ),
            }
        )
        self.modality_embedding = nn.Parameter(torch.randn(len(MODALITIES), dim) * 0.02)
        self.summary_token = nn.Parameter(torch.zeros(1, 1, dim))
        layer = nn.TransformerEncoderLayer(
            d_model=dim,
            nhead=model.fusion_heads,
            dim_feedforward=2 * dim,
            dropout=model.dropout,
            batch_first=True,
            norm_first=True,
        )
        self.fusion = nn.TransformerEncoder(
            layer, num_layers=model.fusion_layers, enable_nested_tensor=False
        )
        self.norm = nn.LayerNorm(dim)
        # Each head reads the fused state and, beside it, every present token
        # directly: a modality's own evidence reaches a head even when the shared
        # fusion layers were shaped mostly by sites without that modality.
        width = dim * (1 + len(MODALITIES))
        self.heads = nn.ModuleDict({head: nn.Linear(width, 1) for head in HEADS})
        self.auxiliary = nn.ModuleDict(
            {target: nn.Linear(width, 1) for target in AUXILIARY_TARGETS}
        )
        # Stage 1 and 2 heads: self-supervised pretraining (masked features and
        # visits, contrastive ECG and image views) and cross-modal alignment.
        # Used only while those stages train; kept in the model so federated
        # rounds aggregate them like any other parameter.
        n_steps_values = data.max_timeline_steps * len(data.timeline_features)
        self.pretext = nn.ModuleDict(
            {
                "tabular": nn.Linear(dim, len(data.features)),
                "ecg": _projector(dim),
                "timeline": nn.Linear(dim, n_steps_values),
                "imaging": _projector(dim),
            }
        )
        self.alignment = nn.ModuleDict({name: _projector(dim) for name in MODALITIES})
        # Which modalities each target has learned from (see the class docstring).
        self.register_buffer("coverage", torch.zeros(len(TARGETS), len(MODALITIES)))
        # Per-target affine map of the logits, fitted on the validation split
        # after training (`fusion.calibration`); the identity until then.
        self.register_buffer("calibration_scale", torch.ones(len(TARGETS)))
        self.register_buffer("calibration_bias", torch.zeros(len(TARGETS)))

    def encode(self, modality: str, *inputs: torch.Tensor) -> torch.Tensor:
        """One modality's encoder output ``(B, D)`` (no modality embedding)."""
        return self.encoders[modality](*inputs)

    def tokens(
        self,
        tabular_values: torch.Tensor,
        tabular_present: torch.Tensor,
        ecg: torch.Tensor,
        timeline_steps: torch.Tensor,
        timeline_mask: torch.Tensor,
        image: torch.Tensor,
        modality_mask: torch.Tensor,
    ) -> torch.Tensor:
        """Encode each present modality; ``(B, M, D)`` with zeros where absent.

        An encoder runs only on the records that hold its modality.
        """
        batch = tabular_values.shape[0]
        dim = self.summary_token.shape[-1]
        inputs = {
            "tabular": (tabular_values, tabular_present),
            "ecg": (ecg,),
            "timeline": (timeline_steps, timeline_mask),
            "imaging": (image,),
        }
        columns = []
        for index, name in enumerate(MODALITIES):
            rows = modality_mask[:, index].nonzero(as_tuple=True)[0]
            token = tabular_values.new_zeros(batch, dim)
            if rows.numel():
                encoded = self.encoders[name](*(x[rows] for x in inputs[name]))
                token = token.index_copy(0, rows, encoded)
            columns.append(token + self.modality_embedding[index])
        return torch.stack(columns, dim=1)

    def fused_state(
        self, tokens: torch.Tensor, modality_mask: torch.Tensor
    ) -> torch.Tensor:
        """Attend over present tokens; return the summary token's state ``(B, D)``."""
        batch = tokens.shape[0]
        summary = self.summary_token.expand(batch, -1, -1)
        sequence = torch.cat([summary, tokens], dim=1)
        keep = torch.cat(
            [modality_mask.new_ones(batch, 1), modality_mask.bool()], dim=1
        )
        # Absent tokens are hidden from attention by an additive -inf mask per
        # (record, head), the same as a key padding mask; PyTorch's key padding
        # check imports sympy on first use (~0.7 s on the first prediction).
        heads = self.fusion.layers[0].self_attn.num_heads
        length = sequence.shape[1]
        blocked = torch.zeros(keep.shape, dtype=sequence.dtype, device=sequence.device)
        blocked = blocked.masked_fill(~keep, float("-inf"))
        attn_mask = blocked[:, None, None, :].expand(batch, heads, length, length)
        hidden = self.fusion(
            sequence, mask=attn_mask.reshape(batch * heads, length, length)
        )
        return self.norm(hidden[:, 0])

    def forward(
        self,
        tabular_values: torch.Tensor,
        tabular_present: torch.Tensor,
        ecg: torch.Tensor,
        timeline_steps: torch.Tensor,
        timeline_mask: torch.Tensor,
        image: torch.Tensor,
        modality_mask: torch.Tensor,
    ) -> torch.Tensor:
        """Return calibrated logits ``(B, len(TARGETS))``: heads, then auxiliary."""
        tokens = self.tokens(
            tabular_values,
            tabular_present,
            ecg,
            timeline_steps,
            timeline_mask,
            image,
            modality_mask,
        )
        return self.outputs(tokens, modality_mask)

    def outputs(
        self, tokens: torch.Tensor, modality_mask: torch.Tensor
    ) -> torch.Tensor:
        """Calibrated logits of every target from the tokens ``(B, M, D)``.

        Each target sees the present modalities it covers. The fusion layers
        run once per distinct (record, visible modalities) pair: a record that
        holds only modalities every target covers is fused once for all.
        """
        layers = [*self.heads.values(), *self.auxiliary.values()]
        batch, n_modalities = modality_mask.shape
        patterns, pattern_of = torch.unique(
            self.coverage > 0.5, dim=0, return_inverse=True
        )
        visible = modality_mask.bool().unsqueeze(0) & patterns.unsqueeze(1)
        bits = 2 ** torch.arange(n_modalities, device=tokens.device)
        keys = (visible.long() * bits).sum(-1) + (
            torch.arange(batch, device=tokens.device) * 2**n_modalities
        )
        unique, inverse = torch.unique(keys.flatten(), return_inverse=True)
        rows = unique // 2**n_modalities
        seen = ((unique % 2**n_modalities).unsqueeze(1) & bits) > 0
        chosen = tokens[rows]
        state = self.fused_state(chosen, seen)
        present = chosen * seen.unsqueeze(-1).to(tokens.dtype)
        features = torch.cat([state, present.flatten(start_dim=1)], dim=1)
        per_pattern = features[inverse].reshape(len(patterns), batch, -1)
        logits = torch.cat(
            [layer(per_pattern[pattern_of[i]]) for i, layer in enumerate(layers)],
            dim=1,
        )
        return logits * self.calibration_scale + self.calibration_bias


def _projector(dim: int) -> nn.Module:
    return nn.Sequential(nn.Linear(dim, dim), nn.GELU(), nn.Linear(dim, dim))


def coverage_counts(inputs: ModelInputs) -> torch.Tensor:
    """``(T, M)``: training records labelled for each target holding each modality."""
    return inputs.label_mask.float().T @ inputs.modality_mask.float()


def set_coverage(model: FusedRiskModel, inputs: ModelInputs) -> None:
    """Add the modalities ``inputs`` teach each target to the model's coverage."""
    learned = (coverage_counts(inputs) > 0).to(model.coverage.dtype)
    model.coverage.copy_(torch.maximum(model.coverage, learned))


def masked_multitask_loss(
    logits: torch.Tensor,
    labels: torch.Tensor,
    label_mask: torch.Tensor,
    target_weights: torch.Tensor | None = None,
) -> torch.Tensor:
    """Binary cross-entropy averaged per target over the records labelled for it.

    A record contributes only to the targets it has labels for; targets with no
    labelled record in the batch contribute nothing.

    Parameters
    ----------
    logits, labels : torch.Tensor
        ``(B, T)`` logits and 0/1 targets.
    label_mask : torch.Tensor
        ``(B, T)`` bool, True where the target is known.
    target_weights : torch.Tensor, optional
        ``(T,)`` weight of each target's mean loss (default 1 each).

    Returns
    -------
    torch.Tensor
        Scalar loss (weighted sum over targets of each target's mean).
    """
    weights = label_mask.float()
    losses = nn.functional.binary_cross_entropy_with_logits(
        logits, labels, reduction="none"
    )
    per_target = (losses * weights).sum(dim=0) / weights.sum(dim=0).clamp(min=1.0)
    if target_weights is not None:
        per_target = per_target * target_weights
    return per_target.sum()


def target_weights(auxiliary_weight: float) -> torch.Tensor:
    """``(T,)``: 1 for each head, ``auxiliary_weight`` for each auxiliary target."""
    return torch.tensor(
        [1.0] * len(HEADS) + [auxiliary_weight] * len(AUXILIARY_TARGETS)
    )


def drop_modalities(
    modality_mask: torch.Tensor,
    probability: float,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Hide each present modality with ``probability``, always keeping one per record.

    Returns
    -------
    torch.Tensor
        A new bool mask, a subset of ``modality_mask``.
    """
    if probability <= 0:
        return modality_mask
    present = modality_mask.bool()
    draw = torch.rand(present.shape, generator=generator, device=present.device)
    kept = present & (draw >= probability)
    # Records that lost every modality keep their highest-scoring present one.
    empty = ~kept.any(dim=1) & present.any(dim=1)
    if empty.any():
        choice = torch.where(present, draw, torch.full_like(draw, -1.0)).argmax(dim=1)
        kept[empty, choice[empty]] = True
    return kept


def drop_leads(
    ecg: torch.Tensor, probability: float, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Zero each lead of ``(B, leads, samples)`` ECGs with ``probability``.

    A lead off or too noisy to read reaches the model as zeros; seeing such
    leads in training teaches it that a zero lead is missing, not normal or
    abnormal, and to read each territory from more than one lead.

    Returns
    -------
    torch.Tensor
        A new tensor; ``ecg`` itself when ``probability`` is 0.
    """
    if probability <= 0:
        return ecg
    batch, leads = ecg.shape[:2]
    draw = torch.rand(batch, leads, 1, generator=generator, device=ecg.device)
    return ecg * (draw >= probability)


STAGES = ("pretraining", "alignment", "supervised")


def training_counts(
    model: FusedRiskModel, inputs: ModelInputs, stage: str = "supervised"
) -> dict[str, torch.Tensor]:
    """How many examples trained each parameter element, broadcastable to its shape.

    Sites hold different modalities, labels and features, and a parameter only
    learns from the records that reach it: a modality encoder from records
    holding that modality, a head (or auxiliary output) from records labelled
    for it, and each input column of the tabular encoder's first layer from
    records where that feature was measured (an absent feature enters as 0 and
    gets no gradient). The coverage buffer counts, per target and modality, the
    labelled records holding it, so the global coverage is the union of the
    sites'. Everything else learns from every record. Federated aggregation
    weights by these counts.

    A stage trains only its own parts: pretraining the encoders and their
    pretext heads, alignment the encoders and projectors of records holding two
    or more modalities, supervised tuning everything but those stage heads.
    What a stage does not train counts 0 (the global value is kept).

    Parameters
    ----------
    model : FusedRiskModel
    inputs : ModelInputs
        The site's training inputs.
    stage : str
        One of `STAGES`.

    Returns
    -------
    dict
        State-dict name -> count tensor of the parameter's rank.
    """
    if stage not in STAGES:
        raise ValueError(f"stage '{stage}' unknown; expected one of {list(STAGES)}")
    held = inputs.modality_mask
    if stage == "alignment":
        held = held & (held.sum(dim=1, keepdim=True) >= 2)
    modality_counts = held.sum(dim=0).float()
    label_counts = inputs.label_mask.sum(dim=0).float()
    with_tabular = held[:, MODALITIES.index("tabular")]
    feature_counts = inputs.tabular_present[with_tabular].sum(dim=0).float()
    first_layer = model.encoders["tabular"].net[0].weight
    zero = torch.tensor(0.0)
    counts = {}
    for name, tensor in model.state_dict(keep_vars=True).items():
        part, _, rest = name.partition(".")
        modality = rest.partition(".")[0]
        if tensor is first_layer:
            count = torch.cat([feature_counts, feature_counts]).unsqueeze(0)
        elif part == "encoders":
            count = modality_counts[MODALITIES.index(modality)]
        elif part in {"pretext", "alignment"}:
            trains = {"pretext": "pretraining", "alignment": "alignment"}[part]
            count = modality_counts[MODALITIES.index(modality)]
            count = count if stage == trains else zero
        elif stage != "supervised":
            count = zero
        elif part in {"heads", "auxiliary"}:
            count = label_counts[TARGETS.index(modality)]
        elif name == "coverage":
            count = coverage_counts(inputs)
        else:
            count = torch.tensor(float(len(inputs)))
        counts[name] = count.reshape(
            [1] * (tensor.dim() - count.dim()) + list(count.shape)
        )
    return counts
