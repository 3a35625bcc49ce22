"""Framingham teaching set: a landmark record per exam, incident stroke."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ingest.config import FeatureSpec
from ingest.errors import QuarantineItem
from ingest.features import FeatureWriter
from ingest.schema import PatientRecord, TimelineStep
from ingest.tables import numeric_columns, quarantine_rows, read_table, require_columns

DAYS_PER_YEAR = 365.25
REQUIRED = [
    "RANDID",
    "PERIOD",
    "TIME",
    "STROKE",
    "TIMESTRK",
    "PREVSTRK",
    "DEATH",
    "TIMEDTH",
]
# Framingham column -> registry feature (all already in canonical units).
COLUMN_FEATURES = {
    "AGE": "age",
    "SYSBP": "systolic_bp",
    "DIABP": "diastolic_bp",
    "TOTCHOL": "total_cholesterol",
    "HDLC": "hdl_cholesterol",
    "GLUCOSE": "glucose",
    "BMI": "bmi",
    "HEARTRTE": "heart_rate",
    "CURSMOKE": "current_smoker",
    "CIGPDAY": "cigarettes_per_day",
    "BPMEDS": "bp_medication",
    "DIABETES": "diabetes",
    "PREVCHD": "prior_chd",
    "PREVMI": "prior_mi",
    "PREVAP": "prior_angina",
    "PREVHYP": "hypertension",
}


def stroke_label(exam: pd.Series, horizon_days: float) -> int | None:
    """Label one exam: first stroke within the horizon after it.

    Uses only outcome times, never features from later exams. A participant who
    died stroke-free within the horizon is a negative (competing risk); one whose
    follow-up ends stroke-free and alive before the horizon has no label.
    """
    time_to_stroke = exam.TIMESTRK - exam.TIME
    if exam.STROKE == 1 and time_to_stroke <= horizon_days:
        return 1
    if time_to_stroke > horizon_days:
        return 0
    if exam.DEATH == 1 and exam.TIMEDTH - exam.TIME <= horizon_days:
        return 0
    return None


def read_framingham(
    path: Path,
    site: str,
    horizon_years: float,
    registry: dict[str, FeatureSpec],
    quarantine: list[QuarantineItem],
) -> list[PatientRecord]:
    """Read ``frmgham2.csv`` as one record per stroke-free exam.

    Each exam is a landmark: its own values are the tabular features, earlier
    exams form the EHR timeline, and the label is a first stroke within
    ``horizon_years`` after the exam. Exams at or after a stroke are excluded.

    Parameters
    ----------
    path : Path
        The CSV file.
    site : str
        Site name.
    horizon_years : float
        Prediction horizon in years.
    registry : dict
        Feature registry.
    quarantine : list
        Receives implausible values and unlabelled exams with reasons.

    Returns
    -------
    list of PatientRecord
    """
    table = read_table(path)
    require_columns(table.columns, REQUIRED + ["SEX", *COLUMN_FEATURES], path.name)
    ids = (
        "framingham:" + table["RANDID"].astype(str) + ":" + table["PERIOD"].astype(str)
    )
    table = numeric_columns(
        table, REQUIRED + ["SEX", *COLUMN_FEATURES], "framingham", ids, quarantine
    )
    table = quarantine_rows(
        table,
        table[["RANDID", "PERIOD", "TIME", "TIMESTRK"]].isna().any(axis=1),
        "framingham",
        ids,
        "RANDID/PERIOD/TIME/TIMESTRK",
        "identifier or time missing",
        quarantine,
    )
    writer = FeatureWriter(registry, "framingham", quarantine)
    horizon_days = horizon_years * DAYS_PER_YEAR
    records = []
    for person, exams in table.sort_values(["RANDID", "PERIOD"]).groupby("RANDID"):
        history: list[tuple[float, dict[str, float]]] = []
        for exam in exams.itertuples(index=False):
            record_id = f"{site}:{person}:{exam.PERIOD}"

            # Step 1: the exam's own values.
            features: dict[str, float] = {}
            writer.put(features, record_id, "sex_male", float(exam.SEX == 1))
            for column, name in COLUMN_FEATURES.items():
                writer.put(features, record_id, name, getattr(exam, column))

            # Step 2: exams at or after a stroke are not at risk of a first stroke.
            at_risk = exam.PREVSTRK == 0 and exam.TIMESTRK > exam.TIME
            label = stroke_label(exam, horizon_days) if at_risk else None
            if at_risk and label is None:
                quarantine.append(
                    QuarantineItem(
                        "framingham", record_id, "TIMESTRK",
                        "follow-up ends before the horizon without stroke or death",
                    )
                )  # fmt: skip
            if label is not None:
                # Step 3: earlier exams, most recent first, as the timeline.
                timeline = [
                    TimelineStep(
                        years_before=(exam.TIME - time) / DAYS_PER_YEAR,
                        values=dict(values),
                    )
                    for time, values in reversed(history)
                ]
                records.append(
                    PatientRecord(
                        record_id=record_id,
                        patient_id=f"{site}:{person}",
                        site=site,
                        source="framingham",
                        features=features,
                        timeline=timeline,
                        labels={"stroke": label},
                    )
                )
            history.append((float(exam.TIME), features))
    return records
