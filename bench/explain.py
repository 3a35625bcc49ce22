"""Latency of a full explanation of one patient on CPU.

Usage: ``python bench/explain.py [--repeats 20] [--threads 2]``. Needs a registered
model version (``make demo`` or ``cardiorisk train``; one trained since concepts
were added also places the record on its TCAV concepts) and the cohort store.
Prints p50/p95 of `PredictionService.explain` for a real PTB-XL MI test record
given an earlier visit and a real chest X-ray (every modality present): Integrated
Gradients and Feature Ablation for each of the 4 heads, exact Shapley values over
the modalities, the concepts' alignment, and the anomalies (the ECG measured with
neurokit2); and, apart, the plain-language paragraphs in both languages.

Then, for every held-out PTB-XL record with an inferior or anteroseptal MI (its
cardiologists' SCP statements IMI or ASMI), whether the explanation's top ECG lead
for the acute-MI head lies in that infarct's leads (II, III, aVF; V1-V4), against
the chance of a lead drawn at random; whether the ECG infarct criteria (ST
elevation or pathological Q waves in contiguous leads) are met in the infarct's
leads, and whether the three leads the model weighed most include one of those;
which concepts the record aligns with; and the acute-MI AUROC of each kind against
the held-out records without MI.

``--threads 2`` reproduces the two cores of the target machine (DESIGN.md).
"""

from __future__ import annotations

import argparse
import importlib.util

import _path  # noqa: F401 (first: this script shadows the explain package)
import torch
from sklearn.metrics import roc_auc_score

from app.explanation_text import paragraphs
from app.service import PredictionService
from app.settings import load_settings


# Named like the `explain` package, this script is off the import path: the
# shared helpers are loaded by file.
def _bench(name: str):
    spec = importlib.util.spec_from_file_location(f"bench_{name}", _path.HERE / name)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


bench_predict = _bench("predict.py")
every_modality, percentiles = bench_predict.every_modality, bench_predict.percentiles


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    service = PredictionService(load_settings().models_path())
    record = every_modality(service)
    learned = len(service.concepts.concepts) if service.concepts else 0
    print(
        f"model version {service.version}, torch threads {torch.get_num_threads()}, "
        f"{learned} learned concept tests"
    )
    print(f"one patient holding: {', '.join(record.modalities)}")
    explanation = service.explain(record)
    rows = [
        (
            "full explanation",
            *percentiles(lambda: service.explain(record), args.repeats),
        ),
        (
            "paragraphs, en + vi",
            *percentiles(
                lambda: [paragraphs(explanation, lang) for lang in ("en", "vi")],
                args.repeats,
            ),
        ),
    ]
    for label, p50, p95 in rows:
        print(f"{label:24s} p50 {p50:8.1f} ms   p95 {p95:8.1f} ms")
    territories(service)


TERRITORY = {"IMI": ("II", "III", "AVF"), "ASMI": ("V1", "V2", "V3", "V4")}


def territories(service: PredictionService) -> None:
    """Top acute-MI lead in the infarct's leads, on held-out PTB-XL MI records."""
    import ast

    import pandas as pd

    from ingest.cohort import load_cohort
    from ingest.config import data_dir

    database = pd.read_csv(
        data_dir() / "ptbxl_subset" / "ptbxl_database.csv", index_col="ecg_id"
    )
    tally = {kind: [0, 0] for kind in TERRITORY}  # records, top lead inside
    # records meeting the ECG infarct criteria in the infarct's leads, and of
    # these, how many have one of those among the three the model weighed most
    measured = {kind: [0, 0] for kind in TERRITORY}
    aligned: dict[str, int] = {}
    risks: dict[str, list[float]] = {kind: [] for kind in (*TERRITORY, "no MI")}
    for record in load_cohort(service.data.cohort_path(), splits=["test"]):
        if not record.record_id.startswith("ptbxl:") or record.ecg is None:
            continue
        codes = ast.literal_eval(database.loc[int(record.record_id[6:]), "scp_codes"])
        kinds = [kind for kind in TERRITORY if kind in codes]
        if record.labels.get("acute_mi") == 0:
            risks["no MI"].append(service.predict(record, explain=False).risks[0].risk)
        if len(kinds) != 1:
            continue
        explanation = service.explain(record)
        [mi] = [h for h in explanation["heads"] if h["head"] == "acute_mi"]
        risks[kinds[0]].append(mi["risk"])
        if not mi.get("ecg_leads"):
            continue
        tally[kinds[0]][0] += 1
        tally[kinds[0]][1] += mi["ecg_leads"][0]["lead"] in TERRITORY[kinds[0]]
        signs = [
            lead
            for lead in explanation["ecg_infarct_leads"]
            if lead in TERRITORY[kinds[0]]
        ]
        if signs:
            top = {row["lead"] for row in mi["ecg_leads"][:3]}
            measured[kinds[0]][0] += 1
            measured[kinds[0]][1] += bool(top & set(signs))
        for concept in mi["concepts"]:
            if concept["aligns"]:
                aligned[concept["concept"]] = aligned.get(concept["concept"], 0) + 1
    n_leads = len(service.data.ecg.leads)
    for kind, (records, inside) in tally.items():
        leads = ", ".join(TERRITORY[kind])
        print(
            f"held-out PTB-XL {kind} records: {records}; top acute-MI lead in "
            f"{leads} for {inside} (a random lead: "
            f"{len(TERRITORY[kind]) / n_leads:.0%})"
        )
    for kind, (named, weighed) in measured.items():
        print(
            f"held-out PTB-XL {kind} records meeting the ECG infarct criteria in "
            f"{', '.join(TERRITORY[kind])}: {named} of {tally[kind][0]}; one of "
            f"those leads among the model's top 3 for {weighed}"
        )
    total = sum(records for records, _ in tally.values())
    print(f"of these {total}, aligned with each concept: {aligned or 'none'}")
    for kind in TERRITORY:
        labels = [1] * len(risks[kind]) + [0] * len(risks["no MI"])
        found = roc_auc_score(labels, risks[kind] + risks["no MI"])
        print(
            f"acute-MI AUROC, held-out {kind} ({len(risks[kind])}) against the "
            f"{len(risks['no MI'])} held-out PTB-XL records without MI: {found:.3f}"
        )


if __name__ == "__main__":
    main()
