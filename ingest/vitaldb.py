"""VitalDB cases: general (digestive) surgery, post-operative complication proxy."""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import pandas as pd

from ingest.config import FeatureSpec, VitalDBSource
from ingest.errors import QuarantineItem
from ingest.features import FeatureWriter
from ingest.schema import PatientRecord
from ingest.tables import numeric_columns, quarantine_rows, read_table, require_columns

SECONDS_PER_DAY = 86400.0
MAJOR_ABDOMINAL = {
    "Colorectal",
    "Biliary/Pancreas",
    "Stomach",
    "Hepatic",
    "Transplantation",
}
MINIMALLY_INVASIVE = {"Videoscopic", "Robotic"}
LAB_FEATURES = {
    "preop_hb": "hemoglobin",
    "preop_plt": "platelets",
    "preop_pt": "prothrombin_activity",
    "preop_aptt": "aptt",
    "preop_na": "sodium",
    "preop_k": "potassium",
    "preop_gluc": "glucose",
    "preop_alb": "albumin",
    "preop_ast": "ast",
    "preop_alt": "alt",
    "preop_bun": "urea_nitrogen",
    "preop_cr": "creatinine",
}
REQUIRED = ["caseid", "subjectid", "adm", "dis", "death_inhosp", "department", "optype"]
OTHER_COLUMNS = [
    "age", "sex", "height", "weight", "bmi", "asa", "emop", "preop_htn", "preop_dm",
    "preop_ecg", "approach", "opstart", "opend", "intraop_ebl", "intraop_rbc",
    *LAB_FEATURES,
]  # fmt: skip
TEXT_COLUMNS = {"department", "optype", "sex", "preop_ecg", "approach"}


def stay_days(table: pd.DataFrame) -> pd.Series:
    """Hospital length of stay in days ((dis - adm) seconds / 86400)."""
    return (table["dis"] - table["adm"]) / SECONDS_PER_DAY


def read_vitaldb(
    path: Path,
    source: VitalDBSource,
    registry: dict[str, FeatureSpec],
    quarantine: list[QuarantineItem],
) -> list[PatientRecord]:
    """Read the VitalDB cases table into records labelled for ``postop``.

    The label is a documented proxy for a serious complication: in-hospital
    death, or a stay longer than the configured quantile of stays for the same
    operation type (an ICU stay alone mostly reflects planned care). Cases whose
    stay is missing, negative or longer than ``max_stay_days`` are quarantined.

    Parameters
    ----------
    path : Path
        The cases CSV.
    source : VitalDBSource
        Departments, stay quantile and stay limit.
    registry : dict
        Feature registry.
    quarantine : list
        Receives impossible stays and implausible values with reasons.

    Returns
    -------
    list of PatientRecord
    """
    table = read_table(path)
    require_columns(table.columns, REQUIRED + OTHER_COLUMNS, path.name)
    table = table[table["department"].isin(source.departments)].copy()
    ids = "case:" + table["caseid"].astype(str)
    numeric = [c for c in REQUIRED + OTHER_COLUMNS if c not in TEXT_COLUMNS]
    table = numeric_columns(table, numeric, "vitaldb", ids, quarantine)
    table = quarantine_rows(
        table, ~table["death_inhosp"].isin([0, 1]), "vitaldb", ids, "death_inhosp",
        "label missing or not 0/1", quarantine,
    )  # fmt: skip
    table = quarantine_rows(
        table, table["caseid"].duplicated(keep="first"), "vitaldb", ids, "caseid",
        "duplicate case id (the first row is kept)", quarantine,
    )  # fmt: skip

    # Step 1: quarantine impossible stays before they shape the label thresholds.
    table["stay_days"] = stay_days(table)
    bad = table["stay_days"].isna() | (table["stay_days"] < 0)
    bad |= table["stay_days"] > source.max_stay_days
    for case in table[bad].itertuples(index=False):
        reason = (
            "admission or discharge time missing" if np.isnan(case.stay_days)
            else f"length of stay {case.stay_days:.1f} d is negative or over "
            f"{source.max_stay_days:g} d"
        )  # fmt: skip
        quarantine.append(
            QuarantineItem("vitaldb", f"case:{case.caseid}", "adm/dis", reason)
        )
    table = table[~bad]

    # Step 2: the proxy label: death, or a stay long for its operation type.
    threshold = table.groupby("optype")["stay_days"].transform(
        lambda stays: stays.quantile(source.prolonged_stay_quantile)
    )
    label = (table["death_inhosp"] == 1) | (table["stay_days"] > threshold)

    # Step 3: pre-operative and intra-operative features.
    writer = FeatureWriter(registry, "vitaldb", quarantine)
    records = []
    for case, positive in zip(table.itertuples(index=False), label, strict=True):
        record_id = f"vitaldb:{case.caseid}"
        features: dict[str, float] = {}
        put = functools.partial(writer.put, features, record_id)
        put("age", case.age)
        if case.sex in ("M", "F"):
            put("sex_male", float(case.sex == "M"))
        put("height", case.height)
        put("weight", case.weight)
        put("bmi", case.bmi)
        put("asa_class", case.asa)
        put("emergency_surgery", case.emop)
        put("hypertension", case.preop_htn)
        put("diabetes", case.preop_dm)
        if isinstance(case.preop_ecg, str):
            put("ecg_abnormal_rhythm", float(case.preop_ecg != "Normal Sinus Rhythm"))
            put("atrial_fibrillation", float("atrial fib" in case.preop_ecg.lower()))
        for column, name in LAB_FEATURES.items():
            put(name, getattr(case, column))
        put("surgery_major_abdominal", float(case.optype in MAJOR_ABDOMINAL))
        if isinstance(case.approach, str):
            put("surgery_laparoscopic", float(case.approach in MINIMALLY_INVASIVE))
        if pd.notna(case.opend) and pd.notna(case.opstart):
            put("surgery_duration", (case.opend - case.opstart) / 3600.0)
        put("blood_loss", case.intraop_ebl)
        put("transfused_rbc", case.intraop_rbc)
        records.append(
            PatientRecord(
                record_id=record_id,
                patient_id=f"vitaldb:{case.subjectid}",
                site=source.site,
                source="vitaldb",
                features=features,
                labels={"postop": int(positive)},
            )
        )
    return records
