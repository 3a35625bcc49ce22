"""Subgroup results: AUROC per head by sex, age band and site."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from fusion.evaluation import auroc, bootstrap_ci
from ingest.schema import PatientRecord

MIN_PER_CLASS = 5  # fewer cases (or controls) in a subgroup: counted, not scored
AGE_BANDS = ((0, 50, "<50"), (50, 65, "50-64"), (65, 200, "65+"))


def _sex(record: PatientRecord) -> str | None:
    value = record.features.get("sex_male")
    return None if value is None else "male" if value == 1.0 else "female"


def _age_band(record: PatientRecord) -> str | None:
    age = record.features.get("age")
    if age is None:
        return None
    return next(name for low, high, name in AGE_BANDS if low <= age < high)


def _site(record: PatientRecord) -> str:
    return record.site


GROUPINGS: dict[str, Callable[[PatientRecord], str | None]] = {
    "sex": _sex,
    "age": _age_band,
    "site": _site,
}


def subgroup_table(
    records: Sequence[PatientRecord],
    labels: np.ndarray,
    scores: dict[str, np.ndarray],
    seed: int = 0,
) -> list[dict]:
    """AUROC of each score in each subgroup of one head's held-out records.

    Parameters
    ----------
    records : sequence of PatientRecord
        Held-out records labelled for the head.
    labels : np.ndarray
        Their 0/1 outcomes.
    scores : dict
        Name -> scores of the same records (the model, the baseline, ...).
    seed : int
        Bootstrap seed.

    Returns
    -------
    list of dict
        ``grouping``, ``group``, ``n``, ``n_positive`` and, where both classes
        have at least `MIN_PER_CLASS` records, ``auroc`` per score name (with
        ``auroc_ci`` for the first score); records lacking the grouping field
        form the group ``unknown``.
    """
    table = []
    for grouping, key in GROUPINGS.items():
        groups = np.array([key(record) or "unknown" for record in records])
        for group in sorted(set(groups)):
            rows = groups == group
            positives = int(labels[rows].sum())
            entry = {
                "grouping": grouping,
                "group": group,
                "n": int(rows.sum()),
                "n_positive": positives,
            }
            if min(positives, int(rows.sum()) - positives) >= MIN_PER_CLASS:
                entry["auroc"] = {
                    name: auroc(labels[rows], values[rows])
                    for name, values in scores.items()
                }
                first = next(iter(scores.values()))
                entry["auroc_ci"] = list(
                    bootstrap_ci(labels[rows], first[rows], seed=seed)
                )
            table.append(entry)
    return table
