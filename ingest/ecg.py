"""Reading 12-lead ECGs (WFDB) and conforming them to the model's leads and `fs`."""

from __future__ import annotations

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
    **{f"V{i}": f"V{i}" for i in range(1, 7)},
}  # fmt: skip

UNIT_TO_MV = {"mv": 1.0, "uv": 1e-3, "µv": 1e-3, "μv": 1e-3, "v": 1e3}


def canonical_lead(name: str) -> str:
    """Return our spelling of a lead name (``aVR`` -> ``AVR``, ``v1`` -> ``V1``)."""
    return LEAD_ALIASES.get(name.strip().upper(), name.strip().upper())


def read_wfdb(record_path: str | Path) -> ECG:
    """Read a WFDB record (``.hea`` + signal file) as an `ECG` in millivolts.

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
    if not path.with_suffix(".hea").is_file():
        raise InputError(name, "header", "an existing WFDB .hea file", "no such file")
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
    if not record.fs or record.fs <= 0:
        raise InputError(
            name, "fs", "a positive sampling frequency in Hz", repr(record.fs)
        )
    leads = [canonical_lead(lead) for lead in record.sig_name]
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
        ``len(spec.leads)`` x ``spec.n_samples`` in mV; a lead the input lacks is
        left as zeros (a missing lead, reported by `missing_leads`).

    Raises
    ------
    InputError
        When none of the model's leads is present, or the signal holds NaN only.
    """
    index = {lead: row for row, lead in enumerate(ecg.lead_names)}
    if not any(lead in index for lead in spec.leads):
        raise InputError(
            source,
            "lead names",
            f"some of {', '.join(spec.leads)}",
            ", ".join(ecg.lead_names),
        )
    signal = ecg.signal
    if abs(ecg.fs - spec.fs) > 1e-6:
        # Resample with a polyphase filter; fs ratios of ECGs are small rationals.
        from scipy.signal import resample_poly  # slow to import; rarely needed

        up, down = _ratio(spec.fs, ecg.fs)
        signal = resample_poly(signal, up, down, axis=1).astype(np.float32)
    n = spec.n_samples
    out = np.zeros((len(spec.leads), n), dtype=np.float32)
    for row, lead in enumerate(spec.leads):
        if lead in index:
            trace = np.nan_to_num(signal[index[lead], :n])
            out[row, : trace.shape[0]] = trace
    return ECG(signal=out, fs=spec.fs, lead_names=list(spec.leads))


def missing_leads(ecg: ECG, spec: ECGSpec) -> list[str]:
    """Return the model's leads that the ECG does not hold."""
    return [lead for lead in spec.leads if lead not in ecg.lead_names]


def _ratio(target: float, current: float) -> tuple[int, int]:
    from fractions import Fraction

    fraction = Fraction(target / current).limit_denominator(1000)
    return fraction.numerator, fraction.denominator


def read_wfdb_upload(header: bytes, signal: bytes, source: str = "upload") -> ECG:
    """Read an uploaded WFDB pair (``.hea`` text and its signal file bytes).

    The signal file is saved under the name the header gives it, in a private
    temporary folder; names with path separators are refused.

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
        Empty files, a header that is not text, unsafe or inconsistent file names,
        and whatever `read_wfdb` refuses.
    """
    import tempfile

    if not header.strip():
        raise InputError(
            source, "ecg_header", "a non-empty WFDB .hea file", "an empty file"
        )
    if not signal:
        raise InputError(
            source, "ecg_signal", "a non-empty WFDB signal file", "an empty file"
        )
    try:
        text = header.decode("ascii")
    except UnicodeDecodeError as error:
        raise InputError(
            source, "ecg_header", "an ASCII WFDB header", "binary data"
        ) from error
    lines = [
        line.split()
        for line in text.splitlines()
        if line.strip() and not line.startswith("#")
    ]
    record_name = lines[0][0].split("/")[0] if lines and lines[0] else ""
    n_signals = int(lines[0][1]) if len(lines[0]) > 1 and lines[0][1].isdigit() else 0
    files = {line[0] for line in lines[1 : 1 + n_signals] if line}
    if not record_name or n_signals == 0 or len(lines) < 1 + n_signals:
        raise InputError(
            source,
            "ecg_header",
            "a record line and one line per signal",
            "a truncated header",
        )
    if len(files) != 1:
        raise InputError(
            source,
            "ecg_header",
            "all signals in one signal file",
            f"{len(files)} files",
        )
    (file_name,) = files
    for name in (record_name, file_name):
        if "/" in name or "\\" in name or name.startswith("."):
            raise InputError(source, "ecg_header", "plain file names", repr(name))
    with tempfile.TemporaryDirectory() as folder:
        base = Path(folder)
        (base / f"{record_name}.hea").write_bytes(header)
        (base / file_name).write_bytes(signal)
        return read_wfdb(base / record_name)
