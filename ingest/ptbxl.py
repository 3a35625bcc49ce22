"""PTB-XL: 12-lead ECGs at 100 Hz, MI labels from SCP-ECG statements, site each."""

from __future__ import annotations

import ast
from pathlib import Path

import pandas as pd

from ingest.config import ECGSpec, FeatureSpec, PTBXLSource
from ingest.ecg import conform_ecg, read_wfdb
from ingest.errors import InputError, QuarantineItem
from ingest.features import FeatureWriter
from ingest.ontology import load_ontology
from ingest.schema import PatientRecord

AGE_CODED_OVER_89 = 300  # PTB-XL codes ages above 89 as 300 for privacy


def diagnostic_classes(scp_codes: str, statements: pd.DataFrame) -> set[str]:
    """Map a record's ``scp_codes`` to its diagnostic superclasses (NORM, MI, ...).

    Parameters
    ----------
    scp_codes : str
        The dict-literal string of statement -> likelihood (%).
    statements : pd.DataFrame
        ``scp_statements.csv`` indexed by statement code.

    Returns
    -------
    set of str
        Diagnostic classes of the statements flagged ``diagnostic == 1``.
    """
    codes = ast.literal_eval(scp_codes)
    classes = set()
    for code in codes:
        if code in statements.index and statements.at[code, "diagnostic"] == 1:
            classes.add(str(statements.at[code, "diagnostic_class"]))
    return classes


def read_ptbxl(
    root: Path,
    source: PTBXLSource,
    ecg_spec: ECGSpec,
    registry: dict[str, FeatureSpec],
    quarantine: list[QuarantineItem],
    limit: int | None = None,
    auxiliary: dict[str, str] | None = None,
) -> list[PatientRecord]:
    """Read the PTB-XL subset's 100 Hz records with their ``acute_mi`` labels.

    The label is 1 when any diagnostic statement has class MI, 0 when the record
    has diagnostic statements but none of class MI, and absent when it has none.
    PTB-XL's MI statements are mostly established (old) infarction; few are
    acute-stage, which the evaluation report says. The auxiliary targets
    (hypertrophy, ST/T change, conduction disturbance) follow the same rule
    with their own superclass.

    Parameters
    ----------
    root : Path
        The ``ptbxl_subset`` folder.
    source : PTBXLSource
        Source settings (site prefix, test and validation folds).
    ecg_spec : ECGSpec
        The model's leads, ``fs`` and duration.
    registry : dict
        Feature registry.
    quarantine : list
        Receives unreadable records and implausible values with reasons.
    limit : int, optional
        Read only the first ``limit`` rows (tests).
    auxiliary : dict, optional
        Auxiliary target -> diagnostic superclass (default: from the ontology,
        `ingest.ontology.Ontology.ptbxl_targets`).

    Returns
    -------
    list of PatientRecord
    """
    database = pd.read_csv(root / "ptbxl_database.csv")
    statements = pd.read_csv(root / "scp_statements.csv", index_col=0)
    for column in (
        "ecg_id",
        "patient_id",
        "scp_codes",
        "strat_fold",
        "site",
        "filename_lr",
    ):
        if column not in database.columns:
            raise InputError("ptbxl_database.csv", column, "a PTB-XL column", "missing")
    if limit is not None:
        database = database.head(limit)
    writer = FeatureWriter(registry, "ptbxl", quarantine)
    if auxiliary is None:
        auxiliary = load_ontology().ptbxl_targets()
    records = []
    for row in database.itertuples(index=False):
        record_id = f"ptbxl:{int(row.ecg_id)}"

        # Step 1: the ECG, conformed to the model's leads and fs.
        try:
            ecg = conform_ecg(
                read_wfdb(root / row.filename_lr), ecg_spec, row.filename_lr
            )
        except InputError as error:
            quarantine.append(
                QuarantineItem("ptbxl", record_id, error.field, str(error))
            )
            continue

        # Step 2: demographics (age 300 means "over 89": kept as 90).
        features: dict[str, float] = {}
        age = 90.0 if row.age == AGE_CODED_OVER_89 else row.age
        writer.put(features, record_id, "age", age)
        writer.put(
            features,
            record_id,
            "sex_male",
            None if pd.isna(row.sex) else float(row.sex == 0),
        )
        writer.put(features, record_id, "height", row.height)
        writer.put(features, record_id, "weight", row.weight)
        if pd.notna(row.height) and pd.notna(row.weight) and row.height > 0:
            writer.put(features, record_id, "bmi", row.weight / (row.height / 100) ** 2)

        # Step 3: label and split from PTB-XL's own patient-wise folds.
        classes = diagnostic_classes(row.scp_codes, statements)
        labels = {"acute_mi": int("MI" in classes)} if classes else {}
        if classes:
            labels |= {target: int(c in classes) for target, c in auxiliary.items()}
        fold = int(row.strat_fold)
        split = (
            "test" if fold in source.test_folds
            else "validation" if fold in source.validation_folds
            else "train"
        )  # fmt: skip
        records.append(
            PatientRecord(
                record_id=record_id,
                patient_id=f"ptbxl:{int(row.patient_id)}",
                site=f"{source.site_prefix}{int(row.site)}",
                source="ptbxl",
                features=features,
                ecg=ecg,
                labels=labels,
                split=split,
            )
        )
    return records
