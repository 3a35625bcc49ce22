"""Observations assembled into records: latest values, conflicts, timeline, age."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from ingest.observations import (
    Observation,
    PatientFacts,
    assemble_records,
    pseudonym,
)

T1 = datetime(2024, 1, 5, 8, 0, tzinfo=UTC)
T2 = datetime(2024, 3, 1, 9, 30, tzinfo=UTC)
T3 = datetime(2025, 3, 1, 9, 30, tzinfo=UTC)


def _assemble(observations, facts=None):
    return assemble_records(
        observations,
        facts or {},
        source="lab",
        site="hospital",
        timeline_features=["systolic_bp", "total_cholesterol"],
        max_timeline_steps=4,
    )


def test_latest_value_wins_and_earlier_days_form_the_timeline() -> None:
    records, quarantine = _assemble(
        [
            Observation("p", "systolic_bp", 150.0, T1),
            Observation("p", "systolic_bp", 132.0, T3),
            Observation("p", "total_cholesterol", 240.0, T2),
            Observation("p", "troponin_t", 50.0, T1),
        ],
        {"p": PatientFacts(sex_male=1.0, birth_date=date(1960, 3, 1))},
    )
    assert quarantine == []
    (record,) = records
    assert record.features["systolic_bp"] == 132.0
    assert record.features["total_cholesterol"] == 240.0
    assert record.features["age"] == pytest.approx(65.0, abs=0.01)
    assert record.features["sex_male"] == 1.0
    # Two earlier days, most recent first; troponin is not a timeline feature.
    assert [round(step.years_before, 2) for step in record.timeline] == [1.0, 1.15]
    assert record.timeline[1].values == {"systolic_bp": 150.0}


def test_same_time_values_that_agree_are_one_value() -> None:
    # 0.048 ng/mL and 48 ng/L of troponin, both converted to 48 ng/L.
    records, quarantine = _assemble(
        [
            Observation("p", "troponin_t", 48.0, T2, "6598-7"),
            Observation("p", "troponin_t", 48.0, T2, "67151-1"),
        ]
    )
    assert quarantine == []
    assert records[0].features["troponin_t"] == 48.0


def test_same_time_values_that_disagree_are_quarantined() -> None:
    records, quarantine = _assemble(
        [
            Observation("p", "troponin_t", 48.0, T2),
            Observation("p", "troponin_t", 0.048, T2),  # unit slip at the source
            Observation("p", "troponin_t", 20.0, T1),
            Observation("p", "systolic_bp", 120.0, T2),
        ]
    )
    (item,) = quarantine
    assert item.field == "troponin_t"
    assert "2 different values at one time" in item.reason
    # The older agreeing value is used instead; nothing else is lost.
    assert records[0].features["troponin_t"] == 20.0
    assert records[0].features["systolic_bp"] == 120.0


def test_implausible_age_is_quarantined() -> None:
    records, quarantine = _assemble(
        [Observation("p", "systolic_bp", 120.0, T2)],
        {"p": PatientFacts(birth_date=date(1850, 1, 1))},
    )
    assert "age" not in records[0].features
    assert quarantine[0].field == "birthDate"


def test_pseudonym_is_stable_and_hides_the_identifier(monkeypatch) -> None:
    monkeypatch.delenv("CARDIORISK_PSEUDONYM_SALT", raising=False)
    key = pseudonym("PATID1234", "hl7v2")
    assert key == pseudonym("PATID1234", "hl7v2")
    assert "1234" not in key and len(key) == 16
    monkeypatch.setenv("CARDIORISK_PSEUDONYM_SALT", "site-secret")
    assert pseudonym("PATID1234", "hl7v2") != key


def test_a_value_dated_in_the_future_is_quarantined() -> None:
    future = datetime(2099, 3, 1, tzinfo=UTC)
    records, quarantine = _assemble(
        [
            Observation("p", "systolic_bp", 180.0, future),
            Observation("p", "systolic_bp", 132.0, T3),
        ],
        {"p": PatientFacts(birth_date=date(1960, 3, 1))},
    )
    assert records[0].features["systolic_bp"] == 132.0
    assert records[0].features["age"] == pytest.approx(65.0, abs=0.01)
    (item,) = quarantine
    assert item.field == "systolic_bp" and "2099-03-01, in the future" in item.reason
