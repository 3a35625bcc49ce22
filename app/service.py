"""The prediction service: one registered model version, predictions with reasons."""

from __future__ import annotations

import functools
import logging
import threading
import uuid
from pathlib import Path
from typing import NamedTuple

import torch

from app.explanation_text import paragraphs
from app.held import HeldPredictions
from app.i18n import (
    Notice,
    format_number,
    has_message,
    input_label,
    lead_label,
    lead_list,
    translate,
    unit_label,
)
from app.schemas import (
    ECGQuality,
    ECGSummary,
    Finding,
    HeadRisk,
    PredictionResult,
    Reason,
)
from explain.anomalies import load_reference_ranges
from explain.attributions import Attribution, integrated_gradients
from explain.concepts import CONCEPTS, ConceptBank
from explain.contributions import modality_shapley
from explain.reasons import reasons
from explain.report import VersionFacts, explain_record, load_explain_settings
from fusion.versions import load_version
from ingest.codes import load_code_tables
from ingest.config import load_data_config
from ingest.ecg import conform_ecg, lead_problems
from ingest.ecg_measurements import ECGMeasurements, measure_window, pathological_q
from ingest.ecg_quality import SignalQuality, assess_signal_quality
from ingest.errors import CardioriskError, InputError
from ingest.fhir import read_fhir_bundle
from ingest.imaging import conform_image
from ingest.ontology import load_ontology
from ingest.patient_json import parse_patient
from ingest.schema import AUXILIARY_TARGETS, ECG, HEADS, TARGETS, Image, PatientRecord
from modalities.batch import MODALITIES, encode_records

logger = logging.getLogger(__name__)


# Fields that say an operation is planned or done (the post-op head's context).
SURGERY_FIELDS = {
    "surgery_major_abdominal",
    "surgery_laparoscopic",
    "surgery_duration",
    "emergency_surgery",
    "asa_class",
}


class NotHeldError(CardioriskError):
    """An explanation was asked for a prediction the service does not hold."""


class PatientInput(NamedTuple):
    """A validated patient, what to tell the user, and its FHIR references.

    ``ecg`` is the ECG as read (its own ``fs``) with the leads the model reads
    as zeros flattened too, for measuring; None when none was given or it was
    set aside for its signal quality (``ecg_quality`` says why).
    """

    record: PatientRecord
    warnings: list[Notice]
    basis: list[dict]
    subject: dict | None
    ecg: ECG | None = None
    ecg_quality: SignalQuality | None = None


class PredictionService:
    """Loads one model version and answers predictions for single patients.

    Parameters
    ----------
    models_dir : Path
        The model registry.
    version : str, optional
        A registered version id; the current one by default.
    """

    def __init__(
        self,
        models_dir: Path,
        version: str | None = None,
        held: HeldPredictions | None = None,
    ) -> None:
        self.model, self.data, self.model_config, self.metadata = load_version(
            models_dir, version
        )
        self.version: str = self.metadata["version"]
        # Explanations: the version's clinical concepts (absent in versions
        # trained before TCAV), settings, reference ranges, recent predictions.
        bank = models_dir / self.version / CONCEPTS
        self.concepts = ConceptBank.load(bank) if bank.is_file() else None
        self.explain_settings = load_explain_settings()
        self.ranges = load_reference_ranges()
        self.held: HeldPredictions = held if held is not None else HeldPredictions()
        # One model pass at a time: explanations hook the model's layers
        # (Captum), and a hook would also fire on another thread's pass.
        self._model_lock = threading.Lock()
        # Readers fill model inputs (as this version knows them, guideline
        # scores excepted: those are computed) and the recorded-only features
        # of the current configs.
        read = {k: v for k, v in self.data.features.items() if not v.derived}
        self.registry = {**load_data_config().registry, **read}
        self.codes = load_code_tables()
        self.ontology = load_ontology()
        # What each target has learned from (targets x modalities).
        self.coverage = self.model.coverage > 0.5
        logger.info("serving model version %s", self.version)

    def record(
        self,
        patient: dict,
        ecg: ECG | None = None,
        source: str = "request",
        ecg_source: str = "ecg",
        image: Image | None = None,
        image_source: str = "image",
        image_notes: list[str] | None = None,
    ) -> PatientInput:
        """Validate a patient (ECG, image) into a record, plus warnings and basis.

        Parameters
        ----------
        patient : dict
            The decoded JSON: the native schema, or a FHIR R4 Bundle holding one
            Patient (``resourceType`` ``Bundle``).
        ecg : ECG, optional
            The ECG as read (any leads, ``fs`` and length; conformed here).
        image : Image, optional
            A medical image as read (any size; conformed here).
        image_notes : list of str, optional
            What the image reader noted (frames dropped, colour converted,
            burned-in annotation); each becomes a warning.
        source, ecg_source, image_source : str
            Names of the patient input, the ECG and the image file, for
            error messages and the basis.

        Returns
        -------
        PatientInput
            The record; warnings (read but not used, set aside, padded, flat);
            the FHIR basis (references to the inputs used); and, for a Bundle,
            a reference to its Patient as the subject.
        """
        warnings: list[Notice] = []
        basis: list[dict] = []
        subject = None
        conformed, quality = (
            self._conform(ecg, ecg_source, warnings) if ecg else (None, None)
        )
        if patient.get("resourceType") is not None:
            record, references = self._from_fhir(patient, source, warnings)
            record.ecg = conformed
            subject = {"reference": references[0]}
            basis += [{"reference": reference} for reference in references[1:]]
        else:
            record = parse_patient(
                patient, self.registry, source, conformed, self.data.timeline_features
            )
        if image is not None:
            used = self._image(image, image_source, image_notes or [], warnings)
            record.images = [used] if used is not None else []
        kept = self.data.max_timeline_steps
        if len(record.timeline) > kept:
            warnings.append(
                Notice("visits_kept", {"given": len(record.timeline), "kept": kept})
            )
        unused = sorted(set(record.features) - set(self.data.features))
        if unused:
            warnings.append(Notice("not_used", {"fields": ", ".join(unused)}))
        if not record.modalities:
            if quality is not None and not quality.usable:
                raise InputError(
                    ecg_source,
                    "signal quality",
                    "beats the model can read (a median neurokit2 template "
                    f"match of its leads >= {quality.min_median:g}), or other "
                    "data of the patient",
                    f"median {quality.median:.2f}: "
                    + quality.describe(list(quality.scores)),
                )
            raise InputError(
                source,
                "patient",
                "at least one feature, an ECG or an earlier visit",
                "no data",
            )
        if conformed is not None:
            basis.append({"display": f"ECG {ecg_source}"})
        if image is not None:
            basis.append({"display": f"image {image_source}"})
        used = _flattened(ecg, quality.poor) if conformed is not None else None
        return PatientInput(record, warnings, basis, subject, used, quality)

    def _image(
        self, image: Image, source: str, notes: list[str], warnings: list[Notice]
    ) -> Image | None:
        """The conformed image, or None (with a warning) when the model cannot use it.

        Raises
        ------
        InputError
            When the image is smaller than the model accepts.
        """
        spec = self.data.imaging
        warnings.extend(
            Notice("image_note", {"source": source, "note": note}) for note in notes
        )
        rows, columns = image.pixels.shape[:2]
        if min(rows, columns) < spec.min_side:
            raise InputError(
                source,
                "pixels",
                f"at least {spec.min_side} pixels a side",
                f"{rows} x {columns}",
            )
        if image.modality not in spec.modalities:
            warnings.append(
                Notice(
                    "image_not_used",
                    {
                        "source": source,
                        "modality": image.modality,
                        "learned": ", ".join(spec.modalities),
                    },
                )
            )
            return None
        return conform_image(image, spec, source)

    def _conform(
        self, ecg: ECG, ecg_source: str, warnings: list[Notice]
    ) -> tuple[ECG | None, SignalQuality]:
        """The ECG as the model reads it (None when set aside), and its quality.

        Leads of poor signal quality are read as zeros, like leads that are
        off; an ECG whose leads are mostly poor is not read at all. Either
        becomes a warning.
        """
        spec = self.data.ecg
        conformed = conform_ecg(ecg, spec, ecg_source)
        quality = assess_signal_quality(
            conformed, spec.min_lead_quality, spec.min_ecg_quality
        )
        if not quality.usable:
            warnings.append(
                Notice(
                    "ecg_set_aside",
                    {
                        "source": ecg_source,
                        "median": round(quality.median, 2),
                        "limit": quality.min_median,
                    },
                )
            )
            return None, quality
        self._lead_warnings(ecg, warnings)
        if quality.poor:
            for lead in quality.poor:
                conformed.signal[spec.leads.index(lead)] = 0.0
            warnings.append(
                Notice(
                    "ecg_poor_leads",
                    {
                        "limit": quality.min_score,
                        "leads": quality.describe(quality.poor),
                    },
                )
            )
        return conformed, quality

    def _lead_warnings(self, ecg: ECG, warnings: list[Notice]) -> None:
        """What the model will not see of ``ecg`` as read (`lead_problems`)."""
        problems = lead_problems(ecg, self.data.ecg)
        if problems["missing"]:
            missing = lead_list(problems["missing"])
            warnings.append(Notice("ecg_leads_missing", {"leads": missing}))
        if problems["flat"]:
            flat = lead_list(problems["flat"])
            warnings.append(Notice("ecg_leads_flat", {"leads": flat}))
        warnings += [Notice("ecg_note", {"note": n}) for n in problems["trimmed"]]
        if problems["gaps"]:
            gaps = functools.partial(_gaps, problems["gaps"])
            warnings.append(Notice("ecg_gaps", {"leads": gaps}))
        if problems["ignored"]:
            ignored = ", ".join(problems["ignored"])
            warnings.append(Notice("ecg_ignored", {"leads": ignored}))
        if ecg.duration_s < self.data.ecg.duration_s:
            warnings.append(
                Notice(
                    "ecg_short",
                    {
                        "seconds": round(ecg.duration_s, 1),
                        "model_seconds": self.data.ecg.duration_s,
                    },
                )
            )

    def _from_fhir(
        self, bundle: dict, source: str, warnings: list[Notice]
    ) -> tuple[PatientRecord, list[str]]:
        if bundle.get("resourceType") != "Bundle":
            found = str(bundle.get("resourceType"))[:40]
            raise InputError(source, "resourceType", "Bundle", found)
        read = read_fhir_bundle(
            bundle,
            source=source,
            registry=self.registry,
            codes=self.codes,
            timeline_features=self.data.timeline_features,
            max_timeline_steps=self.data.max_timeline_steps,
            site="request",
        )
        if len(read.records) != 1:
            raise InputError(
                source,
                "entry",
                "one Patient and the data that refer to it",
                f"{len(read.records)} patients with usable data",
            )
        # Set-aside parts of the Bundle are reported, never silently dropped.
        warnings += [
            Notice(
                "set_aside",
                {"record": item.record_id, "field": item.field, "reason": item.reason},
            )
            for item in read.quarantine
        ]
        warnings += [
            Notice("ignored", {"reason": reason, "count": n})
            for reason, n in read.ignored.items()
        ]
        # The subject is the Bundle's one Patient, and the data must be its own.
        record = read.records[0]
        references = read.basis.get(record.patient_id, [])
        patients = _patient_references(bundle)
        if len(patients) != 1 or not references or references[0] not in patients[0]:
            found = (
                f"{len(patients)} Patient resources"
                if len(patients) != 1
                else "data referring to a Patient not in the Bundle"
            )
            raise InputError(
                source, "entry", "one Patient and the data that refer to it", found
            )
        return record, references

    def predict(
        self,
        record: PatientRecord,
        explain: bool = True,
        warnings: list[Notice] | None = None,
        language: str = "en",
        ecg: ECG | None = None,
        ecg_quality: SignalQuality | None = None,
    ) -> PredictionResult:
        """Risk per head with band, horizon, top reasons and modality contributions.

        Parameters
        ----------
        record : PatientRecord
            A validated record (see `record`).
        explain : bool
            Compute Integrated Gradients reasons and modality Shapley values.
        warnings : list of Notice, optional
            Warnings from reading the input (`PatientInput.warnings`), passed
            through with the prediction's own.
        language : str
            Language of head and reason names and of the warnings (message
            catalog: en, vi).
        ecg : ECG, optional
            The ECG as read (own ``fs``), measured for `ECGSummary`
            (`PatientInput.ecg`).
        ecg_quality : SignalQuality, optional
            Its signal quality (`PatientInput.ecg_quality`), reported with the
            prediction and its explanation.
        """
        notices = list(warnings or []) + self._outside_training(record)
        with self._model_lock:
            result = self._predict(record, explain, notices, language, ecg)
        result.ecg_quality = quality_summary(ecg_quality)
        self.held.put(
            result.prediction_id,
            {
                "record": record,
                "ecg": ecg,
                "ecg_quality": result.ecg_quality.model_dump()
                if result.ecg_quality
                else None,
                "warnings": notices,
            },
        )
        return result

    def _predict(
        self,
        record: PatientRecord,
        explain: bool,
        notices: list[Notice],
        language: str,
        ecg: ECG | None,
    ) -> PredictionResult:
        """The prediction; ``notices`` gains what it finds and is put in words."""
        inputs = encode_records([record], self.data)
        with torch.no_grad():
            risks = torch.sigmoid(self.model(*inputs.forward_args()))[0]
        contributions = modality_shapley(self.model, inputs) if explain else None
        used = [m for i, m in enumerate(MODALITIES) if bool(inputs.modality_mask[0, i])]
        heads = []
        for index, head in enumerate(HEADS):
            spec = self.model_config.heads[head]
            risk = float(risks[index])
            read = self._read_by(index, used)
            named = {"head": functools.partial(_head_name, head)}
            if not read:
                notices.append(Notice("head_no_data", named))
            if head == "postop" and read and not SURGERY_FIELDS & set(record.features):
                notices.append(Notice("postop_no_surgery", named))
            head_reasons = []
            if explain and read:
                attribution = integrated_gradients(self.model, inputs, index)
                head_reasons = self._reasons(attribution, record, language)
            heads.append(
                HeadRisk(
                    head=head,
                    label=translate(f"head.{head}", language),
                    risk=risk,
                    percent=round(100 * risk, 1),
                    band=spec.band(risk),
                    horizon_years=spec.horizon_years,
                    reasons=head_reasons,
                    modality_contributions={
                        m: share
                        for m, share in contributions[index].items()
                        if m in read
                    }
                    if contributions
                    else {},
                    modalities_used=read,
                )
            )
        findings = []
        for target in AUXILIARY_TARGETS:
            index = TARGETS.index(target)
            read = self._read_by(index, used)
            # A finding is shown only from the modality that was labelled for it
            # (demographics alone never suggest cardiomegaly).
            if set(read) - {"tabular"}:
                concept = self.ontology.concept_of_target(target)
                probability = float(risks[index])
                findings.append(
                    Finding(
                        target=target,
                        label=translate(f"finding.{target}", language),
                        probability=probability,
                        percent=round(100 * probability, 1),
                        concept=concept,
                        concept_snomed=self.ontology.concepts[concept].snomed
                        if concept
                        else None,
                        modalities_used=read,
                    )
                )
        for modality in used:
            column = MODALITIES.index(modality)
            if not self.coverage[: len(HEADS), column].any():
                informs = [
                    target
                    for i, target in enumerate(TARGETS)
                    if i >= len(HEADS) and self.coverage[i, column]
                ]
                notices.append(
                    Notice(
                        "modality_informs_only",
                        {"modality": modality, "targets": ", ".join(informs)},
                    )
                    if informs
                    else Notice("modality_unused", {"modality": modality})
                )
        return PredictionResult(
            prediction_id=str(uuid.uuid4()),
            model_version=self.version,
            modalities_used=used,
            modalities_missing=[m for m in MODALITIES if m not in used],
            risks=heads,
            findings=findings,
            ecg_measurements=ecg_summary(ecg) if ecg is not None else None,
            warnings=[notice.text(language) for notice in notices],
        )

    def _outside_training(self, record: PatientRecord) -> list[Notice]:
        """A notice per value beyond what this version's training records held.

        The bounds are the 0.5th and 99.5th percentiles of each feature over
        the training split (``seen_ranges`` in the version's metadata; a
        version registered before they were kept has none, and no notices).
        """
        found = []
        for name, (low, high) in self.metadata.get("seen_ranges", {}).items():
            value = record.features.get(name)
            if value is None or low <= value <= high:
                continue
            found.append(
                Notice(
                    "outside_training",
                    {
                        "label": functools.partial(input_label, name),
                        "value": value,
                        "unit": functools.partial(unit_label, self.registry[name].unit),
                        "low": low,
                        "high": high,
                    },
                )
            )
        return found

    def explain(self, record: PatientRecord, ecg: ECG | None = None) -> dict:
        """The full explanation of one record (`explain.report.explain_record`).

        Each head also gets its risk ``band``; anomalies of the ECG are measured
        on the ECG as read (its own ``fs``) when given.
        """
        measurements = measure_window(ecg) if ecg is not None else None
        with self._model_lock:
            explanation = self._explain_record(record, measurements)
        for entry in explanation["heads"]:
            entry["band"] = self.model_config.heads[entry["head"]].band(entry["risk"])
        explanation["concepts_learned"] = self.concepts is not None
        return explanation

    def _explain_record(
        self, record: PatientRecord, measurements: ECGMeasurements | None
    ) -> dict:
        return explain_record(
            self.model,
            record,
            self.data,
            self.ontology,
            VersionFacts.of(self.metadata),
            self.concepts,
            self.explain_settings,
            self.ranges,
            measurements,
        )

    def explanation(self, prediction_id: str, language: str = "en") -> dict:
        """The explanation of a prediction this service made, with its paragraphs.

        Raises
        ------
        NotHeldError
            When the prediction is not (or no longer) held in memory.
        """
        held = self.held.get(prediction_id)
        if held is None:
            shown = prediction_id if len(prediction_id) <= 64 else "given"
            raise NotHeldError(
                f"prediction {shown!r}: not held by this service (it keeps "
                f"the last {self.held.capacity} predictions for "
                f"{self.held.seconds / 60:g} minutes, in memory only); post the "
                "patient again to /v1/predictions"
            )
        if "explanation" not in held:
            held = {**held, "explanation": self.explain(held["record"], held["ecg"])}
            self.held.replace(prediction_id, held)
        explanation = {
            **held["explanation"],
            "ecg_quality": held["ecg_quality"],
        }
        text = paragraphs(explanation, language)
        return {
            "prediction_id": prediction_id,
            "model_version": self.version,
            "language": language,
            "warnings": [notice.text(language) for notice in held["warnings"]],
            **explanation,
            "heads": [
                {**entry, "paragraph": text[entry["head"]]}
                for entry in explanation["heads"]
            ],
        }

    def _read_by(self, index: int, used: list[str]) -> list[str]:
        """The given modalities the target at ``index`` has learned from."""
        return [m for m in used if self.coverage[index, MODALITIES.index(m)]]

    def _reasons(
        self, attribution: Attribution, record: PatientRecord, language: str
    ) -> list[Reason]:
        found = []
        for item in reasons(attribution, record, self.data, ontology=self.ontology):
            unit_key = f"unit.{item['unit']}"
            if item["unit"] and has_message(unit_key, language):
                item["unit"] = translate(unit_key, language)
            label = reason_label(item["name"], record, language)
            found.append(Reason(label=label, **item))
        return found


def _patient_references(bundle: dict) -> list[set[str]]:
    """For each Patient of the Bundle, every way its entries may refer to it."""
    found = []
    for entry in bundle.get("entry") or []:
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if not isinstance(resource, dict) or resource.get("resourceType") != "Patient":
            continue
        references = set()
        if isinstance(entry.get("fullUrl"), str):
            references.add(entry["fullUrl"])
        if isinstance(resource.get("id"), str):
            references.add(f"Patient/{resource['id']}")
        found.append(references)
    return found


def quality_summary(quality: SignalQuality | None) -> ECGQuality | None:
    """The ECG's signal quality as an answer reports it (None without one)."""
    if quality is None:
        return None
    return ECGQuality(
        scores={
            lead: None if score is None else round(score, 3)
            for lead, score in quality.scores.items()
        },
        reference_lead=quality.reference_lead,
        min_score=quality.min_score,
        median=round(quality.median, 3),
        min_median=quality.min_median,
        poor=quality.poor,
        used=quality.usable,
    )


def _flattened(ecg: ECG, leads: list[str]) -> ECG:
    """``ecg`` with ``leads`` set to zeros (a copy when there are any)."""
    rows = [row for row, lead in enumerate(ecg.lead_names) if lead in leads]
    if not rows:
        return ecg
    signal = ecg.signal.copy()
    signal[rows] = 0.0
    return ECG(signal, ecg.fs, list(ecg.lead_names))


def _head_name(head: str, language: str) -> str:
    return translate(f"head.{head}", language)


def _gaps(gaps: dict[str, float], language: str) -> str:
    """Leads with missing samples and how long, written for ``language``."""
    return ", ".join(
        f"{lead_label(lead)} {format_number(seconds, language, 2)} s"
        for lead, seconds in gaps.items()
    )


def ecg_summary(ecg: ECG) -> ECGSummary | None:
    """Rate, intervals, ST deviation and Q waves of the stretch the model reads."""
    found = measure_window(ecg)
    if found is None:
        return None
    rounded = {
        name: None if value is None else round(value, 1)
        for name, value in (
            ("pr_ms", found.pr_ms),
            ("qrs_ms", found.qrs_ms),
            ("qt_ms", found.qt_ms),
            ("qtc_ms", found.qtc_ms),
        )
    }
    return ECGSummary(
        heart_rate_bpm=round(found.heart_rate_bpm, 1),
        st_deviation_mv={k: round(v, 3) for k, v in found.st_deviation_mv.items()},
        q_wave_leads=[
            lead for lead, m in found.leads.items() if pathological_q(lead, m)
        ],
        **rounded,
    )


def reason_label(name: str, record: PatientRecord, language: str) -> str:
    """A reason's clinical name (`app.i18n.input_label`), visits dated by the record."""
    kind, _, detail = name.partition(":")
    years = record.timeline[int(detail)].years_before if kind == "timeline" else None
    return input_label(name, language, years)
