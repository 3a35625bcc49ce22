"""Speed of the clinical readers on the real files, and of FHIR + DICOM ECG in the API.

Usage: ``python bench/readers.py [--repeats 20]``. Reads from ``CARDIORISK_DATA``; the
API part needs a registered model version (``make demo`` or ``cardiorisk train``).
Prints one line per input (records, seconds, records per second), then the API's
p50/p95 latency and this process's peak memory.
"""

from __future__ import annotations

import argparse
import json
import logging
import resource
import time
from pathlib import Path

import _path  # noqa: F401 (first: bench/explain.py shadows the explain package)
import numpy as np
from fastapi.testclient import TestClient

from app.api import create_app
from app.settings import load_settings
from ingest.codes import load_code_tables
from ingest.config import data_dir, load_data_config
from ingest.dispatch import read_paths

INPUTS = {
    "FHIR bulk export, 13 patients": "fhir_r4_synthea/bulk_10_patients_smart",
    "FHIR single patient, 174 Observations": "fhir_r4_synthea/single_patient_ktmtwm",
    "HL7 v2, 6 messages": "hl7v2_samples",
    "WFDB, 6 records (MIT-BIH 212, PTB 15-lead, .mat, ...)": "ecg_wfdb_samples",
    "DICOM ECG waveform, CT and MR images": "imaging_cxr_dicom/pydicom_test_files",
    "PNG chest X-rays (cardiomegaly subset)": "cxr_nih_cardiomegaly_small/images",
    "PTB-XL folder, 500 records with labels": "ptbxl_subset",
}  # fmt: skip
BUNDLE = "fhir_r4_synthea/ms_fhir_converter_samples/ObservationBundle.json"
DICOM_ECG = "imaging_cxr_dicom/pydicom_test_files/waveform_ecg.dcm"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    logging.disable(logging.INFO)
    root = data_dir()
    config, codes = load_data_config(), load_code_tables()

    # Each reader over its real folder.
    for label, folder in INPUTS.items():
        start = time.perf_counter()
        result, _ = read_paths([root / folder], config, codes)
        seconds = time.perf_counter() - start
        print(
            f"{label:55s} {len(result.records):4d} records "
            f"{seconds:6.2f} s  ({len(result.records) / seconds:6.1f} records/s)"
        )

    # The API: a FHIR Bundle and a DICOM 12-lead ECG in, a RiskAssessment out.
    client = TestClient(create_app(load_settings()))
    bundle = (root / BUNDLE).read_text(encoding="utf-8")
    ecg = (root / DICOM_ECG).read_bytes()
    for explain in (False, True):
        times = []
        for _ in range(args.repeats + 1):  # the first call warms up
            start = time.perf_counter()
            response = client.post(
                f"/v1/predictions?format=fhir&explain={str(explain).lower()}",
                data={"patient": bundle},
                files={"ecg_file": (Path(DICOM_ECG).name, ecg)},
            )
            times.append(time.perf_counter() - start)
            assert response.status_code == 200, response.text
        p50, p95 = np.percentile(np.array(times[1:]) * 1000, [50, 95])
        label = "API FHIR Bundle + DICOM ECG -> RiskAssessment"
        label += ", with reasons" if explain else ""
        print(f"{label:55s} p50 {p50:7.1f} ms  p95 {p95:7.1f} ms  (n={args.repeats})")
    json.loads(response.text)  # the last answer parses
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak resident memory of this process: {peak_mb:.0f} MB")


if __name__ == "__main__":
    main()
