"""Observations from any clinical source, assembled into `PatientRecord`s.

FHIR, HL7 v2 and lab-table readers all produce `Observation`s (already in the
canonical unit) and per-patient facts (sex, birth date, condition and medication
flags). `assemble_records` turns them into one record per patient: the latest value
of each feature is the record's value, and earlier days form its timeline.
"""

from __future__ import annotations

import hashlib
import os
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from ingest.errors import QuarantineItem
from ingest.schema import PatientRecord, TimelineStep

DAYS_PER_YEAR = 365.25
FUTURE_TOLERANCE = timedelta(days=1)  # clocks and time zones, not typing errors
SAME_VALUE_RTOL = 0.01  # two values of one feature at one time agree within 1 %
COMPARATORS = ("<", "<=", ">", ">=")


@dataclass(frozen=True)
class Observation:
    """One measured value, converted to its feature's canonical unit.

    Attributes
    ----------
    patient_key : str
        Pseudonymous patient key (see `pseudonym`), never a raw identifier.
    feature : str
        Registry name.
    value : float
        Value in the registry's canonical unit.
    time : datetime, optional
        When it was measured (timezone-aware); None when the source gave no time.
    code : str
        The source code (e.g. LOINC ``2160-0``), for the report.
    comparator : str, optional
        ``<``, ``<=``, ``>`` or ``>=`` when the source gave a bound (``<3 ng/L``):
        `value` is then the bound itself.
    """

    patient_key: str
    feature: str
    value: float
    time: datetime | None
    code: str = ""
    comparator: str | None = None


@dataclass
class ReadResult:
    """What one reader made of its input.

    Attributes
    ----------
    records : list of PatientRecord
        Usable records.
    quarantine : list of QuarantineItem
        Input set aside, each with the reason.
    ignored : dict
        Input read but not used, by reason (e.g. ``"LOINC 4544-3 not mapped"``
        -> count): not errors, but never silent either.
    notes : list of str
        What was read, for the report (e.g. ``"12 leads at 500 Hz, 10.0 s"``).
    basis : dict
        Patient key -> references of the source resources that filled the
        record (e.g. ``"Observation/abc"``), for a FHIR RiskAssessment's basis.
    """

    records: list[PatientRecord] = field(default_factory=list)
    quarantine: list[QuarantineItem] = field(default_factory=list)
    ignored: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    basis: dict[str, list[str]] = field(default_factory=dict)

    def ignore(self, reason: str) -> None:
        """Count one piece of input read but not used."""
        self.ignored[reason] = self.ignored.get(reason, 0) + 1

    def extend(self, other: ReadResult) -> None:
        """Add another reader's result to this one."""
        self.records.extend(other.records)
        self.quarantine.extend(other.quarantine)
        for reason, count in other.ignored.items():
            self.ignored[reason] = self.ignored.get(reason, 0) + count
        self.notes.extend(other.notes)
        for key, references in other.basis.items():
            self.basis.setdefault(key, []).extend(references)


@dataclass
class PatientFacts:
    """What a source says about a patient besides observations.

    Attributes
    ----------
    sex_male : float, optional
        1 for male, 0 for female, None when unknown.
    birth_date : date, optional
        Used only to compute the age at the record's time; never stored.
    flags : dict
        Condition, medication and surgery flags (registry name -> 0/1).
    """

    sex_male: float | None = None
    birth_date: date | None = None
    flags: dict[str, float] = field(default_factory=dict)


def pseudonym(identifier: str, source: str) -> str:
    """Return a stable pseudonymous key for a patient identifier.

    A SHA-256 of the source, the identifier and the salt in
    ``CARDIORISK_PSEUDONYM_SALT`` (empty when unset), cut to 16 hex digits.
    """
    salt = os.environ.get("CARDIORISK_PSEUDONYM_SALT", "")
    digest = hashlib.sha256(f"{salt}|{source}|{identifier}".encode()).hexdigest()
    return digest[:16]


def assemble_records(
    observations: list[Observation],
    facts: dict[str, PatientFacts],
    *,
    source: str,
    site: str,
    timeline_features: list[str],
    max_timeline_steps: int,
    age_range: tuple[float, float] = (0.0, 120.0),
    on_bound: Callable[[str], None] | None = None,
) -> tuple[list[PatientRecord], list[QuarantineItem]]:
    """Build one record per patient from observations and facts.

    Parameters
    ----------
    observations : list of Observation
        Values in canonical units, from any number of patients.
    facts : dict
        Patient key -> facts (sex, birth date, flags).
    source, site : str
        Reader name and data holder, copied into each record.
    timeline_features : list of str
        Features an earlier visit may hold.
    max_timeline_steps : int
        Most recent earlier days kept in the timeline.
    age_range : tuple of float
        Plausible ages; an age outside is quarantined.
    on_bound : callable, optional
        Told, in words, of each record value that was sent as a bound
        (``<3 ng/L``): the bound itself is the value used.

    Returns
    -------
    records : list of PatientRecord
        One per patient with at least one feature.
    quarantine : list of QuarantineItem
        Conflicting same-time values and implausible ages, with reasons.
    """
    # A value dated in the future is a typing error, never the latest value.
    records, quarantine = [], []
    latest_allowed = datetime.now(UTC) + FUTURE_TOLERANCE
    by_patient: dict[str, list[Observation]] = defaultdict(list)
    for observation in observations:
        if observation.time is not None and observation.time > latest_allowed:
            reason = f"dated {observation.time.date().isoformat()}, in the future"
            quarantine.append(
                QuarantineItem(
                    source, observation.patient_key, observation.feature, reason
                )
            )
            continue
        by_patient[observation.patient_key].append(observation)
    for key in sorted(set(by_patient) | set(facts)):
        patient_facts = facts.get(key, PatientFacts())

        # Values at the latest time of each feature; conflicting ones set aside.
        latest, conflicts = _latest_values(by_patient.get(key, []))
        quarantine.extend(
            QuarantineItem(source, key, name, reason) for name, reason in conflicts
        )
        features = {name: obs.value for name, obs in latest.items()}
        for name, obs in latest.items():
            if obs.comparator and on_bound is not None:
                on_bound(
                    f"{name} sent as a bound ({obs.comparator}): "
                    "the bound is used as its value"
                )
        index_time = max(
            (obs.time for obs in latest.values() if obs.time is not None),
            default=None,
        )

        # Demographics and flags.
        if patient_facts.sex_male is not None:
            features["sex_male"] = patient_facts.sex_male
        age = _age(patient_facts.birth_date, index_time)
        if age is not None:
            if age_range[0] <= age <= age_range[1]:
                features["age"] = age
            else:
                reason = f"age {age:.0f} years from the birth date is implausible"
                quarantine.append(QuarantineItem(source, key, "birthDate", reason))
        features.update(patient_facts.flags)

        # Earlier days become the timeline, most recent first.
        timeline = _timeline(
            by_patient.get(key, []),
            index_time,
            timeline_features,
            max_timeline_steps,
        )
        if not features and not timeline:
            continue
        records.append(
            PatientRecord(
                record_id=f"{source}:{key}",
                patient_id=key,
                site=site,
                source=source,
                features=features,
                timeline=timeline,
            )
        )
    return records, quarantine


def _latest_values(
    observations: list[Observation],
) -> tuple[dict[str, Observation], list[tuple[str, str]]]:
    by_feature: dict[str, list[Observation]] = defaultdict(list)
    for observation in observations:
        by_feature[observation.feature].append(observation)
    latest, conflicts = {}, []
    for name, values in by_feature.items():
        newest = max(values, key=_sort_time)
        same_time = [obs for obs in values if obs.time == newest.time]
        if any(not _agree(obs.value, newest.value) for obs in same_time):
            found = ", ".join(f"{obs.value:.4g}" for obs in same_time)
            conflicts.append(
                (name, f"{len(same_time)} different values at one time ({found})")
            )
            older = [obs for obs in values if obs.time != newest.time]
            if not older:
                continue
            newest = max(older, key=_sort_time)
        latest[name] = newest
    return latest, conflicts


def _timeline(
    observations: list[Observation],
    index_time: datetime | None,
    timeline_features: list[str],
    max_steps: int,
) -> list[TimelineStep]:
    if index_time is None:
        return []
    by_day: dict[date, dict[str, float]] = defaultdict(dict)
    for obs in sorted(observations, key=_sort_time):
        if obs.time is None or obs.feature not in timeline_features:
            continue
        if obs.time.date() >= index_time.date():
            continue
        by_day[obs.time.date()][obs.feature] = obs.value
    days = sorted(by_day, reverse=True)[:max_steps]
    return [
        TimelineStep((index_time.date() - day).days / DAYS_PER_YEAR, by_day[day])
        for day in days
    ]


def _age(birth: date | None, at: datetime | None) -> float | None:
    if birth is None:
        return None
    when = at.date() if at is not None else datetime.now(UTC).date()
    return (when - birth).days / DAYS_PER_YEAR


def _agree(a: float, b: float) -> bool:
    return abs(a - b) <= SAME_VALUE_RTOL * max(abs(a), abs(b), 1e-9)


def _sort_time(observation: Observation) -> datetime:
    return observation.time or datetime.min.replace(tzinfo=UTC)
