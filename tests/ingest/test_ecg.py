import numpy as np
import pytest
import wfdb

from ingest.ecg import conform_ecg, read_wfdb, read_wfdb_upload
from ingest.errors import InputError

RECORD = "ptbxl_subset/records100/00000/00008_lr"


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
        (b"rec 1 100 10\nrec.dat 16 200 16 0 0 0 0 I\n", b"", "ecg_signal"),
        (
            b"rec 1 100 10\n../evil.dat 16 200 16 0 0 0 0 I\n",
            b"\x00" * 20,
            "ecg_header",
        ),
        (b"rec 2 100 10\nrec.dat 16 200 16 0 0 0 0 I\n", b"\x00" * 20, "ecg_header"),
        (b"\xff\xfe binary", b"\x00", "ecg_header"),
    ],
)
def test_bad_uploads_name_the_field(header, signal, field):
    with pytest.raises(InputError) as raised:
        read_wfdb_upload(header, signal, "upload.hea")
    assert raised.value.field == field
    assert "upload.hea" in str(raised.value)


def test_signal_shorter_than_header_is_an_error(real_data):
    header, signal = _pair(real_data)
    with pytest.raises(InputError) as raised:
        read_wfdb_upload(header, signal[: len(signal) // 3])
    assert raised.value.field == "record"


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
    from ingest.schema import ECG

    ecg = ECG(signal=np.zeros((1, 1000), dtype=np.float32), fs=100, lead_names=["XYZ"])
    with pytest.raises(InputError, match="lead names"):
        conform_ecg(ecg, data_config.ecg, "odd.hea")
