"""Streamlit dashboard: enter a patient, upload an ECG, read the risks.

Run with ``streamlit run app/dashboard.py``. The dashboard is a client of the API
(``CARDIORISK_API_URL``, default ``http://127.0.0.1:8000``); it holds no model. The
pure steps (payload, display rows, ECG reading and figures, the HTTP calls) are plain
functions, testable without Streamlit running; `main` draws the page.
"""

from __future__ import annotations

import html
import json
import logging
import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import httpx
import numpy as np
import plotly.graph_objects as go
import streamlit as st
from plotly.subplots import make_subplots
from pydantic import ValidationError

from app.i18n import (
    DEFAULT_LANGUAGE,
    LANGUAGES,
    ecg_measurement_text,
    format_number,
    format_value,
    has_message,
    input_label,
    lead_label,
    lead_list,
    translate,
)
from app.schemas import (
    ECGAttributionMap,
    ECGQuality,
    Explanation,
    HeadExplanation,
    HeadRisk,
    PredictionResult,
)
from ingest.config import FeatureSpec, load_data_config, load_yaml
from ingest.ecg import read_ecg_upload, read_wfdb_upload
from ingest.errors import CardioriskError, InputError
from ingest.schema import ECG

logger = logging.getLogger(__name__)

DEFAULT_API_URL = "http://127.0.0.1:8000"
PREDICT_TIMEOUT_S = 30.0
HEALTH_TIMEOUT_S = 2.0
SINGLE_FILE_ECG = (".dcm", ".csv")  # DICOM 12-lead waveform, CSV one column per lead

# Band -> (Streamlit colour name for markdown badges, hex colour for Plotly).
BAND_COLOURS = {
    "low": ("green", "#2e7d32"),
    "moderate": ("orange", "#ef6c00"),
    "high": ("red", "#c62828"),
}


@dataclass(frozen=True)
class FormField:
    """One input of the patient form.

    Attributes
    ----------
    name : str
        Registry feature name (``configs/data.yaml``).
    kind : {"number", "flag", "asa"}
        Number input, yes/no/blank choice, or ASA class 1-6.
    section : str
        Form section key (``form.section_<section>``).
    step : float
        Increment of a number input, in the canonical unit.
    """

    name: str
    kind: Literal["number", "flag", "asa"]
    section: str
    step: float = 1.0


FORM_FIELDS = (
    FormField("systolic_bp", "number", "vitals", 1.0),
    FormField("diastolic_bp", "number", "vitals", 1.0),
    FormField("heart_rate", "number", "vitals", 1.0),
    FormField("bmi", "number", "vitals", 0.1),
    FormField("total_cholesterol", "number", "labs", 1.0),
    FormField("hdl_cholesterol", "number", "labs", 1.0),
    FormField("glucose", "number", "labs", 1.0),
    FormField("creatinine", "number", "labs", 0.01),
    FormField("hemoglobin", "number", "labs", 0.1),
    FormField("sodium", "number", "labs", 1.0),
    FormField("potassium", "number", "labs", 0.1),
    FormField("albumin", "number", "labs", 0.1),
    FormField("urea_nitrogen", "number", "labs", 1.0),
    FormField("platelets", "number", "labs", 1.0),
    FormField("current_smoker", "flag", "history"),
    FormField("former_smoker", "flag", "history"),
    FormField("diabetes", "flag", "history"),
    FormField("hypertension", "flag", "history"),
    FormField("bp_medication", "flag", "history"),
    FormField("prior_chd", "flag", "history"),
    FormField("prior_mi", "flag", "history"),
    FormField("atrial_fibrillation", "flag", "history"),
    FormField("asa_class", "asa", "surgery"),
    FormField("emergency_surgery", "flag", "surgery"),
    FormField("surgery_major_abdominal", "flag", "surgery"),
    FormField("surgery_laparoscopic", "flag", "surgery"),
    FormField("surgery_duration", "number", "surgery", 0.5),
)
FORM_SECTIONS = ("vitals", "labs", "history", "surgery")

_SEX_VALUES = {"male": "male", "m": "male", "female": "female", "f": "female"}
_FLAG_VALUES = {"yes": 1.0, "true": 1.0, "1": 1.0, "no": 0.0, "false": 0.0, "0": 0.0}


class APIError(CardioriskError):
    """The API could not be reached or answered an error; carries a catalog message.

    Parameters
    ----------
    key : str
        Message key (``error.*``) that explains the failure to a user.
    **values
        The message's placeholder values (``url``, ``status``, ``detail``, ...).
    """

    def __init__(self, key: str, **values: Any) -> None:
        self.key = key
        self.values = values
        super().__init__(f"{key}: {values}")

    def message(self, language: str = DEFAULT_LANGUAGE) -> str:
        """Return the readable message in ``language``."""
        return translate(self.key, language, **self.values)


@dataclass
class RiskRow:
    """One head's risk, ready to display.

    Attributes
    ----------
    head : str
        Head name (``acute_mi``, ...).
    outcome : str
        Outcome name in the display language.
    percent : float
        Risk in percent (0..100).
    percent_text : str
        ``percent`` formatted for the language (``12.3 %`` / ``12,3 %``).
    band : str
        ``low``, ``moderate`` or ``high``.
    band_text : str
        Band in the display language.
    colour : str
        Hex colour of the band.
    horizon : str
        Horizon in words (``within 10 years`` / ``present now``).
    critical : bool
        Whether the row calls for the critical acute MI alert.
    reasons : list of dict
        Top reasons as table rows (`reason_rows`).
    """

    head: str
    outcome: str
    percent: float
    percent_text: str
    band: str
    band_text: str
    colour: str
    horizon: str
    critical: bool = False
    reasons: list[dict[str, str]] = field(default_factory=list)


def api_base_url() -> str:
    """Return the API base URL (``CARDIORISK_API_URL``) without a trailing slash."""
    return os.environ.get("CARDIORISK_API_URL", DEFAULT_API_URL).rstrip("/")


def default_language() -> str:
    """Return the first language: ``CARDIORISK_LANGUAGE``, else configs/app.yaml."""
    language = os.environ.get("CARDIORISK_LANGUAGE")
    if language is None:
        try:
            language = str(load_yaml("app").get("language", DEFAULT_LANGUAGE))
        except CardioriskError:
            language = DEFAULT_LANGUAGE
    return language if language in LANGUAGES else DEFAULT_LANGUAGE


def build_patient_payload(
    values: Mapping[str, Any], timeline: Sequence[Mapping[str, Any]] = ()
) -> dict[str, Any]:
    """Build the native-schema patient the API expects from form values.

    Parameters
    ----------
    values : Mapping
        Form values by registry name plus ``age`` and ``sex``. Blank entries (None,
        ``""``, NaN) are left out: missing is normal. Sex may be ``male``/``female``
        or ``m``/``f`` in any case; flags may be bools, 0/1 or ``yes``/``no``.
    timeline : sequence of Mapping
        Earlier visits (``{"years_before": ..., "values": {...}}``), passed through.

    Returns
    -------
    dict
        ``{"age": ..., "sex": ..., "features": {...}, "timeline": [...]}``, with age
        and sex only when given.

    Raises
    ------
    InputError
        When sex, a flag or a number cannot be understood.
    """
    payload: dict[str, Any] = {}
    features: dict[str, float] = {}
    for name, value in values.items():
        if _is_blank(value):
            continue
        if name == "sex":
            sex = _SEX_VALUES.get(str(value).strip().lower())
            if sex is None:
                raise InputError("form", "sex", "male or female", repr(value))
            payload["sex"] = sex
        elif name == "age":
            payload["age"] = _number(name, value)
        else:
            features[name] = _number(name, value)
    payload["features"] = features
    payload["timeline"] = [dict(step) for step in timeline]
    return payload


def _is_blank(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, str):
        return not value.strip()
    return isinstance(value, float) and math.isnan(value)


def _number(name: str, value: Any) -> float:
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        flag = _FLAG_VALUES.get(value.strip().lower())
        if flag is not None:
            return flag
    try:
        return float(value)
    except (TypeError, ValueError) as error:
        raise InputError("form", name, "a number", repr(value)) from error


def horizon_text(horizon_years: float, language: str = DEFAULT_LANGUAGE) -> str:
    """Return the horizon in words; 0 years means a present-state diagnosis."""
    if horizon_years <= 0:
        return translate("horizon.present", language)
    decimals = 0 if float(horizon_years).is_integer() else 1
    years = format_number(horizon_years, language, decimals)
    return translate("horizon.years", language, years=years)


def head_name(head: str, fallback: str, language: str = DEFAULT_LANGUAGE) -> str:
    """Return a head's outcome name from the catalog, else the API's own label."""
    key = f"head.{head}"
    return translate(key, language) if has_message(key, language) else fallback


def modality_name(modality: str, language: str = DEFAULT_LANGUAGE) -> str:
    """Return a modality's name from the catalog, else the modality as given."""
    key = f"modality.{modality}"
    return translate(key, language) if has_message(key, language) else modality


def parse_result(data: Any) -> PredictionResult:
    """Validate an API answer as a `PredictionResult`.

    Raises
    ------
    APIError
        With ``error.bad_response`` when the answer does not fit the schema.
    """
    try:
        return PredictionResult.model_validate(data)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "body"
        raise APIError(
            "error.bad_response", detail=f"{where}: {first['msg']}"
        ) from error


def risk_rows(
    result: PredictionResult | Mapping[str, Any], language: str = DEFAULT_LANGUAGE
) -> list[RiskRow]:
    """Turn a prediction into one display row per head, reasons included.

    Parameters
    ----------
    result : PredictionResult or Mapping
        The API's answer (a mapping is validated first).
    language : str
        Display language.

    Returns
    -------
    list of RiskRow
        In the API's head order; ``critical`` is set on a ``high`` acute MI row
        when an ECG was read (the alert is an ECG alert: risk factors alone never
        raise it).
    """
    if not isinstance(result, PredictionResult):
        result = parse_result(result)
    rows = []
    for risk in result.risks:
        _, colour = BAND_COLOURS[risk.band]
        percent_text = translate(
            "results.percent", language, percent=format_number(risk.percent, language)
        )
        rows.append(
            RiskRow(
                head=risk.head,
                outcome=head_name(risk.head, risk.label, language),
                percent=risk.percent,
                percent_text=percent_text,
                band=risk.band,
                band_text=translate(f"band.{risk.band}", language),
                colour=colour,
                horizon=horizon_text(risk.horizon_years, language),
                critical=risk.head == "acute_mi"
                and risk.band == "high"
                and "ecg" in result.modalities_used,
                reasons=reason_rows(risk, language),
            )
        )
    return rows


def finding_rows(
    result: PredictionResult, language: str = DEFAULT_LANGUAGE
) -> list[dict[str, str]]:
    """One display row per finding: name, probability, SNOMED CT concept, source.

    Findings are what the data show (ECG hypertrophy, cardiomegaly on a chest
    X-ray), estimated only from the modalities labelled for them.
    """
    return [
        {
            translate("results.finding", language): finding.label,
            translate("results.finding_probability_column", language): translate(
                "results.finding_probability",
                language,
                percent=translate(
                    "results.percent",
                    language,
                    percent=format_number(finding.percent, language),
                ),
            ),
            "SNOMED CT": finding.concept_snomed or "",
            translate("results.finding_from", language): ", ".join(
                modality_name(m, language) for m in finding.modalities_used
            ),
        }
        for finding in result.findings
    ]


def reason_rows(
    risk: HeadRisk, language: str = DEFAULT_LANGUAGE
) -> list[dict[str, str]]:
    """Return a head's top reasons as table rows with translated column names.

    Tabular reasons take their name from the catalog (``field.<name>``) when it has
    one; other reasons keep the API's label.
    """
    rows = []
    for reason in risk.reasons:
        key = f"field.{reason.name}"
        label = translate(key, language) if has_message(key, language) else reason.label
        value = format_value(reason.value, reason.unit, language)
        rows.append(
            {
                translate("results.reason_factor", language): label,
                translate("results.reason_value", language): value,
                translate("results.reason_effect", language): translate(
                    f"results.{reason.direction}", language
                ),
                translate("results.reason_modality", language): modality_name(
                    reason.modality, language
                ),
            }
        )
    return rows


def missing_text(result: PredictionResult, language: str = DEFAULT_LANGUAGE) -> str:
    """Say which modalities were missing, or that none was."""
    if not result.modalities_missing:
        return translate("results.missing_none", language)
    names = ", ".join(
        modality_name(name, language) for name in result.modalities_missing
    )
    return translate("results.missing_list", language, modalities=names)


def contribution_figure(risk: HeadRisk, language: str = DEFAULT_LANGUAGE) -> go.Figure:
    """Plot each modality's contribution to one head's risk, in percentage points."""
    items = sorted(risk.modality_contributions.items(), key=lambda item: item[1])
    points = [value * 100.0 for _, value in items]
    figure = go.Figure(
        go.Bar(
            x=points,
            y=[modality_name(name, language) for name, _ in items],
            orientation="h",
            marker_color=["#c62828" if value > 0 else "#1565c0" for value in points],
            text=[format_number(value, language) for value in points],
            textposition="auto",
        )
    )
    figure.update_layout(
        title=translate("results.contributions", language),
        xaxis_title=translate("results.contributions_axis", language),
        height=120 + 40 * len(items),
        margin={"l": 10, "r": 10, "t": 40, "b": 40},
    )
    return figure


def ecg_fields(files: Sequence[tuple[str, bytes]]) -> dict[str, tuple[str, bytes]]:
    """Sort uploaded ECG files into the API's multipart fields.

    Parameters
    ----------
    files : sequence of (name, content)
        Uploaded files; an empty sequence means no ECG.

    Returns
    -------
    dict
        ``{}`` when nothing was uploaded; ``{"ecg_header": ..., "ecg_signal": ...}``
        for a WFDB pair; ``{"ecg_file": ...}`` for one DICOM (``.dcm``) or CSV file.

    Raises
    ------
    InputError
        Unless the files are one ``.hea`` and one ``.dat``, or one ``.dcm``/``.csv``.
    """
    if not files:
        return {}
    suffixes = [Path(name).suffix.lower() for name, _ in files]
    if len(files) == 1 and suffixes[0] in SINGLE_FILE_ECG:
        return {"ecg_file": files[0]}
    if sorted(suffixes) == [".dat", ".hea"]:
        header = files[suffixes.index(".hea")]
        return {"ecg_header": header, "ecg_signal": files[suffixes.index(".dat")]}
    found = ", ".join(name for name, _ in files)
    expected = "one .hea and one .dat file, or one .dcm or .csv file"
    raise InputError("upload", "ECG files", expected, found)


def read_uploaded_ecg(
    fields: Mapping[str, tuple[str, bytes]], fs: float | None = None
) -> ECG:
    """Read uploaded ECG files (see `ecg_fields`) with the project's readers.

    A WFDB header names the signal file it reads, so the uploaded signal's own name
    does not matter; unsafe names in the header are refused there. ``fs`` (Hz) is
    needed for a CSV that does not state it.

    Raises
    ------
    InputError
        When the files cannot be read, naming the file, field and expectation.
    """
    logger.debug("reading an uploaded ECG")
    if "ecg_file" in fields:
        name, content = fields["ecg_file"]
        return read_ecg_upload(Path(name).name or "upload", content, fs)
    (header_name, header), (_, signal) = fields["ecg_header"], fields["ecg_signal"]
    return read_wfdb_upload(header, signal, source=Path(header_name).name or "upload")


def read_bundle(name: str, content: bytes) -> dict:
    """Decode an uploaded FHIR Bundle (JSON, UTF-8, a byte-order mark allowed).

    Raises
    ------
    InputError
        When the file is not JSON or not a FHIR Bundle.
    """
    try:
        bundle = json.loads(content.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as error:
        raise InputError(name, "file", "a FHIR Bundle as JSON", "not JSON") from error
    if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle":
        found = bundle.get("resourceType") if isinstance(bundle, dict) else None
        raise InputError(name, "resourceType", "Bundle", str(found)[:40])
    return bundle


def lead_panels(leads: list[str]) -> tuple[go.Figure, Callable[[int], tuple[int, int]]]:
    """One small panel per lead, filling two columns top to bottom.

    Limb leads come left and chest leads right for a standard 12-lead record.
    Returns the figure and where lead ``i`` goes, ``(row, col)`` from 1.
    """
    n_cols = 2 if len(leads) > 1 else 1
    n_rows = math.ceil(len(leads) / n_cols)
    # Panel order is row-major in make_subplots; we fill columns first.
    order: list[int | None] = [None] * (n_rows * n_cols)
    for lead in range(len(leads)):
        order[(lead % n_rows) * n_cols + lead // n_rows] = lead
    figure = make_subplots(
        rows=n_rows,
        cols=n_cols,
        shared_xaxes=True,
        subplot_titles=[lead_label(leads[i]) if i is not None else "" for i in order],
        vertical_spacing=0.04,
        horizontal_spacing=0.06,
    )
    return figure, lambda lead: (lead % n_rows + 1, lead // n_rows + 1)


def ecg_figure(
    ecg: ECG, language: str = DEFAULT_LANGUAGE, quality: ECGQuality | None = None
) -> go.Figure:
    """Draw an ECG as small panels, one per lead: time in s, amplitude in mV.

    Leads fill two columns top to bottom (limb leads left, chest leads right for a
    standard 12-lead record). With the prediction's ``quality``, the leads read
    as zeros for noise are grey and named in the title, as is an ECG set aside.
    """
    poor = set(quality.poor) if quality is not None and quality.used else set()
    n_leads = ecg.signal.shape[0]
    figure, place = lead_panels(list(ecg.lead_names))
    n_cols = 2 if n_leads > 1 else 1
    n_rows = math.ceil(n_leads / n_cols)
    time_s = np.arange(ecg.signal.shape[1]) / ecg.fs
    for lead in range(n_leads):
        row, col = place(lead)
        figure.add_trace(
            go.Scatter(
                x=time_s,
                y=ecg.signal[lead],
                mode="lines",
                line={
                    "width": 1,
                    "color": "#9e9e9e" if ecg.lead_names[lead] in poor else "#b71c1c",
                },
                name=ecg.lead_names[lead],
                showlegend=False,
            ),
            row=row,
            col=col,
        )
        figure.update_yaxes(
            title_text=translate("ecg.amplitude", language), row=row, col=col
        )
    for col in range(1, n_cols + 1):
        figure.update_xaxes(
            title_text=translate("ecg.time", language), row=n_rows, col=col
        )
    duration = format_number(ecg.duration_s, language)
    title = translate(
        "upload.ecg_title",
        language,
        leads=n_leads,
        fs=format_number(ecg.fs, language, 0),
        duration=duration,
    )
    if quality is not None and not quality.used:
        title += "<br>" + translate("ecg.quality_set_aside", language)
    elif poor:
        named = lead_list(lead for lead in ecg.lead_names if lead in poor)
        title += "<br>" + translate("ecg.quality_poor", language, leads=named)
    figure.update_layout(
        title=title,
        height=150 * n_rows + 80,
        margin={"l": 10, "r": 10, "t": 70, "b": 40},
    )
    return figure


def request_explanation(
    base_url: str,
    prediction_id: str,
    language: str = DEFAULT_LANGUAGE,
    client: httpx.Client | None = None,
    timeout_s: float = PREDICT_TIMEOUT_S,
) -> Explanation:
    """GET ``/v1/predictions/{id}/explanation`` in ``language``, validated.

    Raises
    ------
    APIError
        As `request_prediction`.
    """
    url = f"{base_url}/v1/predictions/{prediction_id}/explanation"
    response = _send(
        client, "GET", url, base_url, timeout_s, params={"language": language}
    )
    try:
        return Explanation.model_validate(response.json())
    except (ValueError, ValidationError) as error:
        raise APIError("error.bad_response", detail="not an explanation") from error


def ecg_attribution_figure(
    ecg: ECGAttributionMap,
    method: str = "integrated_gradients",
    language: str = DEFAULT_LANGUAGE,
) -> go.Figure:
    """The ECG as the model read it, each lead over its attribution.

    Behind each lead's trace, a band coloured by the attribution of every sample
    to the head's logit (red raises the risk, blue lowers it; one colour scale
    for all leads, symmetric about 0), so the leads and moments that drove the
    score stand out where a cardiologist reads them.
    """
    signal = np.asarray(ecg.signal)
    values = np.asarray(getattr(ecg, method))
    n_leads = signal.shape[0]
    n_rows = math.ceil(n_leads / 2)
    figure, place = lead_panels(list(ecg.leads))
    time_s = np.arange(signal.shape[1]) / ecg.fs
    scale = float(np.abs(values).max()) or 1.0
    for lead in range(n_leads):
        row, col = place(lead)
        low, high = float(signal[lead].min()), float(signal[lead].max())
        figure.add_trace(
            go.Heatmap(
                x=time_s,
                y=[low, high],
                z=[values[lead], values[lead]],
                zmin=-scale,
                zmax=scale,
                colorscale="RdBu_r",
                showscale=lead == 0,
                colorbar={"title": translate("explain_view.attribution", language)},
                opacity=0.65,
                hoverinfo="skip",
            ),
            row=row,
            col=col,
        )
        figure.add_trace(
            go.Scatter(
                x=time_s,
                y=signal[lead],
                mode="lines",
                line={"width": 1, "color": "#212121"},
                name=ecg.leads[lead],
                showlegend=False,
            ),
            row=row,
            col=col,
        )
    for col in (1, 2):
        figure.update_xaxes(
            title_text=translate("ecg.time", language), row=n_rows, col=col
        )
    figure.update_layout(
        title=translate(
            "explain_view.ecg_title",
            language,
            head=translate(f"head.{ecg.head}", language),
            method=translate(f"explain_view.{method}", language),
        ),
        height=150 * n_rows + 80,
        margin={"l": 10, "r": 10, "t": 70, "b": 40},
    )
    return figure


def chain_figure(head: HeadExplanation, language: str = DEFAULT_LANGUAGE) -> go.Figure:
    """Inputs -> modalities -> score, and the concepts the state aligns with.

    A Sankey diagram: each top input (Integrated Gradients) flows into its
    modality with its attribution's size, each modality into the score with its
    Shapley share's size (red raises the risk, blue lowers it); the clinical
    concepts the record aligns with hang off the modality whose layer holds
    them, sized by their alignment.
    """
    red, blue, grey = (
        "rgba(198,40,40,0.5)",
        "rgba(21,101,192,0.5)",
        "rgba(97,97,97,0.4)",
    )
    score = translate(f"head.{head.head}", language)
    score += f" {format_number(100 * head.risk, language)} %"
    labels: list[str] = []

    def node(label: str) -> int:
        if label not in labels:
            labels.append(label)
        return labels.index(label)

    sources, targets, values, colours = [], [], [], []

    def link(a: int, b: int, value: float, colour: str) -> None:
        sources.append(a)
        targets.append(b)
        values.append(abs(value) or 1e-6)
        colours.append(colour)

    reasons = head.integrated_gradients.reasons if head.integrated_gradients else []
    for reason in reasons:
        link(
            node(input_label(reason.name, language)),
            node(modality_name(reason.modality, language)),
            reason.attribution,
            red if reason.attribution >= 0 else blue,
        )
    out = node(score)
    for modality, share in head.modality_shares.items():
        link(
            node(modality_name(modality, language)),
            out,
            share,
            red if share >= 0 else blue,
        )
    for concept in head.concepts:
        if not concept.aligns:
            continue
        modality = "ecg" if concept.layer.endswith("ecg") else "tabular"
        name = translate(f"concept.{concept.concept}", language)
        link(
            node(modality_name(modality, language)),
            node(f"{name} (SNOMED CT {concept.snomed})"),
            concept.alignment * 0.05,
            grey,
        )
    figure = go.Figure(
        go.Sankey(
            node={"label": labels, "pad": 14, "thickness": 14},
            link={
                "source": sources,
                "target": targets,
                "value": values,
                "color": colours,
            },
        )
    )
    figure.update_layout(
        title=translate("explain_view.chain", language),
        height=360,
        margin={"l": 10, "r": 10, "t": 50, "b": 10},
    )
    return figure


def request_prediction(
    base_url: str,
    patient: Mapping[str, Any],
    ecg: Mapping[str, tuple[str, bytes]] | None = None,
    language: str = DEFAULT_LANGUAGE,
    client: httpx.Client | None = None,
    timeout_s: float = PREDICT_TIMEOUT_S,
    ecg_fs: float | None = None,
    image: tuple[str, bytes] | None = None,
) -> PredictionResult:
    """POST a patient (and optional ECG and image files) to ``/v1/predictions``.

    Parameters
    ----------
    base_url : str
        API base URL.
    patient : Mapping
        Native-schema patient (`build_patient_payload`) or a FHIR R4 Bundle.
    ecg : Mapping, optional
        ECG multipart fields (`ecg_fields`); a CSV's ``fs`` goes in ``ecg_fs``.
    language : str
        Sent as the ``language`` query parameter.
    client : httpx.Client, optional
        A client to use (tests pass one with a mock transport).
    timeout_s : float
        Time allowed for the answer, in s.
    ecg_fs : float, optional
        Sampling frequency (Hz) of a CSV ECG.
    image : tuple, optional
        ``(file name, content)`` of a DICOM or PNG image (chest X-ray, CT slice).

    Returns
    -------
    PredictionResult
        The validated answer.

    Raises
    ------
    APIError
        When the API is unreachable, times out, answers an error or an unreadable
        body; its `APIError.message` is fit to show a user.
    """
    # Always multipart/form-data: the patient is a form field without a file name.
    files: dict[str, tuple[str | None, bytes]] = {
        "patient": (None, json.dumps(dict(patient)).encode("utf-8"))
    }
    for part, (name, content) in (ecg or {}).items():
        files[part] = (name, content)
    if ecg_fs is not None:
        files["ecg_fs"] = (None, str(ecg_fs).encode())
    if image is not None:
        files["image_file"] = image
    url = f"{base_url}/v1/predictions"
    response = _send(
        client,
        "POST",
        url,
        base_url,
        timeout_s,
        files=files,
        params={"language": language},
    )
    try:
        data = response.json()
    except ValueError as error:
        raise APIError("error.bad_response", detail="not JSON") from error
    return parse_result(data)


def fetch_health(
    base_url: str,
    client: httpx.Client | None = None,
    timeout_s: float = HEALTH_TIMEOUT_S,
) -> str:
    """Return the served model version from ``GET /health``.

    Raises
    ------
    APIError
        When the API is unreachable or unhealthy.
    """
    response = _send(client, "GET", f"{base_url}/health", base_url, timeout_s)
    try:
        return str(response.json()["model_version"])
    except (ValueError, KeyError, TypeError) as error:
        raise APIError("error.bad_response", detail="no model_version") from error


def _send(
    client: httpx.Client | None,
    method: str,
    url: str,
    base_url: str,
    timeout_s: float,
    **kwargs: Any,
) -> httpx.Response:
    owned = client is None
    client = client or httpx.Client()
    try:
        response = client.request(method, url, timeout=timeout_s, **kwargs)
    except httpx.TimeoutException as error:
        logger.warning("API %s %s timed out after %s s", method, url, timeout_s)
        raise APIError(
            "error.api_timeout", url=base_url, seconds=format_number(timeout_s, "en", 0)
        ) from error
    except httpx.HTTPError as error:
        logger.warning("API %s %s unreachable: %s", method, url, type(error).__name__)
        raise APIError("error.api_unreachable", url=base_url) from error
    finally:
        if owned:
            client.close()
    if response.is_error:
        detail = error_detail(response)
        logger.warning("API %s %s answered %d", method, url, response.status_code)
        raise APIError("error.api_error", status=response.status_code, detail=detail)
    return response


def error_detail(response: httpx.Response) -> str:
    """Return the readable ``detail`` of an API error answer.

    A string ``detail`` is returned as is; a list (FastAPI validation errors) is
    joined as ``location: message``; a body that is not JSON gives its start.
    """
    try:
        body = response.json()
    except ValueError:
        text = response.text.strip()
        return text[:300] if text else response.reason_phrase
    detail = body.get("detail") if isinstance(body, dict) else body
    if isinstance(detail, str):
        return detail
    if isinstance(detail, list):
        parts = []
        for item in detail:
            if isinstance(item, dict):
                where = ".".join(str(part) for part in item.get("loc", []))
                parts.append(f"{where}: {item.get('msg', '')}".strip(": "))
            else:
                parts.append(str(item))
        return "; ".join(parts)
    return json.dumps(detail, ensure_ascii=False)


@lru_cache(maxsize=1)
def _registry() -> dict[str, FeatureSpec]:
    return load_data_config().features


def field_label(name: str, language: str = DEFAULT_LANGUAGE) -> str:
    """Return a form label with its canonical unit, e.g. ``Glucose (mg/dL)``."""
    label = translate(f"field.{name}", language)
    if name == "age":
        return f"{label} ({translate('unit.years', language)})"
    if name == "asa_class":
        return f"{label} ({translate('unit.asa_class', language)})"
    unit = _registry()[name].unit
    return label if unit == "flag" else f"{label} ({unit})"


# --- the page -----------------------------------------------------------------------


def main() -> None:
    """Draw the dashboard page."""
    language = st.session_state.get("language", default_language())
    st.set_page_config(page_title=translate("app.title", language), layout="wide")
    base_url = api_base_url()

    # Sidebar: language and the API's state.
    with st.sidebar:
        language = st.selectbox(
            translate("language.label", language),
            LANGUAGES,
            index=LANGUAGES.index(language),
            format_func=lambda code: translate(f"language.{code}", code),
            key="language",
        )
        st.caption(translate("sidebar.api_url", language, url=base_url))
        version = _cached_health(base_url)
        if version is None:
            st.warning(translate("sidebar.api_unreachable", language, url=base_url))
        else:
            st.success(translate("sidebar.api_ok", language, version=version))

    st.title(translate("app.title", language))
    st.caption(translate("app.subtitle", language))
    st.info(translate("app.disclaimer", language))

    # The form: patient values and the ECG upload.
    submitted, values, uploads = _patient_form(language)
    if submitted:
        _submit(base_url, values, uploads, language)

    # Results stay on screen across reruns (e.g. a language switch).
    if "result" in st.session_state:
        _show_result(st.session_state["result"], language)
    if st.session_state.get("ecg") is not None:
        st.subheader(translate("ecg.header", language))
        result = st.session_state.get("result")
        if result is not None:
            st.write(ecg_measurement_text(result.ecg_measurements, language))
        quality = result.ecg_quality if result is not None else None
        figure = ecg_figure(st.session_state["ecg"], language, quality)
        st.plotly_chart(figure, width="stretch")


@st.cache_data(ttl=15, show_spinner=False)
def _cached_health(base_url: str) -> str | None:
    try:
        return fetch_health(base_url)
    except APIError:
        return None


def _patient_form(
    language: str,
) -> tuple[bool, dict[str, Any], list[tuple[str, bytes]]]:
    def flag_text(option: float | None) -> str:
        if option is None:
            return translate("form.blank", language)
        return translate("form.flag_yes" if option else "form.flag_no", language)

    values: dict[str, Any] = {}
    with st.form("patient"):
        st.subheader(translate("form.header", language))
        st.caption(translate("form.help_blank", language))

        st.markdown(f"**{translate('form.section_demographics', language)}**")
        left, right = st.columns(2)
        values["age"] = left.number_input(
            field_label("age", language), min_value=0, max_value=120, value=None, step=1
        )
        values["sex"] = right.selectbox(
            translate("field.sex", language),
            (None, "male", "female"),
            format_func=lambda option: translate(
                f"form.{option}" if option else "form.blank", language
            ),
        )

        for section in FORM_SECTIONS:
            st.markdown(f"**{translate(f'form.section_{section}', language)}**")
            fields = [item for item in FORM_FIELDS if item.section == section]
            columns = st.columns(3)
            for number, item in enumerate(fields):
                column = columns[number % 3]
                label = field_label(item.name, language)
                if item.kind == "number":
                    low, high = _registry()[item.name].range
                    values[item.name] = column.number_input(
                        label,
                        min_value=float(low),
                        max_value=float(high),
                        value=None,
                        step=item.step,
                        format="%.2f" if item.step < 0.1 else None,
                    )
                elif item.kind == "flag":
                    values[item.name] = column.selectbox(
                        label, (None, 1.0, 0.0), format_func=flag_text
                    )
                else:
                    values[item.name] = column.selectbox(
                        label,
                        (None, 1, 2, 3, 4, 5, 6),
                        format_func=lambda option: (
                            translate("form.blank", language)
                            if option is None
                            else str(option)
                        ),
                    )

        uploaded = st.file_uploader(
            translate("upload.ecg", language),
            type=["hea", "dat", "dcm", "csv"],
            accept_multiple_files=True,
            help=translate("upload.ecg_help", language),
        )
        values["ecg_fs"] = st.number_input(
            translate("upload.ecg_fs", language),
            min_value=50.0,
            max_value=10000.0,
            value=None,
            help=translate("upload.ecg_fs_help", language),
        )
        bundle = st.file_uploader(
            translate("upload.fhir", language),
            type=["json"],
            help=translate("upload.fhir_help", language),
        )
        if bundle is not None:
            values["fhir_bundle"] = (bundle.name, bundle.getvalue())
        image = st.file_uploader(
            translate("upload.image", language),
            type=["dcm", "png"],
            help=translate("upload.image_help", language),
        )
        if image is not None:
            values["image_file"] = (image.name, image.getvalue())
        submitted = st.form_submit_button(translate("form.submit", language))
    uploads = [(file.name, file.getvalue()) for file in uploaded or []]
    return submitted, values, uploads


def _submit(
    base_url: str,
    values: dict[str, Any],
    uploads: list[tuple[str, bytes]],
    language: str,
) -> None:
    st.session_state.pop("result", None)
    st.session_state["ecg"] = None

    # Read the ECG here first: a bad file is explained before anything is sent.
    fs = values.pop("ecg_fs", None)
    bundle = values.pop("fhir_bundle", None)
    image = values.pop("image_file", None)
    try:
        fields = ecg_fields(uploads)
    except InputError:
        found = ", ".join(name for name, _ in uploads)
        st.error(translate("error.ecg_pair", language, found=found))
        return
    if fields:
        try:
            st.session_state["ecg"] = read_uploaded_ecg(fields, fs)
        except InputError as error:
            st.error(translate("error.ecg", language, detail=str(error)))
            return

    # Ask the API, with the FHIR Bundle in place of the form when one is given.
    try:
        patient = read_bundle(*bundle) if bundle else build_patient_payload(values)
        if bundle:
            st.info(translate("upload.fhir_used", language, name=bundle[0]))
        with st.spinner(translate("form.sending", language)):
            result = request_prediction(
                base_url, patient, fields, language, ecg_fs=fs, image=image
            )
    except APIError as error:
        st.error(error.message(language))
        return
    except InputError as error:
        st.error(str(error))
        return
    st.session_state["result"] = result


def _show_result(result: PredictionResult, language: str) -> None:
    rows = risk_rows(result, language)
    for row in rows:
        if row.critical:
            text = translate("results.critical_mi", language, percent=row.percent_text)
            st.markdown(
                '<div role="alert" style="background:#b71c1c;color:#fff;'
                "padding:1rem 1.25rem;border-radius:0.5rem;font-size:1.35rem;"
                f'font-weight:700">🚨 {html.escape(text)}</div>',
                unsafe_allow_html=True,
            )

    # One card per head: percent, band badge, horizon.
    st.header(translate("results.header", language))
    columns = st.columns(max(len(rows), 1))
    for column, row in zip(columns, rows, strict=False):
        badge, _ = BAND_COLOURS[row.band]
        column.metric(row.outcome, row.percent_text)
        column.markdown(f":{badge}-background[**{row.band_text}**] · {row.horizon}")

    # Reasons and modality contributions, a tab per head.
    risks = {risk.head: risk for risk in result.risks}
    tabs = st.tabs([row.outcome for row in rows]) if rows else []
    for tab, row in zip(tabs, rows, strict=False):
        with tab:
            st.subheader(translate("results.reasons", language))
            if row.reasons:
                st.dataframe(row.reasons, hide_index=True, width="stretch")
            else:
                st.caption(translate("results.no_reasons", language))
            if risks[row.head].modality_contributions:
                st.plotly_chart(
                    contribution_figure(risks[row.head], language), width="stretch"
                )
            else:
                st.caption(translate("results.no_contributions", language))

    # The explanation, from input to score, on request (it takes about a second).
    _show_explanation(result, language)

    # Findings: what the ECG or image shows, each with its SNOMED CT concept.
    if result.findings:
        st.subheader(translate("results.findings", language))
        st.dataframe(finding_rows(result, language), hide_index=True, width="stretch")

    # What is missing, what was used, the model version, warnings.
    st.subheader(translate("results.missing", language))
    st.write(missing_text(result, language))
    used = ", ".join(modality_name(name, language) for name in result.modalities_used)
    st.caption(translate("results.used", language, modalities=used))
    st.caption(
        translate("results.model_version", language, version=result.model_version)
    )
    st.caption(
        translate("results.prediction_id", language, prediction_id=result.prediction_id)
    )
    if result.warnings:
        st.warning(
            f"**{translate('results.warnings', language)}**\n\n"
            + "\n".join(f"- {item}" for item in result.warnings)
        )


def _show_explanation(result: PredictionResult, language: str) -> None:
    st.subheader(translate("explain_view.header", language))
    key = f"explanation:{result.prediction_id}:{language}"
    if key not in st.session_state:
        if not st.button(translate("explain_view.button", language)):
            return
        try:
            with st.spinner(translate("explain_view.working", language)):
                st.session_state[key] = request_explanation(
                    api_base_url(), result.prediction_id, language
                )
        except APIError as error:
            st.error(error.message(language))
            return
    explanation: Explanation = st.session_state[key]
    heads = explanation.heads
    tabs = st.tabs([translate(f"head.{h.head}", language) for h in heads])
    for tab, head in zip(tabs, heads, strict=True):
        with tab:
            st.write(head.paragraph)
            if head.modalities_read:
                st.plotly_chart(chain_figure(head, language), width="stretch")
    if explanation.ecg is not None:
        method = st.radio(
            translate("explain_view.method", language),
            ["integrated_gradients", "feature_ablation"],
            format_func=lambda m: translate(f"explain_view.{m}", language),
            horizontal=True,
        )
        st.plotly_chart(
            ecg_attribution_figure(explanation.ecg, method, language), width="stretch"
        )
    if not explanation.concepts_learned:
        st.caption(translate("explain.no_concepts", language))


if __name__ == "__main__":
    main()
