"""Read any mix of clinical files: each goes to its reader, all land in one result.

FHIR (Bundle ``.json``, bulk ``.ndjson``), HL7 v2 (``.hl7``), lab tables and ECG
tables (``.csv``), WFDB records (``.hea`` with its signal files), DICOM (``.dcm``:
a 12-lead ECG waveform or an image), PNG images, and a PTB-XL folder (read whole by
its own reader, with labels and sites). A file that cannot be read is
quarantined as a whole, with the reader's error; the other files still count.
ECGs and images carry no link to a patient of another file, so each becomes a
record of its own.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Iterable
from pathlib import Path

import pydicom

from ingest.codes import CodeTables
from ingest.config import DataConfig
from ingest.ecg import canonical_lead, conform_ecg, read_ecg
from ingest.ecg_measurements import measure_window
from ingest.errors import CardioriskError, InputError, QuarantineItem
from ingest.fhir import read_fhir
from ingest.hl7v2 import read_hl7v2
from ingest.imaging import read_image
from ingest.lab_table import DEFAULT_MISSING_CODES, read_lab_table
from ingest.observations import ReadResult, pseudonym
from ingest.ptbxl import read_ptbxl
from ingest.schema import ECG, PatientRecord

logger = logging.getLogger(__name__)

WFDB_COMPANIONS = {".dat", ".atr", ".xyz", ".qrs", ".sqrs", ".ecg", ".mat", ".edf"}
NOT_DATA = {".md", ".txt", ".pdf", ".gz", ".zip", ".py", ".yaml", ".yml"}
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg"}
MIN_ECG_LEADS_IN_CSV = 2  # a CSV naming this many leads is an ECG, else a lab table
WHOLE_FILE = "(whole file)"
PTBXL_FILES = ("ptbxl_database.csv", "scp_statements.csv")  # a PTB-XL folder


def read_paths(
    paths: Iterable[Path],
    config: DataConfig,
    codes: CodeTables,
    *,
    ecg_fs: float | None = None,
    site: str | None = None,
    missing_codes: tuple[str, ...] | None = None,
) -> tuple[ReadResult, list[dict]]:
    """Read files and folders of any supported kind.

    Parameters
    ----------
    paths : iterable of Path
        Files or folders (read recursively).
    config : DataConfig
        Feature registry, timeline features and the model's ECG spec.
    codes : CodeTables
        LOINC, SNOMED CT, ICD-10 and medication tables.
    ecg_fs : float, optional
        Sampling frequency (Hz) of ECG CSV files that do not state it.
    site : str, optional
        The data holder; by default each reader's name (``fhir``, ``hl7v2``, ...).
    missing_codes : tuple of str, optional
        Cells of lab tables that mean "not measured" at this source (default
        `ingest.lab_table.DEFAULT_MISSING_CODES`).

    Returns
    -------
    result : ReadResult
        Records, quarantined items and ignored input of all files.
    files : list of dict
        One entry per input: ``path``, ``kind``, ``records``, ``quarantined``,
        ``detail`` (e.g. leads and ``fs`` of an ECG).
    """
    result, files = ReadResult(), []
    common = {
        "registry": config.registry,
        "codes": codes,
        "timeline_features": config.timeline_features,
        "max_timeline_steps": config.max_timeline_steps,
    }

    # Sort the inputs by kind; NDJSON files of one folder are one bulk export.
    ndjson_by_folder: dict[Path, list[Path]] = defaultdict(list)
    singles: list[tuple[str, Path | list[Path]]] = []
    for path in _expand(paths):
        kind = _kind(path)
        if kind == "ptbxl":
            singles.append((kind, path))
        elif kind == "ndjson":
            ndjson_by_folder[path.parent].append(path)
        elif kind in {"companion", "not data"}:
            if kind == "not data":
                result.ignore(f"not a clinical data file: {path.name}")
        elif kind == "unknown":
            result.ignore(f"file type not read ({path.suffix or 'no suffix'})")
        else:
            singles.append((kind, path))

    # Each group goes to its reader; a file that fails is quarantined whole.
    readers = {
        "fhir": lambda p: read_fhir(_listed(p), site=site or "fhir", **common),
        "hl7v2": lambda p: read_hl7v2(p, site=site or "hl7v2", **common),
        "lab-table": lambda p: read_lab_table(
            p,
            site=site or "lab",
            missing_codes=missing_codes or DEFAULT_MISSING_CODES,
            **common,
        ),
        "image": lambda p: _image_record(p, site or "imaging"),
        "ecg": lambda p: _ecg_record(p, config, ecg_fs, site or "ecg"),
        "ptbxl": lambda p: _ptbxl_records(p, config),
    }
    groups = [("fhir", sorted(g)) for _, g in sorted(ndjson_by_folder.items())]
    groups += singles
    for kind, target in groups:
        if kind == "dicom":
            probe = _guard(target, lambda p: ReadResult(notes=[_dicom_kind(p)]))
            kind = probe.notes[0] if probe.notes else "image"
        read = _guard(target, readers[kind])
        shown = target[0].parent if isinstance(target, list) else target
        files.append(_entry(shown, kind, read))
        result.extend(read)
    logger.info(
        "ingest: %d files, %d records, %d quarantined",
        len(files),
        len(result.records),
        len(result.quarantine),
    )
    return result, files


def _expand(paths: Iterable[Path]) -> list[Path]:
    found = []
    for path in paths:
        if path.is_dir() and _is_ptbxl(path):
            found.append(path)  # read whole by its own reader, labels and sites
        elif path.is_dir():
            inner = sorted(p for p in path.rglob("*") if p.is_dir() and _is_ptbxl(p))
            found += inner
            found += sorted(
                p
                for p in path.rglob("*")
                if p.is_file() and not any(folder in p.parents for folder in inner)
            )
        elif path.is_file():
            found.append(path)
        else:
            raise InputError(str(path), "path", "an existing file or folder", "nothing")
    return found


def _is_ptbxl(folder: Path) -> bool:
    return all((folder / name).is_file() for name in PTBXL_FILES)


def _kind(path: Path) -> str:
    if path.is_dir():
        return "ptbxl"
    suffix = path.suffix.lower()
    if suffix == ".ndjson":
        return "ndjson"
    if suffix == ".json":
        return "fhir"
    if suffix == ".hl7":
        return "hl7v2"
    if suffix == ".hea":
        return "ecg"
    if suffix == ".dcm":
        return "dicom"
    if suffix in IMAGE_SUFFIXES:
        return "image"
    if suffix == ".csv":
        return "ecg" if _names_leads(path) else "lab-table"
    if suffix in WFDB_COMPANIONS:
        return "companion" if path.with_suffix(".hea").is_file() else "unknown"
    if suffix in NOT_DATA or path.name.upper().startswith(("LICENSE", "PROVENANCE")):
        return "not data"
    return "unknown"


def _dicom_kind(path: Path) -> str:
    """Tell a DICOM waveform (``ecg``) from anything else (``image``).

    The image reader says what is wrong with a file that is neither.
    """
    try:
        dataset = pydicom.dcmread(path, stop_before_pixels=True, force=True)
    except (OSError, pydicom.errors.InvalidDicomError):
        return "image"
    return "ecg" if "WaveformSequence" in dataset else "image"


def _names_leads(path: Path) -> bool:
    with path.open(encoding="utf-8-sig", errors="replace") as handle:
        header = handle.readline()
    cells = [cell.strip().strip('"') for cell in header.replace(";", ",").split(",")]
    leads = {canonical_lead(cell).upper() for cell in cells if cell}
    known = {"I", "II", "III", "AVR", "AVL", "AVF", "V1", "V2", "V3", "V4", "V5", "V6"}
    return len(leads & known) >= MIN_ECG_LEADS_IN_CSV


def _listed(target: Path | list[Path]) -> list[Path]:
    return target if isinstance(target, list) else [target]


def _guard(
    target: Path | list[Path], reader: Callable[[Path | list[Path]], ReadResult]
) -> ReadResult:
    name = str(target[0].parent if isinstance(target, list) else target)
    try:
        return reader(target)
    except CardioriskError as error:
        field = error.field if isinstance(error, InputError) else "file"
        item = QuarantineItem(Path(name).name, WHOLE_FILE, field, str(error))
        return ReadResult(quarantine=[item])
    except Exception as error:  # noqa: BLE001 - one bad file never stops the rest
        # A reader let a library error through: the file is still set aside and
        # named, with the error's type only (its text may quote the file's
        # content); the maintainers see it in the log.
        logger.warning("reader error %s on one input", type(error).__name__)
        reason = f"unreadable ({type(error).__name__})"
        item = QuarantineItem(Path(name).name, WHOLE_FILE, "file", reason)
        return ReadResult(quarantine=[item])


def _entry(path: Path, kind: str, read: ReadResult) -> dict:
    detail = "; ".join(read.notes)
    if not read.records:
        # Say why a file gave nothing: its first quarantine or ignore reasons.
        reasons = [item.reason for item in read.quarantine[:1]]
        reasons += [f"{reason} (x{n})" for reason, n in list(read.ignored.items())[:2]]
        detail = "; ".join(filter(None, [detail, *reasons]))
    return {
        "path": str(path),
        "kind": kind,
        "records": len(read.records),
        "quarantined": len(read.quarantine),
        "ignored": sum(read.ignored.values()),
        "detail": detail,
    }


def _ecg_record(
    path: Path, config: DataConfig, fs: float | None, site: str
) -> ReadResult:
    ecg = read_ecg(path, fs=fs)
    note = (
        f"{len(ecg.lead_names)} leads at {ecg.fs:g} Hz, {ecg.duration_s:.1f} s"
        f" ({', '.join(ecg.lead_names)})"
    )
    notes = [note, _measurement_note(ecg, config.ecg.duration_s)]
    standard = set(config.ecg.leads)
    if not standard & set(ecg.lead_names):
        # Read and measured, but the model cannot tell which lead is which.
        result = ReadResult(notes=notes)
        result.ignore(
            f"ECG {path.name}: no lead with a standard name "
            f"({', '.join(ecg.lead_names)[:80]}); not usable by the model until its "
            "leads are named (I, II, ..., V6)"
        )
        return result
    key = pseudonym(path.stem, "ecg")
    conformed = conform_ecg(ecg, config.ecg, path.name)
    record = PatientRecord(
        record_id=f"ecg:{key}",
        patient_id=key,
        site=site,
        source="ecg",
        ecg=conformed,
    )
    return ReadResult(records=[record], notes=notes)


def _measurement_note(ecg: ECG, duration_s: float) -> str:
    """Heart rate and intervals of the stretch the model reads, for the report."""
    found = measure_window(ecg, duration_s)
    if found is None:
        return "no beats found for measurements"
    parts = [f"HR {found.heart_rate_bpm:.0f}/min"]
    for name, value in (
        ("PR", found.pr_ms),
        ("QRS", found.qrs_ms),
        ("QTc", found.qtc_ms),
    ):
        parts.append(f"{name} {value:.0f} ms" if value is not None else f"{name} -")
    return ", ".join(parts) + f" (at {ecg.fs:g} Hz)"


def _ptbxl_records(folder: Path, config: DataConfig) -> ReadResult:
    quarantine: list[QuarantineItem] = []
    records = read_ptbxl(
        folder, config.sources.ptbxl, config.ecg, config.registry, quarantine
    )
    sites = len({record.site for record in records})
    labelled = sum("acute_mi" in record.labels for record in records)
    note = f"PTB-XL: {len(records)} records from {sites} sites, {labelled} labelled"
    return ReadResult(records=records, quarantine=quarantine, notes=[note])


def _image_record(path: Path, site: str) -> ReadResult:
    notes: list[str] = []
    image = read_image(path, notes)
    key = pseudonym(path.stem, "imaging")
    record = PatientRecord(
        record_id=f"imaging:{key}",
        patient_id=key,
        site=site,
        source="imaging",
        images=[image],
    )
    rows, columns = image.pixels.shape
    notes.insert(0, f"{image.modality} image {rows} x {columns}")
    return ReadResult(records=[record], notes=notes)
