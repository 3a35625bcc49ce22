"""One prediction's explanation, from input to decision, as structured data.

For each head: the risk; the modalities it read and those it would have read
but the record lacks, with the held-out AUROC of the head on records holding
just what this one holds (how the missing data weighs on confidence); each
modality's exact Shapley share; the top inputs by Integrated Gradients and by
Feature Ablation (and how far the two agree); per ECG lead and per earlier
visit, both methods; the clinical concepts the record's internal state aligns
with (TCAV); and the traditional score beside it with both held-out AUROCs.
For the record: the anomalies of each source. Words come later, from the
message catalog (`app.explanation_text`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from pydantic import BaseModel, Field

from explain.anomalies import anomalies, load_reference_ranges
from explain.attributions import (
    Attribution,
    feature_ablation_heads,
    integrated_gradients,
)
from explain.concepts import ConceptBank, concept_alignment
from explain.contributions import modality_shapley
from explain.reasons import reasons
from fusion.model import FusedRiskModel
from ingest.clinical_scores import with_scores
from ingest.config import DataConfig, load_yaml
from ingest.ecg_measurements import ECGMeasurements, infarct_sign_leads, measure
from ingest.ontology import Ontology
from ingest.schema import HEADS, PatientRecord
from modalities.batch import MODALITIES, encode_records


class AttributionSettings(BaseModel):
    """``attributions`` of ``configs/explain.yaml``."""

    ig_steps: int = Field(32, gt=1)
    ecg_window_s: float = Field(1.0, gt=0)
    top: int = Field(5, gt=0)


class ExplainSettings(BaseModel):
    """``configs/explain.yaml``: attributions and the traditional score per head."""

    attributions: AttributionSettings = Field(default_factory=AttributionSettings)
    clinical_scores: dict[str, list[str]] = Field(default_factory=dict)


def load_explain_settings(config_dir: Path | None = None) -> ExplainSettings:
    """``configs/explain.yaml`` (its ``concepts`` block is `ConceptSettings`)."""
    raw = load_yaml("explain", config_dir)
    return ExplainSettings.model_validate(
        {k: raw[k] for k in ("attributions", "clinical_scores") if k in raw}
    )


@dataclass
class VersionFacts:
    """What a model version knows of itself that an explanation quotes.

    Attributes
    ----------
    evaluation : dict
        Head -> held-out ``auroc``, ``auroc_ci``, ``best_baseline_auroc``.
    subsets : list of dict
        Held-out AUROC per head with only each modality subset visible
        (`fusion.subsets.fused_subsets`).
    """

    evaluation: dict[str, dict]
    subsets: list[dict]

    @classmethod
    def of(cls, metadata: dict) -> VersionFacts:
        """From a version's metadata (older versions lack some parts)."""
        return cls(
            metadata.get("evaluation", {}),
            metadata.get("subsets", []),
        )


def explain_record(
    model: FusedRiskModel,
    record: PatientRecord,
    data: DataConfig,
    ontology: Ontology,
    facts: VersionFacts,
    bank: ConceptBank | None = None,
    settings: ExplainSettings | None = None,
    ranges: dict | None = None,
    measurements: ECGMeasurements | None = None,
) -> dict:
    """The whole explanation of one record's prediction, JSON-ready.

    Parameters
    ----------
    model : FusedRiskModel
    record : PatientRecord
    data : DataConfig
    ontology : Ontology
    facts : VersionFacts
        Held-out figures of the model version (what each head reads comes
        from the model's own coverage).
    bank : ConceptBank, optional
        The version's learned concepts (none: no concept is listed).
    settings : ExplainSettings, optional
    ranges : dict, optional
        Reference ranges (`explain.anomalies.load_reference_ranges`).
    measurements : ECGMeasurements, optional
        The ECG's measurements when already made.

    Returns
    -------
    dict
        ``modalities_present``, ``anomalies``, ``ecg_infarct_leads`` (the
        leads meeting the ECG infarct criteria), ``ecg`` (lead x time
        attributions of the ECG head, or None) and ``heads``.
    """
    settings = settings or load_explain_settings()
    ranges = ranges if ranges is not None else load_reference_ranges()
    inputs = encode_records([record], data)
    present = [m for i, m in enumerate(MODALITIES) if bool(inputs.modality_mask[0, i])]
    model.eval()
    with torch.no_grad():
        risks = torch.sigmoid(model(*inputs.forward_args()))[0]
        nothing = inputs.select(slice(0, 1))
        nothing.modality_mask = torch.zeros_like(nothing.modality_mask)
        baseline_risks = torch.sigmoid(model(*nothing.forward_args()))[0]
    shares = modality_shapley(model, inputs)
    aligned = concept_alignment(model, bank, inputs)
    for items in aligned.values():
        for item in items:
            # A lab concept (learned from lab cut-offs, not from ECG labels) is
            # claimed only when one of its labs was given.
            concept = ontology.concepts[item["concept"]]
            labs = set(concept.thresholds) if concept.ptbxl_class is None else set()
            item["measured"] = not labs or bool(labs & set(record.features))
            item["aligns"] = item["aligns"] and item["measured"]
    if record.ecg is not None and measurements is None:
        measurements = measure(record.ecg)
    scores = with_scores(record.features)
    # The leads of the ECG infarct criteria (ST elevation or pathological Q waves
    # in contiguous leads): the acute-MI head's traditional tool counts them.
    signs = []
    if measurements is not None:
        signs = infarct_sign_leads(
            measurements, record.features.get("sex_male"), record.features.get("age")
        )
        scores["score_ecg_criteria"] = float(len(signs))
    heads, ecg_maps = [], None
    # What each head reads: the present modalities it learned from (its coverage).
    covered = {
        index: [m for j, m in enumerate(MODALITIES) if model.coverage[index, j] > 0.5]
        for index in range(len(HEADS))
    }
    reads = {index: [m for m in present if m in c] for index, c in covered.items()}
    reading = [index for index, read in reads.items() if read]
    ablations = dict(
        zip(
            reading,
            feature_ablation_heads(
                model,
                inputs,
                reading,
                ecg_window_s=settings.attributions.ecg_window_s,
                fs=data.ecg.fs,
            )
            if reading
            else [],
            strict=True,
        )
    )
    for index, head in enumerate(HEADS):
        read = reads[index]
        entry = {
            "head": head,
            "risk": float(risks[index]),
            "risk_with_no_data": float(baseline_risks[index]),
            "modalities_read": read,
            "modalities_missing": [m for m in covered[index] if m not in present],
            "modalities_not_used": [m for m in present if m not in read],
            "modality_shares": {m: v for m, v in shares[index].items() if m in read},
            "confidence": _confidence(head, read, facts),
            "clinical_scores": [
                {"name": name, "value": scores[name]}
                | ({"leads": signs} if name == "score_ecg_criteria" else {})
                for name in settings.clinical_scores.get(head, [])
                if name in scores
            ],
            "clinical_scores_configured": settings.clinical_scores.get(head, []),
            "best_tool_held_out_auroc": facts.evaluation.get(head, {}).get(
                "best_baseline_auroc"
            ),
            "best_tool": facts.evaluation.get(head, {}).get("best_baseline"),
            "gain_over_best_tool_ci": facts.evaluation.get(head, {}).get("gain_ci"),
            "concepts": aligned[head],
        }
        if read:
            ig = integrated_gradients(
                model, inputs, index, n_steps=settings.attributions.ig_steps
            )
            ablated = ablations[index]
            top = settings.attributions.top
            by_ig = reasons(ig, record, data, top=top, ontology=ontology)
            by_fa = reasons(ablated, record, data, top=top, ontology=ontology)
            entry["integrated_gradients"] = {
                "reasons": by_ig,
                "completeness_error": ig.delta,
            }
            entry["feature_ablation"] = {"reasons": by_fa}
            entry["methods_agree_on"] = sorted(
                {r["name"] for r in by_ig} & {r["name"] for r in by_fa}
            )
            entry["ecg_leads"] = _per_lead(ig, ablated, record, data)
            entry["timeline"] = _per_visit(ig, ablated, record)
            if record.ecg is not None and "ecg" in read and ecg_maps is None:
                ecg_maps = {
                    "head": head,
                    "leads": list(data.ecg.leads),
                    "fs": data.ecg.fs,
                    "signal": _rounded(inputs.ecg[0]),
                    "integrated_gradients": _rounded(ig.ecg),
                    "feature_ablation": _rounded(ablated.ecg),
                }
        heads.append(entry)
    return {
        "modalities_present": present,
        "modalities_absent": [m for m in MODALITIES if m not in present],
        "anomalies": [
            a.as_dict() for a in anomalies(record, data, ranges, measurements)
        ],
        "ecg_infarct_leads": signs,
        "ecg": ecg_maps,
        "heads": heads,
    }


def _confidence(head: str, read: list[str], facts: VersionFacts) -> dict:
    """Held-out AUROC of the head overall and on records holding just ``read``."""
    overall = facts.evaluation.get(head, {})
    subset = next(
        (
            row
            for row in facts.subsets
            if row["head"] == head and sorted(row["modalities"]) == sorted(read)
        ),
        None,
    )
    return {
        "held_out_auroc": overall.get("auroc"),
        "held_out_auroc_ci": overall.get("auroc_ci"),
        "subset": read,
        "subset_auroc": subset["fused_auroc"] if subset else None,
        "subset_auroc_ci": subset["fused_auroc_ci"] if subset else None,
        "subset_n": subset["n"] if subset else None,
    }


def _per_lead(
    ig: Attribution, ablated: Attribution, record: PatientRecord, data: DataConfig
) -> list[dict]:
    """Both methods summed per ECG lead, largest Integrated Gradients first."""
    if record.ecg is None or not float(ig.ecg.abs().sum()):
        return []
    rows = [
        {
            "lead": lead,
            "integrated_gradients": float(ig.ecg[row].sum()),
            "feature_ablation": float(ablated.ecg[row].sum()),
        }
        for row, lead in enumerate(data.ecg.leads)
        # A lead with no effect by either method (a flat, lead-off lead) is none.
        if float(ig.ecg[row].abs().sum()) or float(ablated.ecg[row].abs().sum())
    ]
    return sorted(rows, key=lambda r: abs(r["integrated_gradients"]), reverse=True)


def _per_visit(
    ig: Attribution, ablated: Attribution, record: PatientRecord
) -> list[dict]:
    """Both methods summed per earlier visit, most recent first, with its date."""
    if not record.timeline or not float(ig.timeline.abs().sum()):
        return []
    slots = ig.timeline.shape[0]
    out = []
    for offset, step in enumerate(record.timeline[:slots]):
        slot = slots - 1 - offset
        out.append(
            {
                "visit": offset,
                "years_before": step.years_before,
                "integrated_gradients": float(ig.timeline[slot].sum()),
                "feature_ablation": float(ablated.timeline[slot].sum()),
            }
        )
    return out


def _rounded(values: torch.Tensor, decimals: int = 5) -> list:
    """A tensor as nested lists, rounded (the JSON a dashboard draws from)."""
    return torch.round(values, decimals=decimals).tolist()
