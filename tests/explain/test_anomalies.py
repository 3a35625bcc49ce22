"""Anomalies against reference ranges: labs by sex, ECG intervals, ST by territory."""

from __future__ import annotations

from explain.anomalies import (
    anomalies,
    ecg_anomalies,
    lab_anomalies,
    load_reference_ranges,
)
from ingest.cohort import load_cohort
from ingest.ecg_measurements import ECGMeasurements, LeadMeasurement

RANGES = load_reference_ranges()


def _names(found) -> set[str]:
    return {a.name for a in found}


def test_creatinine_and_haemoglobin_use_the_patients_sex(data_config):
    male = lab_anomalies({"creatinine": 1.2, "hemoglobin": 13.0}, data_config,
                         RANGES["labs"], male=1.0)  # fmt: skip
    female = lab_anomalies({"creatinine": 1.2, "hemoglobin": 13.0}, data_config,
                           RANGES["labs"], male=0.0)  # fmt: skip
    assert _names(male) == {"hemoglobin"}  # 13.0 < 13.5 g/dL; 1.2 <= 1.35 mg/dL
    assert _names(female) == {"creatinine"}  # 1.2 > 1.04 mg/dL; 13.0 >= 12.0
    [creatinine] = female
    assert creatinine.direction == "high" and creatinine.limit == 1.04
    assert creatinine.unit == "mg/dL"


def test_potassium_low_troponin_high_and_normal_values_are_silent(data_config):
    found = lab_anomalies(
        {"potassium": 3.1, "troponin_t": 52.0, "sodium": 140.0},
        data_config,
        RANGES["labs"],
    )
    assert {(a.name, a.direction) for a in found} == {
        ("potassium", "low"),
        ("troponin_t", "high"),
    }


def _measured(st: dict[str, float], **intervals) -> ECGMeasurements:
    leads = {lead: LeadMeasurement(value, 0.0, 1.0) for lead, value in st.items()}
    return ECGMeasurements(heart_rate_bpm=72.0, n_beats=10, leads=leads, **intervals)


def test_st_elevation_in_two_contiguous_inferior_leads_names_the_territory():
    found = ecg_anomalies(
        _measured({"II": 0.15, "III": 0.12, "AVF": 0.05, "V2": 0.18}),
        RANGES["ecg"],
        male=1.0,
        age=60.0,
    )
    names = _names(found)
    assert {"st_elevation:II", "st_elevation:III", "st_elevation:inferior"} <= names
    # V2 at 0.18 mV is below the 0.2 mV limit of a man over 40 ...
    assert "st_elevation:V2" not in names
    [inferior] = [a for a in found if a.name == "st_elevation:inferior"]
    assert inferior.leads == ("II", "III") and inferior.value == 0.15
    # ... and above the 0.15 mV limit of a woman.
    women = ecg_anomalies(_measured({"V2": 0.18}), RANGES["ecg"], male=0.0)
    assert "st_elevation:V2" in _names(women)


def test_pathological_q_waves_are_named_by_territory_only():
    q = LeadMeasurement(0.0, 0.3, 0.8, q_duration_ms=40.0)  # 40 ms, 0.3 mV
    small = LeadMeasurement(0.0, 0.05, 0.8, q_duration_ms=20.0)  # a septal q
    qs = LeadMeasurement(0.0, 0.6, 0.02, q_duration_ms=90.0, qs_complex=True)
    leads = {"II": q, "III": small, "AVF": qs, "AVR": qs, "V5": q}
    found = ecg_anomalies(
        ECGMeasurements(72.0, 10, leads), RANGES["ecg"], male=1.0, age=60.0
    )
    q_waves = [a for a in found if a.name.startswith("q_wave")]
    # II and aVF (a QS complex) in the inferior leads; a lone Q in V5 and the
    # QS complex of aVR name nothing.
    assert [(a.name, a.leads) for a in q_waves] == [("q_wave:inferior", ("II", "AVF"))]
    assert q_waves[0].value == 0.6 and q_waves[0].limit == 0.1
    from app.explanation_text import anomaly_text

    assert anomaly_text(q_waves[0].as_dict(), "en") == (
        "Pathological Q waves in the inferior leads (II, aVF)"
    )
    assert anomaly_text(q_waves[0].as_dict(), "vi") == (
        "Sóng Q bệnh lý ở các chuyển đạo vùng thành dưới (II, aVF)"
    )


def test_intervals_outside_their_limits():
    found = ecg_anomalies(
        _measured({}, pr_ms=230.0, qrs_ms=130.0, qtc_ms=455.0), RANGES["ecg"], male=1.0
    )
    assert _names(found) == {"pr_ms", "qrs_ms", "qtc_ms"}  # QTc > 450 ms in men
    women = ecg_anomalies(_measured({}, qtc_ms=455.0), RANGES["ecg"], male=0.0)
    assert "qtc_ms" not in _names(women)  # <= 460 ms in women


def test_real_ptbxl_records_are_measured_and_checked(small_cohort, data_config):
    records = load_cohort(small_cohort, sites=["ptbxl_site0"])
    checked = [anomalies(r, data_config, RANGES) for r in records if r.ecg is not None]
    assert len(checked) >= 20
    # Every ECG anomaly names a measurement the ranges know, with its unit.
    for found in checked:
        for anomaly in found:
            assert anomaly.source in ("lab", "ecg")
            if anomaly.source == "ecg":
                assert anomaly.unit in ("mV", "ms", "/min")
    assert any(any(a.name.startswith("st_") for a in found) for found in checked)


def test_values_of_earlier_visits_are_checked_and_dated(data_config):
    from app.explanation_text import anomaly_text
    from ingest.schema import PatientRecord, TimelineStep

    record = PatientRecord(
        record_id="t:1",
        patient_id="t:1",
        site="test",
        source="test",
        features={"age": 60.0, "systolic_bp": 128.0},
        timeline=[TimelineStep(2.0, {"systolic_bp": 150.0, "glucose": 90.0})],
    )
    [visit] = anomalies(record, data_config, RANGES)
    assert (visit.source, visit.name, visit.value) == ("visit", "systolic_bp", 150.0)
    assert visit.years_before == 2.0 and visit.limit == 140.0
    text = anomaly_text(visit.as_dict(), "en")
    assert text == (
        "Systolic blood pressure at the visit 2.0 years earlier 150 mmHg "
        "(high; limit 140 mmHg)"
    )
