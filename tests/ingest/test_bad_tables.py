"""Corrupted copies of real files: every bad cell is quarantined or named."""

import pytest

from ingest.errors import InputError
from ingest.stroke_table import read_stroke_table
from ingest.uci import read_uci
from ingest.vitaldb import read_vitaldb

UCI = "uci_heart_disease/processed.cleveland.data"


def _uci_copy(real_data, tmp_path, edit):
    lines = (real_data / UCI).read_text().splitlines()
    path = tmp_path / "processed.test.data"
    path.write_text("\n".join(edit(lines)) + "\n")
    return path


def test_one_text_cell_is_quarantined_not_the_column(real_data, tmp_path, data_config):
    def edit(lines):
        fields = lines[0].split(",")
        fields[2] = "x"  # chest pain type
        return [",".join(fields), *lines[1:]]

    quarantine = []
    records = read_uci(
        _uci_copy(real_data, tmp_path, edit), "s", data_config.features, quarantine
    )
    assert [(q.record_id, q.field) for q in quarantine] == [("s:1", "cp")]
    assert "chest_pain_typical" not in records[0].features
    assert records[1].features["chest_pain_asymptomatic"] == 1  # 67,1,4,... unchanged


def test_rows_without_a_valid_label_are_quarantined(real_data, tmp_path, data_config):
    def edit(lines):
        return [
            lines[0].rsplit(",", 1)[0] + ",?",
            lines[1].rsplit(",", 1)[0] + ",-1",
            *lines[2:],
        ]

    quarantine = []
    records = read_uci(
        _uci_copy(real_data, tmp_path, edit), "s", data_config.features, quarantine
    )
    assert len(records) == 301
    assert {(q.record_id, q.field) for q in quarantine} == {
        ("s:1", "num"),
        ("s:2", "num"),
    }


def test_unknown_code_is_quarantined(real_data, tmp_path, data_config):
    def edit(lines):
        fields = lines[0].split(",")
        fields[2] = "9"
        return [",".join(fields), *lines[1:]]

    quarantine = []
    read_uci(
        _uci_copy(real_data, tmp_path, edit), "s", data_config.features, quarantine
    )
    assert quarantine[0].field == "cp" and "code not one of" in quarantine[0].reason


@pytest.mark.parametrize("content", ["", "   \n", "\x00\x01\x02binary"])
def test_unreadable_files_name_the_file(tmp_path, data_config, content):
    path = tmp_path / "stroke.csv"
    path.write_text(content)
    with pytest.raises(InputError) as raised:
        read_stroke_table(path, "s", data_config.features, [])
    assert raised.value.source == "stroke.csv"


def test_vitaldb_text_label_and_duplicate_case(real_data, tmp_path, data_config):
    lines = (real_data / "vitaldb/clinical_data.csv").read_text().splitlines()
    header, first, *rest = lines
    columns = header.split(",")
    fields = first.split(",")
    fields[columns.index("death_inhosp")] = "yes"
    path = tmp_path / "cases.csv"
    path.write_text(
        "\n".join([header, ",".join(fields), rest[0], rest[0], *rest[1:50]])
    )
    quarantine = []
    records = read_vitaldb(
        path, data_config.sources.vitaldb, data_config.features, quarantine
    )
    reasons = {(q.record_id, q.field) for q in quarantine}
    assert ("case:1", "death_inhosp") in reasons
    assert ("case:2", "caseid") in reasons
    assert len({r.record_id for r in records}) == len(records)
