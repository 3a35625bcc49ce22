"""The traditional clinical tools each head is compared with."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from ingest.ecg_measurements import measure
from ingest.schema import PatientRecord

# Contiguous lead groups for ECG infarction criteria (aVR excluded).
LEAD_GROUPS = {
    "inferior": ("II", "III", "AVF"),
    "lateral": ("I", "AVL", "V5", "V6"),
    "anterior": ("V1", "V2", "V3", "V4"),
}
ST_ELEVATION_MV = {"V2": 0.2, "V3": 0.2}  # other leads: 0.1 mV
Q_DEPTH_MV = 0.1
Q_TO_R_RATIO = 0.25


def cha2ds2_vasc(record: PatientRecord) -> float:
    """CHA2DS2-VASc from the fields a record has (absent fields count 0).

    Congestive heart failure is never recorded in our sources and prior stroke is
    excluded by design (incident stroke), so at most C and S2 are missing.
    """
    f = record.features
    age = f.get("age", 0.0)
    score = 2.0 if age >= 75 else 1.0 if age >= 65 else 0.0
    score += 1.0 if f.get("sex_male") == 0.0 else 0.0
    score += (
        1.0 if f.get("hypertension") == 1.0 or f.get("bp_medication") == 1.0 else 0.0
    )
    score += 1.0 if f.get("diabetes") == 1.0 else 0.0
    score += 1.0 if f.get("prior_mi") == 1.0 or f.get("prior_chd") == 1.0 else 0.0
    score += 2.0 if f.get("prior_stroke") == 1.0 else 0.0
    return score


def asa_score(record: PatientRecord, missing: float = 2.0) -> float:
    """ASA physical status class (missing -> the commonest class, 2)."""
    return record.features.get("asa_class", missing)


def ecg_infarct_criteria(record: PatientRecord) -> float:
    """Count leads meeting ST-elevation or pathological-Q criteria (2+ contiguous).

    ST elevation: >= 0.1 mV (>= 0.2 mV in V2-V3) in the early ST segment.
    Pathological Q: depth >= 0.1 mV and >= 25% of the R amplitude. A lead
    counts only when another lead of its contiguous group also qualifies.
    Records without an ECG or without measurable beats score 0.
    """
    if record.ecg is None:
        return 0.0
    measured = measure(record.ecg)
    if measured is None:
        return 0.0
    total = 0
    for group in LEAD_GROUPS.values():
        hits = 0
        for lead in group:
            m = measured.leads.get(lead)
            if m is None:
                continue
            st_high = m.st_deviation_mv >= ST_ELEVATION_MV.get(lead, 0.1)
            q_wave = m.q_depth_mv >= Q_DEPTH_MV and m.q_depth_mv >= Q_TO_R_RATIO * abs(
                m.r_amplitude_mv
            )
            hits += int(st_high or q_wave)
        total += hits if hits >= 2 else 0
    return float(total)


class LogisticBaseline:
    """Logistic regression on the same tabular features (mean-imputed, scaled).

    Parameters
    ----------
    feature_names : sequence of str
        Features to use, in canonical units.
    """

    def __init__(self, feature_names: Sequence[str]) -> None:
        self.feature_names = list(feature_names)
        self.pipeline = make_pipeline(
            SimpleImputer(
                strategy="mean", add_indicator=True, keep_empty_features=True
            ),
            StandardScaler(),
            LogisticRegression(max_iter=2000),
        )

    def _matrix(self, records: Sequence[PatientRecord]) -> np.ndarray:
        return np.array(
            [
                [r.features.get(name, np.nan) for name in self.feature_names]
                for r in records
            ],
            dtype=float,
        )

    def fit(self, records: Sequence[PatientRecord], head: str) -> LogisticBaseline:
        """Fit on records labelled for ``head``."""
        labelled = [r for r in records if head in r.labels]
        self.pipeline.fit(self._matrix(labelled), [r.labels[head] for r in labelled])
        return self

    def score(self, records: Sequence[PatientRecord]) -> np.ndarray:
        """Predicted probabilities."""
        return self.pipeline.predict_proba(self._matrix(records))[:, 1]


BASELINE_NAMES = {
    "acute_mi": "ECG criteria (ST elevation / pathological Q, 2+ contiguous leads)",
    "stroke": "CHA2DS2-VASc (from available fields)",
    "postop": "ASA physical status",
    "heart_disease": "Logistic regression, same features",
}


def baseline_scores(
    head: str,
    test: Sequence[PatientRecord],
    train: Sequence[PatientRecord],
    feature_names: Sequence[str],
) -> np.ndarray:
    """Scores of the head's traditional tool on the test records.

    Parameters
    ----------
    head : str
    test : sequence of PatientRecord
        The held-out records labelled for ``head``.
    train : sequence of PatientRecord
        Training records (only the logistic regression is fitted, on these).
    feature_names : sequence of str
        Tabular features for the logistic regression.
    """
    if head == "acute_mi":
        return np.array([ecg_infarct_criteria(r) for r in test])
    if head == "stroke":
        return np.array([cha2ds2_vasc(r) for r in test])
    if head == "postop":
        return np.array([asa_score(r) for r in test])
    if head == "heart_disease":
        return LogisticBaseline(feature_names).fit(train, head).score(test)
    raise KeyError(
        f"no baseline for head '{head}'; expected one of {list(BASELINE_NAMES)}"
    )
