"""The model card (``reports/model_card.md``), written with the evaluation report."""

from __future__ import annotations

from pathlib import Path

from fusion.report import HEAD_NOTES, TARGET_GAIN, target_verdict

INTENDED_USE = (
    "Research and evaluation of multimodal cardiovascular risk estimation: "
    "acute myocardial infarction from a 12-lead ECG with clinical values, 10-year "
    "stroke risk, serious complication after digestive / general surgery, and "
    "coronary heart disease in patients referred for angiography. Each score is "
    "meant to be read beside the clinical tool named for its head and the "
    "explanation that comes with it."
)
OUT_OF_SCOPE = [
    "Clinical decisions about a patient: the model is not validated for clinical "
    "use, and no regulator has reviewed it.",
    "Ruling out an acute MI: the acute-MI head learned from PTB-XL statements that "
    "are mostly established (old) infarction; it is not validated on acute cases.",
    "Children (no training record is under 18) and populations unlike the "
    "training sites (US, Hungarian, Swiss, German, Korean cohorts).",
    "Imaging-based decisions: the imaging encoder has seen 22 training chest "
    "X-rays; no risk head reads images.",
    "Post-operative complications as such: the post-op label is a proxy (death in "
    "hospital, or a stay above the 90th percentile of its operation type).",
]
LIMITATIONS = [
    "Sites hold different modalities and labels; each head has learned only "
    "from the modalities listed under 'What each output reads', and ignores the "
    "others even when they are given.",
    "The Kaggle stroke table's provenance cannot be verified, and its stroke "
    "label is prevalent, not incident.",
    "Traditional tools are computed from the fields the sources hold (no heart "
    "failure, atrial fibrillation or ECG LVH for the stroke profile; no insulin "
    "for RCRI; no history or troponin for the HEART-like score on PTB-XL).",
    "Test sets are small for some heads (acute MI: about 140 ECGs), so CIs are "
    "wide; subgroups with fewer than 5 cases are counted, not scored.",
    "Troponin, LDL cholesterol, triglycerides, prior stroke, heart failure and "
    "insulin are read and shown but were in no training source.",
]


def write_model_card(results: dict, context: dict, out_dir: Path) -> Path:
    """Write ``model_card.md`` from the evaluation results and training context.

    Parameters
    ----------
    results : dict
        From `fusion.report.evaluate`, with ``calibration``.
    context : dict
        As for `fusion.report.write_report`, with ``coverage`` and
        ``site_summary`` (the cohort manifest's sites).
    out_dir : Path
        Usually ``reports/``.
    """
    heads = results["heads"]
    lines = [
        f"# Model card: cardiorisk `{context['model_version']}`",
        "",
        "Generated with `reports/evaluation.md` by "
        f"`{context['command']}`; every figure here is measured there.",
        "",
        "## Model",
        "",
        "- Encoders: 1-D CNN over the 12-lead ECG (10 s at 100 Hz), MLP over "
        "clinical and lab values with missingness flags (and the guideline scores "
        "computed from them), GRU over earlier visits, 2-D CNN over one grey image.",
        "- Fusion: a summary token attends over the tokens of the modalities "
        "present; each output reads it beside the present tokens.",
        f"- Training: federated (Flower), stages {', '.join(context['stages'])}; "
        f"calibration: {context['calibration_method']} scaling on validation.",
        "",
        "## Intended use",
        "",
        INTENDED_USE,
        "",
        "## Out of scope",
        "",
        *[f"- {item}" for item in OUT_OF_SCOPE],
        "",
        "## Data and sites",
        "",
        "| site | records | train/val/test | modalities | labels |",
        "|---|---|---|---|---|",
    ]
    for site, entry in context["site_summary"].items():
        splits = "/".join(
            str(entry["splits"].get(s, 0)) for s in ("train", "validation", "test")
        )
        modalities = ", ".join(f"{m} {n}" for m, n in entry["modalities"].items())
        labels = ", ".join(
            f"{name} {v['n']} ({v['positive']})" for name, v in entry["labels"].items()
        )
        lines.append(
            f"| {site} | {entry['records']} | {splits} | {modalities} | {labels} |"
        )
    lines += [
        "",
        "## Labels, including proxies",
        "",
        *[f"- **{head}**: {note}" for head, note in HEAD_NOTES.items()],
        "",
        "## What each output reads",
        "",
        "| output | modalities it has learned from |",
        "|---|---|",
        *[
            f"| {target} | {', '.join(modalities) or 'none'} |"
            for target, modalities in context["coverage"].items()
        ],
        "",
        "## Performance (held-out patients)",
        "",
        "| head | AUROC [95% CI] | best tool (AUROC) | gain | target met | Brier |",
        "|---|---|---|---|---|---|",
    ]
    for head, m in heads.items():
        best = m["baselines"][m["best_baseline"]]
        lines.append(
            f"| {head} | {m['auroc']:.3f} [{m['auroc_ci'][0]:.3f}–"
            f"{m['auroc_ci'][1]:.3f}] | {best['name']} ({best['auroc']:.3f}) | "
            f"{m['gain_over_best']:+.3f} | "
            f"{target_verdict(m)} | {m['brier']:.4f} |"
        )
    lines += [
        "",
        f"The target is the best traditional tool's AUROC + {TARGET_GAIN} on the "
        "same patients; `reports/evaluation.md` says, head by head, why it is not "
        "met where it is not.",
        "",
        "## Subgroup performance",
        "",
        "| head | grouping | group | n (pos.) | model AUROC |",
        "|---|---|---|---|---|",
    ]
    for head, m in heads.items():
        for row in m["subgroups"]:
            value = row.get("auroc", {}).get("model")
            shown = f"{value:.3f}" if value is not None else "too few cases"
            lines.append(
                f"| {head} | {row['grouping']} | {row['group']} | {row['n']} "
                f"({row['n_positive']}) | {shown} |"
            )
    lines += ["", "## Limitations", "", *[f"- {item}" for item in LIMITATIONS], ""]
    path = out_dir / "model_card.md"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path
