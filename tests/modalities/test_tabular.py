from ingest.schema import PatientRecord
from modalities.tabular import seen_ranges


def _record(i: int, features: dict) -> PatientRecord:
    return PatientRecord(f"r{i}", f"p{i}", "site", "test", features)


def test_seen_ranges_keep_the_middle_99_percent_of_each_feature():
    records = [_record(i, {"age": float(i)}) for i in range(1001)]  # ages 0..1000
    records += [_record(2000 + i, {"potassium": 4.0}) for i in range(5)]
    found = seen_ranges(records, ["age", "potassium", "sodium"])
    assert found["age"] == [5.0, 995.0]
    assert "potassium" not in found  # 5 values: too few to say what was seen
    assert "sodium" not in found
