"""HL7 v2 ORU^R01 lab results: real sample messages and small synthetic ones."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from ingest.codes import CodeTables, LoincEntry, load_code_tables
from ingest.config import DataConfig
from ingest.errors import InputError
from ingest.hl7v2 import parse_oru, parse_reference_range, read_hl7v2, unescape

ENCODING = {
    "FIELD": "|",
    "COMPONENT": "^",
    "SUBCOMPONENT": "&",
    "REPETITION": "~",
    "ESCAPE": "\\",
}
MSH = "MSH|^~\\&|LAB|H||CR|20240301090000+0100||ORU^R01^ORU_R01|{id}|P|2.5.1"
PID = "PID|1||{pid}^^^H^MR||Doe^Jane||19600301|{sex}"
OBR = "OBR|1|||24331-1^Lipid panel^LN|||20240301080000+0100"


@pytest.fixture(scope="module")
def codes() -> CodeTables:
    return load_code_tables()


@pytest.fixture(scope="module")
def samples(real_data: Path) -> Path:
    folder = real_data / "hl7v2_samples"
    if not folder.is_dir():
        pytest.skip(f"HL7 v2 samples not found at {folder}")
    return folder


def _with_loinc(codes: CodeTables, code: str, feature: str) -> CodeTables:
    """The code tables plus one mapping (for a code codes.yaml does not list)."""
    extra = {code: LoincEntry(feature=feature, display="test mapping")}
    return codes.model_copy(update={"loinc": {**codes.loinc, **extra}})


def _read(data, config: DataConfig, codes: CodeTables, **options):
    return read_hl7v2(
        data,
        registry=config.registry,
        codes=codes,
        timeline_features=config.timeline_features,
        max_timeline_steps=config.max_timeline_steps,
        **options,
    )


def _message(*obx: str, control: str = "C1", pid: str = "P-1", sex: str = "F") -> str:
    lines = [MSH.format(id=control), PID.format(pid=pid, sex=sex), OBR, *obx]
    return "\r".join(lines) + "\r"


# -- real sample messages --------------------------------------------------------------


def test_rmgead_glucose_with_reference_range(samples, data_config, codes):
    path = samples / "ORU-R01-RMGEAD.hl7"
    # 1554-5 is glucose after 12 h fasting; the message leaves its system empty.
    mapped = codes
    result = _read(path, data_config, mapped)
    (record,) = result.records
    assert result.notes == [
        "1 numeric results used, 1 abnormal",
        "CNTRL-3456/OBX-1: glucose (LOINC 1554-5) abnormal "
        "(OBX-8 flags H; reference range 70_105)",
    ]
    assert record.features["glucose"] == pytest.approx(182.0)
    assert record.features["sex_male"] == 0.0
    assert record.features["age"] == pytest.approx(39.9, abs=0.05)  # 1962 -> 2002

    (result,) = parse_oru(path, registry=data_config.registry, codes=mapped).results
    assert result.observation.comparator is None  # SN "^182"
    assert result.observation.time == datetime(
        2002, 2, 15, 7, 30, tzinfo=timezone(timedelta(hours=6))
    )  # no OBX-14: OBR-7
    assert result.reference_range.low == 70 and result.reference_range.high == 105
    assert result.abnormal_flags == ("H",) and result.abnormal is True


def test_lab_oru_2_platelets_in_giga_per_litre(samples, data_config, codes):
    # The sender codes its platelet count 11125-2, which LOINC defines as platelet
    # morphology; mapped here only to check the giga.l-1 conversion.
    mapped = _with_loinc(codes, "11125-2", "platelets")
    result = _read(samples / "LAB-ORU-2.hl7", data_config, mapped)
    (record,) = result.records
    assert record.features["platelets"] == pytest.approx(220.0)  # 10^3/uL
    assert record.features["sex_male"] == 1.0
    # Haemoglobin 13.4 "g/l-1" is g * L: not a concentration.
    (item,) = result.quarantine
    assert item.field == "hemoglobin.unit" and "'g/l-1'" in item.reason
    assert "10006579" not in record.record_id + record.patient_id


def test_lri_implausible_haemoglobin_is_quarantined(samples, data_config, codes):
    result = _read(samples / "LRI_2.0-NG_CBC_Typ_Message.hl7", data_config, codes)
    (record,) = result.records
    assert record.features["platelets"] == pytest.approx(210.0)  # 210000 {cells}/uL
    assert "hemoglobin" not in record.features
    (item,) = result.quarantine
    assert record.source == "hl7v2" and item.source == "LRI_2.0-NG_CBC_Typ_Message.hl7"
    assert item.field == "hemoglobin"
    assert "2..25 g/dL" in item.reason and "12.5 g/mL" in item.reason
    assert result.ignored["OBX-2 value type CWE is not numeric"] == 6
    assert result.ignored["OBX-2 value type TX is not numeric"] == 3


def test_lri_reference_range_and_flags_are_kept(samples, data_config, codes):
    content = parse_oru(
        samples / "LRI_2.0-NG_CBC_Typ_Message.hl7",
        registry=data_config.registry,
        codes=codes,
    )
    (platelets,) = content.results
    assert platelets.value_sent == 210000 and platelets.unit_sent == "{cells}/uL"
    assert platelets.reference_range.low == 150000
    assert platelets.reference_range.high == 350000
    assert platelets.abnormal_flags == ("N",) and platelets.abnormal is False
    assert platelets.observation.time == datetime(2011, 1, 3, 22, 34, 28, tzinfo=UTC)


@pytest.fixture(scope="module")
def lri_text(samples) -> str:
    """The LRI message with CR segment endings (the file has LF)."""
    raw = (samples / "LRI_2.0-NG_CBC_Typ_Message.hl7").read_bytes()
    return raw.decode("utf-8-sig").replace("\r\n", "\n").replace("\n", "\r")


@pytest.fixture(scope="module")
def lri_as_cr(lri_text, data_config, codes):
    return _read(lri_text.encode(), data_config, codes, source="lri")


@pytest.mark.parametrize("form", ["LF", "CRLF", "MLLP"])
def test_line_endings_and_framing_do_not_change_the_result(
    lri_text, lri_as_cr, data_config, codes, form
):
    other = {
        "LF": lri_text.replace("\r", "\n").encode(),
        "CRLF": lri_text.replace("\r", "\r\n").encode(),
        "MLLP": b"\x0b" + lri_text.encode() + b"\x1c\r",
    }[form]
    result = _read(other, data_config, codes, source="lri")
    assert len(lri_as_cr.records) == 1
    assert result.records == lri_as_cr.records
    assert result.quarantine == lri_as_cr.quarantine
    assert result.ignored == lri_as_cr.ignored


def test_pending_results_are_ignored_and_counted(samples, data_config, codes):
    result = _read(samples / "LAB-ORU-1.hl7", data_config, codes)
    # Haemoglobin is pending (status I, no value): no usable result, so no record.
    assert result.ignored["OBX-11 status I (pending) is not F, C or P"] == 2
    assert result.records == [] and result.quarantine == []


def test_admission_message_is_ignored_naming_msh_9(samples, data_config, codes):
    result = _read(samples / "ADT-A01-01.hl7", data_config, codes)
    assert result.records == [] and result.quarantine == []
    assert result.ignored == {
        "MSH-9 message type ADT^A01 is not ORU^R01 (lab results)": 1
    }


def test_segments_unknown_to_the_version_fall_back_to_segment_parsing(
    samples, data_config, codes
):
    # PRT is not a v2.5.1 segment; the message is read segment by segment.
    result = _read(samples / "ORU-R01-01.hl7", data_config, codes)
    assert result.quarantine == []
    assert result.ignored == {
        "OBX-2 value type RP is not numeric": 2,
        "OBX-2 value type ED is not numeric": 1,
        "OBX-2 value type CWE is not numeric": 1,
        "OBX-11 status I (pending) is not F, C or P": 1,
    }


# -- synthetic messages ----------------------------------------------------------------


def test_escaped_unit_and_structured_numeric_bound(data_config, codes):
    message = _message(
        "OBX|1|NM|777-3^Platelets^LN||250|10\\S\\9/L|150-400|N|||F",
        "OBX|2|SN|89579-7^Troponin I hs^LN||<^3|ng/L|<26||||F|||20240301081500+0100",
    )
    content = parse_oru(message.encode(), registry=data_config.registry, codes=codes)
    platelets, troponin = content.results
    assert platelets.unit_sent == "10^9/L"
    assert platelets.observation.value == pytest.approx(250.0)
    assert troponin.observation.comparator == "<"
    assert troponin.observation.value == 3.0
    assert troponin.reference_range.high == 26
    assert not troponin.reference_range.high_inclusive
    assert troponin.abnormal is False


def test_corrected_result_replaces_the_final_one(data_config, codes):
    message = _message(
        "OBX|1|NM|2345-7^Glucose^LN||95|mg/dL|||||P",
        "OBX|2|NM|2345-7^Glucose^LN||105|mg/dL|||||F",
        "OBX|3|NM|2345-7^Glucose^LN||110|mg/dL|||||C",
    )
    result = _read(message.encode(), data_config, codes)
    (record,) = result.records
    assert record.features["glucose"] == 110.0
    assert sum(result.ignored.values()) == 2 and result.quarantine == []


def test_several_messages_and_patients_in_one_input(data_config, codes):
    first = _message("OBX|1|NM|2345-7^Glucose^LN||5.5|mmol/L|||||F", pid="A")
    second = _message(
        "OBX|1|NM|2160-0^Creatinine^LN||88.4|umol/L|||||F",
        control="C2",
        pid="B",
        sex="M",
    )
    records = _read((first + second).encode(), data_config, codes).records
    assert len(records) == 2
    by_sex = {record.features["sex_male"]: record.features for record in records}
    assert by_sex[0.0]["glucose"] == pytest.approx(99.1, abs=0.1)
    assert by_sex[1.0]["creatinine"] == pytest.approx(1.0, abs=0.001)
    assert by_sex[1.0]["age"] == pytest.approx(64.0, abs=0.01)


def test_bad_values_are_quarantined_with_the_reason(data_config, codes):
    message = _message(
        "OBX|1|NM|2345-7^Glucose^LN||high|mg/dL|||||F",
        "OBX|2|NM|2345-7^Glucose^LN||95||||||F",
        "OBX|3|NM|2345-7^Glucose^LN||95|furlong|||||F",
        "OBX|4|NM|2345-7^Glucose^LN||95~96|mg/dL|||||F",
        "OBX|5|NM|99999^Local glucose^L||95|mg/dL|||||F",
    )
    result = _read(message.encode(), data_config, codes)
    assert result.records == []
    reasons = {item.record_id: item.reason for item in result.quarantine}
    assert "not a number" in reasons["C1/OBX-1"]
    assert "no unit" in reasons["C1/OBX-2"]
    assert "'furlong'" in reasons["C1/OBX-3"]
    assert "repeats" in reasons["C1/OBX-4"]
    assert result.ignored == {"OBX-3 coding system L is not LOINC": 1}


def test_unknown_version_z_segment_and_bad_header(data_config, codes):
    message = _message("ZLB|1|local", "OBX|1|NM|2345-7^^LN||95|mg/dL|||||F")
    newer = message.replace("|P|2.5.1", "|P|2.9")  # not a version hl7apy knows
    (record,) = _read(("\ufeff" + newer).encode(), data_config, codes).records
    assert record.features["glucose"] == 95.0
    broken = _read(b"MSH|^~|LAB\rPID|1||X\r", data_config, codes)
    (item,) = broken.quarantine
    assert item.field == "MSH" and "not readable" in item.reason


def test_result_without_a_patient_is_quarantined(data_config, codes):
    message = "\r".join([MSH.format(id="C9"), "OBX|1|NM|2345-7^^LN||95|mg/dL|||||F"])
    result = _read(message.encode(), data_config, codes)
    (item,) = result.quarantine
    assert item.record_id == "C9/OBX-1" and item.field == "PID"


def test_empty_input_and_text_without_msh_raise(data_config, codes, tmp_path):
    empty = tmp_path / "empty.hl7"
    empty.write_bytes(b"\xef\xbb\xbf\r\n")
    with pytest.raises(InputError, match="empty.hl7"):
        _read(empty, data_config, codes)
    with pytest.raises(InputError, match="no MSH segment"):
        _read(b"PID|1||X\rOBX|1|NM|2345-7^^LN||95|mg/dL", data_config, codes)


# -- pieces ----------------------------------------------------------------------------


def test_unescape_replaces_escape_sequences():
    text = "E.coli O157:H7 \\T\\ other STECs"
    assert unescape(text, ENCODING) == "E.coli O157:H7 & other STECs"
    assert unescape("a\\F\\b\\S\\c\\R\\d\\E\\e", ENCODING) == "a|b^c~d\\e"
    assert unescape("\\X4D\\g\\.br\\\\H\\bold\\N\\", ENCODING) == "Mg\nbold"
    assert unescape("\\XC2B5\\mol/L", ENCODING) == "µmol/L"
    assert unescape("no closing \\ here", ENCODING) == "no closing \\ here"
    custom = {**ENCODING, "ESCAPE": "#", "SUBCOMPONENT": "@"}
    assert unescape("A #T# B", custom) == "A @ B"


@pytest.mark.parametrize(
    ("text", "low", "high", "inside", "outside"),
    [
        ("4.3 to 6.2", 4.3, 6.2, 5.0, 6.3),
        ("70-80", 70, 80, 80, 81),
        ("70_105", 70, 105, 90, 182),
        ("-5 to 5", -5, 5, -5, -6),
        ("<200", None, 200, 199, 200),
        (">= 40", 40, None, 40, 39),
    ],
)
def test_reference_ranges_parse(text, low, high, inside, outside):
    reference = parse_reference_range(text)
    assert (reference.low, reference.high) == (low, high)
    assert reference.contains(inside) and not reference.contains(outside)


def test_non_numeric_reference_range_is_none():
    assert parse_reference_range("negative") is None
    assert parse_reference_range("") is None
