from pathlib import Path

import numpy as np
import pytest
import wfdb

from ingest.config import data_dir
from ingest.ecg import (
    canonical_lead,
    canonical_leads,
    conform_ecg,
    lead_problems,
    read_ecg,
    read_ecg_upload,
    read_wfdb,
    read_wfdb_upload,
)
from ingest.errors import InputError
from ingest.schema import ECG

RECORD = "ptbxl_subset/records100/00000/00008_lr"
R = b"rec 1 100 10\n"
Z = b"\x00" * 20
GOOD = b"rec.dat 16 200 16 0 0 0 0 I\n"
TWO = b"rec.dat 16 200 16 0 0 0 0 I\nrec2.dat 16 200 16 0 0 0 0 II\n"


def _pair(real_data):
    base = real_data / RECORD
    return base.with_suffix(".hea").read_bytes(), base.with_suffix(".dat").read_bytes()


def test_upload_reads_like_a_file(real_data):
    header, signal = _pair(real_data)
    uploaded = read_wfdb_upload(header, signal)
    on_disk = read_wfdb(real_data / RECORD)
    assert np.array_equal(uploaded.signal, on_disk.signal)
    assert uploaded.fs == 100 and len(uploaded.lead_names) == 12


@pytest.mark.parametrize(
    ("header", "signal", "field"),
    [
        (b"", b"\x00", "ecg_header"),
        (b"rec 1 100 10\n" + GOOD, b"", "ecg_signal"),
        (b"\xff\xfe binary", b"\x00", "ecg_header"),
        (b"# only a comment\n", b"\x00", "record line"),
        (
            b"rec 1 100 10\n../evil.dat 16 200 16 0 0 0 0 I\n",
            b"\x00",
            "signal 0 file name",
        ),
        (
            b"rec 1 100 10\na\x00b.dat 16 200 16 0 0 0 0 I\n",
            b"\x00",
            "signal 0 file name",
        ),
        (b"rec 2 100 10\n" + GOOD, b"\x00" * 20, "signal lines"),
        (b"rec 100000 100 10\n" + GOOD, b"\x00", "number of signals"),
        (b"rec 1\n" + GOOD, b"\x00" * 20, "fs"),
        (b"rec 1 0.001 10\n" + GOOD, b"\x00" * 20, "fs"),
        (b"rec 1 1000000000 10\n" + GOOD, b"\x00" * 20, "fs"),
        (
            b"rec 1 100 10\nrec.dat 16 0 16 0 0 0 0 I\n",
            b"\x00" * 20,
            "signal 0 (I) adc_gain",
        ),
        (
            b"rec 1 100 10\nrec.dat 16 -200 16 0 0 0 0 I\n",
            b"\x00" * 20,
            "signal 0 (I) adc_gain",
        ),
        (b"rec 1 100 10\nrec.dat 99 200 16 0 0 0 0 I\n", Z, "signal 0 format"),
        (b"rec/2 1 100 10\nseg0 5\nseg1 5\n", Z, "ecg_header"),
        (b"rec/2 1 100 11\nseg0 5\nseg1 5\n", Z, "number of samples"),
        (b"rec 1 100 10\n" + GOOD + b"#x\n" * 30000, b"\x00" * 20, "ecg_header"),
        (b"rec 2 100 10\n" + TWO, b"\x00" * 20, "ecg_header"),
    ],
)
def test_bad_uploads_name_the_field(header, signal, field):
    with pytest.raises(InputError) as raised:
        read_wfdb_upload(header, signal, "upload.hea")
    assert raised.value.field == field


def test_signal_shorter_than_header_is_an_error(real_data):
    header, signal = _pair(real_data)
    with pytest.raises(InputError) as raised:
        read_wfdb_upload(header, signal[: len(signal) // 3])
    assert raised.value.field == "length"
    assert "24000 bytes as the header says, found 8000 bytes" in str(raised.value)


def test_amplitude_flat_and_empty_leads(real_data, data_config):
    header, signal = _pair(real_data)
    samples = np.frombuffer(signal, dtype="<i2").reshape(1000, 12).copy()
    # A gain of 0.001 per mV makes samples of volts: the gain is wrong.
    huge = header.replace(b"1000.0(0)/mV", b"0.001(0)/mV")
    assert huge != header
    with pytest.raises(InputError, match="signal amplitude"):
        conform_ecg(read_wfdb_upload(huge, signal), data_config.ecg, "x.hea")
    # Every sample the WFDB "missing" code (-32768): NaN throughout.
    empty = np.full_like(samples, -32768).tobytes()
    with pytest.raises(InputError, match="at least one lead with a signal"):
        conform_ecg(read_wfdb_upload(header, empty), data_config.ecg)
    # Two leads off: read as zeros and reported.
    samples[:, [6, 7]] = 0
    ecg = read_wfdb_upload(header, samples.tobytes())
    assert lead_problems(ecg, data_config.ecg) == {
        "missing": [],
        "flat": ["V1", "V2"],
        "ignored": [],
        "trimmed": [],
        "gaps": {},
    }
    conformed = conform_ecg(ecg, data_config.ecg)
    assert not conformed.signal[6].any() and conformed.signal[0].any()
    # 0.6 s of lead II missing (the WFDB missing code): named with its length.
    samples[300:360, 1] = -32768
    gapped = read_wfdb_upload(header, samples.tobytes())
    assert lead_problems(gapped, data_config.ecg)["gaps"] == {"II": 0.6}


def test_too_short_a_recording_is_an_error(data_config):
    ecg = ECG(np.ones((12, 100), dtype=np.float32), 100, data_config.ecg.leads)
    with pytest.raises(InputError, match="at least 2 s"):
        conform_ecg(ecg, data_config.ecg, "short.hea")


def test_microvolts_converted_and_500_hz_resampled(tmp_path, data_config):
    fs = 500
    t = np.arange(10 * fs) / fs
    trace = (1000 * np.sin(2 * np.pi * t)).reshape(-1, 1)  # 1000 uV = 1 mV
    wfdb.wrsamp(
        "syn", fs=fs, units=["uV"], sig_name=["II"], p_signal=trace,
        fmt=["16"], adc_gain=[10.0], baseline=[0], write_dir=str(tmp_path),
    )  # fmt: skip
    ecg = read_wfdb(tmp_path / "syn")
    assert abs(ecg.signal.max() - 1.0) < 0.01  # mV
    conformed = conform_ecg(ecg, data_config.ecg)
    assert conformed.signal.shape == (12, 1000) and conformed.fs == 100
    assert abs(conformed.signal[1].max() - 1.0) < 0.02
    assert not conformed.signal[0].any()  # lead I absent: zeros


def test_no_known_lead_is_an_error(data_config):
    ecg = ECG(signal=np.ones((1, 1000), dtype=np.float32), fs=100, lead_names=["XYZ"])
    with pytest.raises(InputError, match="lead names"):
        conform_ecg(ecg, data_config.ecg, "odd.hea")


def test_a_lead_named_twice_is_an_error(real_data):
    header, signal = _pair(real_data)
    twice = header.replace(b" AVL", b" AVR").replace(b" avl", b" AVR")
    assert twice != header
    with pytest.raises(InputError, match="AVR twice"):
        read_wfdb_upload(twice, signal)


# --- lead names, one entry point, resampling --------------------------------

SAMPLES = "ecg_wfdb_samples"
DICOM_ECG = "imaging_cxr_dicom/pydicom_test_files/waveform_ecg.dcm"


@pytest.fixture(scope="module")
def shared() -> Path:
    """The real-data folder; tests that need it skip when it is absent."""
    folder = data_dir()
    if not (folder / SAMPLES).is_dir():
        pytest.skip(f"real ECG samples not found under {folder}; set CARDIORISK_DATA")
    return folder


@pytest.mark.parametrize(
    ("name", "lead"),
    [
        ("I", "I"), ("aVR", "AVR"), ("AVR", "AVR"), ("avr", "AVR"), ("aVL", "AVL"),
        ("aVF", "AVF"), ("v6", "V6"), ("MLII", "II"), ("Lead II", "II"),
        ("II (Einthoven)", "II"), ("Lead I (Einthoven)", "I"), ("V1-", "V1"),
        ("Lead aVF", "AVF"), ("lead_v3", "V3"), ("DIII", "III"), ("-aVR", "-AVR"),
        ("vx", "VX"), ("ECG 1", "ECG 1"),
    ],
)  # fmt: skip
def test_lead_spellings(name, lead):
    assert canonical_lead(name) == lead


def test_unknown_leads_are_kept_and_reported(data_config):
    names = ["II", "V1", "PLETH"]
    ecg = ECG(np.ones((3, 1000), dtype=np.float32), 100, canonical_leads(names, "x"))
    assert lead_problems(ecg, data_config.ecg)["ignored"] == ["PLETH"]


def test_read_ecg_chooses_the_reader(shared, tmp_path):
    samples = shared / SAMPLES
    by_header = read_ecg(samples / "s0010_re.hea")
    assert read_ecg(samples / "s0010_re").signal.shape == by_header.signal.shape
    assert read_ecg(samples / "a103l.mat").fs == 250
    dicom = read_ecg(shared / DICOM_ECG)
    # A DICOM file without a suffix is known by its preamble.
    bare = tmp_path / "ecg_export"
    bare.write_bytes((shared / DICOM_ECG).read_bytes())
    assert np.array_equal(read_ecg(bare).signal, dicom.signal)
    # A stated fs wins over a given one (which is only for files without one).
    assert read_ecg(samples / "100", fs=500).fs == 360
    csv = tmp_path / "ecg.csv"
    csv.write_text("I;II\n0,1;0,2\n0,3;0,4\n")
    assert read_ecg(csv, fs=250).lead_names == ["I", "II"]
    with pytest.raises(InputError) as raised:
        read_ecg(tmp_path / "ecg.xml")
    assert raised.value.field == "file type"


def test_read_ecg_upload(shared):
    content = (shared / DICOM_ECG).read_bytes()
    assert read_ecg_upload("ecg.dcm", content).fs == 1000
    assert read_ecg_upload("no_suffix", content).signal.shape == (12, 10000)
    csv = read_ecg_upload("ecg.csv", b"time_ms,II\n0,0.1\n2,0.2\n4,0.1\n")
    assert csv.fs == 500 and csv.lead_names == ["II"]
    for name, data, field in [
        ("ecg.hea", b"rec 1 100 10\n", "file type"),
        ("ecg.dcm", b"", "ecg"),
        ("ecg.txt", b"1,2", "file type"),
    ]:
        with pytest.raises(InputError) as raised:
            read_ecg_upload(name, data)
        assert raised.value.field == field


@pytest.mark.parametrize("fs", [250, 360, 500, 1000])
def test_conform_resampling_keeps_frequency_and_amplitude(fs, data_config):
    t = np.arange(12 * fs) / fs
    trace = np.sin(2 * np.pi * 7.0 * t)  # 7 Hz, 1 mV
    ecg = ECG(trace[None, :].astype(np.float32), fs, ["II"])
    out = conform_ecg(ecg, data_config.ecg).signal[1]
    assert out.shape == (1000,)
    spectrum = np.abs(np.fft.rfft(out))
    assert np.fft.rfftfreq(out.size, 1 / 100)[np.argmax(spectrum)] == pytest.approx(7)
    assert np.abs(out[50:-50]).max() == pytest.approx(1.0, abs=0.02)


def test_mit_bih_360_hz_conforms_to_100_hz(shared, data_config):
    ecg = read_wfdb(shared / SAMPLES / "100")
    conformed = conform_ecg(ecg, data_config.ecg, "100.hea")
    assert conformed.signal.shape == (12, 1000)
    # Lead II (MLII) and V5 carry the record's first 10 s; R waves near 1 mV.
    assert 0.5 < conformed.signal[1].max() < 3.0
    assert conformed.signal[10].any() and not conformed.signal[0].any()
