"""R peaks against cardiologists' beat labels, heart rate, intervals, noise."""

from pathlib import Path

import numpy as np
import pytest
import wfdb

from ingest.config import data_dir
from ingest.ecg import read_wfdb
from ingest.ecg_measurements import measure, r_peaks
from ingest.schema import ECG

BEATS = set("NLRBAaJSVrFejnE/fQ?")  # WFDB beat annotation symbols
LEADS = ["I", "II", "III", "AVR", "AVL", "AVF", "V1", "V2", "V3", "V4", "V5", "V6"]


@pytest.fixture(scope="module")
def shared() -> Path:
    folder = data_dir()
    if not (folder / "ecg_wfdb_samples").is_dir():
        pytest.skip(f"real ECG samples not found under {folder}; set CARDIORISK_DATA")
    return folder


@pytest.fixture(scope="module")
def mit_bih_100(shared) -> tuple[ECG, np.ndarray]:
    """The first 10 s of MIT-BIH record 100 and its annotated beats (samples)."""
    record = shared / "ecg_wfdb_samples/100"
    ecg = read_wfdb(record)
    n = int(10 * ecg.fs)
    labels = wfdb.rdann(str(record), "atr", sampto=n)
    beats = np.array(
        [
            s
            for s, symbol in zip(labels.sample, labels.symbol, strict=True)
            if symbol in BEATS
        ]
    )
    return ECG(ecg.signal[:, :n], ecg.fs, list(ecg.lead_names)), beats


def test_r_peaks_within_20_ms_of_the_annotations(mit_bih_100):
    ecg, beats = mit_bih_100
    peaks = r_peaks(ecg)  # on lead II (MLII)
    tolerance = 0.020 * ecg.fs
    # Every peak found is an annotated beat ...
    assert all(np.abs(beats - peak).min() <= tolerance for peak in peaks)
    # ... and every annotated beat past the first 0.5 s is found (the filter
    # needs a little signal before the first beat).
    for beat in beats[beats > 0.5 * ecg.fs]:
        assert np.abs(peaks - beat).min() <= tolerance


def test_heart_rate_matches_the_annotations(mit_bih_100):
    ecg, beats = mit_bih_100
    annotated = 60.0 * ecg.fs / np.median(np.diff(beats))
    measured = measure(ecg)
    assert measured is not None
    assert measured.heart_rate_bpm == pytest.approx(annotated, abs=3)
    assert measured.n_beats >= 10


@pytest.mark.parametrize(
    "record",
    [
        "ptbxl_subset/records100/00000/00001_lr",
        "ptbxl_subset/records500/00000/00001_hr",
    ],
)
def test_intervals_of_a_normal_ecg(shared, record):
    if not (shared / f"{record}.hea").is_file():
        pytest.skip(f"{record} not found")
    ecg = read_wfdb(shared / record)
    measured = measure(ecg)
    # PTB-XL 1: sinus rhythm, normal ECG, about 64 /min.
    assert measured.heart_rate_bpm == pytest.approx(64, abs=3)
    assert 110 <= measured.pr_ms <= 200
    assert 60 <= measured.qrs_ms <= 110
    assert 360 <= measured.qt_ms <= 450
    rr_s = 60.0 / measured.heart_rate_bpm
    assert measured.qtc_ms == pytest.approx(measured.qt_ms / np.sqrt(rr_s))
    assert set(measured.st_deviation_mv) == set(LEADS)
    assert all(abs(st) < 0.1 for st in measured.st_deviation_mv.values())


@pytest.mark.parametrize(
    "signal",
    [
        np.random.default_rng(0).normal(0, 1, (12, 5000)),  # noise only
        np.zeros((12, 5000)),  # every lead off
        np.random.default_rng(1).normal(0, 1, (12, 100)),  # 0.2 s
        np.full((12, 5000), np.nan),  # no samples
    ],
    ids=["noise", "flat", "short", "nan"],
)
def test_noise_never_crashes(signal):
    ecg = ECG(signal.astype(np.float32), 500, list(LEADS))
    measured = measure(ecg)
    assert measured is None or measured.heart_rate_bpm > 0
    if measured is not None:
        for value in (measured.pr_ms, measured.qrs_ms, measured.qt_ms):
            assert value is None or value > 0


def test_intervals_are_none_when_waves_cannot_be_delineated():
    # Sharp spikes at 75 /min and nothing else: beats, but no P or T wave.
    signal = np.zeros((1, 5000), dtype=np.float32)
    signal[0, 200::400] = 1.5
    measured = measure(ECG(signal, 500, ["II"]))
    assert measured is not None
    assert measured.heart_rate_bpm == pytest.approx(75, abs=1)
    assert measured.pr_ms is None and measured.qt_ms is None
    assert measured.qtc_ms is None
