"""The Kaggle stroke table: prevalent stroke from demographics, history and labs."""

from __future__ import annotations

import functools
from pathlib import Path

from ingest.config import FeatureSpec
from ingest.errors import QuarantineItem
from ingest.features import FeatureWriter
from ingest.schema import PatientRecord
from ingest.tables import (
    numeric_columns,
    quarantine_rows,
    read_table,
    require_columns,
    unknown_codes,
)

CODES = {
    "gender": ["Male", "Female", "Other"],
    "smoking_status": ["smokes", "formerly smoked", "never smoked", "Unknown"],
}
REQUIRED = ["id", "gender", "age", "hypertension", "heart_disease",
            "avg_glucose_level", "bmi", "smoking_status", "stroke"]  # fmt: skip


def read_stroke_table(
    path: Path,
    site: str,
    registry: dict[str, FeatureSpec],
    quarantine: list[QuarantineItem],
) -> list[PatientRecord]:
    """Read ``healthcare-dataset-stroke-data.csv`` into records labelled for ``stroke``.

    ``N/A`` BMI and ``Unknown`` smoking status are missing; the one ``Other``
    gender leaves sex unset. The label is prevalent stroke (the table has no
    time axis), which the model card states.

    Parameters
    ----------
    path : Path
        The CSV file.
    site : str
        Site name.
    registry : dict
        Feature registry.
    quarantine : list
        Receives implausible values with reasons.

    Returns
    -------
    list of PatientRecord
    """
    table = read_table(path, na_values=["N/A", ""])
    require_columns(table.columns, REQUIRED, path.name)
    ids = f"{site}:" + table["id"].astype(str)
    numeric = [
        "age",
        "hypertension",
        "heart_disease",
        "avg_glucose_level",
        "bmi",
        "stroke",
    ]
    table = numeric_columns(table, numeric, "stroke_table", ids, quarantine)
    table = quarantine_rows(
        table, ~table["stroke"].isin([0, 1]), "stroke_table", ids, "stroke",
        "label missing or not 0/1", quarantine,
    )  # fmt: skip
    table = unknown_codes(table, CODES, "stroke_table", ids, quarantine)
    writer = FeatureWriter(registry, "stroke_table", quarantine)
    records = []
    for row in table.itertuples(index=False):
        record_id = f"{site}:{row.id}"
        features: dict[str, float] = {}
        put = functools.partial(writer.put, features, record_id)
        put("age", row.age)
        if row.gender in ("Male", "Female"):
            put("sex_male", float(row.gender == "Male"))
        put("hypertension", row.hypertension)
        put("prior_chd", row.heart_disease)
        put("glucose", row.avg_glucose_level)
        put("bmi", row.bmi)
        if row.smoking_status in ("smokes", "formerly smoked", "never smoked"):
            put("current_smoker", float(row.smoking_status == "smokes"))
            put("former_smoker", float(row.smoking_status == "formerly smoked"))
        records.append(
            PatientRecord(
                record_id=record_id,
                patient_id=record_id,
                site=site,
                source="stroke_table",
                features=features,
                labels={"stroke": int(row.stroke)},
            )
        )
    return records
