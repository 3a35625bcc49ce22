"""Turning attributions into the top reasons, named in clinical terms with units."""

from __future__ import annotations

from explain.attributions import Attribution
from ingest.config import DataConfig
from ingest.schema import PatientRecord


def reasons(
    attribution: Attribution, record: PatientRecord, data: DataConfig, top: int = 5
) -> list[dict]:
    """The ``top`` inputs with the largest absolute attribution.

    Tabular features come with the patient's value and unit; the ECG is summed per
    lead (``ecg:<lead>``); the timeline per earlier visit (``timeline:<n>``, the
    n-th most recent). Clinical names are the presentation layer's to add.

    Returns
    -------
    list of dict
        Keys ``name``, ``value``, ``unit``, ``modality``, ``attribution`` (logit
        scale) and ``direction``.
    """
    items = []
    for column, name in enumerate(data.features):
        if name in record.features:
            spec = data.features[name]
            items.append(
                {
                    "name": name,
                    "value": record.features[name],
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
    items.sort(key=lambda item: abs(item["attribution"]), reverse=True)
    for item in items:
        item["direction"] = "raises" if item["attribution"] >= 0 else "lowers"
    return items[:top]
