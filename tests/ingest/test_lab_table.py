"""CSV lab exports: separators, decimal commas, missing codes, units, bad cells."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from ingest.codes import CodeTables, load_code_tables
from ingest.config import DataConfig
from ingest.errors import InputError
from ingest.lab_table import parse_lab_table, read_lab_table


@pytest.fixture(scope="module")
def codes() -> CodeTables:
    return load_code_tables()


def _write(tmp_path: Path, text: str, name: str = "labs.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _read(path: Path, config: DataConfig, codes: CodeTables, **options):
    return read_lab_table(
        path,
        registry=config.registry,
        codes=codes,
        timeline_features=config.timeline_features,
        max_timeline_steps=config.max_timeline_steps,
        **options,
    )


def _parse(path: Path, config: DataConfig, codes: CodeTables, **options):
    return parse_lab_table(path, registry=config.registry, codes=codes, **options)


def test_semicolons_with_decimal_commas(tmp_path, data_config, codes):
    path = _write(
        tmp_path,
        "patient;time;code;value;unit\n"
        "p1;2024-03-01T08:00;2160-0;88,4;µmol/L\n"
        "p1;2024-03-01T08:00;2345-7;5,5;mmol/L\n",
    )
    result = _read(path, data_config, codes)
    (record,) = result.records
    assert record.features["creatinine"] == pytest.approx(1.0, abs=0.001)  # mg/dL
    assert record.features["glucose"] == pytest.approx(99.1, abs=0.1)
    assert result.quarantine == [] and result.ignored == {}
    assert result.notes == ["labs.csv: long layout, separator ';', decimal mark ','"]
    assert "p1" not in record.patient_id and record.source == "lab_table"


def test_a_comma_in_a_comma_file_is_never_a_decimal(tmp_path, data_config, codes):
    path = _write(
        tmp_path,
        'patient,code,value,unit\np1,2160-0,"88,4",umol/L\np2,2160-0,1.1,mg/dL\n',
    )
    result = _read(path, data_config, codes)
    (record,) = result.records
    assert record.features["creatinine"] == 1.1
    (item,) = result.quarantine
    assert item.record_id == "row 2" and "decimal mark is '.'" in item.reason


def test_a_point_in_a_decimal_comma_file_is_quarantined(tmp_path, data_config, codes):
    path = _write(
        tmp_path,
        "patient;code;value;unit\np1;2160-0;1,1;mg/dL\np2;2160-0;1.234;mg/dL\n",
    )
    (item,) = _read(path, data_config, codes).quarantine
    assert item.record_id == "row 3" and "decimal mark is ','" in item.reason


def test_missing_codes_are_counted_never_read_as_numbers(tmp_path, data_config, codes):
    path = _write(
        tmp_path,
        "patient,time,glucose [mg/dL],creatinine [mg/dL],hdl_cholesterol [mg/dL]\n"
        "p1,2024-01-01,?,-9,-9.0\n"
        "p1,2024-01-02,100,,NA\n",
    )
    result = _read(path, data_config, codes)
    (record,) = result.records
    assert record.features == {"glucose": 100.0}
    assert result.ignored == {
        "missing value '?' (a missing-value code of this source)": 1,
        "missing value '-9' (a missing-value code of this source)": 2,
        "missing value '' (a missing-value code of this source)": 1,
        "missing value 'na' (a missing-value code of this source)": 1,
    }
    assert result.quarantine == []


def test_source_missing_codes_are_configurable(tmp_path, data_config, codes):
    path = _write(tmp_path, "patient,glucose [mg/dL]\np1,999\np2,95\n")
    result = _read(path, data_config, codes, missing_codes=("999",))
    (record,) = result.records
    assert record.features == {"glucose": 95.0}
    assert sum(result.ignored.values()) == 1


def test_troponin_bound_with_its_unit_in_the_cell(tmp_path, data_config, codes):
    path = _write(
        tmp_path,
        "patient\ttime\tcode\tvalue\tunit\n"
        "p1\t2024-03-01 08:00\t6598-7\t<3 ng/L\t\n"
        "p2\t2024-03-01 08:00\t6598-7\t<= 0.01 ng/mL\tng/mL\n",
    )
    observations, result = _parse(path, data_config, codes)
    assert result.quarantine == []
    first, second = observations
    assert (first.comparator, first.value) == ("<", 3.0)
    assert (second.comparator, second.value) == ("<=", pytest.approx(10.0))
    assert first.time == datetime(2024, 3, 1, 8, 0, tzinfo=UTC)
    assert first.code == "6598-7"


def test_one_patients_troponin_in_ng_per_ml_and_ng_per_l(tmp_path, data_config, codes):
    path = _write(
        tmp_path,
        "patient,time,feature,value,unit\n"
        "p1,2024-03-01T08:00,troponin_t,0.048,ng/mL\n"
        "p1,2024-03-01T08:00,troponin_t,48,ng/L\n"
        "p2,2024-03-01T08:00,troponin_t,0.048,ng/mL\n"
        "p2,2024-03-01T08:00,troponin_t,480,ng/L\n"
        "p3,2024-03-01T08:00,troponin_t,0.048,ng/mL\n"
        "p3,2024-03-01T12:00,troponin_t,60,ng/L\n",
    )
    result = _read(path, data_config, codes)
    values = {r.patient_id: r.features.get("troponin_t") for r in result.records}
    # Agreeing values at one time are one value; a later one wins.
    assert sorted(value for value in values.values() if value) == [48.0, 60.0]
    # 48 and 480 ng/L at one time conflict: set aside, not averaged.
    (item,) = result.quarantine
    assert item.field == "troponin_t" and "different values" in item.reason


def test_non_numeric_cell_names_row_and_column(tmp_path, data_config, codes):
    path = _write(
        tmp_path,
        "patient,time,glucose [mg/dL],creatinine [mg/dL]\n"
        "p1,2024-01-01,100,1.0\n"
        "p2,2024-01-01,high,0.9\n",
    )
    result = _read(path, data_config, codes)
    (item,) = result.quarantine
    assert item.record_id == "row 3" and item.field == "glucose [mg/dL]"
    assert "row 3, column 'glucose [mg/dL]'" in item.reason
    assert len(result.records) == 2  # p2 keeps its creatinine


def test_missing_and_impossible_units_are_quarantined(tmp_path, data_config, codes):
    path = _write(
        tmp_path,
        "patient,code,value,unit\n"
        "p1,2160-0,1.0,\n"
        "p2,2160-0,1.0,furlong\n"
        "p3,2160-0,1.0,mmHg\n"
        "p4,2160-0,1.0,mg/dL\n",
    )
    result = _read(path, data_config, codes)
    assert len(result.records) == 1
    reasons = {item.record_id: item.reason for item in result.quarantine}
    assert "found no unit" in reasons["row 2"]
    assert "'furlong'" in reasons["row 3"]
    assert "'mmHg'" in reasons["row 4"]


def test_implausible_value_names_the_range(tmp_path, data_config, codes):
    path = _write(tmp_path, "patient,hemoglobin [g/mL]\np1,12.5\n")
    (item,) = _read(path, data_config, codes).quarantine
    assert "2..25 g/dL" in item.reason


def test_wide_units_from_unit_row_and_unit_column(tmp_path, data_config, codes):
    path = _write(
        tmp_path,
        "patient,time,2160-0,troponin_t,troponin_t_unit,potassium\n"
        "unit,,umol/L,,,mEq/L\n"
        "p1,2024-01-01,88.4,0.05,ng/mL,4.1\n"
        "p1,2024-02-01,97.2,48,ng/L,4.5\n",
    )
    result = _read(path, data_config, codes)
    assert result.quarantine == []
    (record,) = result.records
    assert record.features["creatinine"] == pytest.approx(1.1, abs=0.001)
    assert record.features["troponin_t"] == 48.0
    assert record.features["potassium"] == pytest.approx(4.5)


def test_unknown_codes_and_columns_are_counted(tmp_path, data_config, codes):
    path = _write(
        tmp_path,
        "patient,code,value,unit\np1,4544-3,41,%\np1,2160-0,1.0,mg/dL\n",
    )
    result = _read(path, data_config, codes)
    assert result.ignored == {"LOINC 4544-3 not mapped": 1}
    wide = _write(
        tmp_path, "patient,hematocrit [%],glucose [mg/dL]\np1,41,90\n", "w.csv"
    )
    assert _read(wide, data_config, codes).ignored == {
        "column 'hematocrit': not a registry feature or mapped LOINC": 1
    }


def test_ragged_rows_and_bad_times_are_quarantined(tmp_path, data_config, codes):
    path = _write(
        tmp_path,
        "patient,time,glucose [mg/dL]\np1,2024-01-01,90,extra\np2,01/02/2024,95\n",
    )
    result = _read(path, data_config, codes)
    assert result.records == []
    reasons = {item.record_id: item.reason for item in result.quarantine}
    assert "3 cells" not in reasons["row 2"] and "4 cells" in reasons["row 2"]
    assert "ISO 8601" in reasons["row 3"]


def test_empty_and_header_only_files_raise_naming_the_file(
    tmp_path, data_config, codes
):
    empty = _write(tmp_path, "", "empty_export.csv")
    with pytest.raises(InputError, match="empty_export.csv.*empty file"):
        _read(empty, data_config, codes)
    header = _write(tmp_path, "patient,code,value,unit\n\n", "header_only.csv")
    with pytest.raises(InputError, match="header_only.csv.*only a header"):
        _read(header, data_config, codes)
    no_patient = _write(tmp_path, "code,value,unit\n2160-0,1,mg/dL\n", "nopat.csv")
    with pytest.raises(InputError, match="nopat.csv.*patient"):
        _read(no_patient, data_config, codes)
