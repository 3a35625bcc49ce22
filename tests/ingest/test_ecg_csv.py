"""ECG CSV exports: separators, decimal commas, units, time columns, bad cells."""

import numpy as np
import pytest

from ingest.ecg import read_ecg
from ingest.ecg_csv import parse_ecg_csv, read_ecg_csv
from ingest.errors import InputError

LEADS = ["I", "II", "III", "AVR", "AVL", "AVF", "V1", "V2", "V3", "V4", "V5", "V6"]


def _table(fs: float = 500, seconds: float = 2.0) -> np.ndarray:
    """Samples x 12 leads in mV: a 3 Hz sine of a different size per lead."""
    t = np.arange(int(fs * seconds)) / fs
    return np.stack([(k + 1) * 0.1 * np.sin(2 * np.pi * 3 * t) for k in range(12)], 1)


def _csv(rows: np.ndarray, header: list[str], sep: str = ",", comma: bool = False):
    lines = [sep.join(header)]
    for row in rows:
        cells = [f"{value:.6f}" for value in row]
        lines.append(
            sep.join(cell.replace(".", ",") if comma else cell for cell in cells)
        )
    return "\n".join(lines) + "\n"


def test_semicolons_and_decimal_commas(tmp_path):
    table = _table()
    header = ["I", "II", "III", "aVR", "aVL", "aVF"] + [f"V{i}" for i in range(1, 7)]
    path = tmp_path / "export.csv"
    path.write_text(_csv(table, header, ";", comma=True), encoding="utf-8")
    ecg = read_ecg_csv(path, fs=500)
    assert ecg.lead_names == LEADS and ecg.fs == 500
    assert ecg.signal.shape == (12, 1000)
    assert np.allclose(ecg.signal, table.T, atol=1e-5)


def test_time_column_in_ms_gives_fs_and_microvolts_convert():
    fs = 360  # times rounded to whole ms stray from the grid: still regular
    table = _table(fs) * 1000  # uV
    times = np.round(np.arange(len(table)) / fs * 1000)
    rows = np.column_stack([times, table[:, :2]])
    text = _csv(rows, ["Time (ms)", "Lead I (Einthoven)", "II (Einthoven)"], "\t")
    ecg = parse_ecg_csv(text, units="uV")
    assert ecg.fs == pytest.approx(fs, rel=1e-3)
    assert ecg.lead_names == ["I", "II"]
    assert np.allclose(ecg.signal, table[:, :2].T / 1000, atol=1e-5)


def test_unit_beside_a_lead_name_and_sample_column():
    text = (
        "sample,II [uV],V1 (mV),time_s\n"
        "0,100,0.5,0.000\n1,200,0.6,0.004\n2,300,0.7,0.008\n"
    )
    ecg = parse_ecg_csv(text.encode())
    assert ecg.lead_names == ["II", "V1"] and ecg.fs == pytest.approx(250)
    assert np.allclose(ecg.signal[0], [0.1, 0.2, 0.3])
    assert np.allclose(ecg.signal[1], [0.5, 0.6, 0.7])


def test_no_fs_is_an_error_naming_fs(tmp_path):
    path = tmp_path / "no_fs.csv"
    path.write_text(_csv(_table(), LEADS))
    with pytest.raises(InputError) as raised:
        read_ecg(path)
    assert raised.value.source == "no_fs.csv" and raised.value.field == "fs"


@pytest.mark.parametrize(
    ("text", "field", "found"),
    [
        ("I,II\n0.1,0.2\n0.1,abc\n", "row 3, column II", "text"),
        ("I;II\n0,1;0,2\n;0,2\n", "row 3, column I", "an empty cell"),
        ("I,II\n0.1,0.2\n0.1,inf\n", "row 3, column II", "infinity"),
        ("I,II\n0.1,0.2\n0.1\n", "row 3", "1"),
        ("I,II,\n0.1,0.2,\n0.1,0.2,\n", None, None),  # trailing separators: fine
        ("I,,II\n0.1,0.2,0.3\n", "column 2 name", "an empty cell"),
        ("I,II\n", "header", "none"),
        ("time,I\n0,0.1\n0.002,0.2\n0.010,0.3\n", "time", None),
        ("time,I\n0,0.1\n0,0.2\n", "time", "times not rising"),
        ("time,I\n0,0.1\n2,0.2\n4,0.1\n", "fs", "0.5 Hz"),  # ms called seconds
    ],
)
def test_bad_cells_name_row_and_column(text, field, found):
    if field is None:
        assert parse_ecg_csv(text, fs=100).signal.shape == (2, 2)
        return
    with pytest.raises(InputError) as raised:
        parse_ecg_csv(text, fs=100, source="bad.csv")
    assert raised.value.source == "bad.csv" and raised.value.field == field
    if found is not None:
        assert raised.value.found == found


def test_units_and_fs_must_be_plausible():
    with pytest.raises(InputError) as raised:
        parse_ecg_csv("I\n0.1\n0.2\n", fs=100, units="mmHg")
    assert raised.value.field == "units"
    with pytest.raises(InputError) as raised:
        parse_ecg_csv("I\n0.1\n0.2\n", fs=5)
    assert raised.value.field == "fs"
    with pytest.raises(InputError, match="AVR twice"):
        parse_ecg_csv("aVR,AVR\n0.1,0.2\n", fs=100)


def test_latin1_micro_sign_and_comments():
    text = "# exported by a cart\nII (\xb5V);V1 (\xb5V)\n100;200\n300;400\n"
    ecg = parse_ecg_csv(text.encode("latin-1"), fs=500)
    assert ecg.lead_names == ["II", "V1"]
    assert np.allclose(ecg.signal[:, 1], [0.3, 0.4])
