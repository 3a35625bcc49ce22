"""ECG measurements with neurokit2: heart rate, PR, QRS, QT, QTc and per-lead ST.

R peaks (``nk.ecg_peaks``) and wave boundaries (``nk.ecg_delineate``, prominence
method) come from one reference lead, lead II by default. Intervals are the
median over beats; ST deviation, Q depth and R amplitude are measured per lead
on the median beat, relative to the PR baseline.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass

import neurokit2 as nk
import numpy as np

from ingest.ecg_quality import is_flat, trim_flat
from ingest.schema import ECG

logger = logging.getLogger(__name__)

PR_WINDOW_S = (-0.12, -0.06)  # isoelectric reference before the QRS, s from R peak
ST_WINDOW_S = (0.06, 0.10)  # early ST segment, s after the R peak
Q_WINDOW_S = (-0.06, 0.0)  # where a Q wave precedes the R peak

# Interval medians outside these ranges (ms) mean the delineation failed.
PLAUSIBLE_MS = {"pr": (60.0, 400.0), "qrs": (40.0, 250.0), "qt": (200.0, 700.0)}
DELINEATION = "prominence"  # about 10 ms per 10 s lead; dwt took ~120 ms
MIN_WAVE_MV = 0.02  # a P or T wave rises at least this far from its onset


@dataclass
class LeadMeasurement:
    """Median-beat measurements of one lead, in mV relative to the PR baseline."""

    st_deviation_mv: float
    q_depth_mv: float
    r_amplitude_mv: float


@dataclass
class ECGMeasurements:
    """Rhythm, intervals and per-lead measurements of one ECG.

    Attributes
    ----------
    heart_rate_bpm : float
        From the median RR interval, per minute.
    n_beats : int
        Beats measured.
    leads : dict
        Lead name -> `LeadMeasurement` on the median beat.
    pr_ms, qrs_ms, qt_ms : float or None
        Median PR (P onset to QRS onset), QRS (onset to offset) and QT (QRS
        onset to T offset) intervals of the reference lead, in ms; None when
        the waves could not be delineated.
    qtc_ms : float or None
        QT corrected for heart rate with Bazett's formula (QT / sqrt(RR in s)).
    """

    heart_rate_bpm: float
    n_beats: int
    leads: dict[str, LeadMeasurement]
    pr_ms: float | None = None
    qrs_ms: float | None = None
    qt_ms: float | None = None
    qtc_ms: float | None = None

    @property
    def st_deviation_mv(self) -> dict[str, float]:
        """ST deviation (mV) per lead."""
        return {name: lead.st_deviation_mv for name, lead in self.leads.items()}


def r_peaks(ecg: ECG, reference_lead: str = "II") -> np.ndarray:
    """R-peak sample indices found by neurokit2 on one lead (lead II by default).

    Falls back to the lead with the largest variance when the reference lead is
    absent or flat. Returns an empty array when no peak can be found (a flat
    or too short signal); never raises on noise.
    """
    row = _reference_row(ecg, reference_lead)
    if row is None:
        return np.zeros(0, dtype=int)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            cleaned = nk.ecg_clean(_upright(ecg, row), sampling_rate=_rate(ecg))
            _, info = nk.ecg_peaks(cleaned, sampling_rate=_rate(ecg))
    except Exception as error:  # neurokit2 raises many kinds on odd signals
        logger.debug("no R peaks found: %s", type(error).__name__)
        return np.zeros(0, dtype=int)
    return np.asarray(info["ECG_R_Peaks"], dtype=int)


def _reference_row(ecg: ECG, reference_lead: str) -> int | None:
    """The reference lead's row, else the most varying one; None if all flat."""
    names = ecg.lead_names
    if reference_lead in names and not is_flat(ecg.signal[names.index(reference_lead)]):
        return names.index(reference_lead)
    live = [row for row in range(len(names)) if not is_flat(ecg.signal[row])]
    if not live:
        return None
    return max(live, key=lambda row: float(np.nanvar(ecg.signal[row])))


def _upright(ecg: ECG, row: int) -> np.ndarray:
    """The reference lead with its QRS pointing up (``nk.ecg_invert``).

    A lead whose QRS is mostly negative (V1, aVR, a monitor's MCL1) is flipped
    for finding and delineating beats only; per-lead amplitudes keep their sign.
    """
    trace = np.nan_to_num(ecg.signal[row]).astype(np.float64)
    upright, _ = nk.ecg_invert(trace, sampling_rate=_rate(ecg))
    return np.asarray(upright, dtype=np.float64)


def _rate(ecg: ECG) -> int:
    return int(round(ecg.fs))


def measure(ecg: ECG, reference_lead: str = "II") -> ECGMeasurements | None:
    """Measure heart rate, intervals and per-lead ST, Q and R on the median beat.

    Parameters
    ----------
    ecg : ECG
        The ECG in mV (any ``fs``; 10 s is typical).
    reference_lead : str
        Lead whose beats are found and delineated.

    Returns
    -------
    ECGMeasurements or None
        None when fewer than two whole beats are found (no rhythm to measure).
        An interval that cannot be delineated is None; the rest still counts.
        Flat leads (lead off) have no per-lead measurements.
    """
    # Step 1: beats that fit wholly in the recording.
    peaks = r_peaks(ecg, reference_lead)
    fs = ecg.fs
    before, after = int(round(0.25 * fs)), int(round(0.40 * fs))
    n = ecg.signal.shape[1]
    peaks = peaks[(peaks - before >= 0) & (peaks + after < n)]
    if len(peaks) < 2:
        return None
    rr_s = float(np.median(np.diff(peaks))) / fs

    # Step 2: intervals from the reference lead's wave boundaries.
    intervals = _intervals(ecg, peaks, reference_lead)
    qt = intervals["qt"]
    qtc = qt / np.sqrt(rr_s) if qt is not None else None

    # Step 3: ST, Q and R per lead on the median beat.
    def window(bounds: tuple[float, float]) -> slice:
        start = before + int(round(bounds[0] * fs))
        stop = before + int(round(bounds[1] * fs))
        return slice(start, max(stop, start + 1))

    leads = {}
    for row, name in enumerate(ecg.lead_names):
        if is_flat(ecg.signal[row]):
            continue  # lead off (or read as zeros): nothing to measure
        beats = np.stack([ecg.signal[row, p - before : p + after] for p in peaks])
        median = np.median(beats, axis=0)
        baseline = float(np.median(median[window(PR_WINDOW_S)]))
        leads[name] = LeadMeasurement(
            st_deviation_mv=float(median[window(ST_WINDOW_S)].mean() - baseline),
            q_depth_mv=float(max(0.0, baseline - median[window(Q_WINDOW_S)].min())),
            r_amplitude_mv=float(median[before] - baseline),
        )
    return ECGMeasurements(
        heart_rate_bpm=60.0 / rr_s,
        n_beats=len(peaks),
        leads=leads,
        pr_ms=intervals["pr"],
        qrs_ms=intervals["qrs"],
        qt_ms=qt,
        qtc_ms=float(qtc) if qtc is not None else None,
    )


def _intervals(
    ecg: ECG, peaks: np.ndarray, reference_lead: str
) -> dict[str, float | None]:
    """Median PR, QRS and QT (ms) of the reference lead; None where not found."""
    none: dict[str, float | None] = {"pr": None, "qrs": None, "qt": None}
    row = _reference_row(ecg, reference_lead)
    if row is None:
        return none
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            trace = _upright(ecg, row)
            cleaned = nk.ecg_clean(trace, sampling_rate=_rate(ecg))
            _, waves = nk.ecg_delineate(
                cleaned, peaks, sampling_rate=_rate(ecg), method=DELINEATION
            )
    except Exception as error:  # neurokit2 raises many kinds on odd signals
        logger.debug("waves not delineated: %s", type(error).__name__)
        return none

    def boundary(name: str) -> np.ndarray:
        return np.asarray(waves.get(name, []), dtype=float)

    def wave_seen(onset: str, peak: str) -> np.ndarray:
        """Per beat: the wave stands out from its onset in the recorded signal.

        The filter's ringing around a QRS can look like a P or T wave to the
        delineator; in the signal as recorded it has no amplitude.
        """
        first, top = boundary(onset), boundary(peak)
        seen = np.zeros(first.size, dtype=bool)
        if first.size != top.size:
            return seen
        found = np.isfinite(first) & np.isfinite(top)
        starts, peaks = first[found].astype(int), top[found].astype(int)
        seen[found] = np.abs(trace[peaks] - trace[starts]) >= MIN_WAVE_MV
        return seen

    def median_ms(
        start: str, stop: str, name: str, seen: np.ndarray | None = None
    ) -> float | None:
        first, last = boundary(start), boundary(stop)
        if first.size == 0 or first.size != last.size:
            return None
        lengths = (last - first) / ecg.fs * 1000.0
        keep = np.isfinite(lengths) & (lengths > 0)
        if seen is not None and seen.size == keep.size:
            keep &= seen
        if not keep.any():
            return None
        value = float(np.median(lengths[keep]))
        low, high = PLAUSIBLE_MS[name]
        return value if low <= value <= high else None

    return {
        "pr": median_ms(
            "ECG_P_Onsets",
            "ECG_R_Onsets",
            "pr",
            wave_seen("ECG_P_Onsets", "ECG_P_Peaks"),
        ),
        "qrs": median_ms("ECG_R_Onsets", "ECG_R_Offsets", "qrs"),
        "qt": median_ms(
            "ECG_R_Onsets",
            "ECG_T_Offsets",
            "qt",
            wave_seen("ECG_T_Onsets", "ECG_T_Peaks"),
        ),
    }


def measure_window(ecg: ECG, duration_s: float = 10.0) -> ECGMeasurements | None:
    """Measure the first `duration_s` seconds of live signal, at the ECG's own fs.

    Flat ends (lead off) are left out first, as the model's reading leaves them
    out, so the measurements describe the stretch the model reads.
    """
    live, _ = trim_flat(ecg)
    samples = int(round(duration_s * live.fs))
    return measure(ECG(live.signal[:, :samples], live.fs, list(live.lead_names)))
