"""ECG signal quality: flat leads (lead off), flat ends of a recording, lead scores.

A lead is *flat* when its peak-to-peak amplitude stays below `FLAT_PTP_MV`: the
electrode is off, or the device wrote a constant. Recorders often start writing
before the electrodes are on, so a recording may begin (or end) with a stretch in
which every lead is flat; `live_span` finds the part between such stretches, and
its `LiveSpan.notes` say what was left out.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ingest.schema import ECG

logger = logging.getLogger(__name__)

FLAT_PTP_MV = 0.01  # a lead whose peak-to-peak stays below this is flat (lead off)
MIN_FLAT_S = 1.0  # a flat stretch at either end shorter than this is left in place
MIN_QUALITY_BEATS = 3  # beats needed to build the template a lead is scored against


def is_flat(trace: np.ndarray) -> bool:
    """Return whether one lead is flat or empty (lead off).

    Parameters
    ----------
    trace : np.ndarray
        One lead's samples in mV; NaN marks a missing sample.

    Returns
    -------
    bool
        True when no sample is finite or the peak-to-peak amplitude of the
        finite samples is below `FLAT_PTP_MV` (0.01 mV).
    """
    finite = trace[np.isfinite(trace)]
    return finite.size == 0 or float(np.ptp(finite)) < FLAT_PTP_MV


def flat_leads(ecg: ECG, leads: Sequence[str] | None = None) -> list[str]:
    """Names of the leads that are flat or empty throughout (lead off).

    Parameters
    ----------
    ecg : ECG
        The ECG in mV.
    leads : sequence of str, optional
        Leads to look at (those the ECG lacks are skipped); all by default.

    Returns
    -------
    list of str
        In the order of ``leads`` (or of the ECG).
    """
    index = {lead: row for row, lead in enumerate(ecg.lead_names)}
    wanted = ecg.lead_names if leads is None else leads
    return [
        lead for lead in wanted if lead in index and is_flat(ecg.signal[index[lead]])
    ]


@dataclass(frozen=True)
class LiveSpan:
    """The samples of a recording between its flat ends.

    Attributes
    ----------
    start : int
        First sample of the live part.
    stop : int
        One past the last sample of the live part.
    n_samples : int
        Samples in the whole recording.
    fs : float
        Sampling frequency in Hz.
    """

    start: int
    stop: int
    n_samples: int
    fs: float

    @property
    def trimmed(self) -> bool:
        """Whether a flat stretch was found at either end."""
        return self.start > 0 or self.stop < self.n_samples

    @property
    def duration_s(self) -> float:
        """Length of the live part in seconds."""
        return (self.stop - self.start) / self.fs

    @property
    def notes(self) -> list[str]:
        """What was trimmed, one sentence per end; empty when nothing was."""
        notes = []
        if self.start > 0:
            notes.append(
                f"{self.start / self.fs:.1f} s of flat signal (every lead) "
                "left out at the start"
            )
        if self.stop < self.n_samples:
            notes.append(
                f"{(self.n_samples - self.stop) / self.fs:.1f} s of flat signal "
                "(every lead) left out at the end"
            )
        return notes


def live_span(
    signal: np.ndarray, fs: float, min_flat_s: float = MIN_FLAT_S
) -> LiveSpan:
    """Find the live part of a recording: without flat stretches at its ends.

    A stretch at the start (or end) is flat when every lead stays within
    `FLAT_PTP_MV` of its own range over it; NaN samples count as flat.

    Parameters
    ----------
    signal : np.ndarray
        Leads x samples in mV.
    fs : float
        Sampling frequency in Hz.
    min_flat_s : float
        Shortest flat stretch (s) worth trimming; shorter ones stay.

    Returns
    -------
    LiveSpan
        The whole recording when no end is flat for ``min_flat_s`` or more, and
        also when every lead is flat throughout (nothing is live: `is_flat`
        reports that).
    """
    n = signal.shape[1]
    whole = LiveSpan(start=0, stop=n, n_samples=n, fs=fs)
    if signal.shape[0] == 0 or n == 0:
        return whole

    # Step 1: how long every lead stays flat from each end.
    head = _flat_prefix(signal)
    if head >= n:
        return whole
    tail = _flat_prefix(signal[:, ::-1])

    # Step 2: trim only stretches long enough to be a recorder's idle time.
    shortest = int(round(min_flat_s * fs))
    start = head if head >= shortest else 0
    stop = n - tail if tail >= shortest else n
    span = LiveSpan(start=start, stop=stop, n_samples=n, fs=fs)
    if span.trimmed:
        logger.info("flat ends of the recording left out: %s", "; ".join(span.notes))
    return span


def _flat_prefix(signal: np.ndarray) -> int:
    """Number of leading samples over which every lead stays flat (or NaN)."""
    n = signal.shape[1]
    with np.errstate(invalid="ignore"):
        # Running range of each lead from the first sample (NaN is skipped).
        high = np.fmax.accumulate(signal, axis=1)
        low = np.fmin.accumulate(signal, axis=1)
        live = (high - low) >= FLAT_PTP_MV
    starts = np.where(live.any(axis=1), live.argmax(axis=1), n)
    for row, start in enumerate(starts):
        # A lead coming out of missing samples is live from its first sample
        # after them, not only once its range has grown.
        missing = np.flatnonzero(np.isnan(signal[row, :start]))
        if start < n and missing.size:
            starts[row] = missing[-1] + 1
    return int(starts.min())


def trim_flat(ecg: ECG, min_flat_s: float = MIN_FLAT_S) -> tuple[ECG, list[str]]:
    """Return the live part of an ECG and notes on what was trimmed.

    Parameters
    ----------
    ecg : ECG
        The ECG in mV.
    min_flat_s : float
        Shortest flat stretch (s) worth trimming.

    Returns
    -------
    ECG
        The same leads, from the first to the last live sample.
    list of str
        One note per trimmed end (see `LiveSpan.notes`); empty when none was.
    """
    span = live_span(ecg.signal, ecg.fs, min_flat_s)
    if not span.trimmed:
        return ecg, []
    live = ECG(
        signal=ecg.signal[:, span.start : span.stop],
        fs=ecg.fs,
        lead_names=list(ecg.lead_names),
    )
    return live, span.notes


def lead_quality(ecg: ECG, reference_lead: str = "II") -> dict[str, float | None]:
    """Score each lead's signal quality with neurokit2's template matching.

    Each lead is cleaned (``nk.ecg_clean``) and every beat, cut at the R peaks of
    the reference lead, is correlated with the lead's average beat
    (``nk.ecg_quality(method="templatematch")``); the score is the mean
    correlation. About 25-35 ms per 10 s lead at 100 and at 500 Hz (2 cores).

    Parameters
    ----------
    ecg : ECG
        The ECG in mV.
    reference_lead : str
        Lead whose R peaks cut the beats (the most varying lead when absent).

    Returns
    -------
    dict
        Lead name -> score from 0 (no beat resembles the template) to 1 (every
        beat matches it). A flat lead scores 0. None when the lead cannot be
        scored: fewer than three beats, or neurokit2 failed on it.
    """
    import neurokit2 as nk  # slow to import; only quality scoring needs it

    from ingest.ecg_measurements import r_peaks

    # Step 1: beats from one lead, so every lead is cut at the same times.
    peaks = r_peaks(ecg, reference_lead)
    rate = int(round(ecg.fs))

    # Step 2: score each lead against its own average beat.
    scores: dict[str, float | None] = {}
    for row, lead in enumerate(ecg.lead_names):
        trace = ecg.signal[row]
        if is_flat(trace):
            scores[lead] = 0.0
            continue
        if len(peaks) < MIN_QUALITY_BEATS:
            scores[lead] = None
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                cleaned = nk.ecg_clean(np.nan_to_num(trace), sampling_rate=rate)
                quality = nk.ecg_quality(
                    cleaned, rpeaks=peaks, sampling_rate=rate, method="templatematch"
                )
            score = float(np.nanmean(quality))
        except Exception as error:  # neurokit2 raises many kinds on odd signals
            logger.debug("quality of lead %s not scored: %s", lead, type(error))
            score = float("nan")
        scores[lead] = min(max(score, 0.0), 1.0) if np.isfinite(score) else None
    return scores


@dataclass(frozen=True)
class SignalQuality:
    """Whether an ECG's beats can be read, lead by lead (`assess_signal_quality`).

    Attributes
    ----------
    scores : dict
        Live (not flat) lead -> template-match score from 0 to 1, or None when
        no beat could be cut from it (`lead_quality`).
    reference_lead : str
        The lead whose R peaks cut the beats.
    min_score : float
        Score a lead needs to be read.
    min_median : float
        Median score over the live leads (None counting as 0) the ECG needs to
        be read at all.
    """

    scores: dict[str, float | None]
    reference_lead: str
    min_score: float
    min_median: float

    @property
    def median(self) -> float:
        """Median score of the live leads, a lead with no beat counting as 0."""
        if not self.scores:
            return 0.0
        return float(np.median([score or 0.0 for score in self.scores.values()]))

    @property
    def poor(self) -> list[str]:
        """Live leads of poor quality: a low score, or no beat to score."""
        return [
            lead
            for lead, score in self.scores.items()
            if score is None or score < self.min_score
        ]

    @property
    def usable(self) -> bool:
        """Whether the ECG is good enough for the model to read."""
        return bool(self.scores) and self.median >= self.min_median

    def describe(self, leads: Sequence[str]) -> str:
        """``"III 0.42, AVF no beats"`` for ``leads``, in the ECG's order."""
        shown = {
            lead: "no beats" if score is None else f"{score:.2f}"
            for lead, score in self.scores.items()
        }
        return ", ".join(f"{lead} {shown[lead]}" for lead in leads)


def assess_signal_quality(
    ecg: ECG,
    min_score: float,
    min_median: float,
    reference_leads: Sequence[str] = ("II", "V5", "I"),
) -> SignalQuality:
    """Score each live lead and judge whether the ECG can be read.

    The beats are cut at the R peaks of the first reference lead; when that
    leaves the ECG unusable (the reference lead itself may be the noisy one),
    the next reference lead is tried, and the verdict with the highest median
    is kept. A clean 12-lead ECG is scored once (about 0.3 s at 100 Hz on 2
    cores); only a poor one costs up to three times that.

    Parameters
    ----------
    ecg : ECG
        The ECG in mV; flat leads (lead off, or missing and read as zeros) are
        not scored, as they are reported apart.
    min_score : float
        Template-match score a lead needs to be read (``configs/data.yaml``
        gives the figures it was chosen on).
    min_median : float
        Median score of the live leads the ECG needs to be read at all.
    reference_leads : sequence of str
        Leads to cut the beats at, in order of preference.

    Returns
    -------
    SignalQuality
        With no scores at all (and not usable) when every lead is flat.
    """
    live = [
        row for row, lead in enumerate(ecg.lead_names) if not is_flat(ecg.signal[row])
    ]
    if not live:
        return SignalQuality({}, "", min_score, min_median)
    leads = [ecg.lead_names[row] for row in live]
    view = ECG(ecg.signal[live], ecg.fs, leads)
    references = [lead for lead in reference_leads if lead in leads] or leads[:1]
    best: SignalQuality | None = None
    for reference in references:
        verdict = SignalQuality(
            lead_quality(view, reference), reference, min_score, min_median
        )
        if best is None or verdict.median > best.median:
            best = verdict
        if best.usable:
            break
    return best
