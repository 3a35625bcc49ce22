"""Reading ECGs (WFDB, CSV, DICOM) and conforming them to the model's leads and `fs`.

`read_ecg` picks the reader from the file: a WFDB record (``.hea``, ``.dat``,
``.mat`` or no suffix), a CSV export (`ingest.ecg_csv`) or a DICOM waveform
(`ingest.ecg_dicom`). Every reader returns an `ECG` in mV with the file's own
``fs`` and our lead names (`canonical_lead`); `conform_ecg` then brings it to what
the model reads.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np
import wfdb

from ingest.config import ECGSpec
from ingest.ecg_quality import FLAT_PTP_MV, LiveSpan, is_flat, live_span
from ingest.errors import InputError
from ingest.schema import ECG

logger = logging.getLogger(__name__)

__all__ = [
    "BYTES_PER_SAMPLE",
    "FLAT_PTP_MV",
    "HeaderSummary",
    "STANDARD_LEADS",
    "canonical_lead",
    "canonical_leads",
    "check_header",
    "conform_ecg",
    "lead_problems",
    "read_ecg",
    "read_ecg_upload",
    "read_wfdb",
    "read_wfdb_upload",
]

STANDARD_LEADS = (
    "I", "II", "III", "AVR", "AVL", "AVF", "V1", "V2", "V3", "V4", "V5", "V6",
)  # fmt: skip

# Spellings seen in WFDB headers, CSV exports and DICOM code meanings (upper case,
# spaces removed, once "Lead" and any bracketed description are gone) -> ours.
LEAD_ALIASES = {
    **{lead: lead for lead in STANDARD_LEADS},
    "-AVR": "-AVR",  # Cabrera display: aVR inverted
    # European notation of the limb leads.
    "DI": "I", "DII": "II", "DIII": "III",
    # Holter "modified limb lead II" (MIT-BIH): read as lead II.
    "MLII": "II",
    # Monitor "modified chest lead 1" (MIMIC): read as V1, as MLII is read as II.
    "MCL1": "V1",
}  # fmt: skip

# Signal names of other channels a recording may carry beside the ECG (monitor and
# polysomnography records), read as upper case with spaces removed. A channel so
# named is left out whatever its unit: WFDB reads a missing unit as mV.
NON_ECG_SIGNALS = re.compile(
    r"^(RESP|ABP|ART|PAP|CVP|ICP|NBP|BP|PLETH|PPG|SPO2|SAO2|CO2|ETCO2|PULSE|"
    r"TEMP|EEG|EOG|EMG|FLOW|THOR|ABDO|AIRFLOW)"
)
UNIT_TO_MV = {"mv": 1.0, "uv": 1e-3, "µv": 1e-3, "μv": 1e-3, "v": 1e3}
FS_RANGE_HZ = (50.0, 10_000.0)  # plausible ECG sampling frequencies
MAX_SIGNALS = 64
MAX_SAMPLES_PER_FRAME = 1000
MAX_HEADER_BYTES = 64 * 1024
MIN_DURATION_S = 2.0
MAX_AMPLITUDE_MV = 30.0  # beyond this, the gain or the unit is wrong

# Bytes per sample of each WFDB signal format. The FLAC formats (508, 516, 524)
# are compressed, so their size cannot be checked before reading; format 0 is a
# null signal with no file.
BYTES_PER_SAMPLE = {
    "8": 1.0, "16": 2.0, "24": 3.0, "32": 4.0, "61": 2.0, "80": 1.0, "160": 2.0,
    "212": 1.5, "310": 4 / 3, "311": 4 / 3,
}  # fmt: skip
COMPRESSED_FORMATS = ("508", "516", "524")
NULL_FORMAT = "0"
WFDB_FORMATS = (*BYTES_PER_SAMPLE, *COMPRESSED_FORMATS, NULL_FORMAT)
NULL_FILE = "~"  # a signal or segment without samples (WFDB's null name)
WFDB_SUFFIXES = {"", ".hea", ".dat", ".mat"}

SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]{0,99}$")
# format[xsamples per frame][:skew][+byte offset], e.g. 212, 16x4, 212:4, 16+24.
SIGNAL_FORMAT = re.compile(r"^(\d+)(?:x(\d+))?(?::(\d+))?(?:\+(\d+))?$")
BRACKETED = re.compile(r"\([^)]*\)|\[[^\]]*\]")  # "(Einthoven)", "[mV]"
LEAD_WORD = re.compile(r"^(ECG\s*)?LEAD(?![A-Z])[\s_:-]*")


def canonical_lead(name: str) -> str:
    """Return our spelling of a lead name.

    ``aVR``, ``avr`` and ``Lead aVR`` give ``AVR``; ``Lead I (Einthoven)`` and
    ``II (Einthoven)`` give ``I`` and ``II``; ``MLII`` gives ``II``; ``V1-``
    gives ``V1``. A name that is not one of ours comes back tidied (upper case,
    no bracketed description), e.g. ``VX``.

    Parameters
    ----------
    name : str
        A lead name as written in the file.

    Returns
    -------
    str
        One of `STANDARD_LEADS` (or ``-AVR``), or the tidied unknown name.
    """
    text = BRACKETED.sub(" ", name).upper().strip()
    text = LEAD_WORD.sub("", text)
    text = " ".join(text.split()).rstrip(" -_+:")
    return LEAD_ALIASES.get(text.replace(" ", ""), text)


def canonical_leads(names: Sequence[str], source: str) -> list[str]:
    """Map each name with `canonical_lead`; a lead named twice is an error.

    Parameters
    ----------
    names : sequence of str
        Lead names in the order of the signal's rows.
    source : str
        File name used in error messages.

    Returns
    -------
    list of str

    Raises
    ------
    InputError
        When two names map to the same lead (e.g. ``aVL`` and ``AVL``).
    """
    leads = [canonical_lead(str(name)) for name in names]
    repeated = sorted({lead for lead in leads if leads.count(lead) > 1})
    if repeated:
        raise InputError(
            source, "lead names", "each lead once", f"{', '.join(repeated)} twice"
        )
    unknown = [lead for lead in leads if lead not in LEAD_ALIASES.values()]
    if unknown:
        logger.info("%s: leads without a standard name: %s", source, ", ".join(unknown))
    return leads


# --- one entry point ---------------------------------------------------------


def read_ecg(
    path: str | Path,
    fs: float | None = None,
    source: str | None = None,
    units: str = "mV",
) -> ECG:
    """Read an ECG file of any supported kind, choosing the reader by its suffix.

    ``.hea``, ``.dat``, ``.mat`` or no suffix: a WFDB record (`read_wfdb`);
    ``.csv``: a CSV export (`ingest.ecg_csv.read_ecg_csv`); ``.dcm``, or a file
    without suffix that starts with the DICOM preamble: a DICOM waveform
    (`ingest.ecg_dicom.read_ecg_dicom`).

    Parameters
    ----------
    path : str or Path
        The file (or, for WFDB, the record path without suffix).
    fs : float, optional
        Sampling frequency in Hz of a file that does not state its own: needed
        for a CSV without a time column. WFDB and DICOM files (and a CSV time
        column) state theirs, which wins; a different value here is logged.
    source : str, optional
        Name used in error messages; the file name by default.
    units : str
        Amplitude unit of a CSV's lead columns (mV, uV or µV); CSV only.

    Returns
    -------
    ECG
        Leads x samples in mV, at the file's ``fs``.

    Raises
    ------
    InputError
        An unknown kind of file, or whatever the chosen reader refuses.
    """
    path = Path(path)
    source = source or path.name
    suffix = path.suffix.lower()

    # Step 1: CSV and DICOM by suffix, DICOM also by its preamble.
    if suffix == ".csv":
        from ingest.ecg_csv import read_ecg_csv  # each reader loads only when used

        return read_ecg_csv(path, fs=fs, units=units, source=source)
    if suffix in {".dcm", ".dicom"} or (suffix == "" and _has_dicom_preamble(path)):
        from ingest.ecg_dicom import read_ecg_dicom

        return _same_fs(read_ecg_dicom(path, source=source), fs, source)

    # Step 2: everything else must be a WFDB record.
    if suffix not in WFDB_SUFFIXES:
        raise InputError(
            source,
            "file type",
            "a WFDB record (.hea/.dat/.mat), a CSV (.csv) or a DICOM ECG (.dcm)",
            repr(suffix),
        )
    return _same_fs(read_wfdb(path), fs, source)


def read_ecg_upload(name: str, content: bytes, fs: float | None = None) -> ECG:
    """Read an uploaded single-file ECG: a DICOM waveform or a CSV export.

    A WFDB record comes as two files: use `read_wfdb_upload` for it.

    Parameters
    ----------
    name : str
        The uploaded file's name (its suffix chooses the reader; a DICOM file is
        also recognised by its preamble).
    content : bytes
        The file's content.
    fs : float, optional
        Sampling frequency in Hz, for a CSV without a time column (as in
        `read_ecg`: a DICOM file's own wins).

    Returns
    -------
    ECG

    Raises
    ------
    InputError
        An empty file, a WFDB file on its own, an unknown kind, or whatever the
        chosen reader refuses.
    """
    source = Path(name).name or "upload"
    suffix = Path(source).suffix.lower()
    if not content:
        raise InputError(source, "ecg", "a non-empty ECG file", "an empty file")
    if suffix in {".dcm", ".dicom"} or content[128:132] == b"DICM":
        from ingest.ecg_dicom import parse_ecg_dicom

        return _same_fs(parse_ecg_dicom(content, source), fs, source)
    if suffix == ".csv":
        from ingest.ecg_csv import parse_ecg_csv

        return parse_ecg_csv(content, fs=fs, source=source)
    if suffix in {".hea", ".dat", ".mat"}:
        raise InputError(
            source,
            "file type",
            "a single-file ECG (.dcm, .csv); a WFDB record needs its .hea and "
            "signal file together",
            f"a lone {suffix} file",
        )
    raise InputError(
        source, "file type", "a DICOM ECG (.dcm) or a CSV (.csv)", repr(suffix)
    )


def _has_dicom_preamble(path: Path) -> bool:
    """Whether a file starts with the 128-byte DICOM preamble and ``DICM``."""
    if not path.is_file():
        return False
    with path.open("rb") as handle:
        return handle.read(132)[128:132] == b"DICM"


def _same_fs(ecg: ECG, fs: float | None, source: str) -> ECG:
    """Log a given ``fs`` that differs from the one the file states (which wins)."""
    if fs is not None and not math.isclose(fs, ecg.fs, rel_tol=1e-6):
        logger.warning(
            "%s: fs %g Hz given, the file states %g Hz: using the file's",
            source,
            fs,
            ecg.fs,
        )
    return ecg


# --- WFDB header -------------------------------------------------------------


@dataclass(frozen=True)
class HeaderSummary:
    """What a WFDB header promises, checked before wfdb reads the signal.

    Attributes
    ----------
    record_name : str
        The record's name.
    n_signals : int
        Number of signals.
    fs : float
        Frame frequency in Hz (a signal with k samples per frame runs at k x fs).
    n_samples : int or None
        Frames per signal, when the header says.
    files : tuple of str
        Signal files, in order of first use (none for a multi-segment record).
    expected_bytes : dict
        Signal file -> the least number of bytes it must hold (files in a
        compressed format are not listed).
    segments : tuple of (str, int)
        Segment name and length of a multi-segment record; empty otherwise.
    samples_per_frame : tuple of int
        Samples per frame of each signal (1 for a single-rate record).
    """

    record_name: str
    n_signals: int
    fs: float
    n_samples: int | None
    files: tuple[str, ...]
    expected_bytes: dict[str, int]
    segments: tuple[tuple[str, int], ...] = ()
    samples_per_frame: tuple[int, ...] = ()


def check_header(text: str, source: str) -> HeaderSummary:
    """Validate a WFDB header's text before any signal is read.

    Checks what wfdb would otherwise silently default or choke on: a record line
    with a name, a signal count (1 to 64) and a sampling frequency (50 to
    10000 Hz); for a single-segment record, one line per signal with a plain
    file name, a known format and a positive ADC gain (0 means uncalibrated);
    for a multi-segment record, one line per segment with a plain name and a
    length.

    Parameters
    ----------
    text : str
        The header's content.
    source : str
        File name used in error messages.

    Returns
    -------
    HeaderSummary
        With the byte size each signal file must have at least.

    Raises
    ------
    InputError
        Naming the header field and what was expected.
    """
    lines = [
        line.split()
        for line in text.splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    if not lines:
        raise InputError(source, "record line", "a WFDB record line", "no content")

    # Step 1: the record line: name[/segments] signals fs[/counter] [samples].
    record = lines[0]
    name, _, n_segments = record[0].partition("/")
    if not SAFE_NAME.match(name):
        raise InputError(source, "record name", "a plain record name", repr(name)[:60])
    n_signals = _count(record, 1, "number of signals", MAX_SIGNALS, source)
    fs = _record_fs(record, source)
    n_samples = None
    if len(record) > 3:
        if not record[3].isdigit():
            raise InputError(
                source, "number of samples", "a whole number", record[3][:20]
            )
        n_samples = int(record[3])

    # Step 2: segment lines (multi-segment record) or signal lines.
    if n_segments:
        segments = _segment_lines(lines[1:], n_segments, n_samples, source)
        return HeaderSummary(name, n_signals, fs, n_samples, (), {}, segments)
    signals = lines[1 : 1 + n_signals]
    if len(signals) < n_signals:
        raise InputError(
            source, "signal lines", f"{n_signals} signal lines", str(len(signals))
        )
    files, expected, per_frame = _signal_lines(signals, n_samples, source)
    return HeaderSummary(
        record_name=name,
        n_signals=n_signals,
        fs=fs,
        n_samples=n_samples,
        files=files,
        expected_bytes=expected,
        samples_per_frame=per_frame,
    )


def _count(record: list[str], position: int, field: str, top: int, source: str) -> int:
    """An integer 1..top at ``position`` of the record line."""
    text = record[position] if len(record) > position else ""
    if not text.isdigit() or not 1 <= int(text) <= top:
        raise InputError(source, field, f"an integer 1..{top}", repr(text)[:20])
    return int(text)


def _record_fs(record: list[str], source: str) -> float:
    """The record line's sampling (frame) frequency, in the plausible range."""
    if len(record) < 3:
        raise InputError(
            source, "fs", "a sampling frequency (Hz) on the record line", "none"
        )
    fs = _leading_number(record[2])
    low, high = FS_RANGE_HZ
    if fs is None or not low <= fs <= high:
        raise InputError(
            source, "fs", f"a sampling frequency of {low:g}..{high:g} Hz", record[2]
        )
    return fs


def _segment_lines(
    lines: list[list[str]], count: str, n_samples: int | None, source: str
) -> tuple[tuple[str, int], ...]:
    """Check a multi-segment header's segment lines: name and length each."""
    if not count.isdigit() or int(count) < 1:
        raise InputError(
            source, "number of segments", "a positive integer", repr(count)[:20]
        )
    if len(lines) < int(count):
        raise InputError(
            source, "segment lines", f"{count} segment lines", str(len(lines))
        )
    segments = []
    for number, line in enumerate(lines[: int(count)]):
        name = line[0]
        length = line[1] if len(line) > 1 else ""
        if name != NULL_FILE and not SAFE_NAME.match(name):
            raise InputError(
                source, f"segment {number} name", "a plain record name", repr(name)[:60]
            )
        if not length.isdigit():
            raise InputError(
                source, f"segment {number} length", "a whole number", repr(length)[:20]
            )
        segments.append((name, int(length)))
    total = sum(length for _, length in segments)
    if n_samples is not None and total != n_samples:
        raise InputError(
            source,
            "number of samples",
            f"the sum of the segment lengths ({total})",
            str(n_samples),
        )
    return tuple(segments)


def _signal_lines(
    signals: list[list[str]], n_samples: int | None, source: str
) -> tuple[tuple[str, ...], dict[str, int], tuple[int, ...]]:
    """Check signal lines; return files, their least byte sizes, samples/frame."""
    formats: dict[str, str] = {}
    frame_samples: dict[str, int] = {}
    offsets: dict[str, int] = {}
    per_frame = []
    for number, signal in enumerate(signals):
        file_name = signal[0]
        description = " ".join(signal[8:])[:40] or "unnamed"

        # The file: a plain name beside the header, or the null name.
        if file_name != NULL_FILE and (
            not SAFE_NAME.match(file_name) or file_name.endswith(".hea")
        ):
            raise InputError(
                source,
                f"signal {number} file name",
                "a plain file name",
                repr(file_name)[:60],
            )

        # The format, samples per frame and byte offset.
        spec = SIGNAL_FORMAT.match(signal[1]) if len(signal) > 1 else None
        if spec is None or spec.group(1) not in WFDB_FORMATS:
            raise InputError(
                source,
                f"signal {number} format",
                f"a WFDB format ({', '.join(WFDB_FORMATS)})",
                repr(signal[1])[:20] if len(signal) > 1 else "none",
            )
        fmt = spec.group(1)
        spf = int(spec.group(2) or 1)
        if not 1 <= spf <= MAX_SAMPLES_PER_FRAME:
            raise InputError(
                source,
                f"signal {number} samples per frame",
                f"an integer 1..{MAX_SAMPLES_PER_FRAME}",
                str(spf),
            )
        per_frame.append(spf)

        # The ADC gain: 0 would mean uncalibrated (amplitudes cannot be trusted).
        if len(signal) > 2:
            gain = _leading_number(signal[2])
            if gain is None or not gain > 0:
                raise InputError(
                    source,
                    f"signal {number} ({description}) adc_gain",
                    "a positive ADC gain (0 means uncalibrated: amplitudes "
                    "cannot be trusted)",
                    signal[2][:20],
                )

        # What its file must hold: every signal of a file shares its format.
        if file_name == NULL_FILE or fmt == NULL_FORMAT:
            continue
        if formats.setdefault(file_name, fmt) != fmt:
            raise InputError(
                source,
                f"signal {number} format",
                f"format {formats[file_name]} like the other signals in {file_name}",
                fmt,
            )
        frame_samples[file_name] = frame_samples.get(file_name, 0) + spf
        offsets[file_name] = max(offsets.get(file_name, 0), int(spec.group(4) or 0))

    files = tuple(
        dict.fromkeys(signal[0] for signal in signals if signal[0] != NULL_FILE)
    )
    expected = {}
    if n_samples is not None:
        expected = {
            file_name: offsets[file_name]
            + math.ceil(n_samples * samples * BYTES_PER_SAMPLE[formats[file_name]])
            for file_name, samples in frame_samples.items()
            if formats[file_name] in BYTES_PER_SAMPLE
        }
    return files, expected, tuple(per_frame)


def _leading_number(text: str) -> float | None:
    match = re.match(r"^[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?", text)
    if not match:
        return None
    value = float(match.group(0))
    return value if math.isfinite(value) else None


# --- WFDB record -------------------------------------------------------------


def read_wfdb(record_path: str | Path) -> ECG:
    """Read a WFDB record as an `ECG` in millivolts.

    Reads any signal format wfdb reads (8, 16, 24, 32, 61, 80, 160, 212, 310,
    311, FLAC 508/516/524, and ``.mat`` files with a byte offset), records whose
    signals span several files, and multi-segment records. The header is
    checked first (`check_header`); a signal file shorter than the header
    promises is an error, not a shorter ECG.

    Signals sampled faster than the frame rate (several samples per frame) are
    not averaged down: every signal is brought to the record's highest rate by
    polyphase resampling, and that rate is the ECG's ``fs``. Signals whose unit
    is not a voltage (``mmHg``, ``NU``: blood pressure, pleth) are left out and
    logged.

    Parameters
    ----------
    record_path : str or Path
        Record path with or without the ``.hea``, ``.dat`` or ``.mat`` suffix.

    Returns
    -------
    ECG
        Leads x samples in mV, with the record's highest rate and our lead
        names (unknown names are kept, tidied).

    Raises
    ------
    InputError
        When the header, a segment header or a signal file is missing, short or
        invalid, or no signal is in a voltage unit.
    """
    path = Path(record_path)
    if path.suffix.lower() in {".hea", ".dat", ".mat"}:
        path = path.with_suffix("")
    name = path.name + ".hea"
    # Step 1: the header, checked before wfdb parses it.
    summary = check_header(_read_header(path.parent, name, name), name)
    return _read_checked(path, name, summary)


def _read_header(folder: Path, file_name: str, source: str) -> str:
    """The text of a header file in ``folder``, checked for size and ASCII."""
    header_path = folder / file_name
    if not header_path.is_file():
        raise InputError(
            str(header_path), "header", "an existing WFDB .hea file", "no such file"
        )
    with header_path.open("rb") as handle:
        content = handle.read(MAX_HEADER_BYTES + 1)
    return _header_text(content, source, "header")


def _header_text(content: bytes, source: str, field: str) -> str:
    """The header's text: not empty, not too large, ASCII."""
    if not content.strip():
        raise InputError(source, field, "a non-empty WFDB .hea file", "an empty file")
    if len(content) > MAX_HEADER_BYTES:
        limit = f"at most {MAX_HEADER_BYTES // 1024} KB"
        raise InputError(source, field, limit, "a larger file")
    try:
        return content.decode("ascii")
    except UnicodeDecodeError as error:
        raise InputError(
            source, field, "an ASCII WFDB header", "binary data"
        ) from error


def _read_checked(path: Path, name: str, summary: HeaderSummary) -> ECG:
    """Read a record whose header passed `check_header`, in millivolts."""
    # Step 2: every signal file (of every segment) as long as its header says.
    if summary.segments:
        _check_segments(path.parent, summary, name)
    else:
        _check_sizes(path.parent, summary, name)

    # Step 3: the samples in physical units, each signal at its own rate.
    try:
        record = wfdb.rdrecord(str(path), smooth_frames=False)
    except Exception as error:  # wfdb raises many kinds on malformed input
        raise InputError(
            name, "record", "a readable WFDB record", f"{type(error).__name__}: {error}"
        ) from error
    traces = record.e_p_signal or []
    if not traces or max(len(trace) for trace in traces) == 0:
        raise InputError(name, "signal", "at least one sample", "no samples")

    # Step 4: the voltage signals only, in mV.
    rows = _voltage_rows(record.units, record.sig_name, name)

    # Step 5: every signal at the record's highest rate (not averaged down).
    per_frame = [int(record.samps_per_frame[row]) for row, _ in rows]
    top = max(per_frame)
    signal = np.stack(
        [
            _upsample(traces[row], top, spf) * factor
            for (row, factor), spf in zip(rows, per_frame, strict=True)
        ]
    ).astype(np.float32)
    if top > 1:
        logger.info("%s: signals brought to %g Hz", name, record.fs * top)

    # Step 6: our lead names.
    leads = canonical_leads([record.sig_name[row] for row, _ in rows], name)
    return ECG(signal=signal, fs=float(record.fs) * top, lead_names=leads)


def _check_sizes(folder: Path, summary: HeaderSummary, source: str) -> None:
    """Refuse a missing signal file, or one shorter than its header says."""
    for file_name, expected in summary.expected_bytes.items():
        signal_path = folder / file_name
        if not signal_path.is_file():
            raise InputError(
                source, "signal file", f"{file_name} beside the header", "no such file"
            )
        size = signal_path.stat().st_size
        if size < expected:
            raise InputError(
                file_name,
                "length",
                f"{expected} bytes as the header says",
                f"{size} bytes",
            )


def _check_segments(folder: Path, summary: HeaderSummary, source: str) -> None:
    """Check each segment's header and signal files of a multi-segment record."""
    # A fixed layout (first segment not a 0-length layout header) has no gaps:
    # wfdb reads a gap only in a variable-layout record.
    fixed = summary.segments[0][1] > 0
    for number, (segment, _) in enumerate(summary.segments):
        if segment == NULL_FILE and fixed:
            raise InputError(
                source,
                f"segment {number} name",
                "a segment record (a gap '~' needs a variable layout: a first, "
                "0-length layout segment)",
                "'~'",
            )
        if segment == NULL_FILE:
            continue  # a gap: no header, no samples
        header_name = f"{segment}.hea"
        part = check_header(_read_header(folder, header_name, header_name), header_name)
        if part.segments:
            raise InputError(
                header_name, "record line", "a single-segment record", "segments"
            )
        _check_sizes(folder, part, header_name)


def _voltage_rows(
    units: Sequence[str] | None, names: Sequence[str], source: str
) -> list[tuple[int, float]]:
    """Rows of ECG signals in a voltage unit, with the factor to mV; log the others.

    A signal named as another channel (``RESP``, ``ABP``, ``PLETH``, ...) is
    left out even when its unit reads as a voltage.
    """
    units = list(units or ["mV"] * len(names))
    rows, others = [], []
    for row, unit in enumerate(units):
        factor = UNIT_TO_MV.get(str(unit).strip().lower())
        if NON_ECG_SIGNALS.match(str(names[row]).upper().replace(" ", "")):
            others.append(f"{names[row]} (not an ECG lead)")
        elif factor is None:
            others.append(f"{names[row]} ({unit})")
        else:
            rows.append((row, factor))
    if not rows:
        raise InputError(
            source,
            "units",
            "at least one ECG signal in a voltage unit (mV, uV, V)",
            ", ".join(sorted({str(unit) for unit in units}))[:80],
        )
    if others:
        logger.warning(
            "%s: signals other than ECG leads left out: %s", source, ", ".join(others)
        )
    return rows


def _upsample(trace: np.ndarray, top: int, spf: int) -> np.ndarray:
    """One signal with ``spf`` samples per frame, brought to ``top`` per frame."""
    trace = np.asarray(trace, dtype=np.float64)
    if spf == top:
        return trace
    from scipy.signal import resample_poly  # slow to import; rarely needed

    ratio = Fraction(top, spf)
    # Missing samples (NaN) would smear over the filter's length: read as 0.
    return resample_poly(np.nan_to_num(trace), ratio.numerator, ratio.denominator)


# --- conforming to the model -------------------------------------------------


def conform_ecg(ecg: ECG, spec: ECGSpec, source: str = "ecg") -> ECG:
    """Reorder leads, resample to the model's `fs` and crop or zero-pad to its length.

    Flat stretches in which every lead is flat at the start or end of the
    recording (electrodes not yet on) are left out first, so the model reads
    the live part; `lead_problems` reports what was trimmed.

    Parameters
    ----------
    ecg : ECG
        The ECG as read.
    spec : ECGSpec
        Target leads, ``fs`` (Hz) and duration (s).
    source : str
        File name used in error messages.

    Returns
    -------
    ECG
        ``len(spec.leads)`` x ``spec.n_samples`` in mV. A lead the input lacks,
        or one that is flat or NaN throughout (lead off), is left as zeros and
        reported by `lead_problems`.

    Raises
    ------
    InputError
        When none of the model's leads is present or carries a signal, when the
        live part of the recording is shorter than 2 s, or when an amplitude is
        beyond +-30 mV (a wrong gain or unit).
    """
    index = {lead: row for row, lead in enumerate(ecg.lead_names)}
    present = [lead for lead in spec.leads if lead in index]
    if not present:
        raise InputError(
            source,
            "lead names",
            f"some of {', '.join(spec.leads)}",
            ", ".join(ecg.lead_names)[:200],
        )

    # Step 1: the live part of the model's leads, as long as the model reads.
    window, span = _model_window(ecg, present, spec)
    if span.duration_s < MIN_DURATION_S:
        trimmed = " after leaving out flat ends" if span.trimmed else ""
        raise InputError(
            source,
            "length",
            f"at least {MIN_DURATION_S:g} s of signal",
            f"{span.duration_s:.2f} s{trimmed}",
        )

    # Step 2: amplitudes a calibrated ECG can have.
    with np.errstate(invalid="ignore"):
        peak = np.nanmax(np.abs(window)) if np.isfinite(window).any() else 0.0
    if peak > MAX_AMPLITUDE_MV:
        raise InputError(
            source,
            "signal amplitude",
            f"values within +-{MAX_AMPLITUDE_MV:g} mV (check the ADC gain and units)",
            f"{peak:.3g} mV",
        )

    # Step 3: leads that carry a signal (the others stay zeros).
    live = {lead for row, lead in enumerate(present) if not is_flat(window[row])}
    if not live:
        raise InputError(
            source,
            "signal",
            "at least one lead with a signal",
            "every lead flat or empty",
        )

    # Step 4: the model's fs, by polyphase resampling.
    window = np.nan_to_num(window)
    if abs(ecg.fs - spec.fs) > 1e-6:
        from scipy.signal import resample_poly  # slow to import; rarely needed

        up, down = _ratio(spec.fs, ecg.fs)
        window = resample_poly(window, up, down, axis=1)

    # Step 5: the model's lead order and length (zero-padded).
    n = spec.n_samples
    out = np.zeros((len(spec.leads), n), dtype=np.float32)
    for row, lead in enumerate(present):
        if lead in live:
            trace = window[row, :n]
            out[spec.leads.index(lead), : trace.shape[0]] = trace
    return ECG(signal=out, fs=spec.fs, lead_names=list(spec.leads))


def lead_problems(ecg: ECG, spec: ECGSpec) -> dict[str, list[str]]:
    """What the model will not see of this ECG, as `conform_ecg` reads it.

    Returns
    -------
    dict
        ``missing``: the model's leads the ECG lacks; ``flat``: those flat or
        empty (lead off) in the part the model reads (both read as zeros);
        ``ignored``: the ECG's leads the model does not read (e.g. ``VX``);
        ``trimmed``: one note per flat end of the recording that was left out;
        ``gaps``: lead -> seconds of missing samples (NaN) within the part the
        model reads, for the leads not flat (the model reads them as 0 mV).
    """
    index = {lead: row for row, lead in enumerate(ecg.lead_names)}
    present = [lead for lead in spec.leads if lead in index]
    window, span = _model_window(ecg, present, spec)
    return {
        "missing": [lead for lead in spec.leads if lead not in index],
        "flat": [lead for row, lead in enumerate(present) if is_flat(window[row])],
        "ignored": [lead for lead in ecg.lead_names if lead not in spec.leads],
        "trimmed": span.notes,
        "gaps": {
            lead: float(np.isnan(window[row]).sum()) / ecg.fs
            for row, lead in enumerate(present)
            if np.isnan(window[row]).any() and not is_flat(window[row])
        },
    }


def _model_window(
    ecg: ECG, present: Sequence[str], spec: ECGSpec
) -> tuple[np.ndarray, LiveSpan]:
    """The present model leads' live part, cut to the model's duration (ecg fs)."""
    rows = [ecg.lead_names.index(lead) for lead in present]
    signal = ecg.signal[rows]
    span = live_span(signal, ecg.fs)
    stop = min(span.stop, span.start + math.ceil(spec.duration_s * ecg.fs))
    return signal[:, span.start : stop], span


def _ratio(target: float, current: float) -> tuple[int, int]:
    fraction = Fraction(target / current).limit_denominator(1000)
    return fraction.numerator, fraction.denominator


# --- WFDB upload -------------------------------------------------------------


def read_wfdb_upload(header: bytes, signal: bytes, source: str = "upload") -> ECG:
    """Read an uploaded WFDB pair (``.hea`` text and its signal file bytes).

    The header is checked (`check_header`); the signal file is saved under the
    name the header gives it, in a private temporary folder.

    Parameters
    ----------
    header : bytes
        The ``.hea`` file's content.
    signal : bytes
        The signal (``.dat``) file's content.
    source : str
        Name used in error messages.

    Raises
    ------
    InputError
        Empty files, a header that is not text or not valid, signals spread over
        several files or segments, and whatever `read_wfdb` refuses.
    """
    import tempfile

    if not signal:
        raise InputError(
            source, "ecg_signal", "a non-empty WFDB signal file", "an empty file"
        )
    text = _header_text(header, source, "ecg_header")
    summary = check_header(text, source)
    if len(summary.files) != 1:
        found = (
            f"{len(summary.segments)} segments"
            if summary.segments
            else f"{len(summary.files)} files"
        )
        raise InputError(source, "ecg_header", "all signals in one signal file", found)
    with tempfile.TemporaryDirectory() as folder:
        base = Path(folder)
        (base / f"{summary.record_name}.hea").write_bytes(header)
        (base / summary.files[0]).write_bytes(signal)
        return _read_checked(base / summary.record_name, source, summary)
