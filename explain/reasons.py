"""Turning attributions into the top reasons, named in clinical terms with units."""

from __future__ import annotations

from explain.attributions import Attribution
from ingest.clinical_scores import with_scores
from ingest.config import DataConfig
from ingest.ontology import Ontology
from ingest.schema import PatientRecord


def reasons(
    attribution: Attribution,
    record: PatientRecord,
    data: DataConfig,
    top: int = 5,
    ontology: Ontology | None = None,
) -> list[dict]:
    """The ``top`` inputs with the largest absolute attribution.

    Tabular features come with the patient's value and unit (guideline scores
    with the points computed from the record); the ECG is summed per lead
    (``ecg:<lead>``); the timeline per earlier visit (``timeline:<n>``, the n-th
    most recent); the image as a whole (``image``). Clinical names are the
    presentation layer's to add.

    Parameters
    ----------
    attribution : Attribution
    record : PatientRecord
    data : DataConfig
    top : int
        Reasons kept.
    ontology : Ontology, optional
        Names the clinical concept (and its SNOMED CT code) each tabular
        reason belongs to.

    Returns
    -------
    list of dict
        Keys ``name``, ``value``, ``unit``, ``modality``, ``attribution`` (logit
        scale), ``direction``, and ``concept`` / ``concept_snomed`` (None when
        the input belongs to no concept).
    """
    items = []
    features = with_scores(record.features)
    for column, name in enumerate(data.features):
        if name in features:
            spec = data.features[name]
            items.append(
                {
                    "name": name,
                    "value": features[name],
                    "unit": "" if spec.unit == "flag" else spec.unit,
                    "modality": "tabular",
                    "attribution": float(attribution.tabular[column]),
                }
            )
    if record.ecg is not None:
        per_lead = attribution.ecg.sum(dim=1)
        for row, lead in enumerate(data.ecg.leads):
            items.append(
                {
                    "name": f"ecg:{lead}",
                    "value": None,
                    "unit": "",
                    "modality": "ecg",
                    "attribution": float(per_lead[row]),
                }
            )
    if record.timeline:
        per_step = attribution.timeline.sum(dim=1)
        n_slots = per_step.shape[0]
        for offset in range(min(n_slots, len(record.timeline))):
            items.append(
                {
                    "name": f"timeline:{offset}",
                    "value": None,
                    "unit": "",
                    "modality": "timeline",
                    "attribution": float(per_step[n_slots - 1 - offset]),
                }
            )
    if record.images:
        items.append(
            {
                "name": "image",
                "value": None,
                "unit": "",
                "modality": "imaging",
                "attribution": float(attribution.image.sum()),
            }
        )
    # An input with no influence at all (e.g. a modality this head never
    # learned from) is not a reason.
    items = [item for item in items if item["attribution"] != 0.0]
    items.sort(key=lambda item: abs(item["attribution"]), reverse=True)
    for item in items:
        item["direction"] = "raises" if item["attribution"] >= 0 else "lowers"
        concept = (
            ontology.concept_of_feature(item["name"])
            if ontology is not None and item["modality"] == "tabular"
            else None
        )
        item["concept"] = concept
        item["concept_snomed"] = ontology.concepts[concept].snomed if concept else None
    return items[:top]
