from ingest.stroke_table import read_stroke_table


def test_missing_codes(real_data, data_config):
    quarantine = []
    records = read_stroke_table(
        real_data / "stroke_prediction_kaggle/healthcare-dataset-stroke-data.csv",
        "stroke_table",
        data_config.features,
        quarantine,
    )
    assert len(records) == 5110
    assert sum(r.labels["stroke"] for r in records) == 249
    implausible = [q for q in quarantine if q.field == "bmi"]
    assert implausible and all("10..80 kg/m2" in q.reason for q in implausible)
    # The literal 'N/A' in 201 rows is missing; implausible values are quarantined.
    assert sum("bmi" not in r.features for r in records) == 201 + len(implausible)
    assert sum("sex_male" not in r.features for r in records) == 1  # gender 'Other'
    assert sum("current_smoker" not in r.features for r in records) == 1544  # Unknown
