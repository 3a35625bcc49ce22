"""Reading a DICOM ECG waveform (12-lead or general ECG storage) with pydicom.

A DICOM ECG holds one or more multiplex groups in its ``WaveformSequence``: the
rhythm strip (all leads, e.g. 10 s) and often a median beat. We read the longest
group. ``Dataset.waveform_array`` applies each channel's sensitivity, correction
factor and baseline; the unit (``ChannelSensitivityUnitsSequence``, uV or mV) is
converted to mV here; lead names come from ``ChannelSourceSequence`` (its code
meaning, e.g. ``Lead I (Einthoven)``, else the SCP-ECG / MDC code number).
"""

from __future__ import annotations

import io
import logging
import math
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
from pydicom.errors import InvalidDicomError

from ingest.ecg import (
    FS_RANGE_HZ,
    STANDARD_LEADS,
    UNIT_TO_MV,
    canonical_lead,
    canonical_leads,
)
from ingest.errors import InputError
from ingest.schema import ECG

logger = logging.getLogger(__name__)

# SCP-ECG (5.6.3-9-N) and MDC (2:N) lead codes share the number N.
LEAD_CODE_NUMBERS = {
    "1": "I", "2": "II", "61": "III", "62": "AVR", "63": "AVL", "64": "AVF",
    "3": "V1", "4": "V2", "5": "V3", "6": "V4", "7": "V5", "8": "V6",
}  # fmt: skip


def read_ecg_dicom(path: str | Path, source: str | None = None) -> ECG:
    """Read a DICOM ECG waveform file.

    Parameters
    ----------
    path : str or Path
        The DICOM file.
    source : str, optional
        Name used in error messages; the file name by default.

    Returns
    -------
    ECG
        The longest multiplex group: leads x samples in mV, at its
        ``SamplingFrequency``.

    Raises
    ------
    InputError
        See `parse_ecg_dicom`; also a missing file.
    """
    path = Path(path)
    source = source or path.name
    if not path.is_file():
        raise InputError(source, "file", "an existing DICOM file", "no such file")
    return parse_ecg_dicom(path.read_bytes(), source)


def parse_ecg_dicom(content: bytes, source: str = "upload.dcm") -> ECG:
    """Read a DICOM ECG waveform from the file's bytes.

    Parameters
    ----------
    content : bytes
        The DICOM file (with its 128-byte preamble and ``DICM``).
    source : str
        Name used in error messages.

    Returns
    -------
    ECG
        Leads x samples in mV.

    Raises
    ------
    InputError
        Not a DICOM file; no ``WaveformSequence`` (e.g. an image); a group
        without a plausible ``SamplingFrequency``; a channel without a
        sensitivity (uncalibrated), with a sensitivity of 0 or with a unit that
        is not a voltage; waveform data shorter than the header says; a lead
        named twice.
    """
    # Step 1: the dataset.
    try:
        dataset = pydicom.dcmread(io.BytesIO(content))
    except InvalidDicomError as error:
        raise InputError(
            source, "file", "a DICOM file (preamble and DICM prefix)", "other data"
        ) from error
    except Exception as error:  # pydicom raises many kinds on damaged files
        raise InputError(
            source, "file", "a readable DICOM file", type(error).__name__
        ) from error
    if "WaveformSequence" not in dataset:
        modality = str(dataset.get("Modality", "unknown"))[:16]
        raise InputError(
            source,
            "WaveformSequence",
            "a DICOM ECG waveform (WaveformSequence)",
            f"none (a DICOM file of modality {modality})",
        )

    # Step 2: the longest multiplex group (the rhythm strip, not a median beat).
    index = _longest_group(dataset.WaveformSequence, source)
    group = dataset.WaveformSequence[index]
    channels = list(group.get("ChannelDefinitionSequence", []))
    if len(channels) != int(group.NumberOfWaveformChannels):
        raise InputError(
            source,
            "ChannelDefinitionSequence",
            f"{group.NumberOfWaveformChannels} channel definitions",
            str(len(channels)),
        )

    # Step 3: each channel calibrated, with a voltage unit.
    names = [_lead_name(channel, number) for number, channel in enumerate(channels)]
    factors = [
        _to_mv(channel, f"channel {number} ({names[number]})", source)
        for number, channel in enumerate(channels)
    ]

    # Step 4: the samples (pydicom applies sensitivity, correction and baseline).
    _check_data_length(group, source)
    try:
        samples = dataset.waveform_array(index)  # samples x channels
    except (KeyError, ValueError, AttributeError) as error:
        found = (
            f"{group.WaveformBitsAllocated}-bit {group.WaveformSampleInterpretation}"
        )
        raise InputError(
            source, "WaveformData", "8/16/32-bit signed or unsigned samples", found
        ) from error
    signal = (samples * np.asarray(factors)).T.astype(np.float32)

    # Step 5: our lead names.
    leads = canonical_leads(names, source)
    return ECG(signal=signal, fs=float(group.SamplingFrequency), lead_names=leads)


def _longest_group(groups: Any, source: str) -> int:
    """Index of the multiplex group with the longest duration (s)."""
    low, high = FS_RANGE_HZ
    durations = []
    for group in groups:
        fs = group.get("SamplingFrequency")
        samples = group.get("NumberOfWaveformSamples")
        if fs is None or not low <= float(fs) <= high or not samples:
            durations.append(-1.0)
        else:
            durations.append(int(samples) / float(fs))
    if not durations or max(durations) < 0:
        raise InputError(
            source,
            "SamplingFrequency",
            f"a waveform group sampled at {low:g}..{high:g} Hz",
            "none",
        )
    index = int(np.argmax(durations))
    logger.debug(
        "%s: waveform group %d (%s) of %d",
        source,
        index,
        groups[index].get("MultiplexGroupLabel", "unlabelled"),
        len(durations),
    )
    return index


def _lead_name(channel: Any, number: int) -> str:
    """The lead of one channel, from its source code (meaning, else number)."""
    sources = channel.get("ChannelSourceSequence") or []
    if not sources:
        return str(channel.get("ChannelLabel", f"channel {number}"))
    code = sources[0]
    meaning = str(code.get("CodeMeaning", ""))
    if canonical_lead(meaning) in STANDARD_LEADS:
        return meaning
    value = str(code.get("CodeValue", ""))
    number_part = value.rpartition("-")[2] if "-" in value else value.partition(":")[2]
    return LEAD_CODE_NUMBERS.get(number_part, meaning or value or f"channel {number}")


def _to_mv(channel: Any, name: str, source: str) -> float:
    """Factor from the channel's calibrated values to mV; uncalibrated is refused."""
    sensitivity = channel.get("ChannelSensitivity")
    if sensitivity is None or not math.isfinite(float(sensitivity)):
        raise InputError(
            source,
            f"{name} ChannelSensitivity",
            "a channel sensitivity (without one, amplitudes are uncalibrated)",
            "none",
        )
    if float(sensitivity) == 0:
        raise InputError(
            source,
            f"{name} ChannelSensitivity",
            "a non-zero sensitivity (0 means uncalibrated)",
            "0",
        )
    units = channel.get("ChannelSensitivityUnitsSequence") or []
    unit = str(units[0].get("CodeValue", "")) if units else ""
    factor = UNIT_TO_MV.get(unit.strip().lower())
    if factor is None:
        raise InputError(
            source,
            f"{name} ChannelSensitivityUnitsSequence",
            "a voltage unit (uV, mV, V)",
            repr(unit)[:20] if unit else "none",
        )
    return factor


def _check_data_length(group: Any, source: str) -> None:
    """Refuse waveform data shorter than channels x samples x bytes say."""
    required = ("WaveformBitsAllocated", "WaveformSampleInterpretation", "WaveformData")
    missing = [name for name in required if name not in group]
    if missing:
        raise InputError(source, missing[0], "a waveform group element", "none")
    expected = (
        int(group.NumberOfWaveformSamples)
        * int(group.NumberOfWaveformChannels)
        * (int(group.WaveformBitsAllocated) // 8)
    )
    found = len(group.WaveformData)
    if found < expected:
        raise InputError(
            source,
            "WaveformData",
            f"{expected} bytes as the waveform group says",
            f"{found} bytes",
        )
