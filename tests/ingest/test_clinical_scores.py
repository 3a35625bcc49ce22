import pytest

from ingest.clinical_scores import (
    cha2ds2_vasc,
    derived_features,
    framingham_stroke_points,
    heart_score,
    rcri,
    with_scores,
)


def test_cha2ds2_vasc_points():
    older_woman = {"age": 76, "sex_male": 0.0, "hypertension": 1.0, "diabetes": 1.0}
    assert cha2ds2_vasc(older_woman) == 2 + 1 + 1 + 1
    assert cha2ds2_vasc({"age": 40, "sex_male": 1.0}) == 0
    assert cha2ds2_vasc({"age": 70, "sex_male": 1.0, "prior_stroke": 1.0}) == 3
    assert cha2ds2_vasc({"age": 70}) is None  # no sex: not computed


def test_framingham_stroke_points_follow_wolf_1991():
    # Man of 70 (69-72: 5 points), untreated SBP 135 (126-135: 3), diabetic (2),
    # smoker (3): 13 points.
    man = {
        "age": 70, "sex_male": 1.0, "systolic_bp": 135,
        "diabetes": 1.0, "current_smoker": 1.0,
    }  # fmt: skip
    assert framingham_stroke_points(man) == 13
    # Treated pressure moves 135 mmHg from 3 to 5 points (130-135 treated).
    assert framingham_stroke_points({**man, "bp_medication": 1.0}) == 15
    # Woman of 75 (74-76: 7), SBP 120 untreated (119-130: 3), AF (6).
    woman = {"age": 75, "sex_male": 0.0, "systolic_bp": 120, "atrial_fibrillation": 1}
    assert framingham_stroke_points(woman) == 16
    assert framingham_stroke_points({"age": 75, "sex_male": 0.0}) is None


def test_rcri_needs_a_surgery_context():
    assert rcri({"age": 70, "heart_failure": 1.0}) is None
    patient = {
        "surgery_major_abdominal": 1.0, "heart_failure": 1.0,
        "creatinine": 2.4, "diabetes": 1.0,
    }  # fmt: skip
    assert rcri(patient) == 3  # diabetes without insulin therapy scores nothing
    assert rcri({**patient, "insulin_therapy": 1.0}) == 4


def test_heart_score_parts():
    # Typical angina 2, ST-T change 2, age 66: 2, known MI: 2, troponin T 50 ng/L
    # (> 3 x 14): 2.
    worst = {
        "chest_pain_typical": 1.0, "rest_ecg_st_t": 1.0, "age": 66,
        "prior_mi": 1.0, "troponin_t": 50.0,
    }  # fmt: skip
    assert heart_score(worst) == 10
    assert heart_score({"age": 40, "chest_pain_non_anginal": 1.0}) == 0
    assert heart_score({"age": 50, "troponin_i": 30.0}, ecg_points=1) == 1 + 1 + 1
    assert heart_score({"age": 50}) is None  # no history, ECG or troponin


def test_derived_features_hold_only_computable_scores():
    features = {"age": 80, "sex_male": 0.0, "systolic_bp": 150}
    derived = derived_features(features)
    assert set(derived) == {"score_cha2ds2_vasc", "score_fsrp"}
    assert with_scores(features)["score_cha2ds2_vasc"] == pytest.approx(3)
    assert with_scores(features)["systolic_bp"] == 150
