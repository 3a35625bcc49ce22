"""The ECG signal-quality gate on real records, on noise, and the model's lead-off cost.

Usage: ``python bench/signal_quality.py [--threads 2]``. Reads PTB-XL from
``CARDIORISK_DATA``; the last part needs a registered model version (``make demo``
or ``cardiorisk train``) and the cohort store (``cardiorisk prepare``). Prints:

- the gate's verdict on all 500 PTB-XL records as the model reads them (100 Hz):
  how many have a lead read as zeros or are set aside, with those PTB-XL's
  cardiologists annotated as noisy apart, and the gate's p50/p95 cost;
- the same on ECGs that are not readable: Gaussian noise, a real record with one
  lead replaced by noise, and a real record buried in 0.5 mV of noise;
- the acute-MI risk's change on held-out PTB-XL records when leads are off (read
  as zeros), and the AUROC then.

``--threads 2`` reproduces the two cores of the target machine (DESIGN.md).
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace

import _path  # noqa: F401 (first: bench/explain.py shadows the explain package)
import numpy as np
import pandas as pd
import torch
from sklearn.metrics import roc_auc_score

from app.service import PredictionService
from app.settings import load_settings
from ingest.cohort import load_cohort
from ingest.config import data_dir, load_data_config
from ingest.ecg import conform_ecg, read_wfdb
from ingest.ecg_quality import SignalQuality, assess_signal_quality
from ingest.schema import ECG, HEADS
from modalities.batch import encode_records

NOISE_FLAGS = ("static_noise", "burst_noise", "electrodes_problems", "baseline_drift")
LEADS_OFF = {
    "I": ["I"],
    "V1": ["V1"],
    "I, II, III": ["I", "II", "III"],
    "V1-V3": ["V1", "V2", "V3"],
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    spec = load_data_config().ecg
    gate = {"min_score": spec.min_lead_quality, "min_median": spec.min_ecg_quality}
    print(
        f"gate: a lead is read at template match >= {spec.min_lead_quality:g}; "
        f"an ECG is read when its leads' median is >= {spec.min_ecg_quality:g}"
    )
    folder = data_dir() / "ptbxl_subset"
    database = pd.read_csv(folder / "ptbxl_database.csv", index_col="ecg_id")
    annotated = database[list(NOISE_FLAGS)].notna().any(axis=1)

    # Part 1: the real records.
    verdicts, times = {}, []
    for ecg_id, row in database.iterrows():
        ecg = conform_ecg(read_wfdb(folder / row["filename_lr"]), spec)
        started = time.perf_counter()
        verdicts[ecg_id] = assess_signal_quality(ecg, **gate)
        times.append(time.perf_counter() - started)
    p50, p95 = np.percentile(np.array(times[1:]) * 1000, [50, 95])
    for name, chosen in (("clean", ~annotated), ("annotated noisy", annotated)):
        group = [verdicts[i] for i in database.index[chosen]]
        _tally(f"PTB-XL, {name}", group)
    print(f"gate cost per 12-lead ECG (100 Hz): p50 {p50:.0f} ms, p95 {p95:.0f} ms")

    # Part 2: ECGs the model should not read as they are.
    rng = np.random.default_rng(0)
    leads = list(spec.leads)
    real = [
        conform_ecg(read_wfdb(folder / database.loc[i, "filename_lr"]), spec)
        for i in database.index[~annotated][:20]
    ]
    noise = [
        ECG(rng.normal(0, 0.5, (12, spec.n_samples)).astype(np.float32), spec.fs, leads)
        for _ in range(20)
    ]
    _tally("Gaussian noise (0.5 mV)", [assess_signal_quality(e, **gate) for e in noise])
    one_lead, buried = [], []
    for ecg in real:
        signal = ecg.signal.copy()
        signal[2] = rng.normal(0, 0.5, signal.shape[1])  # lead III: noise
        one_lead.append(assess_signal_quality(replace(ecg, signal=signal), **gate))
        noisy = ecg.signal + rng.normal(0, 0.5, ecg.signal.shape).astype(np.float32)
        buried.append(assess_signal_quality(replace(ecg, signal=noisy), **gate))
    _tally("real, lead III replaced by noise", one_lead)
    caught = sum(v.poor == ["III"] for v in one_lead)
    print(f"  of which lead III alone read as zeros: {caught} of {len(one_lead)}")
    _tally("real + 0.5 mV noise", buried)

    # Part 3: what a lead off does to the acute-MI risk.
    service = PredictionService(load_settings().models_path())
    records = [
        r
        for r in load_cohort(service.data.cohort_path(), splits=["test"])
        if r.ecg is not None and "acute_mi" in r.labels
    ]
    labels = np.array([r.labels["acute_mi"] for r in records])
    base = _mi_risks(service, records, [])
    print(
        f"model {service.version}: {len(records)} held-out ECGs "
        f"({int(labels.sum())} MI), acute-MI AUROC {roc_auc_score(labels, base):.3f}"
    )
    for name, off in LEADS_OFF.items():
        risks = _mi_risks(service, records, off)
        change = 100 * (risks - base)
        print(
            f"  lead {name} off: risk change mean {change.mean():+.1f} points "
            f"(non-MI {change[labels == 0].mean():+.1f}), largest "
            f"{change.max():+.1f}; AUROC {roc_auc_score(labels, risks):.3f}"
        )


def _tally(name: str, verdicts: list[SignalQuality]) -> None:
    poor = sum(bool(v.poor) and v.usable for v in verdicts)
    aside = sum(not v.usable for v in verdicts)
    print(
        f"{name}: {len(verdicts)} ECGs; read whole {len(verdicts) - poor - aside}, "
        f"with leads read as zeros {poor}, set aside {aside}"
    )


def _mi_risks(service: PredictionService, records: list, off: list[str]) -> np.ndarray:
    rows = [service.data.ecg.leads.index(lead) for lead in off]
    changed = []
    for record in records:
        signal = record.ecg.signal.copy()
        signal[rows] = 0.0
        changed.append(replace(record, ecg=replace(record.ecg, signal=signal)))
    inputs = encode_records(changed, service.data)
    with torch.no_grad():
        logits = service.model(*inputs.forward_args())[:, HEADS.index("acute_mi")]
    return torch.sigmoid(logits).numpy()


if __name__ == "__main__":
    main()
