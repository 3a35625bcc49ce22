"""NIH ChestX-ray14 sample: chest X-rays with the cardiomegaly finding, age and sex."""

from __future__ import annotations

from pathlib import Path

from ingest.config import FeatureSpec, ImagingSpec
from ingest.errors import InputError, QuarantineItem
from ingest.features import FeatureWriter
from ingest.imaging import conform_image, read_image
from ingest.schema import PatientRecord
from ingest.tables import read_table, require_columns

REQUIRED = ["image", "cardiomegaly", "patient_id", "follow_up", "age", "sex", "view"]
SEX = {"M": 1.0, "F": 0.0}


def read_nih_cxr(
    folder: Path,
    site: str,
    spec: ImagingSpec,
    registry: dict[str, FeatureSpec],
    quarantine: list[QuarantineItem],
) -> list[PatientRecord]:
    """Read ``labels.csv`` and ``images/*.png`` into one record per image.

    Each image is one visit of its patient (``follow_up``), labelled for the
    auxiliary target ``cardiomegaly`` (NIH labels mined from reports by NLP,
    about 90% precise); age and sex fill the tabular features. Images are
    conformed to the model's size when read.

    Parameters
    ----------
    folder : Path
        The ``cxr_nih_cardiomegaly_small`` folder.
    site : str
        Site name.
    spec : ImagingSpec
        The model's image size.
    registry : dict
        Feature registry.
    quarantine : list
        Receives unreadable images and implausible values with reasons.

    Returns
    -------
    list of PatientRecord
    """
    table = read_table(folder / "labels.csv")
    require_columns(table.columns, REQUIRED, "labels.csv")
    writer = FeatureWriter(registry, "nih_cxr", quarantine)
    records = []
    for row in table.itertuples(index=False):
        record_id = f"nih_cxr:{row.image}"

        # Step 1: the image, read as any PNG is, then conformed.
        try:
            image = read_image(folder / "images" / str(row.image))
            image = conform_image(image, spec, str(row.image))
        except InputError as error:
            quarantine.append(
                QuarantineItem("nih_cxr", record_id, error.field, str(error))
            )
            continue
        image.view = str(row.view) if isinstance(row.view, str) else None

        # Step 2: age and sex; the label.
        features: dict[str, float] = {}
        writer.put(features, record_id, "age", row.age)
        writer.put(features, record_id, "sex_male", SEX.get(str(row.sex)))
        if str(row.cardiomegaly) not in {"0", "1"}:
            quarantine.append(
                QuarantineItem(
                    "nih_cxr",
                    record_id,
                    "cardiomegaly",
                    f"expected 0 or 1, found {str(row.cardiomegaly)[:20]!r}",
                )
            )
            continue
        records.append(
            PatientRecord(
                record_id=record_id,
                patient_id=f"nih:{int(row.patient_id)}",
                site=site,
                source="nih_cxr",
                features=features,
                images=[image],
                labels={"cardiomegaly": int(row.cardiomegaly)},
            )
        )
    return records
