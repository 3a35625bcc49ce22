"""DICOM 12-lead ECG waveforms (pydicom's test file) and DICOM files that are not."""

import io
from pathlib import Path

import numpy as np
import pydicom
import pytest

from ingest.config import data_dir
from ingest.ecg import conform_ecg
from ingest.ecg_dicom import parse_ecg_dicom, read_ecg_dicom
from ingest.errors import InputError

FOLDER = "imaging_cxr_dicom/pydicom_test_files"
LEADS = ["I", "II", "III", "AVR", "AVL", "AVF", "V1", "V2", "V3", "V4", "V5", "V6"]


@pytest.fixture(scope="module")
def dicom_files() -> Path:
    """pydicom's test files (see PROVENANCE.md); skip when absent."""
    folder = data_dir() / FOLDER
    if not (folder / "waveform_ecg.dcm").is_file():
        pytest.skip(f"DICOM test files not found at {folder}; set CARDIORISK_DATA")
    return folder


def _saved(dataset: pydicom.Dataset) -> bytes:
    buffer = io.BytesIO()
    dataset.save_as(buffer)
    return buffer.getvalue()


def test_waveform_ecg_leads_fs_and_amplitudes(dicom_files, data_config):
    ecg = read_ecg_dicom(dicom_files / "waveform_ecg.dcm")
    # The 10 s rhythm group, not the 1.2 s median beat.
    assert ecg.lead_names == LEADS and ecg.fs == 1000
    assert ecg.signal.shape == (12, 10_000) and ecg.duration_s == 10
    # Stored in uV (sensitivity 1.25 uV per unit): R waves of a few tenths to
    # about 2 mV, as a real ECG in mV has.
    peak_to_peak = np.ptp(ecg.signal, axis=1)
    assert (peak_to_peak > 0.3).all() and (peak_to_peak < 5).all()
    raw = pydicom.dcmread(dicom_files / "waveform_ecg.dcm")
    first = np.frombuffer(raw.WaveformSequence[0].WaveformData, "<i2")[:12]
    assert np.allclose(ecg.signal[:, 0], first * 1.25 / 1000)
    conformed = conform_ecg(ecg, data_config.ecg, "waveform_ecg.dcm")
    assert conformed.signal.shape == (12, 1000) and conformed.fs == 100


def test_a_dicom_image_has_no_waveform(dicom_files):
    with pytest.raises(InputError) as raised:
        read_ecg_dicom(dicom_files / "CT_small.dcm")
    assert raised.value.field == "WaveformSequence"
    assert raised.value.source == "CT_small.dcm"
    assert "modality CT" in raised.value.found


def test_not_dicom_at_all():
    with pytest.raises(InputError) as raised:
        parse_ecg_dicom(b"I,II\n0.1,0.2\n", "ecg.dcm")
    assert raised.value.field == "file"


def test_millivolt_channels_and_code_values(dicom_files):
    dataset = pydicom.dcmread(dicom_files / "waveform_ecg.dcm")
    channel = dataset.WaveformSequence[0].ChannelDefinitionSequence[1]
    channel.ChannelSensitivityUnitsSequence[0].CodeValue = "mV"
    channel.ChannelSourceSequence[0].CodeMeaning = "unnamed"  # the code value names it
    ecg = parse_ecg_dicom(_saved(dataset))
    reference = read_ecg_dicom(dicom_files / "waveform_ecg.dcm")
    assert ecg.lead_names[1] == "II"
    assert np.allclose(ecg.signal[1], reference.signal[1] * 1000)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ("sensitivity 0", "channel 1 (Lead II) ChannelSensitivity"),
        ("no sensitivity", "channel 1 (Lead II) ChannelSensitivity"),
        ("unit mmHg", "channel 1 (Lead II) ChannelSensitivityUnitsSequence"),
        ("short data", "WaveformData"),
        ("no fs", "SamplingFrequency"),
    ],
)
def test_uncalibrated_or_damaged_waveforms_are_refused(dicom_files, change, field):
    dataset = pydicom.dcmread(dicom_files / "waveform_ecg.dcm")
    channel = dataset.WaveformSequence[0].ChannelDefinitionSequence[1]
    if change == "sensitivity 0":
        channel.ChannelSensitivity = 0
    elif change == "no sensitivity":
        del channel.ChannelSensitivity
    elif change == "unit mmHg":
        channel.ChannelSensitivityUnitsSequence[0].CodeValue = "mm[Hg]"
    elif change == "short data":
        group = dataset.WaveformSequence[0]
        group.WaveformData = group.WaveformData[:1000]
    else:
        for group in dataset.WaveformSequence:
            del group.SamplingFrequency
    with pytest.raises(InputError) as raised:
        parse_ecg_dicom(_saved(dataset), "ecg.dcm")
    assert raised.value.field == field
