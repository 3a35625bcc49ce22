import numpy as np

from ingest.ecg import read_wfdb
from ingest.ecg_measurements import r_peaks
from ingest.ptbxl import read_ptbxl


def test_mi_record_8_and_shapes(real_data, data_config):
    quarantine = []
    records = read_ptbxl(
        real_data / "ptbxl_subset",
        data_config.sources.ptbxl,
        data_config.ecg,
        data_config.features,
        quarantine,
        limit=10,
    )
    assert not quarantine
    by_id = {r.record_id: r for r in records}
    # IMI in scp_codes; ABQRS is a form statement, not a conduction disturbance.
    no_findings = {"ecg_hypertrophy": 0, "ecg_st_t_change": 0, "ecg_conduction": 0}
    assert by_id["ptbxl:8"].labels == {"acute_mi": 1, **no_findings}
    assert by_id["ptbxl:1"].labels == {"acute_mi": 0, **no_findings}  # NORM
    ecg = by_id["ptbxl:8"].ecg
    assert ecg.signal.shape == (12, 1000) and ecg.fs == 100
    assert ecg.lead_names[3] == "AVR"
    assert by_id["ptbxl:1"].site == "ptbxl_site0"
    assert by_id["ptbxl:1"].features["sex_male"] == 0.0  # sex 1 = female in PTB-XL


def test_r_peaks_of_record_1_within_20_ms(real_data):
    ecg = read_wfdb(real_data / "ptbxl_subset/records100/00000/00001_lr")
    peaks = r_peaks(ecg)
    assert len(peaks) == 10  # about 60 bpm over 10 s
    lead_ii = ecg.signal[1]
    for peak in peaks:
        window = lead_ii[peak - 5 : peak + 6]  # +-50 ms
        assert abs(int(np.argmax(window)) - 5) <= 2  # within 20 ms at 100 Hz
    assert abs(peaks[0] - 115) <= 2
