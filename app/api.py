"""The HTTP API: health and predictions (native or FHIR patient, optional ECG)."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Literal, TypeVar

from fastapi import FastAPI, File, Form, HTTPException, Query, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse
from starlette.concurrency import run_in_threadpool

from app.fhir_out import risk_assessment
from app.held import HeldPredictions
from app.schemas import Explanation, Health, PredictionResult
from app.service import NotHeldError, PatientInput, PredictionService
from app.settings import AppSettings, load_settings
from ingest.ecg import read_ecg_upload, read_wfdb_upload
from ingest.errors import CardioriskError, InputError
from ingest.imaging import read_image_bytes
from ingest.schema import ECG, Image

logger = logging.getLogger(__name__)
T = TypeVar("T")

PATIENT_EXAMPLE = {
    "age": 61,
    "sex": "male",
    "features": {"systolic_bp": 148, "total_cholesterol": 240, "current_smoker": 1},
}


def create_app(
    settings: AppSettings | None = None,
    service_factory: Callable[[AppSettings], PredictionService] | None = None,
) -> FastAPI:
    """Build the FastAPI application around one `PredictionService`.

    Parameters
    ----------
    settings : AppSettings, optional
        Defaults to `load_settings()`.
    service_factory : callable, optional
        Builds the service (tests inject their own); by default the registry's
        current (or ``CARDIORISK_MODEL_VERSION``) model version is loaded at start.
    """
    settings = settings or load_settings()
    factory = service_factory or (
        lambda s: PredictionService(
            s.models_path(),
            s.model_version,
            HeldPredictions(s.explanations_kept, s.explanations_minutes),
        )
    )
    api = FastAPI(
        title="cardiorisk",
        version="0.1.0",
        summary="Multimodal cardiovascular risk: acute MI, stroke, post-operative "
        "complications and coronary heart disease, with reasons.",
    )
    api.state.service = factory(settings)
    max_bytes = int(settings.max_upload_mb * 1024 * 1024)

    @api.exception_handler(InputError)
    async def _input_error(request: Request, error: InputError) -> JSONResponse:
        return JSONResponse(status_code=422, content={"detail": str(error)})

    @api.exception_handler(CardioriskError)
    async def _domain_error(request: Request, error: CardioriskError) -> JSONResponse:
        return JSONResponse(status_code=400, content={"detail": str(error)})

    @api.exception_handler(RequestValidationError)
    async def _invalid_request(
        request: Request, error: RequestValidationError
    ) -> JSONResponse:
        first = error.errors()[0]
        field = ".".join(str(part) for part in first["loc"][1:]) or "body"
        message = str(first["msg"]).removeprefix("Value error, ")
        return JSONResponse(
            status_code=422,
            content={"detail": f"request: field '{field}': {message.lower()}"},
        )

    @api.middleware("http")
    async def _unexpected(request: Request, call_next):  # noqa: ANN001, ANN202
        # Anything not handled above ends here, logged by type only (its message
        # may quote patient values) and never re-raised to the server's logger.
        try:
            return await call_next(request)
        except Exception as error:  # noqa: BLE001
            logger.error("unexpected %s on %s", type(error).__name__, request.url.path)
            return JSONResponse(
                status_code=500,
                content={"detail": "internal error; the request was not saved"},
            )

    @api.get(
        "/v1/predictions/{prediction_id}/explanation",
        response_model=Explanation,
        tags=["predictions"],
        responses={404: {"description": "The prediction is not (or no longer) held"}},
    )
    def explanation(
        prediction_id: str,
        language: Annotated[
            Literal["en", "vi"], Query(description="Language of the paragraphs.")
        ] = "en",
    ) -> dict:
        """Explain a prediction made earlier by this service, from input to score.

        Attributions (Integrated Gradients and Feature Ablation) per input, per
        ECG lead and sample, per earlier visit; exact modality Shapley shares;
        the clinical concepts (TCAV) the record's state aligns with, with SNOMED
        CT codes; anomalies per source; the traditional score beside the model;
        and a plain-language paragraph per head.
        """
        try:
            return api.state.service.explanation(prediction_id, language)
        except NotHeldError as error:
            raise HTTPException(status_code=404, detail=str(error)) from error

    @api.get("/", include_in_schema=False)
    def root() -> RedirectResponse:
        """The API's own address leads to its documentation."""
        return RedirectResponse(url="/docs")

    @api.get("/health", response_model=Health, tags=["service"])
    def health() -> Health:
        """Report that the service is up and which model version it serves."""
        return Health(status="ok", model_version=api.state.service.version)

    @api.post(
        "/v1/predictions",
        response_model=PredictionResult,
        tags=["predictions"],
        responses={
            422: {"description": "Bad input: names the field and what was expected"}
        },
    )
    async def predict(
        patient: Annotated[
            str,
            Form(
                description="The patient as JSON in the native schema: `age` (years), "
                "`sex` (male/female), `features` (registry names in canonical units, "
                "see configs/data.yaml) and `timeline` (earlier visits).",
                examples=[json.dumps(PATIENT_EXAMPLE)],
            ),
        ],
        ecg_header: Annotated[
            UploadFile | None, File(description="WFDB header (.hea) of a 12-lead ECG.")
        ] = None,
        ecg_signal: Annotated[
            UploadFile | None,
            File(description="WFDB signal file (.dat) named by the header."),
        ] = None,
        ecg_file: Annotated[
            UploadFile | None,
            File(
                description="A one-file ECG instead of the WFDB pair: a DICOM "
                "12-lead ECG waveform (.dcm) or a CSV with one column per lead."
            ),
        ] = None,
        ecg_fs: Annotated[
            float | None,
            Form(gt=0, description="Sampling frequency (Hz) of a CSV ECG."),
        ] = None,
        image_file: Annotated[
            UploadFile | None,
            File(
                description="A medical image: DICOM (CR/DX/CT/MR, any transfer "
                "syntax pydicom decodes) or PNG. De-identified on reading."
            ),
        ] = None,
        explain: Annotated[
            bool, Query(description="Compute reasons and modality contributions.")
        ] = True,
        language: Annotated[str, Query(pattern="^(en|vi)$")] = "en",
        format: Annotated[
            str,
            Query(
                pattern="^(native|fhir)$",
                description="`fhir` answers with a FHIR R4 RiskAssessment.",
            ),
        ] = "native",
    ) -> PredictionResult | JSONResponse:
        """Risk per head with band, horizon, top five reasons and modality shares.

        `patient` is the native JSON or a FHIR R4 Bundle with one Patient and its
        Observations, Conditions, Procedures and medications. With
        `format=fhir` the answer is a FHIR R4 RiskAssessment
        (`application/fhir+json`).
        """
        service: PredictionService = api.state.service
        try:
            payload = json.loads(patient.removeprefix("\ufeff"))  # BOM from files
        except (json.JSONDecodeError, RecursionError) as error:
            raise InputError(
                "request",
                "patient",
                "a JSON object",
                "invalid or too deeply nested JSON",
            ) from error
        if not isinstance(payload, dict):
            raise InputError(
                "request", "patient", "a JSON object", type(payload).__name__
            )
        if (ecg_header is None) != (ecg_signal is None):
            raise InputError(
                "request",
                "ecg_header/ecg_signal",
                "both files of the WFDB pair",
                "only one",
            )
        if ecg_file is not None and ecg_header is not None:
            raise InputError(
                "request",
                "ecg_file",
                "either ecg_file or the ecg_header/ecg_signal pair",
                "both",
            )
        upload = None
        if ecg_header is not None and ecg_signal is not None:
            upload = ECGUpload(
                Path(ecg_header.filename or "upload.hea").name,
                await _read_limited(ecg_header, max_bytes),
                await _read_limited(ecg_signal, max_bytes),
            )
        elif ecg_file is not None:
            upload = ECGUpload(
                Path(ecg_file.filename or "upload").name,
                await _read_limited(ecg_file, max_bytes),
                fs=ecg_fs,
            )
        image = None
        if image_file is not None:
            image = ImageUpload(
                Path(image_file.filename or "image").name,
                await _read_limited(image_file, max_bytes),
            )
        # The work itself runs in a worker thread: /health stays responsive.
        result, read = await run_in_threadpool(
            _answer, service, payload, upload, image, explain, language
        )
        if format == "fhir":
            resource = risk_assessment(result, read.subject, read.basis)
            return JSONResponse(resource, media_type="application/fhir+json")
        return result

    return api


@dataclass(frozen=True)
class ECGUpload:
    """An uploaded ECG: a WFDB pair (header + signal) or one DICOM/CSV file."""

    name: str
    content: bytes
    signal: bytes | None = None
    fs: float | None = None

    def read(self) -> ECG:
        """Read the ECG with the reader its files call for."""
        if self.signal is not None:
            return read_wfdb_upload(self.content, self.signal, self.name)
        try:
            return read_ecg_upload(self.name, self.content, self.fs)
        except InputError as error:
            if error.field != "fs":
                raise
            expected = f"{error.expected} (send it as the form field ecg_fs)"
            raise InputError(error.source, "ecg_fs", expected, error.found) from error


@dataclass(frozen=True)
class ImageUpload:
    """An uploaded medical image (DICOM or PNG)."""

    name: str
    content: bytes
    notes: list[str] = field(default_factory=list)

    def read(self) -> Image:
        """Read and de-identify the image; what the reader notes goes to ``notes``."""
        return read_image_bytes(self.name, self.content, self.notes)


def _answer(
    service: PredictionService,
    payload: dict,
    upload: ECGUpload | None,
    image_upload: ImageUpload | None,
    explain: bool,
    language: str,
) -> tuple[PredictionResult, PatientInput]:
    """Read the ECG and image, validate the patient and predict (blocking work).

    Returns the prediction and the validated input (for a FHIR answer's subject
    and basis).
    """
    ecg_source = upload.name if upload is not None else "ecg"
    ecg = _reading(ecg_source, "ecg", upload.read) if upload is not None else None
    image_source = image_upload.name if image_upload is not None else "image"
    image = (
        _reading(image_source, "image", image_upload.read)
        if image_upload is not None
        else None
    )
    read = _reading(
        "request",
        "patient",
        lambda: service.record(
            payload,
            ecg,
            "request",
            ecg_source,
            image=image,
            image_source=image_source,
            image_notes=image_upload.notes if image_upload is not None else None,
        ),
    )
    result = service.predict(
        read.record, explain, read.warnings, language, read.ecg, read.ecg_quality
    )
    return result, read


def _reading(source: str, field: str, read: Callable[[], T]) -> T:
    """Run a reader; a library error it lets through is bad input, not a 500.

    Our own errors pass as they are; any other is answered as an unreadable
    input named by source and field, and logged by type only.
    """
    try:
        return read()
    except CardioriskError:
        raise
    except Exception as error:  # noqa: BLE001 - readers wrap many libraries
        logger.warning("reader error %s on an upload", type(error).__name__)
        found = f"a file its reader could not read ({type(error).__name__})"
        raise InputError(source, field, "a readable input", found) from error


async def _read_limited(upload: UploadFile, max_bytes: int) -> bytes:
    content = await upload.read(max_bytes + 1)
    if len(content) > max_bytes:
        raise HTTPException(
            status_code=413,
            detail=f"{upload.filename}: larger than the {max_bytes // 2**20} MB limit",
        )
    return content
