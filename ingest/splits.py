"""Deterministic patient-wise train/validation/test assignment."""

from __future__ import annotations

import hashlib

from ingest.config import SplitFractions


def assign_split(patient_id: str, seed: int, fractions: SplitFractions) -> str:
    """Assign a patient to a split from a hash of the seed and the patient key.

    Every record of one patient lands in the same split, whatever the order the
    records are read in, and the assignment never changes for a given seed.

    Parameters
    ----------
    patient_id : str
        Pseudonymous patient key (site-qualified).
    seed : int
        Split seed from the data config.
    fractions : SplitFractions
        Train / validation / test fractions.

    Returns
    -------
    str
        ``"train"``, ``"validation"`` or ``"test"``.
    """
    digest = hashlib.sha256(f"{seed}:{patient_id}".encode()).digest()
    position = int.from_bytes(digest[:8], "big") / 2**64
    if position < fractions.train:
        return "train"
    if position < fractions.train + fractions.validation:
        return "validation"
    return "test"
