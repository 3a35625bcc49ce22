"""DICOM de-identification (PS3.15 Annex E basic profile, patient characteristics kept).

The Basic Application Level Confidentiality Profile with the Retain Patient
Characteristics Option. The actions come from one table, `BASIC_PROFILE` (PS3.15
Table E.1-1, column "Basic Prof."), with the option's column in
`RETAIN_PATIENT_CHARACTERISTICS`; the code only interprets the action codes.
Identifiers are removed or emptied, UIDs are replaced by a salted keyed hash (the
same UID and salt always give the same replacement, so references between
instances and series survive), private attributes, curves and overlays are
removed, and age, sex, size and weight are kept. Pixel data is not touched:
burned-in text is reported, not removed.
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import logging
from datetime import date

from pydicom import config
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.multival import MultiValue
from pydicom.tag import BaseTag
from pydicom.uid import PYDICOM_IMPLEMENTATION_UID

from ingest.errors import InputError

logger = logging.getLogger(__name__)

MIN_SALT_BYTES = 16

# PS3.15 Annex E, Table E.1-1 "Application Level Confidentiality Profile
# Attributes", column "Basic Prof.": tag -> action code, as the standard gives it.
# D dummy value, Z empty (or dummy), X remove, K keep, U new consistent UID; the
# compound codes (X/Z, Z/D, X/D, X/Z/D, X/Z/U*) depend on the IOD's type and are
# resolved by `COMPOUND_ACTIONS`. Transcribed from the table's 2020-era edition;
# the standard extends the table over time (its Note 4), so re-check it on update.
# Private attributes (odd groups), Curve Data (50xx,xxxx) and the overlay groups
# (60xx,xxxx), all X, are matched by group in `_removed_by_group`.
BASIC_PROFILE: dict[int, str] = {
    0x00001000: "X",  # Affected SOP Instance UID
    0x00001001: "U",  # Requested SOP Instance UID
    0x00020003: "U",  # Media Storage SOP Instance UID
    0x00041511: "U",  # Referenced SOP Instance UID in File
    0x00080014: "U",  # Instance Creator UID
    0x00080015: "X",  # Instance Coercion DateTime
    0x00080018: "U",  # SOP Instance UID
    0x00080020: "Z",  # Study Date
    0x00080021: "X/D",  # Series Date
    0x00080022: "X/Z",  # Acquisition Date
    0x00080023: "Z/D",  # Content Date
    0x00080024: "X",  # Overlay Date
    0x00080025: "X",  # Curve Date
    0x0008002A: "X/Z/D",  # Acquisition DateTime
    0x00080030: "Z",  # Study Time
    0x00080031: "X/D",  # Series Time
    0x00080032: "X/Z",  # Acquisition Time
    0x00080033: "Z/D",  # Content Time
    0x00080034: "X",  # Overlay Time
    0x00080035: "X",  # Curve Time
    0x00080050: "Z",  # Accession Number
    0x00080058: "U",  # Failed SOP Instance UID List
    0x00080080: "X/Z/D",  # Institution Name
    0x00080081: "X",  # Institution Address
    0x00080082: "X/Z/D",  # Institution Code Sequence
    0x00080090: "Z",  # Referring Physician's Name
    0x00080092: "X",  # Referring Physician's Address
    0x00080094: "X",  # Referring Physician's Telephone Numbers
    0x00080096: "X",  # Referring Physician Identification Sequence
    0x0008009C: "Z",  # Consulting Physician's Name
    0x0008009D: "X",  # Consulting Physician Identification Sequence
    0x00080201: "X",  # Timezone Offset From UTC
    0x00081010: "X/Z/D",  # Station Name
    0x00081030: "X",  # Study Description
    0x0008103E: "X",  # Series Description
    0x00081040: "X",  # Institutional Department Name
    0x00081041: "X",  # Institutional Department Type Code Sequence
    0x00081048: "X",  # Physician(s) of Record
    0x00081049: "X",  # Physician(s) of Record Identification Sequence
    0x00081050: "X",  # Performing Physician's Name
    0x00081052: "X",  # Performing Physician Identification Sequence
    0x00081060: "X",  # Name of Physician(s) Reading Study
    0x00081062: "X",  # Physician(s) Reading Study Identification Sequence
    0x00081070: "X/Z/D",  # Operators' Name
    0x00081072: "X/D",  # Operator Identification Sequence
    0x00081080: "X",  # Admitting Diagnoses Description
    0x00081084: "X",  # Admitting Diagnoses Code Sequence
    0x00081110: "X/Z",  # Referenced Study Sequence
    0x00081111: "X/Z/D",  # Referenced Performed Procedure Step Sequence
    0x00081120: "X",  # Referenced Patient Sequence
    0x00081140: "X/Z/U*",  # Referenced Image Sequence
    0x00081155: "U",  # Referenced SOP Instance UID
    0x00081195: "U",  # Transaction UID
    0x00082111: "X",  # Derivation Description
    0x00082112: "X/Z/U*",  # Source Image Sequence
    0x00083010: "U",  # Irradiation Event UID
    0x00084000: "X",  # Identifying Comments
    0x00100010: "Z",  # Patient's Name
    0x00100020: "Z",  # Patient ID
    0x00100021: "X",  # Issuer of Patient ID
    0x00100030: "Z",  # Patient's Birth Date
    0x00100032: "X",  # Patient's Birth Time
    0x00100040: "Z",  # Patient's Sex
    0x00100050: "X",  # Patient's Insurance Plan Code Sequence
    0x00100101: "X",  # Patient's Primary Language Code Sequence
    0x00100102: "X",  # Patient's Primary Language Modifier Code Sequence
    0x00101000: "X",  # Other Patient IDs
    0x00101001: "X",  # Other Patient Names
    0x00101002: "X",  # Other Patient IDs Sequence
    0x00101005: "X",  # Patient's Birth Name
    0x00101010: "X",  # Patient's Age
    0x00101020: "X",  # Patient's Size
    0x00101030: "X",  # Patient's Weight
    0x00101040: "X",  # Patient's Address
    0x00101050: "X",  # Insurance Plan Identification
    0x00101060: "X",  # Patient's Mother's Birth Name
    0x00101080: "X",  # Military Rank
    0x00101081: "X",  # Branch of Service
    0x00101090: "X",  # Medical Record Locator
    0x00101100: "X",  # Referenced Patient Photo Sequence
    0x00102000: "X",  # Medical Alerts
    0x00102110: "X",  # Allergies
    0x00102150: "X",  # Country of Residence
    0x00102152: "X",  # Region of Residence
    0x00102154: "X",  # Patient's Telephone Numbers
    0x00102155: "X",  # Patient's Telecom Information
    0x00102160: "X",  # Ethnic Group
    0x00102180: "X",  # Occupation
    0x001021A0: "X",  # Smoking Status
    0x001021B0: "X",  # Additional Patient History
    0x001021C0: "X",  # Pregnancy Status
    0x001021D0: "X",  # Last Menstrual Date
    0x001021F0: "X",  # Patient's Religious Preference
    0x00102203: "X/Z",  # Patient's Sex Neutered
    0x00102297: "X",  # Responsible Person
    0x00102299: "X",  # Responsible Organization
    0x00104000: "X",  # Patient Comments
    0x00120010: "D",  # Clinical Trial Sponsor Name
    0x00120020: "D",  # Clinical Trial Protocol ID
    0x00120021: "Z",  # Clinical Trial Protocol Name
    0x00120030: "Z",  # Clinical Trial Site ID
    0x00120031: "Z",  # Clinical Trial Site Name
    0x00120040: "D",  # Clinical Trial Subject ID
    0x00120042: "D",  # Clinical Trial Subject Reading ID
    0x00120050: "Z",  # Clinical Trial Time Point ID
    0x00120051: "X",  # Clinical Trial Time Point Description
    0x00120060: "Z",  # Clinical Trial Coordinating Center Name
    0x00120071: "X",  # Clinical Trial Series ID
    0x00120072: "X",  # Clinical Trial Series Description
    0x00120081: "D",  # Clinical Trial Protocol Ethics Committee Name
    0x00120082: "X",  # Clinical Trial Protocol Ethics Committee Approval Number
    # GPS Version ID (0016,0070) to GPS Differential (0016,008E): all X.
    **{0x00160070 + offset: "X" for offset in range(0x1F)},
    0x0016002B: "X",  # Maker Note
    0x0016004B: "X",  # Device Setting Description
    0x0016004D: "X",  # Camera Owner Name
    0x0016004E: "X",  # Lens Specification
    0x0016004F: "X",  # Lens Make
    0x00160050: "X",  # Lens Model
    0x00160051: "X",  # Lens Serial Number
    0x00180010: "Z/D",  # Contrast/Bolus Agent
    0x00181000: "X/Z/D",  # Device Serial Number
    0x00181002: "U",  # Device UID
    0x00181004: "X",  # Plate ID
    0x00181005: "X",  # Generator ID
    0x00181007: "X",  # Cassette ID
    0x00181008: "X",  # Gantry ID
    0x00181009: "X",  # Unique Device Identifier
    0x0018100A: "X",  # UDI Sequence
    0x0018100B: "U",  # Manufacturer's Device Class UID
    0x00181030: "X/D",  # Protocol Name
    0x001811BB: "D",  # Acquisition Field Of View Label
    0x00181400: "X/D",  # Acquisition Device Processing Description
    0x00182042: "U",  # Target UID
    0x00184000: "X",  # Acquisition Comments
    0x00185011: "X",  # Transducer Identification Sequence
    0x0018700A: "X/D",  # Detector ID
    0x00189185: "X",  # Respiratory Motion Compensation Technique Description
    0x00189367: "D",  # X-Ray Source ID
    0x00189369: "D",  # Source Start DateTime
    0x0018936A: "D",  # Source End DateTime
    0x00189371: "D",  # X-Ray Detector ID
    0x00189373: "X",  # X-Ray Detector Label
    0x0018937B: "X",  # Multi-energy Acquisition Description
    0x0018937F: "X",  # Decomposition Description
    0x00189424: "X",  # Acquisition Protocol Description
    0x00189516: "X/D",  # Start Acquisition DateTime
    0x00189517: "X/D",  # End Acquisition DateTime
    0x00189937: "X",  # Requested Series Description
    0x0018A003: "X",  # Contribution Description
    0x0020000D: "U",  # Study Instance UID
    0x0020000E: "U",  # Series Instance UID
    0x00200010: "Z",  # Study ID
    0x00200052: "U",  # Frame of Reference UID
    0x00200200: "U",  # Synchronization Frame of Reference UID
    0x00203401: "X",  # Modifying Device ID
    0x00203406: "X",  # Modified Image Description
    0x00204000: "X",  # Image Comments
    0x00209158: "X",  # Frame Comments
    0x00209161: "U",  # Concatenation UID
    0x00209164: "U",  # Dimension Organization UID
    0x00281199: "U",  # Palette Color Lookup Table UID
    0x00281214: "U",  # Large Palette Color Lookup Table UID
    0x00284000: "X",  # Image Presentation Comments
    0x00321020: "X",  # Scheduled Study Location
    0x00321021: "X",  # Scheduled Study Location AE Title
    0x00321030: "X",  # Reason for Study
    0x00321032: "X",  # Requesting Physician
    0x00321033: "X",  # Requesting Service
    0x00321060: "X/Z",  # Requested Procedure Description
    0x00321066: "X",  # Reason for Visit
    0x00321067: "X",  # Reason for Visit Code Sequence
    0x00321070: "X",  # Requested Contrast Agent
    0x00320012: "X",  # Study ID Issuer
    0x00324000: "X",  # Study Comments
    0x00340001: "D",  # Flow Identifier Sequence
    0x00340002: "D",  # Flow Identifier
    0x00340005: "D",  # Source Identifier
    0x00340007: "D",  # Frame Origin Timestamp
    0x00380004: "X",  # Referenced Patient Alias Sequence
    0x00380010: "X",  # Admission ID
    0x00380011: "X",  # Issuer of Admission ID
    0x00380014: "X",  # Issuer of Admission ID Sequence
    0x0038001E: "X",  # Scheduled Patient Institution Residence
    0x00380020: "X",  # Admitting Date
    0x00380021: "X",  # Admitting Time
    0x00380040: "X",  # Discharge Diagnosis Description
    0x00380050: "X",  # Special Needs
    0x00380060: "X",  # Service Episode ID
    0x00380061: "X",  # Issuer of Service Episode ID
    0x00380062: "X",  # Service Episode Description
    0x00380064: "X",  # Issuer of Service Episode ID Sequence
    0x00380300: "X",  # Current Patient Location
    0x00380400: "X",  # Patient's Institution Residence
    0x00380500: "X",  # Patient State
    0x00384000: "X",  # Visit Comments
    0x003A0310: "U",  # Multiplex Group UID
    0x003A0314: "D",  # Impedance Measurement DateTime
    0x00400001: "X",  # Scheduled Station AE Title
    0x00400002: "X",  # Scheduled Procedure Step Start Date
    0x00400003: "X",  # Scheduled Procedure Step Start Time
    0x00400004: "X",  # Scheduled Procedure Step End Date
    0x00400005: "X",  # Scheduled Procedure Step End Time
    0x00400006: "X",  # Scheduled Performing Physician's Name
    0x00400007: "X",  # Scheduled Procedure Step Description
    0x00400009: "X",  # Scheduled Procedure Step ID
    0x0040000B: "X",  # Scheduled Performing Physician Identification Sequence
    0x00400010: "X",  # Scheduled Station Name
    0x00400011: "X",  # Scheduled Procedure Step Location
    0x00400012: "X",  # Pre-Medication
    0x00400241: "X",  # Performed Station AE Title
    0x00400242: "X",  # Performed Station Name
    0x00400243: "X",  # Performed Location
    0x00400244: "X",  # Performed Procedure Step Start Date
    0x00400245: "X",  # Performed Procedure Step Start Time
    0x00400250: "X",  # Performed Procedure Step End Date
    0x00400251: "X",  # Performed Procedure Step End Time
    0x00400253: "X",  # Performed Procedure Step ID
    0x00400254: "X",  # Performed Procedure Step Description
    0x00400275: "X",  # Request Attributes Sequence
    0x00400280: "X",  # Comments on the Performed Procedure Step
    0x00400310: "X",  # Comments on Radiation Dose
    0x00400512: "D",  # Container Identifier
    0x00400513: "Z",  # Issuer of the Container Identifier Sequence
    0x0040051A: "X",  # Container Description
    0x0040050A: "X",  # Specimen Accession Number
    0x00400551: "D",  # Specimen Identifier
    0x00400554: "U",  # Specimen UID
    0x00400555: "X/Z",  # Acquisition Context Sequence
    0x00400562: "Z",  # Issuer of the Specimen Identifier Sequence
    0x00400600: "X",  # Specimen Short Description
    0x00400602: "X",  # Specimen Detailed Description
    0x00400610: "Z",  # Specimen Preparation Sequence
    0x004006FA: "X",  # Slide Identifier
    0x00401001: "X",  # Requested Procedure ID
    0x00401002: "X",  # Reason for the Requested Procedure
    0x00401004: "X",  # Patient Transport Arrangements
    0x00401005: "X",  # Requested Procedure Location
    0x0040100A: "X",  # Reason for Requested Procedure Code Sequence
    0x00401010: "X",  # Names of Intended Recipients of Results
    0x00401011: "X",  # Intended Recipients of Results Identification Sequence
    0x00401101: "D",  # Person Identification Code Sequence
    0x00401102: "X",  # Person's Address
    0x00401103: "X",  # Person's Telephone Numbers
    0x00401104: "X",  # Person's Telecom Information
    0x00401400: "X",  # Requested Procedure Comments
    0x00402001: "X",  # Reason for the Imaging Service Request
    0x00402008: "X",  # Order Entered By
    0x00402009: "X",  # Order Enterer's Location
    0x00402010: "X",  # Order Callback Phone Number
    0x00402011: "X",  # Order Callback Telecom Information
    0x00402016: "Z",  # Placer Order Number / Imaging Service Request
    0x00402017: "Z",  # Filler Order Number / Imaging Service Request
    0x00402400: "X",  # Imaging Service Request Comments
    0x00403001: "X",  # Confidentiality Constraint on Patient Data Description
    0x00404005: "X",  # Scheduled Procedure Step Start DateTime
    0x00404008: "X",  # Scheduled Procedure Step Expiration DateTime
    0x00404010: "X",  # Scheduled Procedure Step Modification DateTime
    0x00404011: "X",  # Expected Completion DateTime
    0x00404023: "U",  # Referenced General Purpose Sched. Proc. Step Transaction UID
    0x00404025: "X",  # Scheduled Station Name Code Sequence
    0x00404027: "X",  # Scheduled Station Geographic Location Code Sequence
    0x00404028: "X",  # Performed Station Name Code Sequence
    0x00404030: "X",  # Performed Station Geographic Location Code Sequence
    0x00404034: "X",  # Scheduled Human Performers Sequence
    0x00404035: "X",  # Actual Human Performers Sequence
    0x00404036: "X",  # Human Performer's Organization
    0x00404037: "X",  # Human Performer's Name
    0x00404050: "X",  # Performed Procedure Step Start DateTime
    0x00404051: "X",  # Performed Procedure Step End DateTime
    0x00404052: "X",  # Procedure Step Cancellation DateTime
    0x0040A027: "D",  # Verifying Organization
    0x0040A073: "D",  # Verifying Observer Sequence
    0x0040A075: "D",  # Verifying Observer Name
    0x0040A078: "X",  # Author Observer Sequence
    0x0040A07A: "X",  # Participant Sequence
    0x0040A07C: "X",  # Custodial Organization Sequence
    0x0040A088: "Z",  # Verifying Observer Identification Code Sequence
    0x0040A123: "D",  # Person Name
    0x0040A124: "U",  # UID
    0x0040A171: "U",  # Observation UID
    0x0040A172: "U",  # Referenced Observation UID (Trial)
    0x0040A192: "X",  # Observation Date (Trial)
    0x0040A193: "X",  # Observation Time (Trial)
    0x0040A307: "X",  # Current Observer (Trial)
    0x0040A352: "X",  # Verbal Source (Trial)
    0x0040A353: "X",  # Address (Trial)
    0x0040A354: "X",  # Telephone Number (Trial)
    0x0040A358: "X",  # Verbal Source Identifier Code Sequence (Trial)
    0x0040A402: "U",  # Observation Subject UID (Trial)
    0x0040A730: "D",  # Content Sequence
    0x0040DB0C: "U",  # Template Extension Organization UID
    0x0040DB0D: "U",  # Template Extension Creator UID
    0x0050001B: "X",  # Container Component ID
    0x00500020: "X",  # Device Description
    0x00500021: "X",  # Long Device Description
    0x00620021: "U",  # Tracking UID
    0x00700001: "D",  # Graphic Annotation Sequence
    0x00700084: "Z/D",  # Content Creator's Name
    0x00700086: "X",  # Content Creator's Identification Code Sequence
    0x0070031A: "U",  # Fiducial UID
    0x00701101: "U",  # Presentation Display Collection UID
    0x00701102: "U",  # Presentation Sequence Collection UID
    0x00880140: "U",  # Storage Media File-set UID
    0x00880200: "X",  # Icon Image Sequence
    0x00880904: "X",  # Topic Title
    0x00880906: "X",  # Topic Subject
    0x00880910: "X",  # Topic Author
    0x00880912: "X",  # Topic Keywords
    0x04000100: "U",  # Digital Signature UID
    0x04000402: "X",  # Referenced Digital Signature Sequence
    0x04000403: "X",  # Referenced SOP Instance MAC Sequence
    0x04000404: "X",  # MAC
    0x04000550: "X",  # Modified Attributes Sequence
    0x04000551: "X",  # Nonconforming Modified Attributes Sequence
    0x04000552: "X",  # Nonconforming Data Element Value
    0x04000561: "X",  # Original Attributes Sequence
    0x04000600: "X",  # Instance Origin Status
    0x20300020: "X",  # Text String
    0x22000002: "X/Z",  # Label Text
    0x22000005: "X/Z",  # Barcode Value
    0x30060002: "D",  # Structure Set Label
    0x30060004: "X",  # Structure Set Name
    0x30060006: "X",  # Structure Set Description
    0x30060008: "Z",  # Structure Set Date
    0x30060009: "X/D",  # Structure Set Time
    0x30060024: "U",  # Referenced Frame of Reference UID
    0x30060026: "Z",  # ROI Name
    0x30060028: "X",  # ROI Description
    0x30060038: "X",  # ROI Generation Description
    0x30060085: "X",  # ROI Observation Label
    0x30060088: "X",  # ROI Observation Description
    0x300600A6: "Z",  # ROI Interpreter
    0x300600C2: "U",  # Related Frame of Reference UID
    0x30080054: "X/D",  # First Treatment Date
    0x30080056: "X/D",  # Most Recent Treatment Date
    0x30080105: "X/Z",  # Source Serial Number
    0x30080250: "X/D",  # Treatment Date
    0x30080251: "X/D",  # Treatment Time
    0x300A0002: "D",  # RT Plan Label
    0x300A0003: "X",  # RT Plan Name
    0x300A0004: "X",  # RT Plan Description
    0x300A0006: "X/D",  # RT Plan Date
    0x300A0007: "X/D",  # RT Plan Time
    0x300A000E: "X",  # Prescription Description
    0x300A0013: "U",  # Dose Reference UID
    0x300A0016: "X",  # Dose Reference Description
    0x300A0072: "X",  # Fraction Group Description
    0x300A0083: "U",  # Referenced Dose Reference UID
    0x300A00B2: "X",  # Treatment Machine Name
    0x300A00C3: "X",  # Beam Description
    0x300A00DD: "X",  # Bolus Description
    0x300A0196: "X",  # Fixation Device Description
    0x300A01A6: "X",  # Shielding Device Description
    0x300A01B2: "X",  # Setup Technique Description
    0x300A0216: "X",  # Source Manufacturer
    0x300A02EB: "X",  # Compensator Description
    0x300A0608: "D",  # Treatment Position Group Label
    0x300A0609: "U",  # Treatment Position Group UID
    0x300A0611: "Z",  # RT Accessory Holder Slot ID
    0x300A0615: "Z",  # RT Accessory Device Slot ID
    0x300A0619: "D",  # Radiation Dose Identification Label
    0x300A0623: "D",  # Radiation Dose In-Vivo Measurement Label
    0x300A062A: "D",  # RT Tolerance Set Label
    0x300A0650: "U",  # Patient Setup UID
    0x300A0676: "X",  # Equipment Frame of Reference Description
    0x300A067C: "D",  # Radiation Generation Mode Label
    0x300A067D: "Z",  # Radiation Generation Mode Description
    0x300A0700: "U",  # Treatment Session UID
    0x300A0734: "D",  # Treatment Tolerance Violation Description
    0x300A0736: "D",  # Treatment Tolerance Violation DateTime
    0x300A073A: "D",  # Recorded RT Control Point DateTime
    0x300A0741: "D",  # Interlock DateTime
    0x300A0742: "D",  # Interlock Description
    0x300A0760: "D",  # Override DateTime
    0x300A0783: "D",  # Interlock Origin Description
    0x300C0113: "X",  # Reason for Omission Description
    0x300E0008: "X/Z",  # Reviewer Name
    0x30100006: "U",  # Conceptual Volume UID
    0x3010000B: "U",  # Referenced Conceptual Volume UID
    0x3010000F: "Z",  # Conceptual Volume Combination Description
    0x30100013: "U",  # Constituent Conceptual Volume UID
    0x30100015: "U",  # Source Conceptual Volume UID
    0x30100017: "Z",  # Conceptual Volume Description
    0x3010001B: "Z",  # Device Alternate Identifier
    0x3010002D: "D",  # Device Label
    0x30100031: "U",  # Referenced Fiducials UID
    0x30100033: "D",  # User Content Label
    0x30100034: "D",  # User Content Long Label
    0x30100035: "D",  # Entity Label
    0x30100036: "X",  # Entity Name
    0x30100037: "X",  # Entity Description
    0x30100038: "D",  # Entity Long Label
    0x3010003B: "U",  # RT Treatment Phase UID
    0x30100043: "Z",  # Manufacturer's Device Identifier
    0x3010004C: "X/D",  # Intended Phase Start Date
    0x3010004D: "X/D",  # Intended Phase End Date
    0x30100054: "D",  # RT Prescription Label
    0x30100056: "X/D",  # RT Treatment Approach Label
    0x3010005A: "Z",  # RT Physician Intent Narrative
    0x3010005C: "Z",  # Reason for Superseding
    0x30100061: "X",  # Prior Treatment Dose Description
    0x3010006E: "U",  # Dosimetric Objective UID
    0x3010006F: "U",  # Referenced Dosimetric Objective UID
    0x30100077: "D",  # Treatment Site
    0x3010007A: "Z",  # Treatment Technique Notes
    0x3010007B: "Z",  # Prescription Notes
    0x3010007F: "Z",  # Fractionation Notes
    0x30100081: "Z",  # Prescription Notes Sequence
    0x40000010: "X",  # Arbitrary
    0x40004000: "X",  # Text Comments
    0x40080042: "X",  # Results ID Issuer
    0x40080102: "X",  # Interpretation Recorder
    0x4008010A: "X",  # Interpretation Transcriber
    0x4008010B: "X",  # Interpretation Text
    0x4008010C: "X",  # Interpretation Author
    0x40080111: "X",  # Interpretation Approver Sequence
    0x40080114: "X",  # Physician Approving Interpretation
    0x40080115: "X",  # Interpretation Diagnosis Description
    0x40080118: "X",  # Results Distribution List Sequence
    0x40080119: "X",  # Distribution Name
    0x4008011A: "X",  # Distribution Address
    0x40080202: "X",  # Interpretation ID Issuer
    0x40080300: "X",  # Impressions
    0x40084000: "X",  # Results Comments
    0xFFFAFFFA: "X",  # Digital Signatures Sequence
    0xFFFCFFFC: "X",  # Data Set Trailing Padding
}

# PS3.15 Table E.1-1, column "Rtn. Pat. Chars. Opt." (Retain Patient
# Characteristics Option, E.3.6): the attributes it keeps. The option's "C"
# (clean) entries (Allergies, Patient State, Pre-Medication, Special Needs) are not
# cleaned here, so they keep the basic profile's X.
RETAIN_PATIENT_CHARACTERISTICS: dict[int, str] = {
    0x00100040: "K",  # Patient's Sex
    0x00101010: "K",  # Patient's Age
    0x00101020: "K",  # Patient's Size
    0x00101030: "K",  # Patient's Weight
    0x00102160: "K",  # Ethnic Group
    0x001021A0: "K",  # Smoking Status
    0x001021C0: "K",  # Pregnancy Status
    0x00102203: "K",  # Patient's Sex Neutered
}

# The compound codes let the IOD's attribute type decide; without per-IOD type
# tables we keep the attribute present without inventing data: an empty value
# (Z) over a dummy (D), so no fake date or name can be mistaken for a real one,
# and removal (X) where only a dummy could keep it. References in X/Z/U*
# sequences are kept with their UIDs replaced, so links between objects survive.
COMPOUND_ACTIONS = {"X/Z": "Z", "Z/D": "Z", "X/Z/D": "Z", "X/D": "X", "X/Z/U*": "U"}

ACTIONS: dict[int, str] = {
    tag: COMPOUND_ACTIONS.get(code, code)
    for tag, code in {**BASIC_PROFILE, **RETAIN_PATIENT_CHARACTERISTICS}.items()
}

# Attributes the table does not list are kept, except these value
# representations: dates and times (PS3.15 E.1.1 Note 4 suggests treating them
# by VR, since the table keeps growing), person names, and UN (an element
# pydicom's dictionary does not know, whose content cannot be judged).
REMOVED_VRS = {"DA", "DT", "TM", "PN", "UN"}

# Dummy values (action D), one per value representation.
DUMMY_VALUES = {
    **dict.fromkeys(
        ["AE", "CS", "LO", "LT", "PN", "SH", "ST", "UC", "UT"], "ANONYMIZED"
    ),
    "DA": "19000101",
    "DT": "19000101000000",
    "TM": "000000",
    "DS": "0",
    "IS": "0",
}

# PS3.16 CID 7050 "De-identification Method" codes (scheme DCM).
METHOD_CODES = (
    ("113100", "Basic Application Confidentiality Profile"),
    ("113108", "Retain Patient Characteristics Option"),
)
METHOD_TEXT = "Basic Application Confidentiality Profile; Retain Patient Chars"

# Where an age can be computed from when Patient's Age is missing, in order.
EXAM_DATES = ("StudyDate", "SeriesDate", "AcquisitionDate", "ContentDate")


def deidentify(ds: Dataset, salt: bytes, notes: list[str] | None = None) -> Dataset:
    """Return a de-identified copy of a DICOM dataset.

    Applies `ACTIONS` (PS3.15 Table E.1-1, basic profile with the Retain Patient
    Characteristics Option) to the dataset and, recursively, to every sequence
    item: identifiers are removed, emptied or replaced, UIDs are mapped with
    `replacement_uid`, private attributes, curves and overlays are removed.
    Patient's Age is computed from the birth date and the exam date before the
    birth date is emptied, if the dataset lacks it. Patient Identity Removed is
    set to ``YES`` and the method is recorded in De-identification Method and its
    code sequence (113100, 113108). The file meta information is rebuilt from
    the SOP class, the new SOP instance UID and the transfer syntax, and no
    preamble, file name or read buffer is carried over.

    Parameters
    ----------
    ds : pydicom.Dataset
        The dataset as read; it is not modified.
    salt : bytes
        The caller's secret (at least 16 bytes) keying the UID mapping: the same
        salt gives the same replacement UIDs across files, so links between
        instances survive; never hard-code it.
    notes : list of str, optional
        Appended to: what the caller should know (burned-in annotation, an age
        computed or impossible to compute); never a patient's value.

    Returns
    -------
    pydicom.Dataset
        The de-identified copy (a plain ``Dataset`` with ``file_meta`` when the
        input had file meta information).

    Raises
    ------
    InputError
        When the salt is shorter than 16 bytes.
    """
    if not isinstance(salt, bytes | bytearray) or len(salt) < MIN_SALT_BYTES:
        found = f"{len(salt)} bytes" if isinstance(salt, bytes | bytearray) else "none"
        raise InputError(
            "deidentify",
            "salt",
            f"a secret of at least {MIN_SALT_BYTES} bytes from the caller",
            found,
        )
    notes = [] if notes is None else notes
    with config.disable_value_validation():  # its warnings would log raw values
        # Step 1: a fresh copy, without the reader's buffer, file name or preamble.
        out = Dataset()
        for element in ds:
            if element.tag.group != 0x0002:  # file meta is rebuilt, never copied
                out.add(copy.deepcopy(element))
        out.set_original_encoding(*ds.original_encoding, ds.original_character_set)

        # Step 2: an age before the birth date goes.
        _fill_patient_age(out, notes)

        # Step 3: the profile's actions, down every sequence.
        _apply_actions(out, bytes(salt))

        # Step 4: say what was done.
        _record_method(out)
        file_meta = getattr(ds, "file_meta", None)
        if file_meta:
            out.file_meta = _new_file_meta(file_meta, out, bytes(salt))
    note = burned_in_note(out)
    if note:
        notes.append(note)
    logger.debug("de-identified a dataset: %d note(s)", len(notes))
    return out


def replacement_uid(uid: str, salt: bytes) -> str:
    """The UID that replaces `uid`: ``2.25.`` and a salted 128-bit keyed hash.

    HMAC-SHA-256 keyed with `salt`, truncated to 128 bits and written as a
    decimal integer under the ``2.25`` root (PS3.5 B.2), so the result is at most
    44 characters. The same UID and salt always give the same replacement;
    without the salt the original cannot be recovered by trying candidates.

    Parameters
    ----------
    uid : str
        The original UID.
    salt : bytes
        The caller's secret.

    Returns
    -------
    str
    """
    text = str(uid).strip("\x00 ")
    digest = hmac.new(salt, text.encode("utf-8"), hashlib.sha256).digest()
    return f"2.25.{int.from_bytes(digest[:16], 'big')}"


def burned_in_note(ds: Dataset) -> str | None:
    """A note when the dataset says text is burned into its pixels, else None."""
    if str(ds.get("BurnedInAnnotation", "")).strip().upper() == "YES":
        return (
            "BurnedInAnnotation is YES: the pixels may show identifying text, "
            "which de-identification does not remove"
        )
    return None


def dicom_age(birth: date, on: date) -> str | None:
    """Age on a date as a DICOM age string (``057Y``, ``011M``, ``003W``, ``005D``).

    Returns None when `on` is before `birth`.
    """
    if on < birth:
        return None
    before_birthday = (on.month, on.day) < (birth.month, birth.day)
    years = on.year - birth.year - before_birthday
    if years >= 1:
        return f"{min(years, 999):03d}Y"
    months = (on.year - birth.year) * 12 + on.month - birth.month - (on.day < birth.day)
    if months >= 1:
        return f"{months:03d}M"
    days = (on - birth).days
    return f"{days // 7:03d}W" if days >= 7 else f"{days:03d}D"


def _fill_patient_age(ds: Dataset, notes: list[str]) -> None:
    """Set Patient's Age from the birth and exam dates when the dataset lacks it."""
    if str(ds.get("PatientAge") or "").strip():
        return
    birth = _parse_date(ds.get("PatientBirthDate"))
    if birth is None:
        return
    exam = next(
        (d for d in (_parse_date(ds.get(key)) for key in EXAM_DATES) if d), None
    )
    age = dicom_age(birth, exam) if exam else None
    if age is None:
        notes.append(
            "PatientAge missing and not computable from the birth and exam dates"
        )
        return
    ds.PatientAge = age
    notes.append("PatientAge computed from the birth and exam dates")


def _parse_date(value: object) -> date | None:
    """A DA value (``YYYYMMDD``, or the old ``YYYY.MM.DD``) as a date, else None."""
    text = str(value or "").strip().replace(".", "")[:8]
    if len(text) != 8 or not text.isdigit():
        return None
    try:
        return date(int(text[:4]), int(text[4:6]), int(text[6:]))
    except ValueError:
        return None


def _removed_by_group(tag: BaseTag) -> bool:
    """Private attributes, curves (50xx) and overlays (60xx): all removed.

    The profile lists Overlay Data and Overlay Comments; the whole overlay group
    goes, since an overlay without its data is malformed.
    """
    group = tag.group
    return (
        tag.is_private
        or (0x5000 <= group <= 0x501E and group % 2 == 0)
        or (0x6000 <= group <= 0x601E and group % 2 == 0)
    )


def _apply_actions(dataset: Dataset, salt: bytes) -> None:
    """Apply `ACTIONS` to one dataset and, recursively, to its sequence items."""
    for tag in list(dataset.keys()):
        if _removed_by_group(tag):
            del dataset[tag]
            continue
        element = dataset[tag]
        action = ACTIONS.get(int(tag))
        if action is None:
            action = "X" if element.VR in REMOVED_VRS else "K"
        if action == "X":
            del dataset[tag]
        elif action == "Z":
            element.value = [] if element.VR == "SQ" else None
        elif action == "D":
            _set_dummy(dataset, element, salt)
        elif element.VR == "SQ":  # K or U: keep, and clean every item
            for item in element.value or []:
                _apply_actions(item, salt)
        elif action == "U":
            _replace_uids(dataset, element, salt)


def _set_dummy(dataset: Dataset, element: DataElement, salt: bytes) -> None:
    """Action D: a non-empty value that identifies no one, consistent with the VR."""
    if element.VR == "SQ":
        element.value = [Dataset()]
    elif element.VR == "UI":
        _replace_uids(dataset, element, salt)
    elif element.VR in DUMMY_VALUES:
        element.value = DUMMY_VALUES[element.VR]
    else:  # binary VRs have no meaningful dummy
        del dataset[element.tag]


def _replace_uids(dataset: Dataset, element: DataElement, salt: bytes) -> None:
    """Action U: each UID value replaced by `replacement_uid`."""
    value = element.value
    if isinstance(value, bytes):
        value = value.decode("ascii", errors="replace")
    if value is None or value == "":
        return
    if isinstance(value, str):
        element.value = replacement_uid(value, salt)
    elif isinstance(value, list | MultiValue):
        element.value = [replacement_uid(uid, salt) for uid in value]
    else:
        del dataset[element.tag]


def _record_method(ds: Dataset) -> None:
    """Patient Identity Removed, De-identification Method and its codes."""
    ds.PatientIdentityRemoved = "YES"
    methods = [
        str(m) for m in _as_list(ds.get("DeidentificationMethod")) if str(m).strip()
    ]
    if METHOD_TEXT not in methods:
        methods.append(METHOD_TEXT)
    ds.DeidentificationMethod = methods if len(methods) > 1 else methods[0]
    codes = list(ds.get("DeidentificationMethodCodeSequence") or [])
    present = {
        (str(item.get("CodingSchemeDesignator")), str(item.get("CodeValue")))
        for item in codes
    }
    for value, meaning in METHOD_CODES:
        if ("DCM", value) in present:
            continue
        item = Dataset()
        item.CodeValue = value
        item.CodingSchemeDesignator = "DCM"
        item.CodeMeaning = meaning
        codes.append(item)
    ds.DeidentificationMethodCodeSequence = codes


def _as_list(value: object) -> list:
    if value is None or value == "":
        return []
    if isinstance(value, str):
        return [value]
    return list(value)  # type: ignore[call-overload]


def _new_file_meta(old: FileMetaDataset, ds: Dataset, salt: bytes) -> FileMetaDataset:
    """File meta information rebuilt from scratch (PS3.15 E.1.1, item 7)."""
    meta = FileMetaDataset()
    sop_class = ds.get("SOPClassUID") or old.get("MediaStorageSOPClassUID")
    if sop_class:
        meta.MediaStorageSOPClassUID = sop_class
    instance = old.get("MediaStorageSOPInstanceUID")
    if instance:
        meta.MediaStorageSOPInstanceUID = replacement_uid(instance, salt)
    elif ds.get("SOPInstanceUID"):
        meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    if old.get("TransferSyntaxUID"):
        meta.TransferSyntaxUID = old.TransferSyntaxUID
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    return meta
