"""UCI Heart Disease (``processed.*.data``): a file per hospital, label ``num > 0``."""

from __future__ import annotations

import functools
from pathlib import Path

import pandas as pd

from ingest.config import FeatureSpec
from ingest.errors import InputError, QuarantineItem
from ingest.features import FeatureWriter
from ingest.schema import PatientRecord
from ingest.tables import (
    numeric_columns,
    quarantine_rows,
    read_table,
    unknown_codes,
)

COLUMNS = [
    "age", "sex", "cp", "trestbps", "chol", "fbs", "restecg",
    "thalach", "exang", "oldpeak", "slope", "ca", "thal", "num",
]  # fmt: skip
MISSING_CODES = ["?", "-9", "-9.0"]
# Allowed codes of the categorical columns (heart-disease.names).
CODES = {
    "sex": [0, 1], "cp": [1, 2, 3, 4], "fbs": [0, 1], "restecg": [0, 1, 2],
    "exang": [0, 1], "slope": [1, 2, 3], "thal": [3, 6, 7],
}  # fmt: skip


def read_uci(
    path: Path,
    site: str,
    registry: dict[str, FeatureSpec],
    quarantine: list[QuarantineItem],
) -> list[PatientRecord]:
    """Read one hospital's UCI file into records labelled for ``heart_disease``.

    ``?`` and ``-9`` are missing; a cholesterol of 0 means "not measured"
    (all Swiss rows, many VA rows) and is treated as missing, not quarantined.

    Parameters
    ----------
    path : Path
        A ``processed.<hospital>.data`` file (no header, 14 columns).
    site : str
        Site name of that hospital.
    registry : dict
        Feature registry.
    quarantine : list
        Receives implausible values with reasons.

    Returns
    -------
    list of PatientRecord
    """
    table = read_table(path, header=None, na_values=MISSING_CODES)
    if table.shape[1] != len(COLUMNS):
        raise InputError(
            path.name,
            "columns",
            f"{len(COLUMNS)} comma-separated columns",
            str(table.shape[1]),
        )
    table.columns = COLUMNS
    source = "uci_heart_disease"
    ids = pd.Series(
        [f"{site}:{n}" for n in range(1, len(table) + 1)], index=table.index
    )
    table = numeric_columns(table, COLUMNS, source, ids, quarantine)

    # Step 0: rows without a usable label are set aside, not silently unlabelled.
    bad = ~table["num"].isin([0, 1, 2, 3, 4])
    table = quarantine_rows(
        table, bad, source, ids, "num", "label missing or not 0-4", quarantine
    )
    table = unknown_codes(table, CODES, source, ids, quarantine)
    writer = FeatureWriter(registry, source, quarantine)
    records = []
    for record_id, row in zip(
        ids.loc[table.index], table.itertuples(index=False), strict=True
    ):
        features: dict[str, float] = {}
        put = functools.partial(writer.put, features, record_id)

        # Step 1: demographics and vitals.
        put("age", row.age)
        put("sex_male", row.sex)
        put("systolic_bp", row.trestbps)
        put("total_cholesterol", None if row.chol == 0 else row.chol)
        put("fasting_glucose_high", row.fbs)
        put("max_heart_rate", row.thalach)

        # Step 2: categorical findings as flags (a missing category leaves all unset).
        if pd.notna(row.cp):
            for code, name in enumerate(
                ["chest_pain_typical", "chest_pain_atypical",
                 "chest_pain_non_anginal", "chest_pain_asymptomatic"], start=1
            ):  # fmt: skip
                put(name, float(row.cp == code))
        if pd.notna(row.restecg):
            put("rest_ecg_st_t", float(row.restecg == 1))
            put("rest_ecg_lvh", float(row.restecg == 2))
        put("exercise_angina", row.exang)
        put("st_depression", row.oldpeak)
        if pd.notna(row.slope):
            for code, name in enumerate(
                ["st_slope_up", "st_slope_flat", "st_slope_down"], start=1
            ):
                put(name, float(row.slope == code))
        put("major_vessels", row.ca)
        if pd.notna(row.thal):
            put("thal_fixed_defect", float(row.thal == 6))
            put("thal_reversible_defect", float(row.thal == 7))

        # Step 3: the label (Hungarian is already 0/1, the others 0-4).
        labels = {"heart_disease": int(row.num > 0)}
        records.append(
            PatientRecord(
                record_id=record_id,
                patient_id=record_id,
                site=site,
                source="uci_heart_disease",
                features=features,
                labels=labels,
            )
        )
    return records
