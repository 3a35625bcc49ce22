"""Latency of predictions on CPU: one patient with every modality, and a batch of 64.

Usage: ``python bench/predict.py [--repeats 50] [--threads 2]``. Needs a registered
model version (``make demo`` or ``cardiorisk train``) and the cohort store
(``cardiorisk prepare``). Prints the model's parameter count, then p50/p95 of:

- one prediction through the service (ECG, tabular, timeline and a chest X-ray
  all present), with and without reasons (Integrated Gradients, Shapley values);
- one forward pass over a batch of 64 test records (encoding included).

``--threads 2`` reproduces the two cores of the target machine (DESIGN.md).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import _path  # noqa: F401 (first: bench/explain.py shadows the explain package)
import numpy as np
import torch

from app.service import PredictionService
from app.settings import load_settings
from ingest.cohort import load_cohort
from ingest.schema import PatientRecord, TimelineStep
from modalities.batch import MODALITIES, encode_records


def every_modality(service: PredictionService) -> PatientRecord:
    """A real PTB-XL MI test record given an earlier visit and a real chest X-ray."""
    cohort = service.data.cohort_path()
    record = next(
        r
        for r in load_cohort(cohort, sites=["ptbxl_site0"], splits=["test"])
        if r.labels.get("acute_mi") == 1
    )
    image = next(r for r in load_cohort(cohort, sites=["nih_cxr"]) if r.images)
    record.timeline = [TimelineStep(2.0, dict(record.features))]
    record.images = list(image.images)
    return record


def percentiles(run: Callable[[], object], repeats: int) -> tuple[float, float]:
    """p50 and p95 in milliseconds of ``run`` after one warm-up call."""
    run()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    p50, p95 = np.percentile(np.array(times) * 1000, [50, 95])
    return float(p50), float(p95)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    service = PredictionService(load_settings().models_path())
    record = every_modality(service)
    n_params = sum(p.numel() for p in service.model.parameters())
    print(
        f"model version {service.version}, {n_params:,} parameters, "
        f"torch threads {torch.get_num_threads()}"
    )
    inputs = encode_records([record], service.data)
    present = [m for i, m in enumerate(MODALITIES) if inputs.modality_mask[0, i]]
    print(f"one patient holding: {', '.join(present)}")

    rows = []
    for explain in (False, True):
        label = "one prediction + reasons" if explain else "one prediction"
        timing = percentiles(
            lambda explain=explain: service.predict(record, explain=explain),
            args.repeats,
        )
        rows.append((label, *timing))

    test = load_cohort(service.data.cohort_path(), splits=["test"])
    batch = [test[i] for i in np.random.default_rng(0).permutation(len(test))[:64]]

    def forward_batch() -> None:
        encoded = encode_records(batch, service.data)
        with torch.no_grad():
            service.model(*encoded.forward_args())

    label = f"batch of {len(batch)} mixed test records"
    rows.append((label, *percentiles(forward_batch, 20)))
    for label, p50, p95 in rows:
        print(f"{label:32s} p50 {p50:8.1f} ms   p95 {p95:8.1f} ms")


if __name__ == "__main__":
    main()
