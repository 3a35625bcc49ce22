import numpy as np
import pytest
import wfdb

from ingest.ecg import conform_ecg, lead_problems, read_wfdb, read_wfdb_upload
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
            "signal 0 ADC gain",
        ),
        (
            b"rec 1 100 10\nrec.dat 16 -200 16 0 0 0 0 I\n",
            b"\x00" * 20,
            "signal 0 ADC gain",
        ),
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
    assert lead_problems(ecg, data_config.ecg) == {"missing": [], "flat": ["V1", "V2"]}
    conformed = conform_ecg(ecg, data_config.ecg)
    assert not conformed.signal[6].any() and conformed.signal[0].any()


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
