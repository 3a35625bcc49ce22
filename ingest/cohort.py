"""The cohort store: records per site as Parquet plus ECG arrays, and a manifest."""

from __future__ import annotations

import hashlib
import json
import logging
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
import pandas as pd

from ingest.config import DataConfig
from ingest.errors import CardioriskError, QuarantineItem
from ingest.framingham import read_framingham
from ingest.nih_cxr import read_nih_cxr
from ingest.ptbxl import read_ptbxl
from ingest.schema import ECG, TARGETS, Image, PatientRecord, TimelineStep
from ingest.splits import assign_split
from ingest.stroke_table import read_stroke_table
from ingest.uci import read_uci
from ingest.vitaldb import read_vitaldb

logger = logging.getLogger(__name__)

MANIFEST = "manifest.json"
QUARANTINE = "quarantine.jsonl"
MANIFEST_KEYS = ("sources", "sites", "feature_names", "ecg_leads", "image_size")


def sha256_of(path: Path) -> str:
    """Return the SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_sources(
    config: DataConfig,
    data_dir: Path,
    on_source: Callable[[str], None] | None = None,
    ptbxl_limit: int | None = None,
) -> tuple[list[PatientRecord], list[QuarantineItem], dict[str, str]]:
    """Run every enabled reader over the real data.

    Parameters
    ----------
    config : DataConfig
        Sources, splits and the feature registry.
    data_dir : Path
        The real-data directory.
    on_source : callable, optional
        Called with each source's name once it has been read (progress).
    ptbxl_limit : int, optional
        Read only the first PTB-XL rows (tests).

    Returns
    -------
    records : list of PatientRecord
    quarantine : list of QuarantineItem
    hashes : dict
        Source file (relative to ``data_dir``) -> SHA-256.
    """
    sources, registry = config.sources, config.features
    records: list[PatientRecord] = []
    quarantine: list[QuarantineItem] = []
    hashes: dict[str, str] = {}

    def use(relative: str) -> Path:
        path = data_dir / relative
        if not path.is_file():
            raise CardioriskError(
                f"data file {path} is missing; set CARDIORISK_DATA to the folder "
                "holding the real data sets (see README, 'Data')"
            )
        hashes[relative] = sha256_of(path)
        return path

    if sources.uci_heart_disease.enabled:
        for name, site in sources.uci_heart_disease.sites.items():
            path = use(f"uci_heart_disease/{name}")
            records += read_uci(path, site, registry, quarantine)
        _done(on_source, "uci_heart_disease")
    if sources.framingham.enabled:
        fram = sources.framingham
        records += read_framingham(
            use(fram.file), fram.site, fram.stroke_horizon_years, registry, quarantine
        )
        _done(on_source, "framingham")
    if sources.stroke_table.enabled:
        table = sources.stroke_table
        records += read_stroke_table(use(table.file), table.site, registry, quarantine)
        _done(on_source, "stroke_table")
    if sources.vitaldb.enabled:
        vital = sources.vitaldb
        records += read_vitaldb(use(vital.file), vital, registry, quarantine)
        _done(on_source, "vitaldb")
    if sources.ptbxl.enabled:
        root = data_dir / sources.ptbxl.dir
        use(f"{sources.ptbxl.dir}/ptbxl_database.csv")
        use(f"{sources.ptbxl.dir}/scp_statements.csv")
        records += read_ptbxl(
            root, sources.ptbxl, config.ecg, registry, quarantine, limit=ptbxl_limit
        )
        _done(on_source, "ptbxl")
    if sources.nih_cxr.enabled:
        cxr = sources.nih_cxr
        folder = data_dir / cxr.dir
        use(f"{cxr.dir}/labels.csv")
        records += read_nih_cxr(folder, cxr.site, config.imaging, registry, quarantine)
        _done(on_source, "nih_cxr")

    # Patient-wise splits for every source without its own folds.
    for record in records:
        if record.source != "ptbxl":
            record.split = assign_split(record.patient_id, config.seed, config.split)
    return records, quarantine, hashes


def _done(callback: Callable[[str], None] | None, name: str) -> None:
    logger.info("read source %s", name)
    if callback is not None:
        callback(name)


def write_cohort(
    records: Iterable[PatientRecord],
    quarantine: list[QuarantineItem],
    hashes: dict[str, str],
    out_dir: Path,
    config: DataConfig,
) -> dict:
    """Write records per site (Parquet + ECG and image arrays), quarantine, manifest.

    The manifest names the feature columns, the ECG leads and the image size
    (ECGs and images are stored conformed to ``config.ecg`` and
    ``config.imaging``), so the store reads back without the config.

    Returns
    -------
    dict
        The manifest written to ``manifest.json``.
    """
    feature_names = config.feature_names
    out_dir.mkdir(parents=True, exist_ok=True)
    by_site: dict[str, list[PatientRecord]] = {}
    for record in records:
        by_site.setdefault(record.site, []).append(record)
    sites = {}
    for site, site_records in sorted(by_site.items()):
        site_dir = out_dir / site
        site_dir.mkdir(exist_ok=True)
        table, ecgs, images = _to_table(site_records, feature_names)
        table.to_parquet(site_dir / "records.parquet", index=False)
        if ecgs:
            np.save(site_dir / "ecg.npy", np.stack(ecgs).astype(np.float32))
        if images:
            np.save(site_dir / "images.npy", np.stack(images).astype(np.float32))
        sites[site] = _summary(site_records)
    with (out_dir / QUARANTINE).open("w", encoding="utf-8") as handle:
        for item in quarantine:
            handle.write(json.dumps(item.to_dict()) + "\n")
    manifest = {
        "sources": hashes,
        "sites": sites,
        "quarantined": dict(Counter(item.source for item in quarantine)),
        "feature_names": feature_names,
        "ecg_leads": list(config.ecg.leads),
        "image_size": config.imaging.size,
    }
    (out_dir / MANIFEST).write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    return manifest


def _summary(records: list[PatientRecord]) -> dict:
    return {
        "records": len(records),
        "patients": len({record.patient_id for record in records}),
        "splits": dict(Counter(record.split for record in records)),
        "modalities": dict(Counter(m for record in records for m in record.modalities)),
        "labels": {
            head: {
                "n": sum(head in record.labels for record in records),
                "positive": sum(record.labels.get(head, 0) for record in records),
            }
            for head in TARGETS
            if any(head in record.labels for record in records)
        },
    }


def _to_table(
    records: list[PatientRecord], feature_names: list[str]
) -> tuple[pd.DataFrame, list[np.ndarray], list[np.ndarray]]:
    rows, ecgs, images = [], [], []
    for record in records:
        row = {
            "record_id": record.record_id,
            "patient_id": record.patient_id,
            "site": record.site,
            "source": record.source,
            "split": record.split,
            "ecg_row": -1,
            "ecg_fs": np.nan,
            "image_row": -1,
            "image_modality": "",
            "image_view": "",
            "timeline": json.dumps(
                [[step.years_before, step.values] for step in record.timeline]
            ),
        }
        for name in feature_names:
            row[name] = record.features.get(name, np.nan)
        for head in TARGETS:
            row[f"label_{head}"] = record.labels.get(head, np.nan)
        if record.ecg is not None:
            row["ecg_row"] = len(ecgs)
            row["ecg_fs"] = record.ecg.fs
            ecgs.append(record.ecg.signal)
        if record.images:
            image = record.images[0]  # the model reads the first image
            row["image_row"] = len(images)
            row["image_modality"] = image.modality
            row["image_view"] = image.view or ""
            images.append(image.pixels)
        rows.append(row)
    return pd.DataFrame(rows), ecgs, images


def load_cohort(
    cohort_dir: Path,
    sites: Iterable[str] | None = None,
    splits: Iterable[str] | None = None,
) -> list[PatientRecord]:
    """Load records back from the cohort store.

    Parameters
    ----------
    cohort_dir : Path
        The store written by `write_cohort`.
    sites : iterable of str, optional
        Only these sites (default: all in the manifest).
    splits : iterable of str, optional
        Only these splits (default: all).

    Returns
    -------
    list of PatientRecord
    """
    manifest = read_manifest(cohort_dir)
    feature_names = manifest["feature_names"]
    leads = manifest["ecg_leads"]
    wanted_splits = set(splits) if splits is not None else None
    records = []
    for site in sites if sites is not None else manifest["sites"]:
        site_dir = cohort_dir / site
        if not (site_dir / "records.parquet").is_file():
            raise CardioriskError(
                f"site '{site}' is not in the cohort store {cohort_dir}"
            )
        table = pd.read_parquet(site_dir / "records.parquet")
        ecg_path = site_dir / "ecg.npy"
        ecgs = np.load(ecg_path, mmap_mode="r") if ecg_path.is_file() else None
        image_path = site_dir / "images.npy"
        stored = np.load(image_path, mmap_mode="r") if image_path.is_file() else None
        values = table[feature_names].to_numpy(dtype=float)
        for index, row in enumerate(table.itertuples(index=False)):
            if wanted_splits is not None and row.split not in wanted_splits:
                continue
            features = {
                name: float(value)
                for name, value in zip(feature_names, values[index], strict=True)
                if not np.isnan(value)
            }
            labels = {
                head: int(getattr(row, f"label_{head}"))
                for head in TARGETS
                if not pd.isna(getattr(row, f"label_{head}"))
            }
            ecg = None
            if row.ecg_row >= 0 and ecgs is not None:
                signal = np.array(ecgs[row.ecg_row])
                ecg = ECG(signal=signal, fs=float(row.ecg_fs), lead_names=list(leads))
            timeline = [
                TimelineStep(years_before=years, values=step)
                for years, step in json.loads(row.timeline)
            ]
            images = []
            if row.image_row >= 0 and stored is not None:
                images.append(
                    Image(
                        pixels=np.array(stored[row.image_row]),
                        modality=row.image_modality,
                        view=row.image_view or None,
                    )
                )
            records.append(
                PatientRecord(
                    record_id=row.record_id,
                    patient_id=row.patient_id,
                    site=row.site,
                    source=row.source,
                    features=features,
                    ecg=ecg,
                    timeline=timeline,
                    images=images,
                    labels=labels,
                    split=row.split,
                )
            )
    return records


def read_manifest(cohort_dir: Path) -> dict:
    """Read the cohort store's manifest, with a clear error when it is not built."""
    path = cohort_dir / MANIFEST
    if not path.is_file():
        raise CardioriskError(
            f"no cohort store at {cohort_dir}; run `cardiorisk prepare` first"
        )
    manifest = json.loads(path.read_text(encoding="utf-8"))
    missing = [key for key in MANIFEST_KEYS if key not in manifest]
    if missing:
        raise CardioriskError(
            f"the cohort store at {cohort_dir} was written by an older cardiorisk "
            f"(its manifest lacks {missing}); run `cardiorisk prepare --force`"
        )
    return manifest
