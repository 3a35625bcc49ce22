"""ECG measurements with neurokit2: heart rate, PR, QRS, QT, QTc, per-lead ST and Q.

R peaks (``nk.ecg_peaks``) and wave boundaries (``nk.ecg_delineate``, prominence
method) come from one reference lead, lead II by default. Intervals are the
median over beats; ST deviation, the Q wave (depth, duration, QS complex) and
the R amplitude are measured per lead on the median beat, relative to the PR
baseline. `pathological_q` applies the Q-wave criteria of the Fourth Universal
Definition of Myocardial Infarction (2018) to one lead.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterable
from dataclasses import dataclass

import neurokit2 as nk
import numpy as np

from ingest.ecg_quality import is_flat, trim_flat
from ingest.schema import ECG

logger = logging.getLogger(__name__)

PR_WINDOW_S = (-0.12, -0.06)  # isoelectric reference before the QRS, s from R peak
ST_WINDOW_S = (0.06, 0.10)  # early ST segment, s after the R peak
QRS_WINDOW_S = (-0.06, 0.06)  # where each lead's R wave is sought, s from R
Q_START_S = -0.08  # a Q wave starts no earlier than this, s from the R peak
QRS_END_S = 0.10  # a QS complex's negative wave ends no later than this
R_MIN_MV = 0.05  # a lead whose QRS never rises this far has no R wave (QS)
BASELINE_MV = 0.01  # a sample this close to the PR baseline is on it
# A Q wave begins where the signal falls at least this fast (mV/s) over this span
# (s): on PTB-XL's normal ECGs at 500 Hz it puts the median width of a q wave
# (deeper than 0.05 mV) at 21 ms, where the crossing of the baseline alone put it
# at 47 ms, the PR segment before it being counted in.
Q_ONSET_SLOPE_MV_S = 1.0
Q_ONSET_SPAN_S = 0.01

# Pathological Q wave (Fourth Universal Definition of MI, 2018): at least 30 ms
# (20 ms in V2-V3) and 0.1 mV deep, or a QS complex. We also ask for a Q at least
# 25% of the lead's R wave (Minnesota code 1-2 style): on PTB-XL's 427 ECGs without
# MI at 100 Hz it cuts those with Q waves in two contiguous leads from 21% to 6%,
# and keeps 41% of the 37 inferior infarcts (43% without it).
Q_DURATION_MS = 30.0
Q_DURATION_V2_V3_MS = 20.0
Q_DEPTH_MV = 0.1
Q_TO_R_RATIO = 0.25

# ST elevation at the J point + 60-100 ms (Fourth Universal Definition of MI): at
# least 0.1 mV in any lead but V2-V3, where the limit is by sex and age; ST
# depression at least 0.05 mV.
ST_ELEVATION_MV = 0.1
ST_ELEVATION_V2_V3_MV = {"female": 0.15, "male_40_plus": 0.2, "male_under_40": 0.25}
ST_DEPRESSION_MV = 0.05

# Contiguous leads (Fourth Universal Definition of MI, 2018): the inferior leads
# II, III and aVF; the high lateral leads I and aVL; neighbours in the chest-lead
# sequence V1-V6. A sign counts for a territory when two contiguous leads show it.
LIMB_TERRITORIES = {"inferior": ("II", "III", "AVF"), "high_lateral": ("I", "AVL")}
CHEST_LEADS = ("V1", "V2", "V3", "V4", "V5", "V6")
STANDARD_LEADS = ("I", "II", "III", "AVR", "AVL", "AVF", *CHEST_LEADS)
CHEST_REGIONS = {"V1": "septal", "V2": "septal", "V3": "anterior", "V4": "anterior"}
CHEST_REGIONS |= {"V5": "lateral", "V6": "lateral"}
# A run of neighbouring chest leads is named by the regions it spans.
CHEST_TERRITORIES = {
    frozenset({"septal"}): "septal",
    frozenset({"anterior"}): "anterior",
    frozenset({"lateral"}): "lateral",
    frozenset({"septal", "anterior"}): "anteroseptal",
    frozenset({"anterior", "lateral"}): "anterolateral",
    frozenset({"septal", "anterior", "lateral"}): "extensive_anterior",
}

# Interval medians outside these ranges (ms) mean the delineation failed.
PLAUSIBLE_MS = {"pr": (60.0, 400.0), "qrs": (40.0, 250.0), "qt": (200.0, 700.0)}
DELINEATION = "prominence"  # about 10 ms per 10 s lead; dwt took ~120 ms
MIN_WAVE_MV = 0.02  # a P or T wave rises at least this far from its onset


@dataclass
class LeadMeasurement:
    """Median-beat measurements of one lead, in mV relative to the PR baseline.

    Attributes
    ----------
    st_deviation_mv : float
        Mean of the early ST segment (60-100 ms after the R peak).
    q_depth_mv : float
        Depth of the negative wave before the lead's first R wave (the first
        upstroke of at least `R_MIN_MV`; of the whole QRS when it has none);
        0 when there is none.
    r_amplitude_mv : float
        Height of the lead's tallest R wave (its highest point within 60 ms of
        the reference lead's R peak).
    q_duration_ms : float
        Width of that negative wave where it crosses the baseline, crossings
        interpolated between samples; 0 when there is none.
    qs_complex : bool
        The QRS has no R wave of at least `R_MIN_MV` and dips at least that far.
    """

    st_deviation_mv: float
    q_depth_mv: float
    r_amplitude_mv: float
    q_duration_ms: float = 0.0
    qs_complex: bool = False


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
    Missing samples (NaN) are bridged by a straight line from the last sample
    before to the first after: read as zeros, a gap's edges would pass for beats.
    """
    trace = ecg.signal[row].astype(np.float64)
    missing = ~np.isfinite(trace)
    if missing.any():
        known = np.flatnonzero(~missing)
        trace[missing] = np.interp(np.flatnonzero(missing), known, trace[known])
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
        Flat leads (lead off) have no per-lead measurements, nor has a lead
        whose missing samples (NaN) cover the same stretch of every beat; a gap
        in some beats leaves those beats out of that lead's median.
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
    leads = {}
    for row, name in enumerate(ecg.lead_names):
        if is_flat(ecg.signal[row]):
            continue  # lead off (or read as zeros): nothing to measure
        beats = np.stack([ecg.signal[row, p - before : p + after] for p in peaks])
        pr = slice(
            before + int(round(PR_WINDOW_S[0] * fs)),
            before + int(round(PR_WINDOW_S[1] * fs)),
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns
            # Each beat from its own PR baseline, so baseline wander does not
            # blur the median beat; a gap leaves out its beats only.
            beats = beats - np.nanmedian(beats[:, pr], axis=1, keepdims=True)
            median = np.nanmedian(beats, axis=0)
        if np.isfinite(median).all():
            leads[name] = _lead_measurement(median, before, fs)
    return ECGMeasurements(
        heart_rate_bpm=60.0 / rr_s,
        n_beats=len(peaks),
        leads=leads,
        pr_ms=intervals["pr"],
        qrs_ms=intervals["qrs"],
        qt_ms=qt,
        qtc_ms=float(qtc) if qtc is not None else None,
    )


def _lead_measurement(median: np.ndarray, peak: int, fs: float) -> LeadMeasurement:
    """ST, R and the Q wave of one lead's median beat, from its PR baseline.

    ``peak`` is the reference lead's R peak in the beat; each lead's tallest R
    wave is its highest point within `QRS_WINDOW_S` of it.
    """

    def at(seconds: float) -> int:
        return min(len(median) - 1, max(0, peak + int(round(seconds * fs))))

    def span(bounds: tuple[float, float]) -> slice:
        return slice(at(bounds[0]), max(at(bounds[1]), at(bounds[0]) + 1))

    beat = median - float(np.median(median[span(PR_WINDOW_S)]))
    st = float(beat[span(ST_WINDOW_S)].mean())
    low, high = at(QRS_WINDOW_S[0]), at(QRS_WINDOW_S[1])
    r_amplitude = float(beat[low : high + 1].max())
    start = at(Q_START_S)
    # A Q wave precedes the first upstroke of the QRS (an rS complex's S wave,
    # after its small r, is no Q wave); with no upstroke, the QRS is a QS.
    upstroke = np.nonzero(beat[start : high + 1] >= R_MIN_MV)[0]
    qs = upstroke.size == 0
    if qs:  # no R wave: the deepest point of the QRS
        bottom = low + int(np.argmin(beat[low : high + 1]))
        end = at(QRS_END_S)
    elif upstroke[0] > 0:  # the deepest point before the first R wave
        end = start + int(upstroke[0])
        bottom = start + int(np.argmin(beat[start:end]))
    else:
        return LeadMeasurement(st, 0.0, r_amplitude)
    depth = -float(beat[bottom])
    if depth <= 0:
        return LeadMeasurement(st, 0.0, r_amplitude)
    width_s = _negative_width(beat, bottom, start, end, fs) / fs
    return LeadMeasurement(
        st_deviation_mv=st,
        q_depth_mv=depth,
        r_amplitude_mv=r_amplitude,
        q_duration_ms=1000.0 * width_s,
        qs_complex=qs and depth >= R_MIN_MV,
    )


def _negative_width(
    beat: np.ndarray, bottom: int, start: int, end: int, fs: float
) -> float:
    """Samples from the onset of the negative wave at ``bottom`` to its end.

    The wave holds the samples below the baseline by more than `BASELINE_MV`,
    within ``start``..``end``. Its onset is where the signal begins to fall
    into it: walking back from ``bottom``, where the signal `Q_ONSET_SPAN_S`
    earlier stands less than `Q_ONSET_SLOPE_MV_S` higher (a PR segment that
    sits a little below the baseline is not part of the Q wave), else the
    crossing of 0 mV. Its end is the crossing of 0 mV, interpolated between the
    last sample inside and the first outside, so a 30 ms wave is measured to a
    fraction of a sample even at 100 Hz.
    """
    span = max(1, int(round(Q_ONSET_SPAN_S * fs)))
    rise = Q_ONSET_SLOPE_MV_S * span / fs  # mV the signal must fall over the span

    def crossing(inside: int, outside: int) -> float:
        if not 0 <= outside < len(beat):
            return float(inside)
        if beat[outside] < 0:  # on the baseline, just below it
            return float(outside)
        return inside + (outside - inside) * beat[inside] / (
            beat[inside] - beat[outside]
        )

    left = bottom
    onset = None
    while left > start and beat[left - 1] < -BASELINE_MV:
        if beat[max(left - span, 0)] < beat[left] + rise:
            onset = float(left - 1)  # the fall into the wave starts here
            break
        left -= 1
    right = bottom
    while right < end and beat[right + 1] < -BASELINE_MV:
        right += 1
    first = onset if onset is not None else crossing(left, left - 1)
    return crossing(right, right + 1) - first


def st_elevation_limit(
    lead: str, male: float | None = None, age: float | None = None
) -> float:
    """ST elevation limit of a lead in mV (V2-V3 by sex and age; lowest if unknown)."""
    if lead not in ("V2", "V3"):
        return ST_ELEVATION_MV
    if male is None:
        return min(ST_ELEVATION_V2_V3_MV.values())
    if male < 0.5:
        return ST_ELEVATION_V2_V3_MV["female"]
    if age is not None and age < 40:
        return ST_ELEVATION_V2_V3_MV["male_under_40"]
    return ST_ELEVATION_V2_V3_MV["male_40_plus"]


def infarct_sign_leads(
    measured: ECGMeasurements, male: float | None = None, age: float | None = None
) -> list[str]:
    """The ECG infarct criteria, lead by lead.

    The leads showing ST elevation or a pathological Q wave where a contiguous
    lead shows either too (`contiguous_territories`).

    Parameters
    ----------
    measured : ECGMeasurements
    male, age : float, optional
        The patient's sex (1 male) and age (years), for the V2-V3 ST limits.
    """
    qualifying = [
        lead
        for lead, m in measured.leads.items()
        if m.st_deviation_mv >= st_elevation_limit(lead, male, age)
        or pathological_q(lead, m)
    ]
    # aVR and leads outside the standard 12 lie in no territory.
    return [lead for _, hit in contiguous_territories(qualifying) for lead in hit]


def pathological_q(lead: str, measured: LeadMeasurement) -> bool:
    """Whether a lead's Q wave is pathological (see the module constants).

    A QS complex at least `Q_DEPTH_MV` deep counts; otherwise the Q wave must be
    at least `Q_DURATION_MS` long (`Q_DURATION_V2_V3_MS` in V2-V3), `Q_DEPTH_MV`
    deep and `Q_TO_R_RATIO` of the lead's R wave. aVR, whose QRS is normally
    negative, never counts, nor does a lead outside the standard 12 (the
    criteria are theirs). Criteria are per lead: an infarct is suggested only
    when two contiguous leads meet them, and a lone Q wave in III, aVL or V1 is
    often normal.
    """
    if lead == "AVR" or lead not in STANDARD_LEADS:
        return False
    if measured.qs_complex:
        return measured.q_depth_mv >= Q_DEPTH_MV
    shortest = Q_DURATION_V2_V3_MS if lead in ("V2", "V3") else Q_DURATION_MS
    return (
        measured.q_duration_ms >= shortest
        and measured.q_depth_mv >= Q_DEPTH_MV
        and measured.q_depth_mv >= Q_TO_R_RATIO * abs(measured.r_amplitude_mv)
    )


def contiguous_territories(leads: Iterable[str]) -> list[tuple[str, tuple[str, ...]]]:
    """The territories in which two or more contiguous leads of ``leads`` lie.

    Parameters
    ----------
    leads : iterable of str
        Leads showing one sign (ST elevation, a pathological Q wave...).

    Returns
    -------
    list of (str, tuple of str)
        Each territory (``inferior``, ``high_lateral``, or a run of neighbouring
        chest leads named by the regions it spans: ``septal`` V1-V2,
        ``anterior`` V3-V4, ``lateral`` V5-V6, ``anteroseptal``,
        ``anterolateral``, ``extensive_anterior``) with its leads showing it.
    """
    shown = set(leads)
    found = []
    for territory, group in LIMB_TERRITORIES.items():
        hit = tuple(lead for lead in group if lead in shown)
        if len(hit) >= 2:
            found.append((territory, hit))
    run: list[str] = []
    for lead in (*CHEST_LEADS, None):
        if lead in shown:
            run.append(lead)
            continue
        if len(run) >= 2:
            regions = frozenset(CHEST_REGIONS[name] for name in run)
            found.append((CHEST_TERRITORIES[regions], tuple(run)))
        run = []
    return found


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
