"""Reading a mix of real clinical files into one result and one quality report."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from app.cli import cli
from ingest.codes import load_code_tables
from ingest.config import DataConfig
from ingest.dispatch import read_paths
from ingest.quality import quality_report, report_markdown


@pytest.fixture(scope="module")
def mixed(real_data: Path, data_config: DataConfig):
    paths = [
        real_data / "fhir_r4_synthea/single_patient_ktmtwm",
        real_data / "hl7v2_samples",
        real_data / "ecg_wfdb_samples/100.hea",
        real_data / "imaging_cxr_dicom/pydicom_test_files",
        real_data / "imaging_cxr_dicom/00000001_000.png",
    ]
    return read_paths(paths, data_config, load_code_tables())


def test_every_kind_lands_in_one_result(mixed) -> None:
    result, files = mixed
    kinds = {Path(entry["path"]).name: entry["kind"] for entry in files}
    assert kinds["single_patient_ktmtwm"] == "fhir"
    assert kinds["ORU-R01-RMGEAD.hl7"] == "hl7v2"
    assert kinds["100.hea"] == "ecg"
    assert kinds["waveform_ecg.dcm"] == "ecg"
    assert kinds["CT_small.dcm"] == "image"
    assert kinds["00000001_000.png"] == "image"
    sources = {record.source for record in result.records}
    assert {"fhir", "hl7v2", "ecg", "imaging"} <= sources
    # The DICOM ECG and MIT-BIH 100 are read with their own leads and fs.
    details = {Path(e["path"]).name: e["detail"] for e in files}
    assert details["100.hea"].startswith("2 leads at 360 Hz")
    assert "HR 75/min" in details["100.hea"]  # 74.9 /min from the 100.atr beats
    assert details["waveform_ecg.dcm"].startswith("12 leads at")


def test_nothing_is_dropped_silently(mixed) -> None:
    result, files = mixed
    # The ADT message is not a result message: set aside or counted, by name.
    adt = [f for f in files if f["path"].endswith("ADT-A01-01.hl7")][0]
    reasons = " ".join(result.ignored) + " ".join(
        item.reason for item in result.quarantine
    )
    assert adt["records"] == 0
    assert "MSH-9" in reasons or "ADT" in reasons
    # PROVENANCE.md and README files are counted as not data.
    assert any(
        reason.startswith("not a clinical data file") for reason in result.ignored
    )


def test_report_counts_sites_modalities_and_missingness(
    mixed, data_config: DataConfig
) -> None:
    result, files = mixed
    report = quality_report(result, data_config.registry, files)
    assert report["records"] == len(result.records)
    assert report["sites"]["ecg"]["modalities"]["ecg"] == 2
    assert report["sites"]["imaging"]["modalities"]["imaging"] >= 3
    fhir = report["sites"]["fhir"]
    assert fhir["records"] == 1 and fhir["modalities"]["tabular"] == 1
    assert report["missingness"]["total_cholesterol"]["present"] >= 1
    assert report["quarantine"]["total"] == len(result.quarantine)
    json.dumps(report)  # JSON-ready
    text = report_markdown(report)
    assert "| fhir |" in text and "Quarantined, with reasons" in text


def test_cli_ingest_writes_the_report(real_data: Path, tmp_path: Path) -> None:
    out = tmp_path / "report"
    result = CliRunner().invoke(
        cli,
        [
            "ingest",
            str(real_data / "hl7v2_samples"),
            str(real_data / "ecg_wfdb_samples/s0010_re.hea"),
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    report = json.loads((out / "quality.json").read_text())
    assert report["sites"]["ecg"]["records"] == 1
    assert (out / "quality.md").read_text().startswith("# Ingest data-quality report")


def test_cli_ingest_fails_when_nothing_is_usable(real_data: Path, tmp_path) -> None:
    result = CliRunner().invoke(
        cli,
        [
            "ingest",
            str(real_data / "hl7v2_samples/ADT-A01-01.hl7"),
            str(real_data / "hl7v2_samples/PROVENANCE.md"),
            "--out",
            str(tmp_path),
        ],
    )
    assert result.exit_code == 1
    assert "nothing usable" in result.output


def test_cli_ingest_names_a_missing_path(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["ingest", str(tmp_path / "nope.hl7")])
    assert result.exit_code == 2
    assert "nope.hl7" in result.output and "existing file" in result.output


def test_a_ptbxl_folder_is_read_whole_with_labels_and_sites(
    real_data: Path, data_config: DataConfig
) -> None:
    result, files = read_paths(
        [real_data / "ptbxl_subset"], data_config, load_code_tables()
    )
    assert [entry["kind"] for entry in files] == ["ptbxl"]
    assert len(result.records) == 500
    assert {record.site for record in result.records} == {
        f"ptbxl_site{n}" for n in range(4)
    }
    assert sum("acute_mi" in record.labels for record in result.records) > 400
    assert all(record.ecg.signal.shape == (12, 1000) for record in result.records)


def test_a_file_that_breaks_its_reader_is_set_aside_the_rest_counts(
    real_data: Path, data_config: DataConfig, tmp_path: Path
) -> None:
    # A DICOM with a NUL in SpecificCharacterSet once stopped the whole run
    # from the kind probe, outside the per-file guard.
    broken = tmp_path / "broken.dcm"
    broken.write_bytes(b"\0" * 128 + b"DICM" + b"\x08\x00\x05\x00CS\x04\x00IS\0\0")
    result, files = read_paths(
        [broken, real_data / "hl7v2_samples/ORU-R01-RMGEAD.hl7"],
        data_config,
        load_code_tables(),
    )
    by_name = {Path(f["path"]).name: f for f in files}
    assert by_name["broken.dcm"]["records"] == 0
    assert by_name["broken.dcm"]["quarantined"] == 1
    assert by_name["ORU-R01-RMGEAD.hl7"]["records"] == 1


def test_every_real_clinical_folder_ingests(
    real_data: Path, data_config: DataConfig
) -> None:
    folders = ["fhir_r4_synthea", "hl7v2_samples", "imaging_cxr_dicom"]
    result, files = read_paths(
        [real_data / name for name in folders] + [real_data / "ecg_wfdb_samples"],
        data_config,
        load_code_tables(),
    )
    by_name = {Path(entry["path"]).name: entry for entry in files}
    # Every ECG sample is read, with its leads and fs; the one whose leads have
    # no standard names is measured and said to be unusable, not set aside.
    for name in ("100.hea", "03700181.hea", "a103l.hea", "s0010_re.hea", "v102s.hea"):
        assert by_name[name]["records"] == 1, by_name[name]
    assert "1 leads at 500 Hz" in by_name["03700181.hea"]["detail"]  # RESP, ABP out
    assert "HR 123/min" in by_name["03700181.hea"]["detail"]  # inverted MCL1
    unnamed = by_name["test01_00s.hea"]
    assert (
        unnamed["quarantined"] == 0
        and "no lead with a standard name" in (unnamed["detail"])
    )
    assert "12 leads at 1000 Hz" in by_name["waveform_ecg.dcm"]["detail"]
    # What is set aside is bad in the source itself, each with its reason.
    set_aside = sorted((item.source, item.field) for item in result.quarantine)
    assert set_aside == [
        ("LAB-ORU-2.hl7", "hemoglobin.unit"),  # 'g/l-1' is g x L, not a mass conc.
        ("LRI_2.0-NG_CBC_Typ_Message.hl7", "hemoglobin"),  # 12.5 g/mL
        ("ObservationBundle.json", "Bundle.entry.resource"),  # no 'resource' key
    ]
    sites = {record.site for record in result.records}
    assert sites == {"fhir", "hl7v2", "imaging", "ecg"}
    assert sum(record.site == "fhir" for record in result.records) == 15


def test_cli_ingest_takes_this_sources_missing_codes(tmp_path: Path) -> None:
    table = tmp_path / "labs.csv"
    table.write_text("patient,glucose [mg/dL]\np1,999\np2,95\n", encoding="utf-8")
    out = tmp_path / "report"
    args = ["ingest", str(table), "--out", str(out), "--missing-code", "999"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    report = json.loads((out / "quality.json").read_text())
    assert report["records"] == 1  # p1's 999 means "not measured" here
    assert report["quarantine"]["total"] == 0
