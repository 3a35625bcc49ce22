"""The data-quality report of an ingest: read, missing, and set aside."""

from __future__ import annotations

from collections import Counter, defaultdict

from ingest.config import FeatureSpec
from ingest.observations import ReadResult

MAX_QUARANTINE_LISTED = 500  # items written in full; the counts always cover all


def quality_report(
    result: ReadResult,
    registry: dict[str, FeatureSpec],
    files: list[dict] | None = None,
) -> dict:
    """Summarise an ingest as plain data (JSON-ready).

    Parameters
    ----------
    result : ReadResult
        Everything the readers produced.
    registry : dict
        The feature registry, for missingness.
    files : list of dict, optional
        One entry per input file (``path``, ``kind``, ``records``, ``quarantined``,
        ``detail``), as the dispatcher collects them.

    Returns
    -------
    dict
        ``records``, ``sites`` (records and modalities per site), ``missingness``
        (per feature: records holding it and the fraction missing among records
        with tabular data), ``quarantine`` (counts by source and field, and the
        items with reasons), ``ignored`` (counts by reason) and ``files``.
    """
    records = result.records

    # Records and modalities per site.
    sites: dict[str, dict] = defaultdict(
        lambda: {"records": 0, "modalities": Counter()}
    )
    for record in records:
        entry = sites[record.site]
        entry["records"] += 1
        entry["modalities"].update(record.modalities)

    # Missingness among records that hold any tabular value.
    tabular = [record for record in records if record.features]
    missingness = {}
    for name in registry:
        present = sum(name in record.features for record in tabular)
        if present:
            missingness[name] = {
                "present": present,
                "missing_fraction": round(1 - present / len(tabular), 3),
            }
    never_seen = [name for name in registry if name not in missingness]

    # Quarantine: counts, then the items themselves.
    by_field = Counter((item.source, item.field) for item in result.quarantine)
    example = {}
    for item in result.quarantine:
        example.setdefault((item.source, item.field), item.reason)
    return {
        "records": len(records),
        "sites": {
            site: {"records": entry["records"], "modalities": dict(entry["modalities"])}
            for site, entry in sorted(sites.items())
        },
        "missingness": missingness,
        "features_never_seen": never_seen,
        "quarantine": {
            "total": len(result.quarantine),
            "by_source_and_field": [
                {
                    "source": source,
                    "field": field,
                    "count": count,
                    "example": example[(source, field)],
                }
                for (source, field), count in by_field.most_common()
            ],
            "items": [
                item.to_dict() for item in result.quarantine[:MAX_QUARANTINE_LISTED]
            ],
        },
        "ignored": dict(sorted(result.ignored.items(), key=lambda kv: -kv[1])),
        "files": files or [],
    }


def report_markdown(report: dict) -> str:
    """Render a quality report as Markdown tables a person can read."""
    lines = [
        "# Ingest data-quality report",
        "",
        f"Usable records: **{report['records']}**; quarantined items: "
        f"**{report['quarantine']['total']}**; inputs read but not used: "
        f"**{sum(report['ignored'].values())}**.",
        "",
        "## Files",
        "",
        "| file | kind | records | quarantined | not used | detail |",
        "|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {f['path']} | {f['kind']} | {f['records']} | {f['quarantined']} "
        f"| {f.get('ignored', 0)} | {_cell(f.get('detail', ''))} |"
        for f in report["files"]
    ]
    lines += ["", "## Records per site and modality", ""]
    lines += ["| site | records | modalities |", "|---|---|---|"]
    for site, entry in report["sites"].items():
        modalities = ", ".join(f"{m} {n}" for m, n in entry["modalities"].items())
        lines.append(f"| {site} | {entry['records']} | {modalities or '-'} |")
    if any("imaging" in e["modalities"] for e in report["sites"].values()):
        lines += [
            "",
            "Images are read, checked and de-identified. The imaging encoder has "
            "learned only from the 99-image NIH chest X-ray sample (auxiliary "
            "cardiomegaly finding); no risk head has learned from images yet.",
        ]
    lines += ["", "## Missingness (records with tabular data)", ""]
    lines += ["| feature | present | missing |", "|---|---|---|"]
    for name, entry in report["missingness"].items():
        missing = f"{100 * entry['missing_fraction']:.0f}%"
        lines.append(f"| {name} | {entry['present']} | {missing} |")
    if report["features_never_seen"]:
        lines += ["", "Never seen: " + ", ".join(report["features_never_seen"]) + "."]
    lines += ["", "## Quarantined, with reasons", ""]
    lines += ["| source | record | field | reason |", "|---|---|---|---|"]
    for item in report["quarantine"]["items"]:
        lines.append(
            f"| {item['source']} | {item['record_id']} | {item['field']} "
            f"| {_cell(item['reason'])} |"
        )
    if report["ignored"]:
        lines += ["", "## Read but not used", "", "| reason | count |", "|---|---|"]
        lines += [f"| {_cell(r)} | {n} |" for r, n in report["ignored"].items()]
    return "\n".join(lines) + "\n"


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")
