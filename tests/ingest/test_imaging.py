import io
from pathlib import Path

import numpy as np
import pydicom
import pytest
from PIL import Image as PILImage
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.pixels import get_encoder
from pydicom.uid import (
    CTImageStorage,
    ExplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGLSLossless,
    RLELossless,
    SecondaryCaptureImageStorage,
    generate_uid,
)

from ingest import imaging
from ingest.errors import InputError
from ingest.imaging import deidentified_dataset, read_image, read_image_bytes

CXR_DICOM = "imaging_cxr_dicom"
SIIM = "siim_1.2.276.0.7230010.3.1.4.8323329.6904.1517875201.850819.dcm"
PYDICOM_FILES = Path(pydicom.__file__).parent / "data" / "test_files"
PRIVATE_SYNTAX = "1.2.826.0.1.3680043.8.498.77"  # a vendor's own compression


@pytest.fixture(scope="module")
def cxr(real_data: Path) -> Path:
    folder = real_data / CXR_DICOM
    if not folder.is_dir():
        pytest.skip(f"{folder} not found")
    return folder


def _shipped(name: str) -> Path:
    """A small test file shipped inside the installed pydicom wheel (no network)."""
    path = PYDICOM_FILES / name
    if not path.is_file():
        pytest.skip(f"pydicom's {name} is not installed")
    return path


def _dataset(
    pixels: np.ndarray,
    photometric: str = "MONOCHROME2",
    bits_stored: int | None = None,
    **attributes,
) -> Dataset:
    """A minimal CT-like dataset holding `pixels`, ready to save or compress."""
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID = CTImageStorage
    ds.SOPInstanceUID = generate_uid()
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.Modality = "CT"
    ds.PatientName = "Doe^Jane"
    ds.PatientID = "MRN-123"
    ds.set_pixel_data(pixels, photometric, bits_stored or pixels.dtype.itemsize * 8)
    for keyword, value in attributes.items():
        setattr(ds, keyword, value)
    return ds


def _save(ds: Dataset, path: Path) -> Path:
    ds.save_as(path, enforce_file_format=True)
    return path


# --- real files --------------------------------------------------------------


def test_ct_small_comes_out_in_hounsfield_units(cxr):
    image = read_image(cxr / "pydicom_test_files/CT_small.dcm")
    assert image.pixels.shape == (128, 128) and image.pixels.dtype == np.float32
    assert image.modality == "CT"
    # Stored values 128..2191 with RescaleIntercept -1024, RescaleSlope 1.
    assert image.pixels.min() == -896 and image.pixels.max() == 1167
    assert image.pixels[0, 0] == -849 and image.pixels[64, 64] == 904
    assert image.pixel_spacing_mm == pytest.approx((0.661468, 0.661468))


def test_mr_small_keeps_its_stored_values(cxr):
    image = read_image(cxr / "pydicom_test_files/MR_small.dcm")
    assert image.pixels.shape == (64, 64) and image.modality == "MR"
    assert (image.pixels.min(), image.pixels.max()) == (127, 2145)


def test_siim_chest_xray_jpeg_baseline(cxr):
    notes = []
    image = read_image(cxr / SIIM, notes)
    assert image.pixels.shape == (1024, 1024)
    assert (image.modality, image.view) == ("CR", "PA")
    assert image.pixel_spacing_mm == pytest.approx((0.168, 0.168))
    assert (image.pixels.min(), image.pixels.max()) == (0, 255)
    assert notes == []


def test_upload_reads_like_a_file(cxr):
    path = cxr / SIIM
    uploaded = read_image_bytes("upload.dcm", path.read_bytes())
    assert np.array_equal(uploaded.pixels, read_image(path).pixels)


def test_dicom_without_pixel_data_names_the_field(cxr):
    with pytest.raises(InputError) as caught:
        read_image(cxr / "pydicom_test_files/waveform_ecg.dcm")
    assert caught.value.field == "PixelData"
    assert "12-lead ECG Waveform Storage" in caught.value.found


@pytest.mark.parametrize("name", ["00000001_000.png", "00027426_000.png"])
def test_nih_pngs_512(cxr, name):
    image = read_image(cxr / name)
    assert image.pixels.shape == (512, 512) and image.modality == "PNG"
    assert image.pixel_spacing_mm is None and image.view is None


def test_every_small_nih_png_is_256(real_data):
    folder = real_data / "cxr_nih_cardiomegaly_small/images"
    if not folder.is_dir():
        pytest.skip(f"{folder} not found")
    paths = sorted(folder.glob("*.png"))
    assert len(paths) == 99
    for path in paths:
        pixels = read_image(path).pixels
        assert pixels.shape == (256, 256), path.name
        assert 0 <= pixels.min() and pixels.max() <= 255


def test_deidentified_dataset_of_a_real_ct(cxr, tmp_path):
    ds = deidentified_dataset(cxr / "pydicom_test_files/CT_small.dcm", b"k" * 32)
    assert not ds.PatientName and not ds.PatientID and ds.PatientIdentityRemoved
    path = _save(ds, tmp_path / "deid.dcm")
    again = pydicom.dcmread(path)
    assert again.file_meta.MediaStorageSOPInstanceUID == again.SOPInstanceUID
    assert np.array_equal(
        again.pixel_array,
        pydicom.dcmread(cxr / "pydicom_test_files/CT_small.dcm").pixel_array,
    )


# --- compressed transfer syntaxes ------------------------------------------


def _ramp(dtype=np.uint16, shape=(32, 48), seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 4096, size=shape).astype(dtype)


@pytest.mark.parametrize("syntax", [RLELossless, JPEG2000Lossless, JPEGLSLossless])
def test_lossless_round_trip_equals_the_original(tmp_path, syntax):
    if not get_encoder(syntax).is_available:
        pytest.skip(f"no encoder installed for {syntax.name}")
    pixels = _ramp()
    ds = _dataset(pixels, bits_stored=12)
    ds.compress(syntax, generate_instance_uid=False)
    image = read_image(_save(ds, tmp_path / "c.dcm"))
    assert np.array_equal(image.pixels, pixels.astype(np.float32))


@pytest.mark.parametrize(
    "name",
    ["MR_small_jpeg_ls_lossless.dcm", "MR_small_jp2klossless.dcm", "MR_small_RLE.dcm"],
)
def test_shipped_lossless_files_equal_the_uncompressed_one(name):
    # pyjpegls (the JPEG-LS encoder) is not installed: pydicom's own files test
    # the JPEG-LS decoder, with JPEG 2000 and RLE beside it.
    original = read_image(_shipped("MR_small.dcm")).pixels
    assert np.array_equal(read_image(_shipped(name)).pixels, original)


def test_jpeg_lossless_process_14_equals_rle():
    # pydicom cannot encode JPEG Lossless (.70); gdcm wrote this shipped file.
    jpeg = _shipped("SC_rgb_jpeg_gdcm.dcm")
    assert pydicom.dcmread(jpeg).file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.4.70"
    notes = []
    image = read_image(jpeg, notes)
    assert np.array_equal(image.pixels, read_image(_shipped("SC_rgb_rle.dcm")).pixels)
    assert notes == ["RGB converted to grey (luma)"]


def test_transfer_syntax_no_decoder_exists_for(tmp_path):
    ds = _dataset(_ramp())
    ds.PixelData = encapsulate([b"\xff\x0a" + b"\x00" * 30])
    ds["PixelData"].VR = "OB"
    ds.file_meta.TransferSyntaxUID = PRIVATE_SYNTAX
    buffer = io.BytesIO()
    ds.save_as(buffer, implicit_vr=False, little_endian=True, enforce_file_format=True)
    with pytest.raises(InputError) as caught:
        read_image_bytes("private.dcm", buffer.getvalue())
    assert caught.value.field == "TransferSyntaxUID"
    assert PRIVATE_SYNTAX in caught.value.found


def test_transfer_syntax_whose_decoder_is_not_installed(tmp_path, monkeypatch):
    class Missing:
        is_available = False
        missing_dependencies = [
            "pylibjpeg - requires pylibjpeg>=2.0 and pylibjpeg-libjpeg>=2.1"
        ]

    monkeypatch.setattr(imaging, "get_decoder", lambda syntax: Missing())
    with pytest.raises(InputError) as caught:
        read_image(_shipped("SC_rgb_jpeg_gdcm.dcm"))
    assert caught.value.field == "TransferSyntaxUID"
    assert "JPEG Lossless" in caught.value.found
    assert "pylibjpeg-libjpeg" in caught.value.expected


# --- modality LUT, photometric interpretation -------------------------------


def test_monochrome1_is_inverted_so_larger_is_brighter(tmp_path):
    pixels = np.array([[0, 10], [200, 255]], dtype=np.uint8)
    image = read_image(_save(_dataset(pixels, "MONOCHROME1"), tmp_path / "m1.dcm"))
    assert np.array_equal(image.pixels, [[255, 245], [55, 0]])


def test_negative_rescale_slope_flips_values_exactly(tmp_path):
    pixels = _ramp()
    ds = _dataset(pixels, bits_stored=12, RescaleSlope="-2", RescaleIntercept="100")
    notes = []
    image = read_image(_save(ds, tmp_path / "neg.dcm"), notes)
    assert np.array_equal(image.pixels, 100 - 2 * pixels.astype(np.float32))
    assert any("RescaleSlope is negative" in note for note in notes)


def test_zero_rescale_slope_is_refused(tmp_path):
    ds = _dataset(_ramp(), RescaleSlope="0", RescaleIntercept="0")
    with pytest.raises(InputError) as caught:
        read_image(_save(ds, tmp_path / "zero.dcm"))
    assert caught.value.field == "RescaleSlope"


def test_a_slope_that_overflows_is_refused(tmp_path):
    ds = _dataset(_ramp(), RescaleSlope="1e308", RescaleIntercept="0")
    with pytest.warns(RuntimeWarning), pytest.raises(InputError) as caught:
        read_image(_save(ds, tmp_path / "huge.dcm"))
    assert caught.value.field == "RescaleSlope" and "finite" in caught.value.expected


def test_rgb_with_one_sample_per_pixel_is_refused(tmp_path):
    ds = _dataset(_ramp(np.uint8), bits_stored=8)
    ds.PhotometricInterpretation = "RGB"  # while SamplesPerPixel stays 1
    with pytest.raises(InputError) as caught:
        read_image(_save(ds, tmp_path / "rgb1.dcm"))
    assert caught.value.field == "SamplesPerPixel"


def test_rgb_dicom_becomes_grey_with_a_note(tmp_path):
    rgb = np.zeros((2, 2, 3), dtype=np.uint8)
    rgb[0, 0] = (255, 0, 0)
    rgb[1, 1] = (255, 255, 255)
    ds = _dataset(rgb, "RGB", 8, SOPClassUID=SecondaryCaptureImageStorage)
    notes = []
    image = read_image(_save(ds, tmp_path / "rgb.dcm"), notes)
    assert image.pixels[0, 0] == pytest.approx(0.299 * 255, abs=1e-3)
    assert image.pixels[1, 1] == pytest.approx(255, abs=1e-3)
    assert notes == ["RGB converted to grey (luma)"]


def test_palette_color_becomes_grey_through_its_palette():
    notes = []
    image = read_image(_shipped("examples_palette.dcm"), notes)
    assert image.pixels.shape == (350, 800)
    assert notes == ["PALETTE COLOR converted to grey through its palette"]


def test_multi_frame_takes_the_first_frame(tmp_path):
    frames = np.stack([_ramp(seed=s) for s in range(3)])
    ds = _dataset(frames, bits_stored=12)
    notes = []
    image = read_image(_save(ds, tmp_path / "mf.dcm"), notes)
    assert np.array_equal(image.pixels, frames[0].astype(np.float32))
    assert notes == ["first of 3 frames taken"]


def test_burned_in_annotation_is_noted(tmp_path):
    ds = _dataset(_ramp(), BurnedInAnnotation="YES")
    notes = []
    read_image(_save(ds, tmp_path / "burned.dcm"), notes)
    assert any(note.startswith("BurnedInAnnotation is YES") for note in notes)


# --- sizes and formats ---------------------------------------------------------


@pytest.mark.parametrize(
    ("rows", "columns", "field"),
    [(10_000, 10, "Rows, Columns"), (6000, 6000, "BitsAllocated")],
)
def test_huge_dicom_is_refused_before_decoding(tmp_path, rows, columns, field):
    ds = _dataset(_ramp())
    ds.Rows, ds.Columns = rows, columns  # the pixel data stays 32 x 48
    with pytest.raises(InputError) as caught:
        read_image(_save(ds, tmp_path / "huge.dcm"))
    assert field in caught.value.field


def test_huge_png_is_refused(tmp_path):
    path = tmp_path / "wide.png"
    PILImage.new("L", (9000, 4)).save(path)
    with pytest.raises(InputError) as caught:
        read_image(path)
    assert caught.value.field == "size"


def test_png_16_bit_values_are_kept(tmp_path):
    pixels = np.array([[0, 1, 4095], [40000, 65534, 65535]], dtype=np.uint16)
    path = tmp_path / "deep.png"
    PILImage.fromarray(pixels).save(path)
    assert np.array_equal(read_image(path).pixels, pixels.astype(np.float32))


def test_png_rgba_becomes_grey_with_notes(tmp_path):
    path = tmp_path / "colour.png"
    PILImage.new("RGBA", (3, 2), (0, 255, 0, 128)).save(path)
    notes = []
    pixels = read_image(path, notes).pixels
    assert pixels.shape == (2, 3)
    assert pixels == pytest.approx(np.full((2, 3), 0.587 * 255), abs=1e-3)
    assert notes == ["alpha (transparency) dropped", "RGBA converted to grey (luma)"]


@pytest.mark.parametrize(
    ("content", "field"),
    [
        (b"", "file"),
        (b"GIF89a" + b"\x00" * 200, "format"),
        (imaging.PNG_MAGIC + b"junk", "PNG"),
    ],
)
def test_not_an_image(content, field):
    with pytest.raises(InputError) as caught:
        read_image_bytes("upload", content)
    assert caught.value.field == field


def test_missing_file(tmp_path):
    with pytest.raises(InputError) as caught:
        read_image(tmp_path / "absent.dcm")
    assert caught.value.field == "file"


def test_conform_image_windows_pads_and_resizes():
    from ingest.config import ImagingSpec
    from ingest.imaging import conform_image
    from ingest.schema import Image

    # A 40 x 80 CT-like slice in Hounsfield units: air -1000, tissue 40.
    pixels = np.full((40, 80), -1000.0, dtype=np.float32)
    pixels[10:30, 20:60] = 40.0
    out = conform_image(Image(pixels=pixels, modality="CT"), ImagingSpec(size=32))
    assert out.pixels.shape == (32, 32) and out.pixels.dtype == np.float32
    assert out.pixels.min() == 0.0 and out.pixels.max() == pytest.approx(1.0)
    # Padded above and below (rows 0-7 of 32 are the square's empty margin).
    assert (out.pixels[:7] == 0).all() and out.pixels[16, 16] == pytest.approx(1.0)
    with pytest.raises(InputError, match="more than one intensity"):
        conform_image(
            Image(pixels=np.ones((8, 8), np.float32), modality="CR"),
            ImagingSpec(size=32),
            "flat.png",
        )


def test_nih_cxr_records_hold_one_conformed_image_and_a_label(real_data, data_config):
    from ingest.nih_cxr import read_nih_cxr

    quarantine = []
    records = read_nih_cxr(
        real_data / data_config.sources.nih_cxr.dir,
        "nih_cxr",
        data_config.imaging,
        data_config.registry,
        quarantine,
    )
    assert len(records) == 99 and not quarantine
    first = next(r for r in records if r.record_id == "nih_cxr:00000001_001.png")
    assert first.labels == {"cardiomegaly": 1}  # "Cardiomegaly|Emphysema"
    assert first.features == {"age": 58, "sex_male": 1.0}
    size = data_config.imaging.size
    assert first.images[0].pixels.shape == (size, size)
    assert first.images[0].view == "PA"
    assert 0.0 <= first.images[0].pixels.min() < first.images[0].pixels.max() <= 1.0
    assert 10 < sum(r.labels["cardiomegaly"] for r in records) < 90


def test_a_small_bright_object_on_a_black_field_is_kept():
    from ingest.config import ImagingSpec
    from ingest.imaging import conform_image
    from ingest.schema import Image

    pixels = np.zeros((256, 256), dtype=np.float32)
    pixels[100:120, 100:120] = 255.0  # 0.6 % of the image: above the 99th percentile
    out = conform_image(Image(pixels=pixels, modality="PNG"), ImagingSpec(size=64))
    assert out.pixels.max() == pytest.approx(1.0) and out.pixels.min() == 0.0


def test_a_huge_image_is_reduced_first_and_keeps_its_structure():
    from ingest.config import ImagingSpec
    from ingest.imaging import conform_image
    from ingest.schema import Image

    pixels = np.zeros((4096, 4096), dtype=np.float32)
    pixels[:, 2048:] = 1000.0  # left half dark, right half bright
    out = conform_image(Image(pixels=pixels, modality="CR"), ImagingSpec(size=64))
    assert out.pixels.shape == (64, 64)
    assert out.pixels[:, :28].max() < 0.05 and out.pixels[:, 36:].min() > 0.95
    # Detail finer than the model's pixels averages out: flat, not an error.
    checker = np.zeros((2048, 2048), dtype=np.float32)
    checker[::2, ::2] = checker[1::2, 1::2] = 255.0
    flat = conform_image(Image(pixels=checker, modality="PNG"), ImagingSpec(size=64))
    assert np.ptp(flat.pixels) < 1e-6
