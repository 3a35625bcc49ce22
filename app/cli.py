"""The ``cardiorisk`` command line: prepare, ingest, train, evaluate, predict, serve."""

from __future__ import annotations

import functools
import json
import logging
import os
import shlex
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from app.i18n import ecg_measurement_text, format_value, translate
from app.schemas import PredictionResult
from ingest.config import PROJECT_ROOT, data_dir, load_data_config
from ingest.errors import CardioriskError

if TYPE_CHECKING:
    from app.service import PatientInput, PredictionService
    from federated.config import FederatedConfig
    from ingest.schema import ECG, Image

cli = typer.Typer(
    help="cardiorisk: multimodal cardiovascular risk, trained federatedly.",
    no_args_is_help=True,
    add_completion=False,
    # Tracebacks with local variables would print patient values.
    pretty_exceptions_enable=False,
)
console = Console()
T = TypeVar("T")
errors = Console(stderr=True)
REPORTS_DIR = PROJECT_ROOT / "reports"


def _progress() -> Progress:
    return Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    )


def _step(progress: Progress, task: TaskID, text: str) -> None:
    """Show a pipeline step in the progress line and log it (for non-terminals)."""
    progress.update(task, description=text)
    logging.getLogger("cardiorisk").info("%s", text)


def _fail(error: Exception) -> None:
    # soft_wrap: one line however narrow the terminal, so it can be grepped.
    errors.print(f"[bold red]error:[/] {error}", soft_wrap=True)
    raise typer.Exit(code=2)


@cli.command()
def prepare(
    force: Annotated[
        bool, typer.Option(help="Rebuild even if the store exists.")
    ] = False,
) -> None:
    """Build the cohort store from the real data (CARDIORISK_DATA)."""
    from ingest.cohort import MANIFEST, read_sources, write_cohort

    config = load_data_config()
    out = config.cohort_path()
    if (out / MANIFEST).is_file() and not force:
        console.print(f"cohort store already at {out} (use --force to rebuild)")
        return
    sources = ["uci_heart_disease", "framingham", "stroke_table", "vitaldb", "ptbxl"]
    try:
        with _progress() as progress:
            task = progress.add_task(
                f"reading real data from {data_dir()}", total=len(sources)
            )
            records, quarantine, hashes = read_sources(
                config, data_dir(), on_source=lambda name: progress.advance(task)
            )
            manifest = write_cohort(records, quarantine, hashes, out, config)
    except CardioriskError as error:
        _fail(error)
    except OSError as error:
        _fail(CardioriskError(f"cannot write the cohort store at {out}: {error}"))
    table = Table(title=f"cohort store {out}")
    for column in (
        "site",
        "records",
        "patients",
        "train/val/test",
        "labels (positive)",
    ):
        table.add_column(column)
    for site, summary in manifest["sites"].items():
        splits = summary["splits"]
        labels = ", ".join(
            f"{head} {v['n']} ({v['positive']})"
            for head, v in summary["labels"].items()
        )
        table.add_row(
            site,
            str(summary["records"]),
            str(summary["patients"]),
            "/".join(str(splits.get(s, 0)) for s in ("train", "validation", "test")),
            labels,
        )
    console.print(table)
    console.print(
        f"quarantined items (with reasons in quarantine.jsonl): {len(quarantine)}"
    )


@cli.command()
def ingest(
    paths: Annotated[
        list[Path],
        typer.Argument(
            help="Files or folders: FHIR (.json/.ndjson), HL7 v2 (.hl7), lab or ECG "
            "tables (.csv), WFDB (.hea), DICOM (.dcm), PNG."
        ),
    ],
    out: Annotated[
        Path, typer.Option(help="Folder for the quality report (JSON and Markdown).")
    ] = PROJECT_ROOT / "var" / "ingest",
    ecg_fs: Annotated[
        float | None,
        typer.Option(help="Sampling frequency (Hz) of ECG CSV files without one."),
    ] = None,
    site: Annotated[
        str | None, typer.Option(help="Data holder (default: one per reader).")
    ] = None,
    missing_code: Annotated[
        list[str] | None,
        typer.Option(
            help="A lab-table cell meaning 'not measured' at this source; repeat "
            "for several (default: ? -9 NA N/A and empty cells)."
        ),
    ] = None,
) -> None:
    """Read any mix of clinical files and write a data-quality report.

    Exits with status 1 when nothing usable was read.
    """
    from ingest.codes import load_code_tables
    from ingest.dispatch import read_paths
    from ingest.quality import quality_report, report_markdown

    try:
        config = load_data_config()
        codes = load_code_tables()
        codes.check_features(config.registry)
        with _progress() as progress:
            task = progress.add_task("reading files", total=None)
            result, files = read_paths(
                paths,
                config,
                codes,
                ecg_fs=ecg_fs,
                site=site,
                missing_codes=tuple(missing_code) if missing_code else None,
            )
            _step(progress, task, f"read {len(files)} inputs")
    except (CardioriskError, ValueError) as error:
        _fail(error)
    report = quality_report(result, config.registry, files)
    out.mkdir(parents=True, exist_ok=True)
    (out / "quality.json").write_text(json.dumps(report, indent=2), encoding="utf-8")
    (out / "quality.md").write_text(report_markdown(report), encoding="utf-8")
    _print_ingest(report)
    console.print(f"report: {out / 'quality.md'} and {out / 'quality.json'}")
    if report["records"] == 0:
        errors.print("[bold red]nothing usable was read[/]")
        raise typer.Exit(code=1)


def _print_ingest(report: dict) -> None:
    """Print the files, sites and quarantine of an ingest report."""
    files = Table(title="Files")
    for column in ("file", "kind", "records", "quarantined", "not used", "detail"):
        files.add_column(column)
    for entry in report["files"]:
        files.add_row(
            Path(entry["path"]).name,
            entry["kind"],
            str(entry["records"]),
            str(entry["quarantined"]),
            str(entry["ignored"]),
            entry["detail"][:90],
        )
    console.print(files)
    sites = Table(title="Records per site and modality")
    for column in ("site", "records", "modalities"):
        sites.add_column(column)
    for name, entry in report["sites"].items():
        shares = ", ".join(f"{m} {n}" for m, n in entry["modalities"].items())
        sites.add_row(name, str(entry["records"]), shares)
    console.print(sites)
    quarantine = report["quarantine"]
    if quarantine["total"]:
        table = Table(title=f"Quarantined: {quarantine['total']}")
        for column in ("source", "field", "count", "first reason"):
            table.add_column(column)
        for group in quarantine["by_source_and_field"][:20]:
            table.add_row(
                group["source"], group["field"], str(group["count"]), group["example"]
            )
        console.print(table)
    ignored = sum(report["ignored"].values())
    console.print(
        f"{report['records']} usable records; {ignored} inputs read but not used "
        "(reasons in the report)"
    )


def _run_training(
    rounds: int | None,
    sites: str | None,
    skip: str | None,
    centralised: bool,
    verbose: bool,
    *,
    full: bool,
    strategy: str | None = None,
    dp: bool = False,
    secure_aggregation: bool = False,
    resume: bool = False,
    from_current: bool = False,
) -> str:
    """Shared by ``train`` and ``evaluate``: configure, train, register."""
    from app.pipeline import train_and_evaluate
    from app.settings import load_settings
    from federated.config import load_federated_config
    from fusion.config import load_model_config, load_training_config

    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    if not verbose:
        for name in ("flwr", "ray", "lightning", "alembic"):
            logging.getLogger(name).setLevel(logging.WARNING)
    command = "cardiorisk " + " ".join(sys.argv[1:])  # as typed, for the report
    try:
        data = load_data_config()
        federated = load_federated_config()
        overrides = {"num_rounds": rounds, "strategy": strategy}
        if dp:
            overrides["privacy"] = federated.privacy.model_dump() | {"enabled": True}
        if secure_aggregation:
            overrides["secure_aggregation"] = (
                federated.secure_aggregation.model_dump() | {"enabled": True}
            )
        federated = _overridden(federated, overrides)
        training = load_training_config()
        if skip:
            training = training.without(*[s.strip() for s in skip.split(",") if s])
        with _progress() as progress:
            task = progress.add_task("starting", total=None)
            return train_and_evaluate(
                data,
                load_model_config(),
                training,
                federated,
                data.cohort_path(),
                load_settings().models_path(),
                REPORTS_DIR,
                sites=sites.split(",") if sites else None,
                centralised=centralised,
                full=full,
                command=command,
                on_step=lambda text: _step(progress, task, text),
                checkpoint_dir=PROJECT_ROOT / "var" / "checkpoints",
                resume=resume,
                from_current=from_current,
            )
    except (CardioriskError, ValueError) as error:
        _fail(error)
        raise AssertionError("unreachable") from error


OPTION_OF = {"num_rounds": "--rounds", "strategy": "--strategy"}


def _overridden(federated: FederatedConfig, overrides: dict) -> FederatedConfig:
    """The config with the command line's values; a bad one names its option."""
    from pydantic import ValidationError

    try:
        return type(federated).model_validate(
            federated.model_dump()
            | {k: v for k, v in overrides.items() if v is not None}
        )
    except ValidationError as error:
        first = error.errors()[0]
        name = str(first["loc"][0]) if first["loc"] else "?"
        where = OPTION_OF.get(name, f"configs/federated.yaml field '{name}'")
        expected = first["msg"].lower().removeprefix("input should be ")
        raise CardioriskError(
            f"{where}: expected {expected}, found {first.get('input')!r}"
        ) from None


RoundsOption = Annotated[
    int | None, typer.Option(help="Rounds of supervised tuning (config default).")
]
SitesOption = Annotated[
    str | None, typer.Option(help="Comma-separated subset of sites (default: all).")
]
SkipOption = Annotated[
    str | None,
    typer.Option(help="Stages to skip: pretraining, alignment (comma-separated)."),
]
VerboseOption = Annotated[bool, typer.Option(help="Show Flower's own logs.")]
StrategyOption = Annotated[
    str | None,
    typer.Option(help="fedavg, fedprox or fedadam (default: configs/federated.yaml)."),
]


@cli.command()
def train(
    rounds: RoundsOption = None,
    sites: SitesOption = None,
    skip: SkipOption = None,
    strategy: StrategyOption = None,
    dp: Annotated[
        bool,
        typer.Option(
            "--dp",
            help="Differential privacy: each site clips and noises its update "
            "(settings in configs/federated.yaml); the spent budget is printed.",
        ),
    ] = False,
    secure_aggregation: Annotated[
        bool,
        typer.Option(
            "--secure-aggregation",
            help="SecAgg+: the server sees only the sum of the sites' updates "
            "(settings in configs/federated.yaml).",
        ),
    ] = False,
    resume: Annotated[
        bool,
        typer.Option(
            "--resume",
            help="Go on from the last round checkpoint of the same configuration "
            "(var/checkpoints) instead of starting over.",
        ),
    ] = False,
    from_current: Annotated[
        bool,
        typer.Option(
            "--from-current",
            help="Start from the current model version (after a site's new data "
            "was added by `cardiorisk prepare`); registers a new version.",
        ),
    ] = False,
    centralised: Annotated[
        bool, typer.Option(help="Also train the pooled model for comparison.")
    ] = True,
    verbose: VerboseOption = False,
) -> None:
    """Train federatedly through the stages, calibrate, register a model version."""
    from app.settings import load_settings
    from fusion.versions import load_version

    version = _run_training(
        rounds,
        sites,
        skip,
        centralised,
        verbose,
        full=False,
        strategy=strategy,
        dp=dp,
        secure_aggregation=secure_aggregation,
        resume=resume,
        from_current=from_current,
    )
    _, _, _, metadata = load_version(load_settings().models_path(), version)
    table = Table(title=f"model version {version}: held-out AUROC")
    for column in ("head", "n test", "model [95% CI]", "best tool", "centralised"):
        table.add_column(column)
    for head, m in metadata["evaluation"].items():
        low, high = m["auroc_ci"]
        table.add_row(
            head,
            str(m["n_test"]),
            f"{m['auroc']:.3f} [{low:.3f}-{high:.3f}]",
            f"{m.get('best_baseline_auroc', float('nan')):.3f}",
            f"{m['centralised_auroc']:.3f}" if "centralised_auroc" in m else "-",
        )
    console.print(table)
    if metadata.get("privacy"):
        spent = metadata["privacy"]
        console.print(
            f"differential privacy: epsilon {spent['epsilon']:.2f} at delta "
            f"{spent['delta']:g} per site over {spent['rounds']} rounds "
            f"(noise multiplier {spent['noise_multiplier']:g}, clipping norm "
            f"{spent['clipping_norm']:g})"
        )
    console.print(
        f"model version [bold]{version}[/] registered and current "
        "(`cardiorisk evaluate` writes the full report)"
    )


@cli.command()
def evaluate(
    rounds: RoundsOption = None,
    sites: SitesOption = None,
    verbose: VerboseOption = False,
) -> None:
    """Regenerate the full report: the model, its comparisons, subsets and ablation.

    Trains the federated model (registered as a new version), its centralised
    twin, one model per modality, their late fusion, HAIM-style trees and
    every stage ablation; writes reports/evaluation.{md,json}, reports/figures
    and reports/model_card.md; the federated model becomes the current version.
    About twice as long as `cardiorisk train`.
    """
    version = _run_training(rounds, sites, None, True, verbose, full=True)
    console.print((REPORTS_DIR / "evaluation.md").read_text(encoding="utf-8"))
    console.print(
        f"model version [bold]{version}[/] registered and current; report in "
        f"{REPORTS_DIR / 'evaluation.md'}, model card in "
        f"{REPORTS_DIR / 'model_card.md'}"
    )


@cli.command("federated-report")
def federated_report(
    rounds: RoundsOption = None,
    strategy: StrategyOption = None,
    verbose: VerboseOption = False,
) -> None:
    """Local-only vs federated (with and without DP) vs centralised, per head.

    Writes reports/federated.{md,json}; registers no model version.
    """
    from app.federated_report import compare, write_federated_report
    from federated.config import load_federated_config
    from fusion.config import load_model_config, load_training_config

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    if not verbose:
        for name in ("flwr", "ray", "lightning"):
            logging.getLogger(name).setLevel(logging.WARNING)
    try:
        data = load_data_config()
        federated = _overridden(
            load_federated_config(), {"num_rounds": rounds, "strategy": strategy}
        )
        with _progress() as progress:
            task = progress.add_task("starting", total=None)
            results = compare(
                data,
                load_model_config(),
                load_training_config(),
                federated,
                data.cohort_path(),
                on_step=lambda text: _step(progress, task, text),
            )
    except (CardioriskError, ValueError) as error:
        _fail(error)
    command = "cardiorisk " + " ".join(sys.argv[1:])
    path = write_federated_report(results, command, REPORTS_DIR)
    console.print(path.read_text(encoding="utf-8"))


PatientArgument = Annotated[
    Path, typer.Argument(help="Patient JSON: the native schema or a FHIR R4 Bundle.")
]
ECGOption = Annotated[
    Path | None,
    typer.Option(
        help="ECG: a WFDB record (.hea with its signal files), a DICOM 12-lead "
        "waveform (.dcm) or a CSV with one column per lead."
    ),
]
ECGFsOption = Annotated[
    float | None, typer.Option(help="Sampling frequency (Hz) of a CSV ECG.")
]
ImageOption = Annotated[
    Path | None,
    typer.Option(help="A medical image: DICOM (.dcm) or PNG (de-identified)."),
]


@cli.command()
def predict(
    patient: PatientArgument,
    ecg: ECGOption = None,
    ecg_fs: ECGFsOption = None,
    image: ImageOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    as_fhir: Annotated[
        bool, typer.Option("--fhir", help="Print a FHIR R4 RiskAssessment.")
    ] = False,
    version: Annotated[
        str | None, typer.Option(help="Model version (default current).")
    ] = None,
    language: Annotated[str, typer.Option(help="Language of names: en or vi.")] = "en",
) -> None:
    """Risk per head, band, top five reasons and modality contributions."""
    from app.fhir_out import risk_assessment

    started = time.perf_counter()
    try:
        if as_json and as_fhir:
            raise CardioriskError("--json and --fhir: choose one answer format")
        service, read = _read_patient(patient, ecg, ecg_fs, image, version, language)
        result = service.predict(
            read.record,
            warnings=read.warnings,
            language=language,
            ecg=read.ecg,
            ecg_quality=read.ecg_quality,
        )
        if as_fhir:
            resource = risk_assessment(result, read.subject, read.basis)
            print(json.dumps(resource, indent=2))
            return
    except CardioriskError as error:
        _fail(error)
    elapsed = time.perf_counter() - started
    if as_json:
        print(result.model_dump_json(indent=2))
        return
    _print_result(result, language)
    console.print(f"\nanswered in {elapsed:.2f} s")


@cli.command()
def explain(
    patient: PatientArgument,
    ecg: ECGOption = None,
    ecg_fs: ECGFsOption = None,
    image: ImageOption = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the structured explanation.")
    ] = False,
    version: Annotated[
        str | None, typer.Option(help="Model version (default current).")
    ] = None,
    language: Annotated[str, typer.Option(help="Language: en or vi.")] = "en",
) -> None:
    """Explain each risk, from input to score, in plain language.

    Attributions, modality shares, clinical concepts, anomalies and the
    traditional score, per head.
    """
    started = time.perf_counter()
    try:
        service, read = _read_patient(patient, ecg, ecg_fs, image, version, language)
        loaded = time.perf_counter()
        result = service.predict(
            read.record,
            warnings=read.warnings,
            language=language,
            ecg=read.ecg,
            ecg_quality=read.ecg_quality,
        )
        explained = service.explanation(result.prediction_id, language)
    except CardioriskError as error:
        _fail(error)
    explaining, loading = time.perf_counter() - loaded, loaded - started
    if as_json:
        print(json.dumps(explained, indent=1))
        return
    t = functools.partial(translate, language=language)
    console.print(t("results.model_version", version=explained["model_version"]))
    for warning in result.warnings:
        console.print(f"[yellow]{warning}[/]")
    for entry in explained["heads"]:
        console.print(f"\n[bold]{t('head.' + entry['head'])}[/]")
        console.print(entry["paragraph"])
    if not explained["concepts_learned"]:
        console.print(f"\n[dim]{t('explain.no_concepts')}[/]")
    console.print(
        f"\nexplained in {explaining:.2f} s (reading the input and loading the "
        f"model: {loading:.2f} s)"
    )


def _read_patient(
    patient: Path,
    ecg: Path | None,
    ecg_fs: float | None,
    image: Path | None,
    version: str | None,
    language: str,
) -> tuple[PredictionService, PatientInput]:
    """The service and the patient of ``predict`` and ``explain``, checked."""
    from app.service import PredictionService
    from app.settings import load_settings

    if not patient.is_file():
        what = "a directory" if patient.is_dir() else "no such file"
        raise CardioriskError(f"{patient}: expected a JSON file, found {what}")
    try:
        payload = json.loads(patient.read_text(encoding="utf-8-sig"))
    except json.JSONDecodeError as error:
        raise CardioriskError(
            f"{patient.name}: expected a JSON object, found invalid JSON "
            f"(line {error.lineno})"
        ) from error
    except UnicodeDecodeError as error:
        raise CardioriskError(
            f"{patient.name}: expected UTF-8 JSON, found other bytes"
        ) from error
    except RecursionError as error:
        raise CardioriskError(
            f"{patient.name}: expected a JSON object, found too deep nesting"
        ) from error
    if not isinstance(payload, dict):
        found = type(payload).__name__
        raise CardioriskError(f"{patient.name}: expected a JSON object, found {found}")
    if language not in ("en", "vi"):
        raise CardioriskError(f"--language: expected en or vi, found {language!r}")
    service = PredictionService(load_settings().models_path(), version)
    signal = _read_ecg_option(ecg, ecg_fs) if ecg is not None else None
    image_notes: list[str] = []
    picture = _read_image_option(image, image_notes) if image else None
    read = service.record(
        payload,
        signal,
        patient.name,
        ecg.name if ecg is not None else "ecg",
        image=picture,
        image_source=image.name if image is not None else "image",
        image_notes=image_notes,
    )
    return service, read


def _read_ecg_option(path: Path, fs: float | None) -> ECG:
    """Read ``--ecg``; a missing sampling frequency names ``--ecg-fs``."""
    from ingest.ecg import read_ecg
    from ingest.errors import InputError

    try:
        return _as_bad_input(path, "ECG file", lambda: read_ecg(path, fs=fs))
    except InputError as error:
        if error.field == "fs":
            raise CardioriskError(f"{error} (use --ecg-fs HZ)") from error
        raise


def _read_image_option(path: Path, notes: list[str]) -> Image:
    """Read ``--image``; an error a library lets through is one line."""
    from ingest.imaging import read_image

    if path.is_dir():
        raise CardioriskError(
            f"{path}: --image: expected an image file, found a folder"
        )
    return _as_bad_input(path, "DICOM or PNG image", lambda: read_image(path, notes))


def _as_bad_input(path: Path, kind: str, read: Callable[[], T]) -> T:
    """Run a reader; an error its library lets through is one line of bad input."""
    try:
        return read()
    except CardioriskError:
        raise
    except Exception as error:  # noqa: BLE001 - a library error is bad input here
        raise CardioriskError(
            f"{path.name}: expected a readable {kind}, found one its reader "
            f"could not read ({type(error).__name__})"
        ) from error


def _print_result(result: PredictionResult, language: str) -> None:
    """Print a prediction for a person, in the chosen language."""
    t = functools.partial(translate, language=language)
    names = [t(f"modality.{m}") for m in result.modalities_used]
    console.print(t("results.model_version", version=result.model_version))
    console.print(t("results.used", modalities=", ".join(names)))
    missing = [t(f"modality.{m}") for m in result.modalities_missing]
    console.print(
        t("results.missing_list", modalities=", ".join(missing))
        if missing
        else t("results.missing_none")
    )
    for head in result.risks:
        horizon = (
            t("horizon.years", years=f"{head.horizon_years:g}")
            if head.horizon_years
            else t("horizon.present")
        )
        colour = {"low": "green", "moderate": "yellow", "high": "bold red"}[head.band]
        console.print(
            f"\n[bold]{head.label}[/]: {head.percent:.1f}% "
            f"[{colour}]{t(f'band.{head.band}')}[/] ({horizon})"
        )
        for reason in head.reasons:
            value = format_value(reason.value, reason.unit, language)
            value = f" = {value}" if value else ""
            sign = "+" if reason.direction == "raises" else "-"
            console.print(
                f"  {sign} {reason.label}{value}: {t(f'results.{reason.direction}')} "
                f"({reason.attribution:+.3f})"
            )
        shares = ", ".join(
            f"{t(f'modality.{name}')} {value * 100:+.1f}"
            for name, value in head.modality_contributions.items()
        )
        console.print(f"  {t('results.contributions_axis')}: {shares}")
    if result.findings:
        console.print(f"\n[bold]{t('results.findings')}[/]")
    for finding in result.findings:
        share = t("results.finding_probability", percent=f"{finding.percent:.1f}%")
        console.print(f"  {finding.label}: {share}")
    if "ecg" in result.modalities_used:
        console.print("\n" + ecg_measurement_text(result.ecg_measurements, language))
    for warning in result.warnings:
        console.print(f"[yellow]{t('results.warnings')}:[/] {warning}")


@cli.command()
def serve(
    dashboard: Annotated[
        bool, typer.Option(help="Also start the Streamlit dashboard.")
    ] = True,
) -> None:
    """Serve the API (and the dashboard) on localhost until interrupted."""
    from app.settings import load_settings

    settings = load_settings()
    api_url = f"http://{settings.api_host}:{settings.api_port}"
    processes = [
        subprocess.Popen(
            [
                sys.executable, "-m", "uvicorn", "app.api:create_app", "--factory",
                "--host", settings.api_host, "--port", str(settings.api_port),
            ],
            cwd=PROJECT_ROOT,
        )
    ]  # fmt: skip
    if dashboard:
        processes.append(
            subprocess.Popen(
                [
                    sys.executable, "-m", "streamlit", "run",
                    str(PROJECT_ROOT / "app" / "dashboard.py"),
                    "--server.address", settings.api_host,
                    "--server.port", str(settings.dashboard_port),
                    "--server.headless", "true",
                    "--browser.gatherUsageStats", "false",
                    "--client.toolbarMode", "viewer",
                ],
                cwd=PROJECT_ROOT,
                env={**os.environ, "CARDIORISK_API_URL": api_url},
            )
        )  # fmt: skip
    console.print(f"API:       {api_url}  (OpenAPI: {api_url}/docs)")
    if dashboard:
        console.print(
            f"Dashboard: http://{settings.api_host}:{settings.dashboard_port}"
        )
    console.print("Ctrl+C stops both.")
    try:
        while all(process.poll() is None for process in processes):
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=10)
    failed = [p.args for p in processes if p.returncode not in (0, None, -15)]
    if failed:
        console.print(f"[red]stopped:[/] {shlex.join(map(str, failed[0]))}")
        raise typer.Exit(code=1)


@cli.command()
def demo(
    rounds: Annotated[
        int | None, typer.Option(help="Federated rounds (config default).")
    ] = None,
) -> None:
    """Prepare data, train if no model version exists, serve API and dashboard."""
    from app.settings import load_settings
    from fusion.versions import current_version

    settings = load_settings()
    busy = _ports_in_use(
        settings.api_host, [settings.api_port, settings.dashboard_port]
    )
    if busy:
        _fail(
            CardioriskError(
                f"port {busy[0]} on {settings.api_host} is already in use; set "
                "CARDIORISK_API_PORT and CARDIORISK_DASHBOARD_PORT to free ports "
                "(e.g. CARDIORISK_API_PORT=8100 CARDIORISK_DASHBOARD_PORT=8601)"
            )
        )
    prepare(force=False)
    version = current_version(settings.models_path())
    if version is None:
        # The pooled twin is for the report (`cardiorisk evaluate`), not the demo.
        train(rounds=rounds, sites=None, skip=None, centralised=False, verbose=False)
    else:
        console.print(f"reusing model version {version} (delete var/models to retrain)")
    serve(dashboard=True)


def _ports_in_use(host: str, ports: list[int]) -> list[int]:
    """The ports another process already listens on (checked before long work)."""
    busy = []
    for port in ports:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((host, port))
            except OSError:
                busy.append(port)
    return busy


# --- a deployed federation -------------------------------------------------------

federation = typer.Typer(
    help="A deployed federation: certificates, SuperLink, SuperNodes, runs (TLS).",
    no_args_is_help=True,
)
cli.add_typer(federation, name="federation")
CertsOption = Annotated[
    Path, typer.Option(help="Folder of ca.crt, server.pem/.key and site key pairs.")
]
SuperlinkOption = Annotated[
    str, typer.Option(help="The SuperLink's address, host:port.")
]
FLWR_HOME = PROJECT_ROOT / "var" / "flwr"


@federation.command()
def certs(
    out: Annotated[Path, typer.Argument(help="Folder to write them to.")],
    sites: Annotated[
        str, typer.Option(help="Comma-separated sites (one key pair each).")
    ],
) -> None:
    """Make a test CA, the SuperLink's TLS certificate and a key pair per site."""
    from federated.certificates import make_test_certificates

    names = [s for s in sites.split(",") if s]
    paths = make_test_certificates(out, names)
    print(f"wrote {len(paths)} files to {out} (for tests and trials only)")


@federation.command()
def superlink(
    certs: CertsOption,
    port: Annotated[int, typer.Option(help="Port of all its APIs.")] = 9092,
    auth: Annotated[
        bool, typer.Option(help="Admit only registered SuperNodes.")
    ] = True,
) -> None:
    """Run the coordinating SuperLink (TLS; SuperNode authentication)."""
    from federated.launch import superlink_command, write_cli_config

    write_cli_config(FLWR_HOME, f"127.0.0.1:{port}", certs)
    FLWR_HOME.mkdir(parents=True, exist_ok=True)
    _exec(superlink_command(certs, port, auth, FLWR_HOME / "superlink.db"))


@federation.command()
def register(
    certs: CertsOption,
    site: Annotated[str, typer.Option(help="The site whose public key to admit.")],
    superlink: SuperlinkOption = "127.0.0.1:9092",
) -> None:
    """Register a site's SuperNode public key with the SuperLink."""
    from federated.launch import register_command, write_cli_config

    write_cli_config(FLWR_HOME, superlink, certs)
    _exec(register_command(certs, site))


@federation.command()
def supernode(
    certs: CertsOption,
    site: Annotated[str, typer.Option(help="This hospital's site name.")],
    superlink: SuperlinkOption = "127.0.0.1:9092",
    port: Annotated[int, typer.Option(help="Port of its ClientApp API.")] = 9094,
    cohort: Annotated[
        Path | None, typer.Option(help="Cohort store (default: var/cohort).")
    ] = None,
    auth: Annotated[bool, typer.Option(help="Sign in with the site's key.")] = True,
) -> None:
    """Run one site's SuperNode; its data never leave it."""
    from federated.launch import supernode_command

    store = (cohort or load_data_config().cohort_path()).resolve()
    _exec(supernode_command(certs, superlink, port, site, store, auth))


@federation.command("run")
def run_federation(
    certs: CertsOption,
    sites: Annotated[str, typer.Option(help="Comma-separated sites taking part.")],
    superlink: SuperlinkOption = "127.0.0.1:9092",
    rounds: Annotated[int, typer.Option(help="Rounds of supervised tuning.")] = 12,
    strategy: Annotated[str, typer.Option(help="fedavg, fedprox or fedadam.")] = (
        "fedavg"
    ),
    out: Annotated[Path, typer.Option(help="Model, history, checkpoints.")] = (
        PROJECT_ROOT / "var" / "deployment"
    ),
    secure_aggregation: Annotated[
        bool,
        typer.Option(
            "--secure-aggregation",
            help="SecAgg+: the SuperLink sees only the sum of the sites' updates.",
        ),
    ] = False,
) -> None:
    """Submit a training run to the SuperLink and stream its log."""
    from federated.launch import run_command, write_cli_config

    write_cli_config(FLWR_HOME, superlink, certs)
    settings = {
        "num-rounds": rounds,
        "strategy": strategy,
        "sites": sites,
        "secure-aggregation": secure_aggregation,
        "out-dir": str(out.resolve()),
    }
    _exec(run_command(PROJECT_ROOT, settings))


def _exec(command: list[str]) -> None:
    """Replace this process with a Flower command (FLWR_HOME set to var/flwr)."""
    from federated.launch import flower_env

    os.chdir(PROJECT_ROOT)
    os.execve(command[0], command, flower_env(FLWR_HOME))


def main() -> None:
    """Entry point of the ``cardiorisk`` console script.

    An unexpected error prints one line naming its type only (its message or a
    traceback could quote patient values) and exits with status 1;
    ``CARDIORISK_DEBUG=1`` re-raises it for developers.
    """
    code: int | str | None = 0
    try:
        cli()
    except SystemExit as done:
        code = done.code
    except Exception as error:  # noqa: BLE001
        if os.environ.get("CARDIORISK_DEBUG") == "1":
            raise
        errors.print(
            f"[bold red]internal error[/] ({type(error).__name__}); nothing was "
            "saved. Re-run with CARDIORISK_DEBUG=1 to see the traceback.",
            soft_wrap=True,
        )
        code = 1
    if sys.argv[1:2] == ["predict"] and isinstance(code, int | None):
        # `predict` holds no resource that needs a clean shutdown: skip the
        # interpreter's teardown of PyTorch (about 0.5 s of a 5 s command).
        sys.stdout.flush()
        sys.stderr.flush()
        logging.shutdown()
        os._exit(code or 0)
    raise SystemExit(code)


if __name__ == "__main__":
    main()
