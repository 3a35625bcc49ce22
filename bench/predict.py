"""Latency of one prediction (all modalities present) on CPU, with and without reasons.

Usage: ``python bench/predict.py [--repeats 50]``. Needs a registered model version
(``make demo`` or ``cardiorisk train``) and the cohort store (``cardiorisk prepare``).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from app.service import PredictionService
from app.settings import load_settings
from ingest.cohort import load_cohort
from ingest.schema import TimelineStep


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=50)
    args = parser.parse_args()
    service = PredictionService(load_settings().models_path())
    data = service.data
    # A real PTB-XL test record (ECG + demographics) given an EHR timeline too,
    # so that every modality is present.
    record = next(
        r
        for r in load_cohort(
            data.cohort_path(),
            sites=["ptbxl_site0"],
            splits=["test"],
        )
        if r.labels.get("acute_mi") == 1
    )
    record.timeline = [TimelineStep(2.0, dict(record.features))]
    n_params = sum(p.numel() for p in service.model.parameters())
    print(
        f"model version {service.version}, {n_params:,} parameters, "
        f"torch threads {torch.get_num_threads()}"
    )
    for explain in (False, True):
        service.predict(record, explain=explain)  # warm-up
        times = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            service.predict(record, explain=explain)
            times.append(time.perf_counter() - start)
        p50, p95 = np.percentile(np.array(times) * 1000, [50, 95])
        label = (
            "prediction + reasons (IG x4, Shapley)" if explain else "prediction only"
        )
        print(f"{label:40s} p50 {p50:7.1f} ms   p95 {p95:7.1f} ms   (n={args.repeats})")


if __name__ == "__main__":
    main()
