"""Evaluation report: per head, the model beside the clinical tools and other models.

`evaluate` scores every head on its held-out records: the federated model
(discrimination with CIs, calibration), each traditional tool, the centralised
twin, the other multimodal approaches, subgroups, and the auxiliary findings.
`write_report` renders it as ``evaluation.json``, ``evaluation.md`` and the ROC
and calibration figures (``figures/``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from fusion.baselines import BASELINES, baseline_scores
from fusion.evaluation import (
    auroc,
    bootstrap_ci,
    calibration_curve,
    head_metrics,
    paired_bootstrap_difference,
)
from fusion.figures import calibration_figure, roc_figure
from fusion.subgroups import subgroup_table
from ingest.schema import AUXILIARY_TARGETS, HEADS, TARGETS, PatientRecord

TARGET_GAIN = 0.05  # DESIGN.md: AUROC at least the traditional tool's + 0.05
MIN_PER_CLASS = 5  # fewer cases (or controls) among a target's test records: no AUROC
COMPARATORS = {
    "centralised": "Centralised twin (pooled data, same stages and passes)",
    "late_fusion": "Late fusion (one model per modality, risks averaged)",
    "haim": "HAIM-style (modality embeddings into gradient-boosted trees)",
}

HEAD_NOTES = {
    "acute_mi": (
        "PTB-XL MI statements are mostly established (old) infarction with few "
        "acute-stage cases: the acute MI alert is not yet validated on acute cases. "
        "The HEART-like tool has no history or troponin here."
    ),
    "stroke": (
        "Framingham: first stroke within 10 years of each stroke-free exam (features "
        "only from that exam and earlier ones); Kaggle stroke table: prevalent stroke "
        "(no time axis, provenance unverifiable). Neither holds atrial fibrillation "
        "or ECG LVH, so the stroke profile lacks those items."
    ),
    "postop": (
        "VitalDB general surgery; proxy label: in-hospital death or a stay above the "
        "90th percentile for the same operation type. Not a recorded complication. "
        "RCRI lacks heart failure, cerebrovascular disease and insulin here."
    ),
    "heart_disease": (
        "UCI Heart Disease (4 hospitals), angiographic disease (num > 0). The "
        "logistic regression is fitted on the same 13 curated features of about "
        "620 training patients, a strong tool on a small, clean table."
    ),
}


def evaluate(
    test: Sequence[PatientRecord],
    train: Sequence[PatientRecord],
    risks: dict[str, np.ndarray],
    feature_names: Sequence[str],
    seed: int = 0,
) -> dict:
    """Evaluate every head and auxiliary target on its held-out records.

    Parameters
    ----------
    test : sequence of PatientRecord
        Held-out records (test split).
    train : sequence of PatientRecord
        Training records (for the fitted baselines only).
    risks : dict
        Model name -> risks ``(len(test), len(TARGETS))``: ``federated`` (the
        model evaluated), and optionally ``centralised``, ``late_fusion``,
        ``haim`` (NaN where a model has no answer for a record).
    feature_names : sequence of str
        Tabular features for the logistic-regression baseline.
    seed : int
        Bootstrap seed.

    Returns
    -------
    dict
        ``heads`` (head -> metrics) and ``auxiliary`` (target -> metrics).
    """
    model = risks["federated"]
    heads = {}
    for column, head in enumerate(HEADS):
        rows = [i for i, record in enumerate(test) if head in record.labels]
        if not rows:
            continue
        records = [test[i] for i in rows]
        labels = np.array([record.labels[head] for record in records])
        scores = model[rows, column]

        # Step 1: the model itself, discrimination and calibration.
        metrics = head_metrics(labels, scores, seed=seed)
        metrics["calibration_curve"] = calibration_curve(labels, scores)
        metrics["sites"] = sorted({record.site for record in records})
        metrics["note"] = HEAD_NOTES[head]

        # Step 2: the traditional tools; the target is the best of them + 0.05.
        tools = baseline_scores(head, records, train, feature_names)
        metrics["baselines"] = {}
        for key, values in tools.items():
            gain, low, high = paired_bootstrap_difference(
                labels, scores, values, seed=seed
            )
            metrics["baselines"][key] = {
                "name": BASELINES[head][key],
                "auroc": auroc(labels, values),
                "auroc_ci": list(bootstrap_ci(labels, values, seed=seed)),
                "gain": gain,
                "gain_ci": [low, high],
            }
        best = max(metrics["baselines"], key=lambda k: metrics["baselines"][k]["auroc"])
        metrics["best_baseline"] = best
        metrics["best_baseline_auroc"] = metrics["baselines"][best]["auroc"]
        metrics["gain_over_best"] = metrics["baselines"][best]["gain"]
        metrics["gain_ci"] = metrics["baselines"][best]["gain_ci"]
        metrics["target_met"] = bool(metrics["gain_over_best"] >= TARGET_GAIN)

        # Step 3: the other models on the same records (where they answer).
        metrics["comparisons"] = {}
        for name in COMPARATORS:
            if name not in risks:
                continue
            other = risks[name][rows, column]
            answered = np.isfinite(other)
            entry = {"name": COMPARATORS[name], "n": int(answered.sum())}
            if _scorable(labels[answered]):
                diff, low, high = paired_bootstrap_difference(
                    labels[answered], scores[answered], other[answered], seed=seed
                )
                entry.update(
                    auroc=auroc(labels[answered], other[answered]),
                    auroc_ci=list(
                        bootstrap_ci(labels[answered], other[answered], seed=seed)
                    ),
                    model_minus_it=diff,
                    difference_ci=[low, high],
                )
            metrics["comparisons"][name] = entry

        # Step 4: subgroups (sex, age band, site), model beside the best tool.
        metrics["subgroups"] = subgroup_table(
            records, labels, {"model": scores, best: tools[best]}, seed=seed
        )
        metrics["curves"] = {"model": scores.tolist(), best: tools[best].tolist()}
        metrics["labels"] = labels.tolist()
        heads[head] = metrics

    auxiliary = {}
    for target in AUXILIARY_TARGETS:
        column = TARGETS.index(target)
        rows = [i for i, record in enumerate(test) if target in record.labels]
        labels = np.array([test[i].labels[target] for i in rows])
        entry = {"n_test": len(rows), "n_positive": int(labels.sum()) if rows else 0}
        if rows and _scorable(labels):
            scores = model[rows, column]
            entry.update(
                auroc=auroc(labels, scores),
                auroc_ci=list(bootstrap_ci(labels, scores, seed=seed)),
            )
        auxiliary[target] = entry
    return {"heads": heads, "auxiliary": auxiliary}


def _scorable(labels: np.ndarray) -> bool:
    positives = int(labels.sum())
    return min(positives, len(labels) - positives) >= MIN_PER_CLASS


def write_report(results: dict, context: dict, out_dir: Path) -> tuple[Path, Path]:
    """Write ``evaluation.json``, ``evaluation.md`` and ``figures/*.png``.

    Parameters
    ----------
    results : dict
        From `evaluate`, with ``subsets``, ``ablation`` and ``calibration``.
    context : dict
        Model version, stages, rounds, sites, command.
    out_dir : Path
        Usually ``reports/``.
    """
    figures = out_dir / "figures"
    figures.mkdir(parents=True, exist_ok=True)
    for head, m in results["heads"].items():
        labels = np.asarray(m["labels"])
        curves = {
            ("model" if key == "model" else m["baselines"][key]["name"]): np.asarray(v)
            for key, v in m["curves"].items()
        }
        roc_figure(head, labels, curves, figures / f"roc_{head}.png")
        calibration_figure(
            head,
            m["calibration_curve"],
            m["brier"],
            figures / f"calibration_{head}.png",
        )
    json_path, md_path = out_dir / "evaluation.json", out_dir / "evaluation.md"
    slim = {
        "context": context,
        **results,
        "heads": {
            head: {k: v for k, v in m.items() if k not in {"curves", "labels"}}
            for head, m in results["heads"].items()
        },
    }
    json_path.write_text(json.dumps(slim, indent=2, default=_plain), encoding="utf-8")
    md_path.write_text(markdown(results, context), encoding="utf-8")
    return json_path, md_path


def _plain(value: object) -> object:
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"not JSON serialisable: {type(value)}")


def _f(value: float | None, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "n/a"
    return f"{value:.{digits}f}"


def _ci(values: Sequence[float] | None) -> str:
    if not values or any(np.isnan(v) for v in values):
        return "n/a"
    return f"{values[0]:.3f}–{values[1]:.3f}"


def markdown(results: dict, context: dict) -> str:
    """The report as Markdown (see the module docstring for its parts)."""
    heads = results["heads"]
    rounds = context["rounds"]
    lines = [
        "# cardiorisk evaluation",
        "",
        f"Model version `{context['model_version']}`, trained {context['training']} "
        f"over {len(context['sites'])} sites: stages "
        f"{', '.join(context['stages'])} ("
        + ", ".join(f"{s} {rounds[s]} rounds" for s in context["stages"])
        + f", {context['local_epochs']} local epoch(s) each), calibrated by "
        f"{context['calibration_method']} scaling on the validation split. "
        "Held-out patients only (patient-wise split; PTB-XL folds 9-10). "
        "95% CIs from 1000 bootstrap resamples; gains are paired differences "
        "on the same patients. Nothing was tuned on the test split.",
        "",
        f"Regenerate: `{context['command']}`",
        "",
        "## Heads against the tools clinicians use",
        "",
        "| head | n test (pos.) | model AUROC [95% CI] | best traditional tool | "
        "its AUROC | gain [95% CI] | +0.05 met | centralised | late fusion | HAIM |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for head, m in heads.items():
        best = m["baselines"][m["best_baseline"]]
        comparison = m["comparisons"]
        lines.append(
            f"| {head} | {m['n_test']} ({m['n_positive']}) | {_f(m['auroc'])} "
            f"[{_ci(m['auroc_ci'])}] | {best['name']} | {_f(best['auroc'])} | "
            f"{m['gain_over_best']:+.3f} [{_ci(m['gain_ci'])}] | "
            f"{target_verdict(m)} | "
            + " | ".join(
                _f(comparison.get(name, {}).get("auroc"))
                for name in ("centralised", "late_fusion", "haim")
            )
            + " |"
        )
    lines += ["", "### Every traditional tool", ""]
    lines += ["| head | tool | AUROC [95% CI] | model minus tool [95% CI] |"]
    lines += ["|---|---|---|---|"]
    for head, m in heads.items():
        for tool in m["baselines"].values():
            lines.append(
                f"| {head} | {tool['name']} | {_f(tool['auroc'])} "
                f"[{_ci(tool['auroc_ci'])}] | {tool['gain']:+.3f} "
                f"[{_ci(tool['gain_ci'])}] |"
            )
    lines += _where_not_met(heads)
    lines += _comparisons(heads)
    lines += _subsets(results.get("subsets", []))
    lines += _ablation(results.get("ablation", {}))
    lines += _calibration(heads, results.get("calibration", {}))
    lines += _subgroups(heads)
    lines += _auxiliary(results.get("auxiliary", {}), context)
    lines += ["", "## Notes per head", ""]
    for head, m in heads.items():
        lines.append(f"- **{head}** (sites: {', '.join(m['sites'])}): {m['note']}")
    lines.append("")
    return "\n".join(lines)


def target_verdict(metrics: dict) -> str:
    """Whether a head meets the target, and whether its gain is shown at all.

    ``yes`` needs the gain over the best tool at `TARGET_GAIN` or more; when
    the paired 95% CI of that gain reaches 0, the gain itself is not shown on
    these patients, and the verdict says so.
    """
    if not metrics["target_met"]:
        return "no"
    return "yes" if metrics["gain_ci"][0] > 0 else "yes, but its CI reaches 0"


def _where_not_met(heads: dict) -> list[str]:
    missed = {head: m for head, m in heads.items() if not m["target_met"]}
    lines = ["", "### Where the target is not met", ""]
    if not missed:
        lines = ["", f"Every head meets the target (best tool + {TARGET_GAIN})."]
    for head, m in missed.items():
        best = m["baselines"][m["best_baseline"]]
        low, high = m["gain_ci"]
        verdict = (
            "below the tool"
            if high < 0
            else "not distinguishable from the tool"
            if low <= 0
            else "better than the tool, by less than 0.05"
        )
        lines.append(
            f"- **{head}**: {m['gain_over_best']:+.3f} [{_ci(m['gain_ci'])}] against "
            f"{best['name']}, {verdict}. {m['note']}"
        )
    unsure = {
        head: m for head, m in heads.items() if m["target_met"] and m["gain_ci"][0] <= 0
    }
    if unsure:
        lines += ["", "### Where the gain is not shown", ""]
    for head, m in unsure.items():
        best = m["baselines"][m["best_baseline"]]
        lines.append(
            f"- **{head}**: {m['gain_over_best']:+.3f} over {best['name']}, but the "
            f"paired 95% CI [{_ci(m['gain_ci'])}] reaches 0: on these "
            f"{m['n_test']} patients the model is not shown to be better than the "
            "tool."
        )
    return lines


def _comparisons(heads: dict) -> list[str]:
    lines = [
        "",
        "## Against other approaches (same patients)",
        "",
        "Model minus the other approach, paired over the records both answer; "
        "a positive difference favours our fusion.",
        "",
        "| head | approach | n | its AUROC [95% CI] | model minus it [95% CI] |",
        "|---|---|---|---|---|",
    ]
    for head, m in heads.items():
        for entry in m["comparisons"].values():
            if "auroc" not in entry:
                lines.append(f"| {head} | {entry['name']} | {entry['n']} | n/a | n/a |")
                continue
            lines.append(
                f"| {head} | {entry['name']} | {entry['n']} | {_f(entry['auroc'])} "
                f"[{_ci(entry['auroc_ci'])}] | {entry['model_minus_it']:+.3f} "
                f"[{_ci(entry['difference_ci'])}] |"
            )
    return lines


def _subsets(rows: list[dict]) -> list[str]:
    if not rows:
        return []
    lines = [
        "",
        "## Missing modalities: every subset the data allows",
        "",
        "The fused model with only the subset visible (the rest hidden, as if "
        "missing), on the test records labelled for the head that hold the whole "
        "subset, beside the best model trained on exactly that subset (a unimodal "
        "model, or the HAIM-style trees of that combination, whichever scores "
        "higher on these records).",
        "",
        "| head | modalities | n (pos.) | fused AUROC [95% CI] | best model on "
        "these alone | its AUROC | fused minus it [95% CI] | no worse |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        if "comparator" in row:
            low, high = row["difference_ci"]
            holds = "yes" if high >= 0 else "no"
            comparison = (
                f"{row['comparator']} | {_f(row['comparator_auroc'])} | "
                f"{row['difference']:+.3f} [{_ci(row['difference_ci'])}] | {holds}"
            )
        else:
            comparison = "none trained | n/a | n/a | n/a"
        lines.append(
            f"| {row['head']} | {' + '.join(row['modalities'])} | {row['n']} "
            f"({row['n_positive']}) | {_f(row['fused_auroc'])} "
            f"[{_ci(row['fused_auroc_ci'])}] | {comparison} |"
        )
    lines += [
        "",
        "`no worse` is `yes` when the paired 95% CI of the difference reaches 0 or "
        "above (the fused model is not shown to be worse).",
    ]
    return lines


def _ablation(ablation: dict) -> list[str]:
    if not ablation:
        return []
    heads = list(next(iter(ablation.values())))
    lines = [
        "",
        "## Stage ablation (held-out AUROC, federated, same initial weights)",
        "",
        "| stages | " + " | ".join(heads) + " |",
        "|---|" + "---|" * len(heads),
    ]
    for name, values in ablation.items():
        lines.append(f"| {name} | " + " | ".join(_f(values[h]) for h in heads) + " |")
    return lines


def _calibration(heads: dict, calibration: dict) -> list[str]:
    lines = [
        "",
        "## Calibration (fitted on the validation split only)",
        "",
        "| head | method | scale | bias | n validation | validation Brier before → "
        "after | test Brier | test ECE | figure |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for head, m in heads.items():
        c = calibration.get(head, {})
        before_after = (
            f"{_f(c['brier_before'], 4)} → {_f(c['brier_after'], 4)}"
            if "brier_before" in c
            else "n/a"
        )
        lines.append(
            f"| {head} | {c.get('method', 'n/a')} | {_f(c.get('scale'))} | "
            f"{_f(c.get('bias'))} | {c.get('n_validation', 'n/a')} | {before_after} | "
            f"{_f(m['brier'], 4)} | {_f(m['ece'])} | "
            f"[calibration](figures/calibration_{head}.png), "
            f"[ROC](figures/roc_{head}.png) |"
        )
    return lines


def _subgroups(heads: dict) -> list[str]:
    lines = [
        "",
        "## Subgroups (test records; AUROC where both classes have 5+ records)",
        "",
        "| head | grouping | group | n (pos.) | model AUROC [95% CI] | "
        "best tool AUROC |",
        "|---|---|---|---|---|---|",
    ]
    for head, m in heads.items():
        best = m["best_baseline"]
        for row in m["subgroups"]:
            scored = row.get("auroc", {})
            lines.append(
                f"| {head} | {row['grouping']} | {row['group']} | {row['n']} "
                f"({row['n_positive']}) | {_f(scored.get('model'))} "
                f"[{_ci(row.get('auroc_ci'))}] | {_f(scored.get(best))} |"
            )
    return lines


def _auxiliary(auxiliary: dict, context: dict) -> list[str]:
    if not auxiliary:
        return []
    lines = [
        "",
        "## Auxiliary findings (not risk heads)",
        "",
        "They train the encoders and name the concepts explanations use. "
        "Cardiomegaly comes from 99 NIH chest X-rays of 22 patients (13 positive "
        "images from 3 patients; 1 positive image in the training split): the "
        "imaging encoder has seen almost nothing, and its row says so.",
        "",
        "| finding | learned from | n test (pos.) | AUROC [95% CI] |",
        "|---|---|---|---|",
    ]
    coverage = context.get("coverage", {})
    for target, entry in auxiliary.items():
        lines.append(
            f"| {target} | {', '.join(coverage.get(target, [])) or 'nothing'} | "
            f"{entry['n_test']} ({entry['n_positive']}) | {_f(entry.get('auroc'))} "
            f"[{_ci(entry.get('auroc_ci'))}] |"
        )
    return lines
