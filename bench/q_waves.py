"""Pathological Q waves and ST changes by territory against PTB-XL's cardiologists.

Usage: ``python bench/q_waves.py``. Reads the 500 PTB-XL records of
``CARDIORISK_DATA`` at 100 Hz (as the model reads them) and at 500 Hz, measures
them with neurokit2 (`ingest.ecg_measurements`) and names the territories whose
two contiguous leads show pathological Q waves or ST elevation, as explanations do
(`explain.anomalies`). Prints, per sampling rate, how often the infarct's
territory is named for the records whose cardiologists wrote an inferior (IMI) or
anteroseptal (ASMI) infarct statement, and how often each territory is named for
the records without any MI statement (false findings); then the cost of measuring
one ECG.
"""

from __future__ import annotations

import argparse
import ast
import time

import _path  # noqa: F401 (first: bench/explain.py shadows the explain package)
import numpy as np
import pandas as pd

from explain.anomalies import ecg_anomalies, load_reference_ranges
from ingest.config import data_dir
from ingest.ecg import read_wfdb
from ingest.ecg_measurements import CHEST_TERRITORIES, LIMB_TERRITORIES, measure

# The territories (`ingest.ecg_measurements.contiguous_territories`) of each
# infarct statement.
INFARCTS = {
    "IMI": ("inferior",),
    "ASMI": ("septal", "anterior", "anteroseptal", "extensive_anterior"),
}
MI_CODES = {"IMI", "ASMI", "AMI", "ALMI", "LMI", "ILMI", "IPLMI", "IPMI", "PMI"}
MI_CODES |= {"INJAS", "INJAL", "INJIN", "INJLA", "INJIL"}
RATES = {100: "filename_lr", 500: "filename_hr"}
TERRITORIES = (
    *LIMB_TERRITORIES,
    *sorted(set(CHEST_TERRITORIES.values()), key=len),
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--limit", type=int, default=None, help="first N records")
    args = parser.parse_args()
    folder = data_dir() / "ptbxl_subset"
    database = pd.read_csv(folder / "ptbxl_database.csv", index_col="ecg_id")
    if args.limit:
        database = database.head(args.limit)
    ranges = load_reference_ranges()["ecg"]
    codes = {ecg_id: ast.literal_eval(s) for ecg_id, s in database.scp_codes.items()}
    without_mi = [ecg_id for ecg_id, c in codes.items() if not MI_CODES & set(c)]
    counts = ", ".join(f"{k} {sum(k in c for c in codes.values())}" for k in INFARCTS)
    print(
        f"PTB-XL: {len(database)} records, {len(without_mi)} without an MI "
        f"statement; {counts}"
    )
    for fs, column in RATES.items():
        named: dict[int, set[str]] = {}
        costs = []
        for ecg_id, row in database.iterrows():
            ecg = read_wfdb(folder / row[column])
            start = time.perf_counter()
            measured = measure(ecg)
            costs.append(time.perf_counter() - start)
            # PTB-XL's sex is 0 for male; the ST limits of V2-V3 are by sex, age.
            male, age = float(row["sex"] == 0), float(row["age"])
            found = (
                ecg_anomalies(measured, ranges, male, age)
                if measured is not None
                else []
            )
            named[ecg_id] = {a.name for a in found if a.leads}
        print(f"\nat {fs} Hz (measuring one ECG: p50 {np.median(costs) * 1e3:.0f} ms)")
        for code, territories in INFARCTS.items():
            records = [ecg_id for ecg_id, c in codes.items() if code in c]
            for change in ("q_wave", "st_elevation"):
                hits = sum(
                    any(f"{change}:{t}" in named[ecg_id] for t in territories)
                    for ecg_id in records
                )
                share = hits / len(records)
                print(
                    f"  {code} ({len(records)}): {change} named in the "
                    f"{'/'.join(territories)} leads for {hits} ({share:.0%})"
                )
        for change in ("q_wave", "st_elevation"):
            rates = []
            for territory in TERRITORIES:
                hits = sum(f"{change}:{territory}" in named[i] for i in without_mi)
                if hits:
                    rates.append(f"{territory} {hits}")
            anywhere = sum(
                any(name.startswith(change) for name in named[i]) for i in without_mi
            )
            print(
                f"  without MI ({len(without_mi)}): {change} named for {anywhere} "
                f"({anywhere / len(without_mi):.0%}): " + ", ".join(rates)
            )


if __name__ == "__main__":
    main()
