"""Anomalies per source: labs and vitals, and ECG measurements, out of range.

Labs and vitals are checked against reference ranges, ECG measurements
(neurokit2, `ingest.ecg_measurements`) against normal limits. Each anomaly
names its source, the value and unit, and the limit it crosses, so a clinician
can check it against the chart. The ranges are in
``configs/reference_ranges.yaml`` with their sources; they name findings, they
do not diagnose. ST changes follow the Fourth Universal Definition of MI:
elevation at or above 0.1 mV (V2-V3: by sex and age) or depression at or above
0.05 mV, and a territory is named when two contiguous leads show the same
change (`ingest.ecg_measurements.contiguous_territories`). Pathological Q waves
(`ingest.ecg_measurements.pathological_q`: duration, depth, QS complex) are
named by territory; a lone Q wave (often normal in III, aVL or V1) only when
the ECG infarct criteria count its lead, beside an ST elevation.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from pathlib import Path

from ingest.config import DataConfig, load_yaml
from ingest.ecg_measurements import (
    Q_DEPTH_MV,
    ST_DEPRESSION_MV,
    ECGMeasurements,
    contiguous_territories,
    infarct_sign_leads,
    measure,
    pathological_q,
    st_elevation_limit,
)
from ingest.schema import PatientRecord

ECG_UNITS = {"heart_rate_bpm": "/min", "pr_ms": "ms", "qrs_ms": "ms", "qtc_ms": "ms"}


@dataclass(frozen=True)
class Anomaly:
    """One value outside its reference range.

    Attributes
    ----------
    source : str
        ``lab`` (labs and vitals of the record), ``visit`` (of an earlier visit
        of its timeline) or ``ecg`` (measured on the ECG).
    name : str
        The feature or measurement (``creatinine``, ``qtc_ms``), or
        ``st_elevation:<lead>`` / ``st_depression:<lead>``, or
        ``st_elevation:<territory>`` when two contiguous leads show it, or
        ``q_wave:<territory>`` for pathological Q waves in two of its leads.
    value : float
        The patient's value (for a territory: the largest of its leads; for Q
        waves, the deepest, in mV).
    unit : str
    direction : str
        ``high`` or ``low``.
    limit : float
        The limit crossed.
    leads : tuple of str
        The leads showing it (territories only).
    years_before : float, optional
        For a ``visit`` anomaly, how long before the record the visit was.
    """

    source: str
    name: str
    value: float
    unit: str
    direction: str
    limit: float
    leads: tuple[str, ...] = ()
    years_before: float | None = None

    def as_dict(self) -> dict:
        """JSON-ready form."""
        out = asdict(self)
        out["leads"] = list(self.leads)
        return out


def load_reference_ranges(config_dir: Path | None = None) -> dict:
    """``configs/reference_ranges.yaml``."""
    return load_yaml("reference_ranges", config_dir)


def anomalies(
    record: PatientRecord,
    data: DataConfig,
    ranges: dict | None = None,
    measurements: ECGMeasurements | None = None,
) -> list[Anomaly]:
    """Every anomaly of the record: its labs and vitals, its earlier visits', its ECG.

    Parameters
    ----------
    record : PatientRecord
    data : DataConfig
        Canonical units of the features.
    ranges : dict, optional
        `load_reference_ranges` (read when not given).
    measurements : ECGMeasurements, optional
        The ECG's measurements, when already made (measured here otherwise).
    """
    ranges = ranges if ranges is not None else load_reference_ranges()
    male = record.features.get("sex_male")
    found = lab_anomalies(record.features, data, ranges["labs"], male)
    for step in record.timeline:
        found += [
            replace(anomaly, source="visit", years_before=step.years_before)
            for anomaly in lab_anomalies(step.values, data, ranges["labs"], male)
        ]
    if record.ecg is not None:
        measured = measurements if measurements is not None else measure(record.ecg)
        if measured is not None:
            found += ecg_anomalies(
                measured, ranges["ecg"], male, record.features.get("age")
            )
    return found


def lab_anomalies(
    features: dict[str, float],
    data: DataConfig,
    ranges: dict,
    male: float | None = None,
) -> list[Anomaly]:
    """Labs and vitals outside their range (the male or female one where known)."""
    units = {
        name: spec.unit
        for name, spec in {**data.features, **data.recorded_features}.items()
    }
    found = []
    for name, limits in ranges.items():
        if name not in features:
            continue
        found += _outside(
            "lab", name, features[name], units.get(name, ""), _by_sex(limits, male)
        )
    return found


def ecg_anomalies(
    measured: ECGMeasurements,
    ranges: dict,
    male: float | None = None,
    age: float | None = None,
) -> list[Anomaly]:
    """Rate and intervals out of limits; ST and Q-wave changes by lead and territory.

    ST changes are listed per lead and per territory; pathological Q waves per
    territory, and per lead only where the infarct criteria count a lone one
    (`ingest.ecg_measurements.infarct_sign_leads`).
    """
    found = []
    for name, unit in ECG_UNITS.items():
        value = getattr(measured, name)
        if value is not None and name in ranges:
            found += _outside("ecg", name, value, unit, _by_sex(ranges[name], male))
    elevated, depressed = {}, {}
    for lead, deviation in measured.st_deviation_mv.items():
        limit = st_elevation_limit(lead, male, age)
        if deviation >= limit:
            elevated[lead] = deviation
            found.append(
                Anomaly("ecg", f"st_elevation:{lead}", deviation, "mV", "high", limit)
            )
        elif deviation <= -ST_DEPRESSION_MV:
            depressed[lead] = deviation
            found.append(
                Anomaly(
                    "ecg",
                    f"st_depression:{lead}",
                    deviation,
                    "mV",
                    "low",
                    -ST_DEPRESSION_MV,
                )
            )
    q_waves = {
        lead: m.q_depth_mv
        for lead, m in measured.leads.items()
        if pathological_q(lead, m)
    }
    for change, shown, direction, limit in (
        ("st_elevation", elevated, "high", 0.0),
        ("st_depression", depressed, "low", 0.0),
        ("q_wave", q_waves, "high", Q_DEPTH_MV),
    ):
        for territory, hit in contiguous_territories(shown):
            values = [shown[lead] for lead in hit]
            extreme = min(values) if direction == "low" else max(values)
            found.append(
                Anomaly(
                    "ecg", f"{change}:{territory}", extreme, "mV", direction, limit, hit
                )
            )
    named_q = {lead for _, hit in contiguous_territories(q_waves) for lead in hit}
    # A lone Q wave is named only when the infarct criteria count its lead (an
    # ST elevation beside it), so every lead they count is shown.
    for lead in infarct_sign_leads(measured, male, age):
        if lead in q_waves and lead not in named_q:
            found.append(
                Anomaly(
                    "ecg", f"q_wave:{lead}", q_waves[lead], "mV", "high", Q_DEPTH_MV
                )
            )
    return found


def _by_sex(limits: dict, male: float | None) -> dict:
    """The range for the patient's sex (the general one when sex is unknown)."""
    if male is not None and male >= 0.5 and "male" in limits:
        return limits["male"]
    if male is not None and male < 0.5 and "female" in limits:
        return limits["female"]
    return {k: v for k, v in limits.items() if k in ("low", "high")}


def _outside(
    source: str, name: str, value: float, unit: str, limits: dict
) -> list[Anomaly]:
    if "high" in limits and value > limits["high"]:
        return [Anomaly(source, name, value, unit, "high", float(limits["high"]))]
    if "low" in limits and value < limits["low"]:
        return [Anomaly(source, name, value, unit, "low", float(limits["low"]))]
    return []
