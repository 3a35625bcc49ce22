import pandas as pd

from ingest.framingham import DAYS_PER_YEAR, read_framingham

COLUMNS = {
    "SEX": 1, "AGE": 50, "SYSBP": 130.0, "DIABP": 80.0, "TOTCHOL": 220.0,
    "HDLC": None, "GLUCOSE": 90.0, "BMI": 25.0, "HEARTRTE": 70.0, "CURSMOKE": 0,
    "CIGPDAY": 0.0, "BPMEDS": 0.0, "DIABETES": 0, "PREVCHD": 0, "PREVMI": 0,
    "PREVAP": 0, "PREVHYP": 0, "DEATH": 0, "TIMEDTH": 8766,
}  # fmt: skip


def _exam(person, period, time, stroke, time_stroke, prev_stroke=0, **extra):
    row = dict(COLUMNS, RANDID=person, PERIOD=period, TIME=time, STROKE=stroke)
    row.update(TIMESTRK=time_stroke, PREVSTRK=prev_stroke, **extra)
    return row


def test_landmarks_have_no_look_ahead(tmp_path, data_config):
    rows = [
        # Person 1: stroke on day 5000, exams on days 0, 2000 and (after it) 6000.
        _exam(1, 1, 0, 1, 5000),
        _exam(1, 2, 2000, 1, 5000, SYSBP=150.0),
        _exam(1, 3, 6000, 1, 5000, prev_stroke=1),
        # Person 2: no stroke, died on day 1000 (competing risk: negative).
        _exam(2, 1, 0, 0, 1000, DEATH=1, TIMEDTH=1000),
    ]
    path = tmp_path / "frm.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    quarantine = []
    records = read_framingham(path, "framingham", 10, data_config.features, quarantine)
    by_id = {r.record_id: r for r in records}
    # 5000 days > 10 years after the first exam; 3000 days within after the second.
    assert by_id["framingham:1:1"].labels == {"stroke": 0}
    assert by_id["framingham:1:2"].labels == {"stroke": 1}
    assert "framingham:1:3" not in by_id  # after the stroke: not at risk
    assert by_id["framingham:2:1"].labels == {"stroke": 0}
    # The second exam's timeline holds only the first exam, 2000 days earlier.
    timeline = by_id["framingham:1:2"].timeline
    assert len(timeline) == 1
    assert abs(timeline[0].years_before - 2000 / DAYS_PER_YEAR) < 1e-9
    assert timeline[0].values["systolic_bp"] == 130.0
    assert by_id["framingham:1:2"].features["systolic_bp"] == 150.0


def test_real_file_labels_only_future_strokes(real_data, data_config):
    quarantine = []
    records = read_framingham(
        real_data / "framingham_teaching/frmgham2.csv",
        "framingham",
        10,
        data_config.features,
        quarantine,
    )
    table = pd.read_csv(real_data / "framingham_teaching/frmgham2.csv")
    assert 0 < len(records) <= len(table)
    assert {r.patient_id for r in records} <= {f"framingham:{i}" for i in table.RANDID}
    positives = sum(r.labels["stroke"] for r in records)
    assert 0.02 < positives / len(records) < 0.08
    assert all(step.years_before > 0 for r in records for step in r.timeline)
