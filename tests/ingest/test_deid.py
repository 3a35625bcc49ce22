from datetime import date

import pydicom
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import UID, CTImageStorage, ExplicitVRLittleEndian

from ingest.deid import (
    ACTIONS,
    BASIC_PROFILE,
    METHOD_TEXT,
    deidentify,
    dicom_age,
    replacement_uid,
)
from ingest.errors import InputError

SALT = b"0123456789abcdef-test-salt"
STUDY = "1.2.826.0.1.3680043.8.498.1001"
SERIES = "1.2.826.0.1.3680043.8.498.1002"


def _identified(instance: str = "1.2.826.0.1.3680043.8.498.1003") -> Dataset:
    """A dataset full of identifiers, as a scanner might send it."""
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = CTImageStorage
    ds.file_meta.MediaStorageSOPInstanceUID = instance
    ds.file_meta.SourceApplicationEntityTitle = "HOSPITAL_PACS"
    ds.SOPClassUID = CTImageStorage
    ds.SOPInstanceUID = instance
    ds.StudyInstanceUID = STUDY
    ds.SeriesInstanceUID = SERIES
    ds.FrameOfReferenceUID = "1.2.826.0.1.3680043.8.498.1004"
    ds.PatientName = "Doe^Jane"
    ds.PatientID = "MRN-123"
    ds.PatientBirthDate = "19600315"
    ds.OtherPatientIDs = "OLD-9"
    ds.PatientAddress = "1 Main Street"
    ds.PatientTelephoneNumbers = "555-0100"
    ds.PatientSex = "F"
    ds.PatientAge = "059Y"
    ds.PatientSize = "1.62"
    ds.PatientWeight = "61"
    ds.AccessionNumber = "ACC42"
    ds.InstitutionName = "General Hospital"
    ds.InstitutionAddress = "2 Hospital Road"
    ds.ReferringPhysicianName = "House^Gregory"
    ds.PerformingPhysicianName = "Grey^Meredith"
    ds.OperatorsName = "Tech^Tom"
    ds.StationName = "CT01"
    ds.StudyDescription = "CT chest for Jane"
    ds.SeriesDescription = "axial"
    ds.StudyDate = "20200314"
    ds.SeriesDate = "20200314"
    ds.StudyTime = "101500"
    ds.InstanceCreationDate = "20200314"
    ds.Modality = "CT"
    ds.Manufacturer = "ACME"
    ds.BurnedInAnnotation = "NO"
    reference = Dataset()
    reference.ReferencedSOPClassUID = CTImageStorage
    reference.ReferencedSOPInstanceUID = "1.2.826.0.1.3680043.8.498.2001"
    ds.ReferencedImageSequence = [reference]
    observer = Dataset()
    observer.PersonName = "Smith^John"
    ds.ContentSequence = [observer]
    ds.add_new(0x00091010, "LO", "vendor secret")
    ds.add_new(0x00090010, "LO", "ACME private creator")
    ds.add_new(0x50000010, "US", 4)  # Number of Points (curve group)
    ds.add_new(0x60003000, "OW", b"\x00\x01")  # Overlay Data
    ds.add_new(0x60000010, "US", 1)  # Overlay Rows
    return ds


def test_identifiers_are_removed_or_emptied():
    out = deidentify(_identified(), SALT)
    for keyword in ("PatientName", "PatientID", "PatientBirthDate", "AccessionNumber"):
        assert not out.get(keyword), keyword  # Z: present but empty
    for keyword in (
        "OtherPatientIDs",
        "PatientAddress",
        "PatientTelephoneNumbers",
        "InstitutionAddress",
        "PerformingPhysicianName",
        "StudyDescription",
        "SeriesDescription",
        "SeriesDate",
        "InstanceCreationDate",  # not listed; removed as a date (VR DA)
    ):
        assert keyword not in out, keyword
    # X/Z and X/Z/D attributes are kept empty.
    assert not out.InstitutionName and not out.OperatorsName and not out.StationName
    assert not out.ReferringPhysicianName and not out.StudyDate and not out.StudyTime


def test_private_curve_and_overlay_data_are_removed():
    out = deidentify(_identified(), SALT)
    assert not any(element.tag.is_private for element in out)
    assert not any(0x5000 <= element.tag.group <= 0x60FF for element in out)


def test_patient_characteristics_are_kept():
    out = deidentify(_identified(), SALT)
    assert (out.PatientSex, out.PatientAge) == ("F", "059Y")
    assert (float(out.PatientSize), float(out.PatientWeight)) == (1.62, 61.0)
    assert out.Modality == "CT" and out.Manufacturer == "ACME"


@pytest.mark.parametrize(
    ("study_date", "age"), [("20200314", "059Y"), ("20200315", "060Y")]
)
def test_age_is_computed_when_missing(study_date, age):
    ds = _identified()
    del ds.PatientAge
    ds.StudyDate = study_date
    notes = []
    out = deidentify(ds, SALT, notes)
    assert out.PatientAge == age and not out.PatientBirthDate
    assert notes == ["PatientAge computed from the birth and exam dates"]


def test_dicom_age_units():
    assert dicom_age(date(2020, 1, 1), date(2020, 1, 6)) == "005D"
    assert dicom_age(date(2020, 1, 1), date(2020, 1, 20)) == "002W"
    assert dicom_age(date(2020, 1, 31), date(2020, 12, 30)) == "010M"
    assert dicom_age(date(2020, 1, 1), date(2019, 1, 1)) is None


def test_identity_removed_and_method_recorded():
    out = deidentify(_identified(), SALT)
    assert out.PatientIdentityRemoved == "YES"
    assert out.DeidentificationMethod == METHOD_TEXT and len(METHOD_TEXT) <= 64
    codes = {
        (item.CodingSchemeDesignator, item.CodeValue)
        for item in out.DeidentificationMethodCodeSequence
    }
    assert codes == {("DCM", "113100"), ("DCM", "113108")}


def test_uids_are_replaced_consistently():
    first = deidentify(_identified("1.2.826.0.1.3680043.8.498.1003"), SALT)
    second = deidentify(_identified("1.2.826.0.1.3680043.8.498.1005"), SALT)
    # Two instances of one series keep their study and series in common.
    assert first.StudyInstanceUID == second.StudyInstanceUID != STUDY
    assert first.SeriesInstanceUID == second.SeriesInstanceUID != SERIES
    assert first.SOPInstanceUID != second.SOPInstanceUID
    assert first.SOPClassUID == CTImageStorage  # not an identifier
    reference = first.ReferencedImageSequence[0]
    assert reference.ReferencedSOPInstanceUID == replacement_uid(
        "1.2.826.0.1.3680043.8.498.2001", SALT
    )
    for uid in (first.StudyInstanceUID, first.SOPInstanceUID):
        assert uid.startswith("2.25.") and len(uid) <= 64 and UID(uid).is_valid
    other = deidentify(_identified(), b"another-salt-of-16+bytes")
    assert other.StudyInstanceUID != first.StudyInstanceUID


def test_file_meta_is_rebuilt():
    out = deidentify(_identified(), SALT)
    assert out.file_meta.MediaStorageSOPInstanceUID == out.SOPInstanceUID
    assert "SourceApplicationEntityTitle" not in out.file_meta


def test_sequences_are_cleaned_recursively():
    out = deidentify(_identified(), SALT)
    # Content Sequence is D: one empty item, the observer's name gone.
    assert len(out.ContentSequence) == 1 and "PersonName" not in out.ContentSequence[0]


def test_input_is_not_modified():
    ds = _identified()
    deidentify(ds, SALT)
    assert ds.PatientName == "Doe^Jane" and ds.StudyInstanceUID == STUDY


def test_burned_in_annotation_is_noted():
    ds = _identified()
    ds.BurnedInAnnotation = "YES"
    notes = []
    deidentify(ds, SALT, notes)
    assert len(notes) == 1 and notes[0].startswith("BurnedInAnnotation is YES")


def test_short_salt_is_refused():
    with pytest.raises(InputError) as caught:
        deidentify(_identified(), b"short")
    assert caught.value.field == "salt"


def test_action_table_is_the_standards():
    assert set(ACTIONS.values()) <= set("DZXKU")
    # A few rows of PS3.15 Table E.1-1, checked by hand.
    assert BASIC_PROFILE[0x00080050] == "Z"  # Accession Number
    assert BASIC_PROFILE[0x00081030] == "X"  # Study Description
    assert BASIC_PROFILE[0x0020000D] == "U"  # Study Instance UID
    assert BASIC_PROFILE[0x00100040] == "Z" and ACTIONS[0x00100040] == "K"  # Sex
    assert BASIC_PROFILE[0x00101010] == "X" and ACTIONS[0x00101010] == "K"  # Age
    # Every transcribed tag is one pydicom's data dictionary knows.
    assert all(pydicom.datadict.dictionary_has_tag(tag) for tag in ACTIONS)


def test_real_waveform_ecg(real_data):
    path = real_data / "imaging_cxr_dicom/pydicom_test_files/waveform_ecg.dcm"
    if not path.is_file():
        pytest.skip(f"{path} not found")
    ds = pydicom.dcmread(path)
    out = deidentify(ds, SALT)
    assert not out.PatientName and not out.PatientID and not out.PatientBirthDate
    assert out.PatientSex == ds.PatientSex and out.PatientAge == ds.PatientAge
    assert len(out.WaveformSequence) == len(ds.WaveformSequence)
    assert (out.waveform_array(0) == ds.waveform_array(0)).all()
