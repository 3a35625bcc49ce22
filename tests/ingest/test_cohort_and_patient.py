import pytest

from ingest.cohort import load_cohort, read_manifest
from ingest.errors import InputError
from ingest.patient_json import parse_patient


def test_cohort_round_trip_and_patient_wise_splits(small_cohort, data_config):
    manifest = read_manifest(small_cohort)
    assert set(manifest["sites"]) >= {"uci_cleveland", "uci_hungarian", "ptbxl_site0"}
    assert len(manifest["sources"]["ptbxl_subset/ptbxl_database.csv"]) == 64  # sha256
    records = load_cohort(small_cohort)
    splits_of = {}
    for record in records:
        splits_of.setdefault(record.patient_id, set()).add(record.split)
    assert all(len(splits) == 1 for splits in splits_of.values())
    ecg_record = next(r for r in records if r.record_id == "ptbxl:8")
    assert ecg_record.ecg.signal.shape == (12, 1000)
    assert ecg_record.labels["acute_mi"] == 1
    assert ecg_record.labels["ecg_conduction"] == 0
    first = next(r for r in records if r.record_id == "uci_cleveland:1")
    assert first.features["systolic_bp"] == 145


def test_patient_json_errors_name_the_field(data_config):
    record = parse_patient(
        {"age": 60, "sex": "female", "features": {"systolic_bp": 150}},
        data_config.features,
    )
    assert record.features == {"systolic_bp": 150, "age": 60, "sex_male": 0.0}
    with pytest.raises(InputError) as raised:
        parse_patient({"features": {"sbp": 150}}, data_config.features)
    assert raised.value.field == "features.sbp"
    with pytest.raises(InputError) as raised:
        parse_patient({"features": {"systolic_bp": 900}}, data_config.features)
    assert "50..300 mmHg, found 900" in str(raised.value)
    with pytest.raises(InputError) as raised:
        parse_patient({"sex": "m"}, data_config.features)
    assert raised.value.field == "sex"


@pytest.mark.parametrize(
    ("patient", "field", "expected"),
    [
        ({"age": 61, "features": {"score_fsrp": 9}}, "features.score_fsrp", "computed"),
        (
            {"age": 61, "timeline": [{"years_before": 70, "values": {"age": 30}}]},
            "timeline[0].years_before",
            "at most the patient's age",
        ),
        (
            {"age": 30, "timeline": [{"years_before": 5, "values": {"age": 70}}]},
            "timeline[0].values.age",
            "about 25",
        ),
        (
            {
                "age": 60,
                "timeline": [
                    {"years_before": 2, "values": {"systolic_bp": 140}},
                    {"years_before": 2, "values": {"systolic_bp": 150}},
                ],
            },
            "timeline[1].years_before",
            "one visit per time",
        ),
    ],
)
def test_a_patient_that_cannot_be_is_refused_by_field(
    patient, field, expected, data_config
):
    with pytest.raises(InputError) as raised:
        parse_patient(patient, data_config.registry)
    assert raised.value.field == field and expected in str(raised.value)
