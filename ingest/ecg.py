"""Reading 12-lead ECGs (WFDB) and conforming them to the model's leads and `fs`."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import wfdb

from ingest.config import ECGSpec
from ingest.errors import InputError
from ingest.schema import ECG

# Spellings seen in WFDB headers -> our lead names.
LEAD_ALIASES = {
    "I": "I", "II": "II", "III": "III",
    "AVR": "AVR", "AVL": "AVL", "AVF": "AVF",
    "-AVR": "-AVR",
    # Holter "modified limb lead II" (MIT-BIH): read as lead II.
    "MLII": "II",
    **{f"V{i}": f"V{i}" for i in range(1, 7)},
}  # fmt: skip

UNIT_TO_MV = {"mv": 1.0, "uv": 1e-3, "µv": 1e-3, "μv": 1e-3, "v": 1e3}
FS_RANGE_HZ = (50.0, 10_000.0)  # plausible ECG sampling frequencies
MAX_SIGNALS = 64
MAX_HEADER_BYTES = 64 * 1024
MIN_DURATION_S = 2.0
MAX_AMPLITUDE_MV = 30.0  # beyond this, the gain or the unit is wrong
FLAT_PTP_MV = 0.01  # a lead whose peak-to-peak stays below this is flat (lead off)
BYTES_PER_SAMPLE = {"16": 2.0, "212": 1.5, "80": 1.0, "24": 3.0, "32": 4.0}
SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]{0,99}$")


def canonical_lead(name: str) -> str:
    """Return our spelling of a lead name (``aVR`` -> ``AVR``, ``v1`` -> ``V1``)."""
    return LEAD_ALIASES.get(name.strip().upper(), name.strip().upper())


@dataclass(frozen=True)
class HeaderSummary:
    """What a WFDB header promises, checked before wfdb reads the signal."""

    record_name: str
    n_signals: int
    fs: float
    n_samples: int | None
    files: tuple[str, ...]
    expected_bytes: dict[str, int]


def check_header(text: str, source: str) -> HeaderSummary:
    """Validate a WFDB header's text before any signal is read.

    Checks what wfdb would otherwise silently default or choke on: a record line
    with a name, a signal count (1 to 64) and a sampling frequency (50 to
    10000 Hz); one line per signal with a plain file name and a positive ADC
    gain.

    Parameters
    ----------
    text : str
        The header's content.
    source : str
        File name used in error messages.

    Returns
    -------
    HeaderSummary

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
    record = lines[0]
    name = record[0].split("/")[0]
    count = record[1] if len(record) > 1 else ""
    if not count.isdigit() or not 1 <= int(count) <= MAX_SIGNALS:
        raise InputError(
            source, "number of signals", f"an integer 1..{MAX_SIGNALS}", repr(count)
        )
    n_signals = int(count)
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
    n_samples = None
    if len(record) > 3:
        if not record[3].isdigit() or int(record[3]) < 1:
            raise InputError(
                source, "number of samples", "a positive integer", record[3]
            )
        n_samples = int(record[3])
    signals = lines[1 : 1 + n_signals]
    if len(signals) < n_signals:
        raise InputError(
            source, "signal lines", f"{n_signals} signal lines", str(len(signals))
        )
    bytes_per_frame: dict[str, float] = {}
    for number, signal in enumerate(signals):
        file_name = signal[0]
        if not SAFE_NAME.match(file_name) or file_name.endswith(".hea"):
            raise InputError(
                source,
                f"signal {number} file name",
                "a plain file name",
                repr(file_name)[:60],
            )
        fmt = (
            signal[1].split("x")[0].split(":")[0].split("+")[0]
            if len(signal) > 1
            else ""
        )
        if len(signal) > 2:
            gain = _leading_number(signal[2])
            if gain is None or not gain > 0:
                raise InputError(
                    source, f"signal {number} ADC gain", "a positive number", signal[2]
                )
        if fmt in BYTES_PER_SAMPLE and file_name not in bytes_per_frame:
            bytes_per_frame[file_name] = 0.0
        if fmt in BYTES_PER_SAMPLE:
            bytes_per_frame[file_name] += BYTES_PER_SAMPLE[fmt]
    expected = {}
    if n_samples is not None:
        expected = {f: int(n_samples * b) for f, b in bytes_per_frame.items()}
    if not SAFE_NAME.match(name):
        raise InputError(source, "record name", "a plain record name", repr(name)[:60])
    return HeaderSummary(
        record_name=name,
        n_signals=n_signals,
        fs=fs,
        n_samples=n_samples,
        files=tuple(dict.fromkeys(signal[0] for signal in signals)),
        expected_bytes=expected,
    )


def _leading_number(text: str) -> float | None:
    match = re.match(r"^[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?", text)
    if not match:
        return None
    value = float(match.group(0))
    return value if math.isfinite(value) else None


def read_wfdb(record_path: str | Path) -> ECG:
    """Read a WFDB record (``.hea`` + signal file) as an `ECG` in millivolts.

    The header is checked first (`check_header`); a signal file shorter than the
    header promises is an error, not a shorter ECG.

    Parameters
    ----------
    record_path : str or Path
        Record path with or without the ``.hea`` suffix.

    Returns
    -------
    ECG
        Leads x samples in mV, with the header's ``fs`` and lead names.

    Raises
    ------
    InputError
        When the header or signal cannot be read, or a unit is not a voltage.
    """
    path = Path(record_path)
    if path.suffix in {".hea", ".dat"}:
        path = path.with_suffix("")
    name = path.name + ".hea"
    header_path = path.with_suffix(".hea")
    if not header_path.is_file():
        raise InputError(
            str(header_path), "header", "an existing WFDB .hea file", "no such file"
        )

    # Step 1: the header, checked before wfdb parses it.
    with header_path.open("rb") as handle:
        content = handle.read(MAX_HEADER_BYTES + 1)
    summary = check_header(_header_text(content, name, "header"), name)
    return _read_checked(path, name, summary)


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
    # Step 2: a signal file at least as long as the header promises.
    for file_name, expected in summary.expected_bytes.items():
        signal_path = path.parent / file_name
        if not signal_path.is_file():
            raise InputError(
                name, "signal file", f"{file_name} beside the header", "no such file"
            )
        size = signal_path.stat().st_size
        if size < expected:
            raise InputError(
                file_name,
                "length",
                f"{expected} bytes as the header says",
                f"{size} bytes",
            )

    # Step 3: the samples, in physical units.
    try:
        record = wfdb.rdrecord(str(path))
    except Exception as error:  # wfdb raises many kinds on malformed input
        raise InputError(
            name, "record", "a readable WFDB record", f"{type(error).__name__}: {error}"
        ) from error
    if record.p_signal is None or record.p_signal.size == 0:
        raise InputError(name, "signal", "at least one sample", "no samples")
    signal = np.asarray(record.p_signal, dtype=np.float32).T
    for row, unit in enumerate(record.units or ["mV"] * signal.shape[0]):
        factor = UNIT_TO_MV.get(str(unit).strip().lower())
        if factor is None:
            raise InputError(
                name, f"units[{row}]", "a voltage unit (mV, uV, V)", repr(unit)
            )
        signal[row] *= factor
    leads = [canonical_lead(lead) for lead in record.sig_name]
    repeated = sorted({lead for lead in leads if leads.count(lead) > 1})
    if repeated:
        raise InputError(
            name, "lead names", "each lead once", f"{', '.join(repeated)} twice"
        )
    return ECG(signal=signal, fs=float(record.fs), lead_names=leads)


def conform_ecg(ecg: ECG, spec: ECGSpec, source: str = "ecg") -> ECG:
    """Reorder leads, resample to the model's `fs` and crop or zero-pad to its length.

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
        recording is shorter than 2 s, or when an amplitude is beyond +-30 mV
        (a wrong gain or unit).
    """
    index = {lead: row for row, lead in enumerate(ecg.lead_names)}
    if not any(lead in index for lead in spec.leads):
        raise InputError(
            source,
            "lead names",
            f"some of {', '.join(spec.leads)}",
            ", ".join(ecg.lead_names)[:200],
        )
    if ecg.duration_s < MIN_DURATION_S:
        raise InputError(
            source,
            "length",
            f"at least {MIN_DURATION_S:g} s of signal",
            f"{ecg.duration_s:.2f} s",
        )
    signal = ecg.signal
    with np.errstate(invalid="ignore"):
        peak = np.nanmax(np.abs(signal)) if np.isfinite(signal).any() else 0.0
    if peak > MAX_AMPLITUDE_MV:
        raise InputError(
            source,
            "signal amplitude",
            f"values within +-{MAX_AMPLITUDE_MV:g} mV (check the ADC gain and units)",
            f"{peak:.3g} mV",
        )
    live = [
        lead for lead in spec.leads if lead in index and not _flat(signal[index[lead]])
    ]
    if not live:
        raise InputError(
            source,
            "signal",
            "at least one lead with a signal",
            "every lead flat or empty",
        )
    if abs(ecg.fs - spec.fs) > 1e-6:
        # Resample with a polyphase filter; fs ratios of ECGs are small rationals.
        from scipy.signal import resample_poly  # slow to import; rarely needed

        up, down = _ratio(spec.fs, ecg.fs)
        signal = resample_poly(np.nan_to_num(signal), up, down, axis=1).astype(
            np.float32
        )
    n = spec.n_samples
    out = np.zeros((len(spec.leads), n), dtype=np.float32)
    for row, lead in enumerate(spec.leads):
        if lead in live:
            trace = np.nan_to_num(signal[index[lead], :n])
            out[row, : trace.shape[0]] = trace
    return ECG(signal=out, fs=spec.fs, lead_names=list(spec.leads))


def lead_problems(ecg: ECG, spec: ECGSpec) -> dict[str, list[str]]:
    """The model's leads that are missing, and those flat or empty (lead off).

    Returns
    -------
    dict
        ``{"missing": [...], "flat": [...]}``, both read as zeros by the model.
    """
    index = {lead: row for row, lead in enumerate(ecg.lead_names)}
    return {
        "missing": [lead for lead in spec.leads if lead not in index],
        "flat": [
            lead
            for lead in spec.leads
            if lead in index and _flat(ecg.signal[index[lead]])
        ],
    }


def _flat(trace: np.ndarray) -> bool:
    finite = trace[np.isfinite(trace)]
    return finite.size == 0 or float(np.ptp(finite)) < FLAT_PTP_MV


def _ratio(target: float, current: float) -> tuple[int, int]:
    from fractions import Fraction

    fraction = Fraction(target / current).limit_denominator(1000)
    return fraction.numerator, fraction.denominator


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
        several files, and whatever `read_wfdb` refuses.
    """
    import tempfile

    if not signal:
        raise InputError(
            source, "ecg_signal", "a non-empty WFDB signal file", "an empty file"
        )
    text = _header_text(header, source, "ecg_header")
    summary = check_header(text, source)
    if len(summary.files) != 1:
        raise InputError(
            source,
            "ecg_header",
            "all signals in one signal file",
            f"{len(summary.files)} files",
        )
    with tempfile.TemporaryDirectory() as folder:
        base = Path(folder)
        (base / f"{summary.record_name}.hea").write_bytes(header)
        (base / summary.files[0]).write_bytes(signal)
        return _read_checked(base / summary.record_name, source, summary)
