"""The traditional clinical tools each head is compared with."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from ingest.clinical_scores import (
    cha2ds2_vasc,
    framingham_stroke_points,
    heart_score,
    rcri,
)
from ingest.ecg_measurements import (
    contiguous_territories,
    infarct_sign_leads,
    measure,
    pathological_q,
)
from ingest.schema import PatientRecord


def asa_score(record: PatientRecord, missing: float = 2.0) -> float:
    """ASA physical status class (missing -> the commonest class, 2)."""
    return record.features.get("asa_class", missing)


def ecg_infarct_criteria(record: PatientRecord) -> float:
    """Count the leads meeting the ECG infarct criteria (2+ contiguous).

    ST elevation by the Fourth Universal Definition (V2-V3 by the record's sex
    and age) or a pathological Q wave (`ingest.ecg_measurements.
    infarct_sign_leads`). Records without an ECG or without measurable beats
    score 0.
    """
    if record.ecg is None:
        return 0.0
    measured = measure(record.ecg)
    if measured is None:
        return 0.0
    male, age = record.features.get("sex_male"), record.features.get("age")
    return float(len(infarct_sign_leads(measured, male, age)))


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


def ecg_heart_points(record: PatientRecord) -> float | None:
    """The ECG part of a HEART-like score (0-2) measured from the recording.

    2 for ST deviation of at least 0.1 mV (either way) in two contiguous leads,
    1 for deviation of at least 0.05 mV in one lead or a pathological Q wave, 0
    otherwise; None without a measurable ECG.
    """
    if record.ecg is None:
        return None
    measured = measure(record.ecg)
    if measured is None:
        return None
    deviated = [
        lead for lead, m in measured.leads.items() if abs(m.st_deviation_mv) >= 0.1
    ]
    significant, minor = bool(contiguous_territories(deviated)), False
    for lead, m in measured.leads.items():
        minor |= abs(m.st_deviation_mv) >= 0.05
        minor |= pathological_q(lead, m)
    return 2.0 if significant else 1.0 if minor else 0.0


def _score_or_zero(value: float | None) -> float:
    return 0.0 if value is None else value


# Each head's traditional tools: name -> how a record is scored (the first is
# the one the head is named by in short tables). Absent fields count 0 points.
BASELINES: dict[str, dict[str, str]] = {
    "acute_mi": {
        "ecg_criteria": "ECG criteria (ST elevation / pathological Q, "
        "2+ contiguous leads)",
        "heart": "HEART-like (age, measured ECG, risk factors; no history or troponin)",
    },
    "stroke": {
        "fsrp": "Framingham Stroke Risk Profile (available fields)",
        "cha2ds2_vasc": "CHA2DS2-VASc (available fields)",
    },
    "postop": {
        "asa": "ASA physical status",
        "rcri": "RCRI (available fields; insulin unknown)",
    },
    "heart_disease": {
        "logistic": "Logistic regression, same features",
        "heart": "HEART-like (history, resting ECG, age, risk factors)",
    },
}


def baseline_scores(
    head: str,
    test: Sequence[PatientRecord],
    train: Sequence[PatientRecord],
    feature_names: Sequence[str],
) -> dict[str, np.ndarray]:
    """Scores of each of the head's traditional tools on the test records.

    Parameters
    ----------
    head : str
    test : sequence of PatientRecord
        The held-out records labelled for ``head``.
    train : sequence of PatientRecord
        Training records (only the logistic regression is fitted, on these).
    feature_names : sequence of str
        Tabular features for the logistic regression.

    Returns
    -------
    dict
        Tool key (of `BASELINES`) -> one score per test record.
    """
    if head not in BASELINES:
        raise KeyError(
            f"no baseline for head '{head}'; expected one of {list(BASELINES)}"
        )
    scorers = {
        "ecg_criteria": lambda: [ecg_infarct_criteria(r) for r in test],
        "heart": lambda: [
            _score_or_zero(heart_score(r.features, ecg_heart_points(r)))
            if head == "acute_mi"
            else _score_or_zero(heart_score(r.features))
            for r in test
        ],
        "fsrp": lambda: [
            _score_or_zero(framingham_stroke_points(r.features)) for r in test
        ],
        "cha2ds2_vasc": lambda: [
            _score_or_zero(cha2ds2_vasc(r.features)) for r in test
        ],
        "asa": lambda: [asa_score(r) for r in test],
        "rcri": lambda: [_score_or_zero(rcri(r.features)) for r in test],
        "logistic": lambda: (
            LogisticBaseline(
                [name for name in feature_names if not name.startswith("score_")]
            )
            .fit(train, head)
            .score(test)
        ),
    }
    return {key: np.asarray(scorers[key](), dtype=float) for key in BASELINES[head]}
