from ingest.uci import read_uci


def test_cleveland_first_patient_values(real_data, data_config):
    quarantine = []
    records = read_uci(
        real_data / "uci_heart_disease/processed.cleveland.data",
        "uci_cleveland",
        data_config.features,
        quarantine,
    )
    assert len(records) == 303
    first = records[0].features
    # 63,1,1,145,233,1,2,150,0,2.3,3,0,6,0 in the source file
    assert first["age"] == 63 and first["sex_male"] == 1
    assert first["systolic_bp"] == 145 and first["total_cholesterol"] == 233
    assert first["chest_pain_typical"] == 1 and first["chest_pain_asymptomatic"] == 0
    assert first["rest_ecg_lvh"] == 1 and first["st_slope_down"] == 1
    assert first["thal_fixed_defect"] == 1 and first["st_depression"] == 2.3
    assert records[0].labels == {"heart_disease": 0}
    assert sum(r.labels["heart_disease"] for r in records) == 139  # num > 0


def test_missing_codes_and_zero_cholesterol(real_data, data_config):
    quarantine = []
    swiss = read_uci(
        real_data / "uci_heart_disease/processed.switzerland.data",
        "uci_switzerland",
        data_config.features,
        quarantine,
    )
    # Every Swiss cholesterol is 0 ("not measured"): missing, not quarantined.
    assert all("total_cholesterol" not in r.features for r in swiss)
    assert not [q for q in quarantine if q.field == "total_cholesterol"]
    hungarian = read_uci(
        real_data / "uci_heart_disease/processed.hungarian.data",
        "uci_hungarian",
        data_config.features,
        quarantine,
    )
    # '?' is missing: Hungarian 'ca' is absent in 291 of 294 rows.
    assert sum("major_vessels" not in r.features for r in hungarian) == 291
