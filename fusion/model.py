"""The fused risk model: one token per present modality, attention, four heads."""

from __future__ import annotations

import torch
from torch import nn

from fusion.config import ModelConfig
from ingest.config import DataConfig
from ingest.schema import HEADS
from modalities.batch import MODALITIES, ModelInputs
from modalities.ecg import ECGEncoder
from modalities.tabular import TabularEncoder
from modalities.timeline import TimelineEncoder


class FusedRiskModel(nn.Module):
    """Encoders per modality, a transformer over the present tokens, a head per outcome.

    A learned summary token attends over the tokens of the modalities a record
    holds (absent ones are masked out of attention, not zero-filled). Every head
    reads the summary token's final state together with the present tokens
    themselves (absent ones as zeros), so it can weigh each modality's own
    evidence beside the fused one.

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
        self.heads = nn.ModuleDict(
            {head: nn.Linear(dim * (1 + len(MODALITIES)), 1) for head in HEADS}
        )

    def tokens(
        self,
        tabular_values: torch.Tensor,
        tabular_present: torch.Tensor,
        ecg: torch.Tensor,
        timeline_steps: torch.Tensor,
        timeline_mask: torch.Tensor,
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
        modality_mask: torch.Tensor,
    ) -> torch.Tensor:
        """Return logits ``(B, len(HEADS))`` for a batch of model inputs."""
        tokens = self.tokens(
            tabular_values,
            tabular_present,
            ecg,
            timeline_steps,
            timeline_mask,
            modality_mask,
        )
        state = self.fused_state(tokens, modality_mask)
        present = tokens * modality_mask.unsqueeze(-1).to(tokens.dtype)
        features = torch.cat([state, present.flatten(start_dim=1)], dim=1)
        return torch.cat([self.heads[head](features) for head in HEADS], dim=1)


def masked_multitask_loss(
    logits: torch.Tensor, labels: torch.Tensor, label_mask: torch.Tensor
) -> torch.Tensor:
    """Binary cross-entropy averaged per head over the records labelled for it.

    A record contributes only to the heads it has labels for; heads with no
    labelled record in the batch contribute nothing.

    Parameters
    ----------
    logits, labels : torch.Tensor
        ``(B, H)`` logits and 0/1 targets.
    label_mask : torch.Tensor
        ``(B, H)`` bool, True where the target is known.

    Returns
    -------
    torch.Tensor
        Scalar loss (sum over heads of each head's mean).
    """
    weights = label_mask.float()
    losses = nn.functional.binary_cross_entropy_with_logits(
        logits, labels, reduction="none"
    )
    per_head = (losses * weights).sum(dim=0) / weights.sum(dim=0).clamp(min=1.0)
    return per_head.sum()


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


def training_counts(
    model: FusedRiskModel, inputs: ModelInputs
) -> dict[str, torch.Tensor]:
    """How many examples trained each parameter element, broadcastable to its shape.

    Sites hold different modalities, labels and features, and a parameter only
    learns from the records that reach it: a modality encoder from records
    holding that modality, a head from records labelled for it, and each input
    column of the tabular encoder's first layer from records where that feature
    was measured (an absent feature enters as 0 and gets no gradient). Everything
    else learns from every record. Federated aggregation weights by these counts.

    Parameters
    ----------
    model : FusedRiskModel
    inputs : ModelInputs
        The site's training inputs.

    Returns
    -------
    dict
        State-dict name -> count tensor of the parameter's rank.
    """
    modality_counts = inputs.modality_mask.sum(dim=0).float()
    label_counts = inputs.label_mask.sum(dim=0).float()
    feature_counts = inputs.tabular_present.sum(dim=0).float()
    first_layer = model.encoders["tabular"].net[0].weight
    counts = {}
    for name, tensor in model.state_dict(keep_vars=True).items():
        parts = name.split(".")
        if tensor is first_layer:
            count = torch.cat([feature_counts, feature_counts]).unsqueeze(0)
        elif parts[0] == "encoders":
            count = modality_counts[MODALITIES.index(parts[1])]
        elif parts[0] == "heads":
            count = label_counts[HEADS.index(parts[1])]
        else:
            count = torch.tensor(float(len(inputs)))
        counts[name] = count.reshape(
            [1] * (tensor.dim() - count.dim()) + list(count.shape)
        )
    return counts
