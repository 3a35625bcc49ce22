"""Lead-off and flat ends of a recording; quality score per lead."""

import logging
import time
from pathlib import Path

import numpy as np
import pytest

from ingest.config import data_dir
from ingest.ecg import conform_ecg, lead_problems, read_wfdb
from ingest.ecg_quality import (
    SignalQuality,
    assess_signal_quality,
    flat_leads,
    lead_quality,
    live_span,
    trim_flat,
)
from ingest.schema import ECG

logger = logging.getLogger(__name__)

RECORD_100HZ = "ptbxl_subset/records100/00000/00001_lr"
RECORD_500HZ = "ptbxl_subset/records500/00000/00001_hr"
QUALITY_BUDGET_S = 0.05  # per 10 s lead; asserted with a margin for slow machines


@pytest.fixture(scope="module")
def shared() -> Path:
    folder = data_dir()
    if not (folder / "ptbxl_subset").is_dir():
        pytest.skip(f"PTB-XL subset not found under {folder}; set CARDIORISK_DATA")
    return folder


def _with_flat_ends(ecg: ECG, head_s: float, tail_s: float) -> ECG:
    """The ECG with every lead held at a constant (not zero) before and after."""
    head = np.repeat(ecg.signal[:, :1], int(head_s * ecg.fs), axis=1)
    tail = np.full((ecg.signal.shape[0], int(tail_s * ecg.fs)), np.nan, np.float32)
    signal = np.concatenate([head + 0.3, ecg.signal, tail], axis=1)
    return ECG(signal=signal, fs=ecg.fs, lead_names=list(ecg.lead_names))


def test_ten_seconds_flat_then_ecg_uses_the_live_part(shared, data_config):
    real = read_wfdb(shared / RECORD_500HZ)
    padded = _with_flat_ends(real, head_s=10.0, tail_s=3.0)
    conformed = conform_ecg(padded, data_config.ecg, "padded.hea")
    expected = conform_ecg(real, data_config.ecg, "real.hea")
    # The model reads the real ECG's 10 s, not 10 s of flat line.
    assert np.allclose(conformed.signal, expected.signal, atol=1e-4)
    problems = lead_problems(padded, data_config.ecg)
    assert problems["flat"] == []
    assert problems["trimmed"] == [
        "10.0 s of flat signal (every lead) left out at the start",
        "3.0 s of flat signal (every lead) left out at the end",
    ]
    live, notes = trim_flat(padded)
    assert live.signal.shape == real.signal.shape and len(notes) == 2


def test_short_flat_start_and_one_lead_off_are_not_trimmed(shared):
    real = read_wfdb(shared / RECORD_100HZ)
    span = live_span(_with_flat_ends(real, 0.5, 0).signal, real.fs)
    assert not span.trimmed  # 0.5 s is below the 1 s worth trimming
    signal = real.signal.copy()
    signal[:6, :500] = 0.0  # limb leads off for 5 s, chest leads live
    assert not live_span(signal, real.fs).trimmed


def test_flat_leads_and_an_all_flat_record(data_config):
    signal = np.zeros((12, 1000), dtype=np.float32)
    signal[1] = np.sin(np.linspace(0, 60, 1000))
    signal[2] = np.nan
    ecg = ECG(signal, 100, list(data_config.ecg.leads))
    assert flat_leads(ecg, ["I", "II", "III"]) == ["I", "III"]
    flat = ECG(np.zeros((12, 1000), np.float32), 100, list(data_config.ecg.leads))
    assert not live_span(flat.signal, 100).trimmed  # nothing live: nothing to trim
    assert lead_problems(flat, data_config.ecg)["flat"] == list(data_config.ecg.leads)


@pytest.mark.parametrize("record", [RECORD_100HZ, RECORD_500HZ])
def test_quality_scores_per_lead_and_their_cost(shared, record):
    real = read_wfdb(shared / record)
    rng = np.random.default_rng(0)
    signal = real.signal.copy()
    signal[0] = 0.2  # lead I off
    signal[2] = rng.normal(0, 0.5, signal.shape[1])  # lead III: noise only
    ecg = ECG(signal, real.fs, list(real.lead_names))
    lead_quality(ecg)  # warm up (imports, caches)
    started = time.perf_counter()
    scores = lead_quality(ecg)
    per_lead = (time.perf_counter() - started) / len(scores)
    logger.info("quality score: %.1f ms per lead at %g Hz", per_lead * 1e3, ecg.fs)
    assert per_lead < 2 * QUALITY_BUDGET_S
    assert scores["I"] == 0.0
    assert scores["II"] > 0.9 and scores["V5"] > 0.9
    assert scores["III"] < 0.5
    assert all(0.0 <= score <= 1.0 for score in scores.values())


def test_quality_without_beats_is_none():
    slow = 0.5 * np.sin(2 * np.pi * 0.1 * np.arange(200) / 100)  # a drift, no beat
    signal = np.stack([slow, np.zeros(200)]).astype(np.float32)
    scores = lead_quality(ECG(signal, 100, ["II", "V1"]))
    assert scores["V1"] == 0.0 and scores["II"] is None


def _gate(ecg: ECG, data_config) -> SignalQuality:
    spec = data_config.ecg
    return assess_signal_quality(ecg, spec.min_lead_quality, spec.min_ecg_quality)


def test_the_gate_reads_a_real_ecg_whole(shared, data_config):
    real = conform_ecg(read_wfdb(shared / RECORD_100HZ), data_config.ecg)
    verdict = _gate(real, data_config)
    assert verdict.usable and verdict.poor == [] and verdict.reference_lead == "II"
    assert verdict.median > 0.9 and len(verdict.scores) == 12


def test_a_noisy_reference_lead_is_read_as_zeros_and_another_cuts_the_beats(
    shared, data_config
):
    real = conform_ecg(read_wfdb(shared / RECORD_100HZ), data_config.ecg)
    signal = real.signal.copy()
    signal[1] = np.random.default_rng(1).normal(0, 0.5, signal.shape[1])  # lead II
    verdict = _gate(ECG(signal, real.fs, list(real.lead_names)), data_config)
    assert verdict.usable and verdict.poor == ["II"]
    assert verdict.reference_lead == "V5" and verdict.scores["II"] < 0.5
    assert "II 0." in verdict.describe(verdict.poor)


def test_noise_and_flat_ecgs_are_not_read(data_config):
    leads = list(data_config.ecg.leads)
    rng = np.random.default_rng(2)
    noise = ECG(rng.normal(0, 0.5, (12, 1000)).astype(np.float32), 100, leads)
    verdict = _gate(noise, data_config)
    assert not verdict.usable and verdict.median < data_config.ecg.min_ecg_quality
    flat = _gate(ECG(np.zeros((12, 1000), np.float32), 100, leads), data_config)
    assert flat.scores == {} and not flat.usable
