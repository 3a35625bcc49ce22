import pandas as pd

from ingest.vitaldb import read_vitaldb

BASE = {
    "subjectid": 1, "death_inhosp": 0, "department": "General surgery",
    "optype": "Colorectal", "age": 60, "sex": "M", "height": 170.0, "weight": 70.0,
    "bmi": 24.2, "asa": 2, "emop": 0, "preop_htn": 0, "preop_dm": 0,
    "preop_ecg": "Normal Sinus Rhythm", "approach": "Open", "opstart": 0, "opend": 7200,
    "intraop_ebl": 100, "intraop_rbc": 0,
}  # fmt: skip
LABS = "hb plt pt aptt na k gluc alb ast alt bun cr".split()
LABS = [f"preop_{name}" for name in LABS]


def _case(caseid, stay_days, **extra):
    row = dict(BASE, caseid=caseid, adm=-86400, dis=-86400 + stay_days * 86400)
    row.update({lab: None for lab in LABS})
    row.update(extra)
    return row


def test_impossible_stays_quarantined_and_proxy_label(tmp_path, data_config):
    rows = [_case(i, 5 + i % 3) for i in range(1, 21)]
    rows += [
        _case(21, 60),  # prolonged for its operation type
        _case(22, 3, death_inhosp=1),  # died: positive whatever the stay
        _case(23, -2),  # negative stay
        _case(24, 500),  # absurd stay
        _case(25, 5, department="Thoracic surgery"),  # not digestive: left out
    ]
    path = tmp_path / "cases.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    quarantine = []
    records = read_vitaldb(
        path, data_config.sources.vitaldb, data_config.features, quarantine
    )
    by_id = {r.record_id: r for r in records}
    assert by_id["vitaldb:21"].labels == {"postop": 1}
    assert by_id["vitaldb:22"].labels == {"postop": 1}
    assert by_id["vitaldb:1"].labels == {"postop": 0}
    assert {q.record_id for q in quarantine} == {"case:23", "case:24"}
    assert all("length of stay" in q.reason for q in quarantine)
    assert len(records) == 22
    assert by_id["vitaldb:1"].features["surgery_duration"] == 2.0  # hours


def test_real_cases(real_data, data_config):
    quarantine = []
    records = read_vitaldb(
        real_data / "vitaldb/clinical_data.csv",
        data_config.sources.vitaldb,
        data_config.features,
        quarantine,
    )
    assert len(records) + len([q for q in quarantine if q.field == "adm/dis"]) == 4930
    rate = sum(r.labels["postop"] for r in records) / len(records)
    assert 0.08 < rate < 0.15  # ~10% prolonged stays plus deaths
