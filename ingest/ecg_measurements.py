"""Per-lead ST deviation and Q-wave depth on the median beat (neurokit2 R peaks)."""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import neurokit2 as nk
import numpy as np

from ingest.schema import ECG

PR_WINDOW_S = (-0.12, -0.06)  # isoelectric reference before the QRS, s from R peak
ST_WINDOW_S = (0.06, 0.10)  # early ST segment, s after the R peak
Q_WINDOW_S = (-0.06, 0.0)  # where a Q wave precedes the R peak


@dataclass
class LeadMeasurement:
    """Median-beat measurements of one lead, in mV relative to the PR baseline."""

    st_deviation_mv: float
    q_depth_mv: float
    r_amplitude_mv: float


@dataclass
class ECGMeasurements:
    """Rhythm and per-lead measurements of one ECG."""

    heart_rate_bpm: float
    n_beats: int
    leads: dict[str, LeadMeasurement]


def r_peaks(ecg: ECG, reference_lead: str = "II") -> np.ndarray:
    """R-peak sample indices found by neurokit2 on one lead (lead II by default).

    Falls back to the lead with the largest variance when the reference lead is
    absent or flat.
    """
    names = ecg.lead_names
    row = names.index(reference_lead) if reference_lead in names else -1
    if row < 0 or np.ptp(ecg.signal[row]) < 1e-3:
        row = int(np.argmax(ecg.signal.var(axis=1)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cleaned = nk.ecg_clean(ecg.signal[row], sampling_rate=int(ecg.fs))
        _, info = nk.ecg_peaks(cleaned, sampling_rate=int(ecg.fs))
    return np.asarray(info["ECG_R_Peaks"], dtype=int)


def measure(ecg: ECG) -> ECGMeasurements | None:
    """Measure ST deviation, Q depth and R amplitude per lead on the median beat.

    Returns
    -------
    ECGMeasurements or None
        None when fewer than two beats are found (no rhythm to measure).
    """
    peaks = r_peaks(ecg)
    fs = ecg.fs
    before, after = int(round(0.25 * fs)), int(round(0.40 * fs))
    n = ecg.signal.shape[1]
    peaks = peaks[(peaks - before >= 0) & (peaks + after < n)]
    if len(peaks) < 2:
        return None
    heart_rate = 60.0 * fs / float(np.median(np.diff(peaks)))

    def window(bounds: tuple[float, float]) -> slice:
        start = before + int(round(bounds[0] * fs))
        stop = before + int(round(bounds[1] * fs))
        return slice(start, max(stop, start + 1))

    leads = {}
    for row, name in enumerate(ecg.lead_names):
        beats = np.stack([ecg.signal[row, p - before : p + after] for p in peaks])
        median = np.median(beats, axis=0)
        baseline = float(np.median(median[window(PR_WINDOW_S)]))
        leads[name] = LeadMeasurement(
            st_deviation_mv=float(median[window(ST_WINDOW_S)].mean() - baseline),
            q_depth_mv=float(max(0.0, baseline - median[window(Q_WINDOW_S)].min())),
            r_amplitude_mv=float(median[before] - baseline),
        )
    return ECGMeasurements(heart_rate_bpm=heart_rate, n_beats=len(peaks), leads=leads)
