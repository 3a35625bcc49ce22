"""WFDB records as hospitals and PhysioNet send them: every format, multi-file,
multi-segment and multi-rate records, and the ways they come broken."""

import shutil
from pathlib import Path

import numpy as np
import pytest
import wfdb

from ingest.config import data_dir
from ingest.ecg import check_header, read_wfdb, read_wfdb_upload
from ingest.errors import InputError

GAIN = 200.0  # adu per mV
FS = 250


@pytest.fixture(scope="module")
def samples() -> Path:
    """PhysioNet sample records (see their PROVENANCE.md); skip when absent."""
    folder = data_dir() / "ecg_wfdb_samples"
    if not folder.is_dir():
        pytest.skip(f"real ECG samples not found at {folder}; set CARDIORISK_DATA")
    return folder


def _digital(n: int = 1500) -> np.ndarray:
    """Two leads (frames x 2) of small digital values every format can hold."""
    t = np.arange(n) / FS
    mv = np.stack([np.sin(2 * np.pi * 5 * t), 0.5 * np.cos(2 * np.pi * 3 * t)], 1)
    return np.round(mv * GAIN).astype(np.int64)


def _packed(fmt: str, digital: np.ndarray) -> bytes:
    """Signal bytes of the formats wfdb cannot write, following the WFDB spec."""
    flat = digital.reshape(-1)  # frame after frame
    if fmt == "8":  # first differences from the initial value (0)
        return np.diff(digital, axis=0, prepend=0).reshape(-1).astype("i1").tobytes()
    if fmt == "61":  # big-endian 16 bit
        return flat.astype(">i2").tobytes()
    if fmt == "160":  # offset binary 16 bit
        return (flat + 32768).astype("<u2").tobytes()
    triples = (flat & 0x3FF).reshape(-1, 3)  # three 10-bit samples per 4 bytes
    if fmt == "311":
        words = triples[:, 0] | triples[:, 1] << 10 | triples[:, 2] << 20
        return words.astype("<u4").tobytes()
    low = triples[:, 0] << 1 | (triples[:, 2] & 0x1F) << 11  # format 310
    high = triples[:, 1] << 1 | (triples[:, 2] >> 5) << 11
    return np.stack([low, high], 1).astype("<u2").tobytes()


def _write(folder: Path, fmt: str, digital: np.ndarray) -> Path:
    """Write a two-lead record in one format; return its signal file."""
    if fmt in {"8", "61", "160", "310", "311"}:
        lines = [f"rec 2 {FS} {len(digital)}"] + [
            f"rec.dat {fmt} {GAIN:g}/mV 12 0 0 0 0 {lead}" for lead in ("I", "II")
        ]
        (folder / "rec.hea").write_text("\n".join(lines) + "\n")
        (folder / "rec.dat").write_bytes(_packed(fmt, digital))
    else:
        wfdb.wrsamp(
            "rec", fs=FS, units=["mV", "mV"], sig_name=["I", "II"],
            d_signal=digital, fmt=[fmt, fmt], adc_gain=[GAIN, GAIN],
            baseline=[0, 0], write_dir=str(folder),
        )  # fmt: skip
    return folder / "rec.dat"


@pytest.mark.parametrize(
    "fmt", ["8", "16", "24", "32", "61", "80", "160", "212", "310", "311"]
)
def test_every_format_reads_and_a_short_file_is_refused(fmt, tmp_path):
    digital = _digital()
    if fmt == "80":
        digital = digital // 2  # 8 bits hold -128..127
    signal_file = _write(tmp_path, fmt, digital)
    ecg = read_wfdb(tmp_path / "rec.hea")
    assert ecg.fs == FS and ecg.lead_names == ["I", "II"]
    assert np.allclose(ecg.signal, digital.T / GAIN, atol=1e-5)

    # The header check knows the format's size: exactly what was written.
    summary = check_header((tmp_path / "rec.hea").read_text(), "rec.hea")
    size = signal_file.stat().st_size
    assert summary.expected_bytes == {"rec.dat": size}
    signal_file.write_bytes(signal_file.read_bytes()[: size - 4])
    with pytest.raises(InputError) as raised:
        read_wfdb(tmp_path / "rec")
    assert raised.value.source == "rec.dat" and raised.value.field == "length"
    assert f"{size} bytes as the header says, found {size - 4} bytes" in str(
        raised.value
    )


@pytest.mark.parametrize("fmt", ["508", "516", "524"])
def test_flac_formats_read(fmt, tmp_path):
    pytest.importorskip("soundfile")
    digital = _digital()
    _write(tmp_path, fmt, digital // 2)
    ecg = read_wfdb(tmp_path / "rec")
    assert np.allclose(ecg.signal, (digital // 2).T / GAIN, atol=1e-5)
    assert check_header((tmp_path / "rec.hea").read_text(), "x").expected_bytes == {}


@pytest.mark.parametrize(
    ("record", "n_leads", "fs", "n_samples", "first_leads"),
    [
        ("100", 2, 360, 650_000, ["II", "V5"]),  # format 212, MLII read as II
        ("s0010_re", 15, 1000, 38_400, ["I", "II", "III", "AVR"]),  # .dat + .xyz
        ("a103l", 2, 250, 82_500, ["II", "V"]),  # .mat (16+24), PLETH left out
        ("v102s", 2, 250, 75_000, ["II", "V"]),  # 212, PLETH and RESP left out
        ("03700181", 1, 500, 300_000, ["V1"]),  # MCL1 4 per frame; ABP, RESP out
        ("test01_00s", 4, 500, 4_000, ["ECG 1", "ECG 2"]),
    ],
)
def test_real_records(samples, record, n_leads, fs, n_samples, first_leads):
    ecg = read_wfdb(samples / record)
    assert ecg.signal.shape == (n_leads, n_samples) and ecg.fs == fs
    assert ecg.lead_names[: len(first_leads)] == first_leads
    assert ecg.signal.dtype == np.float32
    header = wfdb.rdheader(str(samples / record))
    assert header.fs * max(header.samps_per_frame) == fs
    assert header.sig_len * max(header.samps_per_frame) == n_samples


def test_multi_file_record_has_its_frank_leads(samples):
    ecg = read_wfdb(samples / "s0010_re")
    assert ecg.lead_names[12:] == ["VX", "VY", "VZ"]  # from s0010_re.xyz
    summary = check_header((samples / "s0010_re.hea").read_text(), "s0010_re.hea")
    assert summary.expected_bytes == {"s0010_re.dat": 921_600, "s0010_re.xyz": 230_400}


def test_short_212_file_is_refused(samples, tmp_path):
    shutil.copy(samples / "100.hea", tmp_path / "100.hea")
    (tmp_path / "100.dat").write_bytes((samples / "100.dat").read_bytes()[:1000])
    with pytest.raises(InputError) as raised:
        read_wfdb(tmp_path / "100")
    assert raised.value.source == "100.dat" and raised.value.field == "length"
    assert raised.value.expected == "1950000 bytes as the header says"
    assert raised.value.found == "1000 bytes"


def test_short_mat_file_counts_its_byte_offset(samples, tmp_path):
    shutil.copy(samples / "a103l.hea", tmp_path / "a103l.hea")
    content = (samples / "a103l.mat").read_bytes()
    (tmp_path / "a103l.mat").write_bytes(content[:-10])
    with pytest.raises(InputError, match="495024 bytes as the header says"):
        read_wfdb(tmp_path / "a103l.mat")


def test_adc_gain_zero_is_refused(tmp_path):
    digital = _digital()
    _write(tmp_path, "16", digital)
    header = (tmp_path / "rec.hea").read_text().splitlines()
    fields = header[2].split()
    fields[2] = "0(0)/mV"  # the ADC gain of lead II
    header[2] = " ".join(fields)
    (tmp_path / "rec.hea").write_text("\n".join(header) + "\n")
    with pytest.raises(InputError) as raised:
        read_wfdb(tmp_path / "rec")
    assert raised.value.field == "signal 1 (II) adc_gain"
    assert "uncalibrated" in raised.value.expected
    content = (tmp_path / "rec.hea").read_bytes()
    with pytest.raises(InputError, match="adc_gain"):
        read_wfdb_upload(content, (tmp_path / "rec.dat").read_bytes())


def test_signals_faster_than_the_frame_rate_are_not_averaged(tmp_path):
    frames = 5 * FS
    fast = np.sin(2 * np.pi * 150 * np.arange(4 * frames) / (4 * FS))  # 1000 Hz
    slow = 0.5 * np.sin(2 * np.pi * 5 * np.arange(frames) / FS)  # 250 Hz
    wfdb.wrsamp(
        "mixed", fs=FS, units=["mV", "mV"], sig_name=["II", "V1"],
        e_p_signal=[fast, slow], samps_per_frame=[4, 1], fmt=["16", "16"],
        adc_gain=[1000.0, 1000.0], baseline=[0, 0], write_dir=str(tmp_path),
    )  # fmt: skip
    ecg = read_wfdb(tmp_path / "mixed")
    assert ecg.fs == 4 * FS and ecg.signal.shape == (2, 4 * frames)

    # 150 Hz is above the frame rate's Nyquist (125 Hz): averaging would lose it.
    def peak(trace):
        spectrum = np.abs(np.fft.rfft(trace))
        return np.fft.rfftfreq(trace.size, 1 / ecg.fs)[np.argmax(spectrum)]

    assert peak(ecg.signal[0]) == pytest.approx(150, abs=0.5)
    assert np.abs(ecg.signal[0]).max() == pytest.approx(1.0, abs=0.01)
    assert peak(ecg.signal[1]) == pytest.approx(5, abs=0.5)
    inner = slice(100, -100)  # away from the resampling filter's edges
    expected = 0.5 * np.sin(2 * np.pi * 5 * np.arange(4 * frames) / ecg.fs)
    assert np.abs(ecg.signal[1][inner] - expected[inner]).max() < 0.01


def _segments(folder: Path, names: list[list[str]], lengths: list[int]) -> list:
    """Write one single-segment record per length; return their signals (mV)."""
    rng = np.random.default_rng(0)
    signals = []
    for number, (leads, n) in enumerate(zip(names, lengths, strict=True)):
        signal = np.round(rng.standard_normal((n, len(leads))) * 0.5 * GAIN) / GAIN
        wfdb.wrsamp(
            f"seg{number}", fs=FS, units=["mV"] * len(leads), sig_name=leads,
            p_signal=signal, fmt=["212"] * len(leads), adc_gain=[GAIN] * len(leads),
            baseline=[0] * len(leads), write_dir=str(folder),
        )  # fmt: skip
        signals.append(signal)
    return signals


def test_multi_segment_record(tmp_path):
    first, second = _segments(tmp_path, [["I", "II"], ["I", "II"]], [500, 700])
    (tmp_path / "multi.hea").write_text(f"multi/2 2 {FS} 1200\nseg0 500\nseg1 700\n")
    ecg = read_wfdb(tmp_path / "multi")
    assert ecg.signal.shape == (2, 1200) and ecg.lead_names == ["I", "II"]
    assert np.allclose(ecg.signal[:, :500], first.T, atol=1e-6)
    assert np.allclose(ecg.signal[:, 500:], second.T, atol=1e-6)

    # A segment's signal file is checked like any other.
    short = (tmp_path / "seg1.dat").read_bytes()[:100]
    (tmp_path / "seg1.dat").write_bytes(short)
    with pytest.raises(InputError) as raised:
        read_wfdb(tmp_path / "multi")
    assert raised.value.source == "seg1.dat" and raised.value.field == "length"
    (tmp_path / "seg1.hea").unlink()
    with pytest.raises(InputError, match="an existing WFDB .hea file"):
        read_wfdb(tmp_path / "multi")


def test_a_gap_needs_a_variable_layout(tmp_path):
    _segments(tmp_path, [["I", "II"], ["I", "II"]], [500, 700])
    (tmp_path / "gap.hea").write_text(f"gap/3 2 {FS} 1450\nseg0 500\n~ 250\nseg1 700\n")
    with pytest.raises(InputError) as raised:
        read_wfdb(tmp_path / "gap")
    assert raised.value.field == "segment 1 name"


def test_variable_layout_multi_segment_record(tmp_path):
    _segments(tmp_path, [["I", "II"], ["II", "V1"]], [500, 700])
    layout = [f"layout 3 {FS} 0"] + [
        f"~ 0 {GAIN:g}/mV 12 0 0 0 0 {lead}" for lead in ("I", "II", "V1")
    ]
    (tmp_path / "layout.hea").write_text("\n".join(layout) + "\n")
    (tmp_path / "var.hea").write_text(
        f"var/3 3 {FS} 1200\nlayout 0\nseg0 500\nseg1 700\n"
    )
    ecg = read_wfdb(tmp_path / "var")
    assert ecg.lead_names == ["I", "II", "V1"] and ecg.signal.shape == (3, 1200)
    assert np.isnan(ecg.signal[0, 500:]).all() and np.isnan(ecg.signal[2, :500]).all()
    assert not np.isnan(ecg.signal[1]).any()


def test_multi_segment_upload_is_refused(tmp_path):
    header = f"multi/2 2 {FS} 1200\nseg0 500\nseg1 700\n".encode()
    with pytest.raises(InputError) as raised:
        read_wfdb_upload(header, b"\x00" * 10, "multi.hea")
    assert raised.value.field == "ecg_header" and raised.value.found == "2 segments"
