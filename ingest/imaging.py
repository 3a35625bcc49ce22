"""Reading medical images (DICOM, PNG) as de-identified grey `Image`s.

DICOM files are de-identified (`ingest.deid`) as soon as they are parsed, checked
before any pixel is decoded (pixel data present, size within limits, a decoder
installed for the transfer syntax), decoded one frame at a time by pydicom and
its plugins, and put through the modality LUT or rescale (e.g. to Hounsfield
units). The result is grey, larger values brighter; windowing (the VOI LUT) is a
display matter and is not applied. PNG files are read with Pillow.

Whatever a caller should know about a reading (a colour image made grey, a frame
taken out of many, an unusual rescale) is appended to the optional ``notes``
list, as the table readers append to their quarantine list.
"""

from __future__ import annotations

import io
import logging
import math
import secrets
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pydicom
from PIL import Image as PILImage
from pydicom import config
from pydicom.dataset import Dataset
from pydicom.pixels import apply_color_lut, apply_modality_lut, get_decoder
from pydicom.pixels.decoders.base import Decoder
from pydicom.uid import UID

from ingest.config import ImagingSpec
from ingest.deid import burned_in_note, deidentify
from ingest.errors import InputError
from ingest.schema import Image

logger = logging.getLogger(__name__)

MAX_FILE_BYTES = 256 * 1024**2  # larger files are refused unread
MAX_SIDE_PX = 8192  # rows or columns beyond this are refused before decoding
MAX_DECODED_BYTES = 64 * 1024**2  # one decoded frame, at its stored bit depth
DICOM_MAGIC = b"DICM"  # at byte 128, after the preamble (PS3.10 7.1)
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
# ITU-R BT.601 luma weights for R, G, B (the weights of Pillow's "L" conversion).
LUMA_WEIGHTS = np.array([0.299, 0.587, 0.114], dtype=np.float32)
PIXEL_KEYWORDS = ("PixelData", "FloatPixelData", "DoubleFloatPixelData")
MONOCHROME = {"MONOCHROME1", "MONOCHROME2"}
# Colour interpretations made grey: RGB through `LUMA_WEIGHTS`; for YCbCr the
# luma (Y) is the first sample already.
COLOUR = {"RGB", "YBR_FULL", "YBR_FULL_422", "YBR_PARTIAL_420", "YBR_PARTIAL_422"}
COLOUR |= {"YBR_ICT", "YBR_RCT"}
BITS_ALLOCATED = {1, 8, 16, 32, 64}
# Pillow modes read as they are (grey), and the bytes per pixel of each mode.
PNG_GREY_MODES = {"1", "L", "I", "I;16", "I;16B", "I;16L", "F"}
PNG_COLOUR_MODES = {"RGB", "RGBA", "P", "PA", "LA"}
PNG_BYTES_PER_PIXEL = {"1": 1, "L": 1, "P": 1, "LA": 2, "PA": 2, "RGB": 3}
PNG_BYTES_PER_PIXEL |= {"RGBA": 4, "I": 4, "F": 4, "I;16": 2, "I;16B": 2, "I;16L": 2}


def read_image(path: str | Path, notes: list[str] | None = None) -> Image:
    """Read a DICOM or PNG file as a grey, de-identified `Image`.

    Parameters
    ----------
    path : str or Path
        The file; its format is told by its content (the ``DICM`` marker or the
        PNG signature), not by its name.
    notes : list of str, optional
        Appended to: what the caller should know about the reading (colour made
        grey, first of several frames taken, a negative rescale slope,
        burned-in annotation). Never holds a patient's identifier or value.

    Returns
    -------
    Image
        Rows x columns float32 pixels after the modality LUT / rescale, larger
        values brighter, with the modality, pixel spacing (mm) and view.

    Raises
    ------
    InputError
        Naming the file and the field: a missing or unreadable file, a format
        other than DICOM or PNG, no pixel data, an image too large, a transfer
        syntax without an installed decoder, a zero rescale slope, pixel data
        that does not decode.
    """
    path = Path(path)
    return read_image_bytes(path.name, _file_content(path), notes)


def read_image_bytes(
    name: str, content: bytes, notes: list[str] | None = None
) -> Image:
    """Read an uploaded DICOM or PNG file's content as a grey, de-identified `Image`.

    Parameters
    ----------
    name : str
        The file's name, used in error messages only.
    content : bytes
        The file's content.
    notes : list of str, optional
        Appended to, as in `read_image`.

    Returns
    -------
    Image
        As `read_image` returns it.

    Raises
    ------
    InputError
        As `read_image` raises it; also for empty or oversized content.
    """
    notes = [] if notes is None else notes
    _check_size(name, len(content))
    if content.startswith(PNG_MAGIC):
        image = _png_image(name, content, notes)
    elif content[128:132] == DICOM_MAGIC:
        image = _dicom_image(name, _parse_dicom(name, content), notes)
    else:
        raise InputError(
            name,
            "format",
            "a DICOM file (with the DICM marker) or a PNG image",
            "neither",
        )
    rows, columns = image.pixels.shape
    logger.debug(
        "read a %s image, %d x %d px, %d note(s)",
        image.modality,
        rows,
        columns,
        len(notes),
    )
    return image


def deidentified_dataset(
    path: str | Path, salt: bytes, notes: list[str] | None = None
) -> Dataset:
    """Read a DICOM file and return it de-identified, for callers that store DICOM.

    Any DICOM object is accepted (images, ECG waveforms, reports); nothing is
    decoded. See `ingest.deid.deidentify` for what is removed and kept.

    Parameters
    ----------
    path : str or Path
        The DICOM file.
    salt : bytes
        The caller's secret for the UID mapping (at least 16 bytes), the same for
        every file whose links must survive.
    notes : list of str, optional
        Appended to, as `ingest.deid.deidentify` does.

    Returns
    -------
    pydicom.Dataset
        The de-identified dataset, with rebuilt file meta information.

    Raises
    ------
    InputError
        A missing, oversized or unreadable file, or one that is not DICOM.
    """
    path = Path(path)
    content = _file_content(path)
    if content[128:132] != DICOM_MAGIC:
        raise InputError(
            path.name, "format", "a DICOM file (with the DICM marker)", "no marker"
        )
    return _deidentified(path.name, _parse_dicom(path.name, content), salt, notes)


def _file_content(path: Path) -> bytes:
    """The file's bytes, after checking it exists and is not too large."""
    if not path.is_file():
        raise InputError(path.name, "file", "an existing image file", "no such file")
    _check_size(path.name, path.stat().st_size)
    return path.read_bytes()


def _check_size(name: str, size: int) -> None:
    if size == 0:
        raise InputError(name, "file", "a DICOM or PNG image", "an empty file")
    if size > MAX_FILE_BYTES:
        raise InputError(
            name,
            "file size",
            f"at most {MAX_FILE_BYTES // 1024**2} MB",
            f"{size / 1024**2:.0f} MB",
        )


def _parse_dicom(name: str, content: bytes) -> Dataset:
    """Parse a DICOM file (pixel data left encoded)."""
    try:
        with config.disable_value_validation():  # its warnings would log values
            return pydicom.dcmread(io.BytesIO(content))
    except Exception as error:  # pydicom raises many kinds on malformed files
        raise InputError(
            name, "file", "a readable DICOM file", f"{type(error).__name__}"
        ) from error


def _dicom_image(name: str, ds: Dataset, notes: list[str]) -> Image:
    """The first frame of a parsed DICOM dataset as a grey `Image`."""
    # Step 1: de-identify before anything is kept; the salt is thrown away, as
    # no UID of this dataset outlives the call.
    ds = _deidentified(name, ds, secrets.token_bytes(32), [])
    burned_in = burned_in_note(ds)
    if burned_in:
        notes.append(burned_in)

    # Step 2: an image, of a size worth decoding.
    if not any(keyword in ds for keyword in PIXEL_KEYWORDS):
        sop_class = ds.get("SOPClassUID")
        kind = sop_class.name if isinstance(sop_class, UID) else "no SOP Class UID"
        raise InputError(
            name, "PixelData", "an image (a Pixel Data element)", f"none ({kind})"
        )
    frames = _check_geometry(name, ds)
    if frames > 1:
        notes.append(f"first of {frames} frames taken")

    # Step 3: a decoder for the transfer syntax, installed.
    decoder = _decoder(name, ds)

    # Step 4: the first frame, decoded.
    try:
        with config.disable_value_validation():
            stored, properties = decoder.as_array(ds, index=0)
    except Exception as error:  # decoders raise many kinds on corrupt data
        raise InputError(
            name,
            "PixelData",
            "pixel data that decodes with the file's own attributes",
            f"{type(error).__name__}: {str(error)[:200]}",
        ) from error

    # Step 5: grey, larger values brighter, in the modality's unit.
    photometric = str(properties.get("photometric_interpretation", "")).strip()
    if photometric in MONOCHROME:
        pixels = _monochrome(name, ds, stored, photometric, notes)
    elif photometric == "PALETTE COLOR":
        rgb = _with_lut(
            name, "PaletteColorLookupTableData", apply_color_lut, stored, ds
        )
        pixels = _grey(rgb.astype(np.float32), "RGB")
        notes.append("PALETTE COLOR converted to grey through its palette")
    elif photometric in COLOUR:
        if stored.ndim != 3 or stored.shape[-1] != 3:
            raise InputError(
                name,
                "SamplesPerPixel",
                f"3 for {photometric}",
                str(ds.get("SamplesPerPixel", "none")),
            )
        pixels = _grey(stored.astype(np.float32), photometric)
        notes.append(f"{photometric} converted to grey (luma)")
    else:
        raise InputError(
            name,
            "PhotometricInterpretation",
            "MONOCHROME1, MONOCHROME2, PALETTE COLOR, RGB or YBR_*",
            repr(photometric)[:40],
        )

    # Step 6: values a model can use (a huge slope makes every pixel infinite).
    if not np.isfinite(pixels).all():
        raise InputError(
            name,
            "RescaleSlope",
            "a rescale that keeps pixel values finite",
            "infinite or undefined values after the modality LUT",
        )

    # Step 7: the geometry the model may need.
    return Image(
        pixels=np.ascontiguousarray(pixels, dtype=np.float32),
        modality=str(ds.get("Modality") or "OT").strip() or "OT",
        pixel_spacing_mm=_pixel_spacing(ds, notes),
        view=str(ds.get("ViewPosition") or "").strip().upper() or None,
    )


def _deidentified(name: str, ds: Dataset, salt: bytes, notes: list[str]) -> Dataset:
    """`deidentify`, with a malformed attribute reported as the file's fault."""
    try:
        return deidentify(ds, salt, notes)
    except InputError:
        raise
    except Exception as error:  # pydicom raises many kinds on malformed values
        raise InputError(
            name,
            "attributes",
            "DICOM attributes that can be read",
            type(error).__name__,
        ) from error


def _with_lut(
    name: str, field: str, apply: Callable[..., np.ndarray], *arguments: object
) -> np.ndarray:
    """Apply one of pydicom's lookup-table functions; a malformed table is an error."""
    try:
        return apply(*arguments)
    except Exception as error:  # malformed descriptors fail in many ways
        raise InputError(
            name,
            field,
            "a lookup table consistent with the pixel data",
            type(error).__name__,
        ) from error


def _check_geometry(name: str, ds: Dataset) -> int:
    """Check the image's size before decoding; return the number of frames."""
    sizes = {}
    for keyword in ("Rows", "Columns", "SamplesPerPixel", "BitsAllocated"):
        value = ds.get(keyword)
        if not isinstance(value, int) or value < 1:
            raise InputError(name, keyword, "a positive integer", repr(value)[:40])
        sizes[keyword] = value
    rows, columns = sizes["Rows"], sizes["Columns"]
    if rows > MAX_SIDE_PX or columns > MAX_SIDE_PX:
        raise InputError(
            name,
            "Rows, Columns",
            f"at most {MAX_SIDE_PX} px a side",
            f"{rows} x {columns} px",
        )
    if sizes["BitsAllocated"] not in BITS_ALLOCATED:
        raise InputError(
            name,
            "BitsAllocated",
            f"one of {sorted(BITS_ALLOCATED)}",
            str(sizes["BitsAllocated"]),
        )
    frame_bytes = (
        rows
        * columns
        * sizes["SamplesPerPixel"]
        * math.ceil(sizes["BitsAllocated"] / 8)
    )
    if frame_bytes > MAX_DECODED_BYTES:
        raise InputError(
            name,
            "Rows, Columns, SamplesPerPixel, BitsAllocated",
            f"a frame of at most {MAX_DECODED_BYTES // 1024**2} MB decoded",
            f"{frame_bytes / 1024**2:.0f} MB",
        )
    frames = ds.get("NumberOfFrames", 1)
    try:
        frames = int(frames if frames not in (None, "") else 1)
    except (TypeError, ValueError):
        raise InputError(
            name, "NumberOfFrames", "a positive integer", repr(frames)[:40]
        ) from None
    if frames < 1:
        raise InputError(name, "NumberOfFrames", "a positive integer", str(frames))
    return frames


def _decoder(name: str, ds: Dataset) -> Decoder:
    """The decoder for the dataset's transfer syntax, if one is installed."""
    meta = getattr(ds, "file_meta", None)
    syntax = meta.get("TransferSyntaxUID") if meta else None
    if not isinstance(syntax, UID) or not syntax:
        found = "none" if not syntax else "not a single UID"
        raise InputError(
            name, "TransferSyntaxUID", "one transfer syntax UID in the file meta", found
        )
    found = f"{syntax.name} ({syntax})" if syntax.name != str(syntax) else str(syntax)
    try:
        decoder = get_decoder(syntax)
    except NotImplementedError:
        raise InputError(
            name,
            "TransferSyntaxUID",
            "a transfer syntax pydicom can decode (native, deflated, RLE, JPEG, "
            "JPEG-LS, JPEG 2000, HTJ2K); no package known to decode this one, so "
            "convert the file first",
            found,
        ) from None
    if not decoder.is_available:
        packages = "; ".join(decoder.missing_dependencies)
        raise InputError(
            name,
            "TransferSyntaxUID",
            f"a transfer syntax with an installed decoder; install one of: {packages}",
            found,
        )
    return decoder


def _monochrome(
    name: str,
    ds: Dataset,
    stored: np.ndarray,
    photometric: str,
    notes: list[str],
) -> np.ndarray:
    """Modality LUT / rescale, then MONOCHROME1 inverted so larger is brighter."""
    lut = _modality_lut_source(name, ds, notes)
    field = "ModalityLUTSequence"
    values = _with_lut(name, field, apply_modality_lut, stored, lut).astype(np.float64)
    if photometric == "MONOCHROME2":
        return values
    # MONOCHROME1: the minimum is shown white. Mirror the values within the range
    # the modality LUT gives the stored bit depth, so it stays the same range.
    low, high = _stored_range(ds, stored)
    ends = _with_lut(name, field, apply_modality_lut, np.array([low, high]), lut)
    ends = ends.astype(np.float64)
    return ends.min() + ends.max() - values


def _modality_lut_source(name: str, ds: Dataset, notes: list[str]) -> Dataset:
    """The dataset holding frame 0's modality LUT or rescale, checked.

    Enhanced multi-frame objects keep the rescale in the per-frame or shared
    functional groups (Pixel Value Transformation Sequence) instead of the top
    level.
    """
    if "ModalityLUTSequence" in ds:
        return ds
    source = ds
    if "RescaleSlope" not in ds and "RescaleIntercept" not in ds:
        for keyword in (
            "PerFrameFunctionalGroupsSequence",
            "SharedFunctionalGroupsSequence",
        ):
            groups = ds.get(keyword) or []
            transform = (
                groups[0].get("PixelValueTransformationSequence") if groups else None
            )
            if transform:
                source = transform[0]
                break
    if "RescaleSlope" not in source and "RescaleIntercept" not in source:
        return source
    slope = _number(name, "RescaleSlope", source.get("RescaleSlope", 1))
    intercept = _number(name, "RescaleIntercept", source.get("RescaleIntercept", 0))
    if slope == 0:
        raise InputError(
            name,
            "RescaleSlope",
            "a non-zero number (a zero slope makes every pixel the same value)",
            "0",
        )
    if slope < 0:
        notes.append(
            f"RescaleSlope is negative ({slope:g}): applied as given, which "
            "reverses the order of the stored values"
        )
    checked = Dataset()
    checked.RescaleSlope = slope
    checked.RescaleIntercept = intercept
    return checked


def _number(name: str, keyword: str, value: object) -> float:
    """A finite number from a DS value, else an `InputError` naming `keyword`."""
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        number = math.nan
    if not math.isfinite(number):
        raise InputError(name, keyword, "a finite number", repr(value)[:40])
    return number


def _stored_range(ds: Dataset, stored: np.ndarray) -> tuple[float, float]:
    """The smallest and largest value the stored bit depth allows."""
    bits = ds.get("BitsStored")
    if "PixelData" not in ds or not isinstance(bits, int) or bits < 1:
        return float(np.min(stored)), float(np.max(stored))  # float pixel data
    if ds.get("PixelRepresentation") == 1:
        return float(-(2 ** (bits - 1))), float(2 ** (bits - 1) - 1)
    return 0.0, float(2**bits - 1)


def _grey(colour: np.ndarray, space: str) -> np.ndarray:
    """Grey (luma) from rows x columns x 3 colour samples."""
    if space.startswith("YBR"):
        return colour[..., 0]
    return colour[..., :3] @ LUMA_WEIGHTS


def _pixel_spacing(ds: Dataset, notes: list[str]) -> tuple[float, float] | None:
    """Row and column spacing in mm, from Pixel Spacing or Imager Pixel Spacing."""
    for keyword in ("PixelSpacing", "ImagerPixelSpacing"):
        value = ds.get(keyword)
        if value in (None, ""):
            continue
        try:
            spacing = tuple(float(v) for v in value)
        except (TypeError, ValueError):
            spacing = ()
        if len(spacing) != 2 or not all(math.isfinite(v) and v > 0 for v in spacing):
            notes.append(f"{keyword} is not two positive numbers; spacing unknown")
            return None
        if keyword == "ImagerPixelSpacing":
            notes.append(
                "spacing from ImagerPixelSpacing: at the detector, not corrected "
                "for magnification"
            )
        return spacing[0], spacing[1]
    return None


def _png_image(name: str, content: bytes, notes: list[str]) -> Image:
    """A PNG image as a grey `Image` (8- or 16-bit grey kept; colour made grey)."""
    try:
        with PILImage.open(io.BytesIO(content), formats=["PNG"]) as png:
            # Step 1: the size, from the header, before decoding.
            columns, rows = png.size
            mode = png.mode
            if rows > MAX_SIDE_PX or columns > MAX_SIDE_PX:
                raise InputError(
                    name,
                    "size",
                    f"at most {MAX_SIDE_PX} px a side",
                    f"{rows} x {columns} px",
                )
            decoded = rows * columns * PNG_BYTES_PER_PIXEL.get(mode, 4)
            if decoded > MAX_DECODED_BYTES:
                raise InputError(
                    name,
                    "size",
                    f"an image of at most {MAX_DECODED_BYTES // 1024**2} MB decoded",
                    f"{decoded / 1024**2:.0f} MB",
                )
            frames = getattr(png, "n_frames", 1)
            if frames > 1:
                notes.append(f"first of {frames} frames taken")

            # Step 2: the samples, grey as stored or made grey.
            if mode in PNG_GREY_MODES:
                pixels = np.asarray(png, dtype=np.float32)
            elif mode in PNG_COLOUR_MODES:
                if mode in {"LA", "PA", "RGBA"} or "transparency" in png.info:
                    notes.append("alpha (transparency) dropped")
                if mode == "LA":
                    pixels = np.asarray(png.getchannel("L"), dtype=np.float32)
                else:
                    rgb = np.asarray(png.convert("RGB"), dtype=np.float32)
                    pixels = _grey(rgb, "RGB")
                    notes.append(f"{mode} converted to grey (luma)")
            else:
                raise InputError(name, "mode", "a grey or colour PNG", repr(mode)[:40])
    except InputError:
        raise
    except Exception as error:  # Pillow raises many kinds on corrupt files
        raise InputError(
            name, "PNG", "a readable PNG image", f"{type(error).__name__}"
        ) from error
    return Image(pixels=np.ascontiguousarray(pixels), modality="PNG")


# --- conforming to the model -------------------------------------------------

WINDOW_PERCENTILES = (1.0, 99.0)  # intensities mapped to 0 and 1


def _box_reduced(pixels: np.ndarray, size: int) -> np.ndarray:
    """Average blocks of a much larger image first (Pillow's ``reduce``).

    Only images over four times the model's side, and down to no less than
    that, so the later steps work on a small array: an 8192-pixel image would
    otherwise be copied at full size several times. The final resize does the
    rest; smaller images (the NIH chest X-rays) go to it unchanged.
    """
    factor = min(pixels.shape) // (4 * size)
    if factor < 2:
        return pixels
    return np.asarray(PILImage.fromarray(pixels).reduce(factor), dtype=np.float32)


def conform_image(image: Image, spec: ImagingSpec, source: str = "image") -> Image:
    """Pad to a square, resize to the model's size and map intensities to 0..1.

    Parameters
    ----------
    image : Image
        The image as read (any size, modality unit).
    spec : ImagingSpec
        The model's side length in pixels.
    source : str
        File name used in error messages.

    Returns
    -------
    Image
        ``spec.size`` x ``spec.size`` float32: the 1st and 99th intensity
        percentiles map to 0 and 1 (clipped), so CR, CT in Hounsfield units and
        8- or 16-bit PNGs reach the encoder on one scale. Pixel spacing is
        dropped (it no longer holds after resizing).

    Raises
    ------
    InputError
        When the image holds no finite pixel or has a single intensity.
    """
    pixels = np.asarray(image.pixels, dtype=np.float32)
    finite = np.isfinite(pixels)
    if pixels.ndim != 2 or not finite.any():
        raise InputError(source, "pixels", "a 2-D image with finite values", "none")
    darkest, brightest = float(np.nanmin(pixels)), float(np.nanmax(pixels))
    if not brightest > darkest:
        raise InputError(
            source, "pixels", "more than one intensity", f"{darkest:g} only"
        )
    if finite.all():
        pixels = _box_reduced(pixels, spec.size)
        finite = np.ones(pixels.shape, dtype=bool)
    low, high = np.percentile(pixels[finite], WINDOW_PERCENTILES)
    if not high > low:  # a small bright object on a flat field: the full range
        low, high = float(pixels[finite].min()), float(pixels[finite].max())
    if not high > low:  # detail finer than the model's pixels: a flat image
        low, high = low, low + 1.0

    # Step 1: intensities to 0..1 (the window the model was trained with).
    scaled = np.clip((np.where(finite, pixels, low) - low) / (high - low), 0.0, 1.0)

    # Step 2: a square canvas, centred, so the anatomy keeps its proportions.
    rows, columns = scaled.shape
    side = max(rows, columns)
    canvas = np.zeros((side, side), dtype=np.float32)
    top, left = (side - rows) // 2, (side - columns) // 2
    canvas[top : top + rows, left : left + columns] = scaled

    # Step 3: the model's size (Pillow's antialiased resampling on floats).
    resized = PILImage.fromarray(canvas).resize(
        (spec.size, spec.size), PILImage.Resampling.BILINEAR, reducing_gap=2.0
    )
    return Image(
        pixels=np.asarray(resized, dtype=np.float32),
        modality=image.modality,
        view=image.view,
    )
