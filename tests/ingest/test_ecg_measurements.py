"""R peaks against cardiologists' beat labels, heart rate, intervals, noise."""

from pathlib import Path

import numpy as np
import pytest
import wfdb

from ingest.config import data_dir
from ingest.ecg import read_wfdb
from ingest.ecg_measurements import (
    contiguous_territories,
    measure,
    pathological_q,
    r_peaks,
)
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


def _beats_with_q(fs: float, q_ms: float, q_mv: float, r_mv: float) -> np.ndarray:
    """10 s of one lead at 75 /min: a triangular Q wave of known width and depth
    ending where a 40 ms R wave rises, on a flat baseline."""
    t = np.arange(int(10 * fs)) / fs
    signal = np.zeros_like(t)
    for r_time in np.arange(0.6, 9.6, 0.8):
        q_start, q_end = r_time - 0.02 - q_ms / 1000, r_time - 0.02
        down = (t >= q_start) & (t < q_end)
        signal[down] = -q_mv * (1 - np.abs(2 * (t[down] - q_start) / (q_ms / 1000) - 1))
        up = (t >= q_end) & (t < r_time + 0.02)
        signal[up] = r_mv * (1 - np.abs((t[up] - r_time) / 0.02))
    return signal.astype(np.float32)


@pytest.mark.parametrize("fs", [500.0, 100.0])
def test_a_q_wave_of_known_width_and_depth_is_measured(fs):
    deep = _beats_with_q(fs, q_ms=40.0, q_mv=0.3, r_mv=1.0)
    small = _beats_with_q(fs, q_ms=20.0, q_mv=0.05, r_mv=1.0)
    ecg = ECG(np.stack([deep, deep, small]), fs, ["II", "AVF", "V5"])
    measured = measure(ecg)
    q = measured.leads["II"]
    # Width at the baseline to a fraction of a sample: 2 ms at 500 Hz, 5 at 100.
    assert q.q_duration_ms == pytest.approx(40.0, abs=2.0 if fs == 500 else 5.0)
    assert q.q_depth_mv == pytest.approx(0.3, abs=0.01 if fs == 500 else 0.06)
    assert q.r_amplitude_mv == pytest.approx(1.0, abs=0.01)
    assert not q.qs_complex
    assert pathological_q("II", q)
    # 20 ms and 0.05 mV deep: a normal septal q.
    assert not pathological_q("V5", measured.leads["V5"])
    # The same 40 ms Q wave in aVR is its normal shape.
    assert not pathological_q("AVR", q)


def test_a_qs_complex_has_no_r_wave():
    fs = 500.0
    qs = -_beats_with_q(fs, q_ms=1.0, q_mv=0.0, r_mv=0.8)  # the QRS turned down
    measured = measure(ECG(np.stack([-qs, qs]), fs, ["II", "V2"]))
    v2 = measured.leads["V2"]
    assert v2.qs_complex and v2.q_depth_mv == pytest.approx(0.8, abs=0.02)
    assert v2.q_duration_ms == pytest.approx(40.0, abs=2.0)
    assert pathological_q("V2", v2)


@pytest.mark.parametrize(
    "rate", ["records100/00000/00453_lr", "records500/00000/00453_hr"]
)
def test_q_waves_of_a_real_inferior_infarct(shared, rate):
    # PTB-XL 453: inferior MI (SCP IMI, likelihood 100) read by cardiologists.
    ecg = read_wfdb(shared / "ptbxl_subset" / rate)
    measured = measure(ecg)
    inferior = {lead: measured.leads[lead] for lead in ("II", "III", "AVF")}
    assert all(pathological_q(lead, m) for lead, m in inferior.items())
    # Measured at 100 and 500 Hz: 31-59 ms wide, 0.17-0.27 mV deep.
    assert all(
        30 <= m.q_duration_ms <= 60 and 0.16 <= m.q_depth_mv <= 0.28
        for m in inferior.values()
    )
    # No Q wave in the anterior chest leads, which the infarct spared.
    assert not any(pathological_q(lead, measured.leads[lead]) for lead in ("V3", "V4"))


@pytest.mark.parametrize(
    "rate", ["records100/00000/00001_lr", "records500/00000/00001_hr"]
)
def test_a_normal_ecg_has_no_pathological_q_in_contiguous_leads(shared, rate):
    measured = measure(read_wfdb(shared / "ptbxl_subset" / rate))
    q_leads = {lead for lead, m in measured.leads.items() if pathological_q(lead, m)}
    groups = [
        {"II", "III", "AVF"},
        {"I", "AVL", "V5", "V6"},
        {"V1", "V2"},
        {"V3", "V4"},
    ]
    assert all(len(q_leads & group) < 2 for group in groups)


def test_contiguous_leads_name_their_territory():
    assert contiguous_territories(["V2", "V3"]) == [("anteroseptal", ("V2", "V3"))]
    assert contiguous_territories(["V1", "V3", "V5"]) == []  # none neighbours
    assert contiguous_territories(["III", "AVF", "I", "AVL", "V4", "V5", "V6"]) == [
        ("inferior", ("III", "AVF")),
        ("high_lateral", ("I", "AVL")),
        ("anterolateral", ("V4", "V5", "V6")),
    ]
    assert contiguous_territories(["V1", "V2", "V5", "V6"]) == [
        ("septal", ("V1", "V2")),
        ("lateral", ("V5", "V6")),
    ]
    assert contiguous_territories(["AVR", "II"]) == []  # aVR lies in none


def test_a_gap_in_a_lead_leaves_out_its_beats_only(shared):
    ecg = read_wfdb(shared / "ptbxl_subset/records100/00000/00453_lr")
    whole = measure(ecg).leads["II"]
    gapped = ecg.signal.copy()
    gapped[1, 234:240] = np.nan  # 60 ms of lead II missing in one beat
    measured = measure(ECG(gapped, ecg.fs, list(ecg.lead_names)))
    assert "II" in measured.leads and pathological_q("II", measured.leads["II"])
    # The same beats are found on lead II across the gap: every lead reads as
    # before, lead II's Q wave too.
    assert measured.n_beats == 9
    assert measured.leads["II"].q_depth_mv == pytest.approx(whole.q_depth_mv, abs=0.01)
    original = measure(ecg)
    for lead in ("I", "V2"):
        assert measured.leads[lead] == original.leads[lead]
    assert (measured.pr_ms, measured.qt_ms) == (original.pr_ms, original.qt_ms)


def test_leads_outside_the_standard_twelve_are_never_pathological():
    deep = _beats_with_q(500.0, q_ms=40.0, q_mv=0.3, r_mv=1.0)
    measured = measure(ECG(np.stack([deep, deep]), 500.0, ["II", "VY"]))
    assert pathological_q("II", measured.leads["II"])
    assert not pathological_q("VY", measured.leads["VY"])


def test_the_s_wave_of_an_rs_complex_is_no_q_wave():
    fs = 500.0
    reference = _beats_with_q(fs, q_ms=20.0, q_mv=0.05, r_mv=1.0)
    t = np.arange(int(10 * fs)) / fs
    rs = np.zeros_like(t)
    for r_time in np.arange(0.6, 9.6, 0.8):
        r = np.abs(t - (r_time - 0.02)) < 0.01  # a small r, 0.15 mV, 20 ms
        rs[r] = 0.15 * (1 - np.abs(t[r] - (r_time - 0.02)) / 0.01)
        s = np.abs(t - (r_time + 0.02)) < 0.02  # a deep S, 1.5 mV
        rs[s] = -1.5 * (1 - np.abs(t[s] - (r_time + 0.02)) / 0.02)
        st = (t >= r_time + 0.04) & (t < r_time + 0.12)  # ST elevated 0.2 mV
        rs[st] = 0.2
    measured = measure(
        ECG(np.stack([reference, rs.astype(np.float32)]), fs, ["II", "V2"])
    )
    v2 = measured.leads["V2"]
    assert v2.q_depth_mv == 0.0 and not v2.qs_complex
    assert not pathological_q("V2", v2)
    assert v2.st_deviation_mv == pytest.approx(0.2, abs=0.01)
