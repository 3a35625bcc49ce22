"""The plain-language paragraph of each head's explanation, in English or Vietnamese.

Built from the structured explanation (`explain.report.explain_record`) and the
message catalog (``explain.*`` keys), in a fixed order a clinician can scan:
the risk; what drove it (Integrated Gradients, and whether Feature Ablation
agrees); each source's share; the ECG leads that weigh most, and whether they
are those of the changes measured on the ECG; the clinical concepts the model's
state resembles; what was missing and what that does to confidence on held-out
patients; the anomalies found; the traditional score beside it.
"""

from __future__ import annotations

from app.i18n import (
    format_number,
    format_value,
    has_message,
    input_label,
    lead_label,
    lead_list,
    translate,
    unit_label,
)

SHOWN_LEADS = 3  # ECG leads named in a paragraph
SHOWN_ANOMALIES = 6


def paragraphs(explanation: dict, language: str = "en") -> dict[str, str]:
    """Head -> its paragraph."""
    return {
        entry["head"]: head_paragraph(entry, explanation, language)
        for entry in explanation["heads"]
    }


def head_paragraph(entry: dict, explanation: dict, language: str = "en") -> str:
    """One head's explanation as a paragraph (see the module docstring)."""

    def t(key: str, **values: object) -> str:
        return translate(f"explain.{key}", language, **values)

    sentences = [
        t(
            "risk",
            head=translate(f"head.{entry['head']}", language),
            percent=_percent(entry["risk"], language),
            band=translate(f"band.{entry['band']}", language)
            if "band" in entry
            else "",
        ).replace(" ()", "")
    ]
    if not entry["modalities_read"]:
        sentences.append(t("no_data"))
    else:
        reasons = entry["integrated_gradients"]["reasons"]
        if reasons:
            items = [
                t(
                    "driver",
                    label=reason_text(r, explanation, language),
                    effect=t("raises" if r["attribution"] >= 0 else "lowers"),
                )
                for r in reasons
            ]
            sentences.append(t("drivers", items="; ".join(items)))
            agreed = len(entry.get("methods_agree_on", []))
            sentences.append(t("agree", count=agreed) if agreed else t("agree_none"))
        shares = entry["modality_shares"]
        if shares:
            items = [
                t(
                    "share",
                    modality=translate(f"modality.{m}", language),
                    points=_signed(100 * value, language),
                )
                for m, value in sorted(shares.items(), key=lambda kv: -abs(kv[1]))
            ]
            sentences.append(
                t(
                    "shares",
                    base=_percent(entry["risk_with_no_data"], language),
                    items=", ".join(items),
                )
            )
        leads = [row["lead"] for row in entry.get("ecg_leads", [])[:SHOWN_LEADS]]
        if leads:
            sentences.append(t("leads", leads=lead_list(leads)))
            sentences += _measured_leads(leads, explanation, language)
    sentences += _signal_quality(entry, explanation, language)
    aligned = [c for c in entry["concepts"] if c["aligns"]]
    if aligned:
        items = [
            t(
                "concept_lowers" if c["sensitivity"] < 0 else "concept",
                display=_concept(c, language),
                snomed=c["snomed"],
            )
            for c in aligned
        ]
        sentences.append(t("concepts", items=", ".join(items)))
    elif entry["concepts"]:
        sentences.append(t("concepts_none"))
    sentences += _missing(entry, language)
    territories = {a["name"] for a in explanation["anomalies"] if a["leads"]}
    found = sorted(
        (
            a
            for a in explanation["anomalies"]
            if a["leads"] or not _in_territory(a, explanation, territories)
        ),
        key=_severity,
        reverse=True,
    )
    if found:
        items = "; ".join(anomaly_text(a, language) for a in found[:SHOWN_ANOMALIES])
        if len(found) > SHOWN_ANOMALIES:
            items += t("anomalies_more", count=len(found) - SHOWN_ANOMALIES)
        sentences.append(t("anomalies", items=items))
    else:
        sentences.append(t("anomalies_none"))
    sentences += _scores(entry, language)
    return " ".join(s for s in sentences if s)


def reason_text(reason: dict, explanation: dict, language: str) -> str:
    """A reason's clinical name, with the patient's value when it has one."""
    kind, _, detail = reason["name"].partition(":")
    if kind in ("ecg", "image"):
        return input_label(reason["name"], language)
    if kind == "timeline":
        visits = [v for h in explanation["heads"] for v in h.get("timeline", [])]
        visit = next((v for v in visits if v["visit"] == int(detail)), None)
        years = visit["years_before"] if visit else None
        return input_label(reason["name"], language, years)
    if reason["name"] == "sex_male" and reason.get("value") in (0.0, 1.0):
        sex = translate("form.male" if reason["value"] else "form.female", language)
        return f"{translate('field.sex', language)} ({sex})"
    label = input_label(reason["name"], language)
    unit = reason.get("unit") or ""
    if unit == "points" and reason.get("value") == 1.0:
        unit = "point"
    unit = unit_label(unit, language)
    if reason["name"] == "age" and language == "vi":
        unit = ""  # "Tuổi (74)": the word already says years
    value = format_value(reason.get("value"), unit, language)
    if not value:
        return label
    if label.endswith(")"):  # "CHA2DS2-VASc score (from the record; 2 points)"
        return f"{label[:-1]}; {value})"
    return f"{label} ({value})"


def anomaly_text(anomaly: dict, language: str) -> str:
    """An anomaly as a clinician reads it: what, the value, which way, the limit."""
    kind, _, where = anomaly["name"].partition(":")
    if anomaly["leads"]:
        return translate(
            "explain.anomaly_territory",
            language,
            label=translate(f"measurement.{kind}", language),
            territory=translate(f"territory.{where}", language),
            leads=lead_list(anomaly["leads"]),
        )
    if anomaly["source"] == "ecg":
        single = "q_wave_lead" if kind == "q_wave" else kind  # one lead's Q wave
        label = translate(f"measurement.{single}", language)
        if where:
            label = f"{label} {lead_label(where)}"
    else:
        label = translate(f"field.{kind}", language)
        if anomaly["source"] == "visit" and anomaly.get("years_before") is not None:
            years = format_number(anomaly["years_before"], language)
            label = translate("explain.at_visit", language, label=label, years=years)
    decimals = 2 if abs(anomaly["value"]) < 10 else 0
    while (
        decimals < 3
        and anomaly["value"] != anomaly["limit"]
        and format_number(anomaly["value"], language, decimals)
        == format_number(anomaly["limit"], language, decimals)
    ):
        decimals += 1  # 59.7 /min is not shown as its limit, 60
    unit = unit_label(anomaly["unit"], language)
    return translate(
        "explain.anomaly",
        language,
        label=label,
        value=f"{format_number(anomaly['value'], language, decimals)} {unit}".strip(),
        direction=translate(f"explain.{anomaly['direction']}", language),
        limit=f"{format_number(anomaly['limit'], language, decimals)} {unit}".strip(),
    )


def _signal_quality(entry: dict, explanation: dict, language: str) -> list[str]:
    """The ECG's leads read as zeros for noise, or the ECG set aside."""
    quality = explanation.get("ecg_quality")
    if not quality or (quality["used"] and not quality["poor"]):
        return []
    if not quality["used"] and "ecg" in entry["modalities_missing"]:
        return [
            translate(
                "explain.ecg_set_aside",
                language,
                median=format_number(quality["median"], language, 2),
                limit=format_number(quality["min_median"], language, 2),
            )
        ]
    if quality["used"] and "ecg" in entry["modalities_read"]:
        return [
            translate("explain.poor_leads", language, leads=lead_list(quality["poor"]))
        ]
    return []


def _measured_leads(top: list[str], explanation: dict, language: str) -> list[str]:
    """Whether the leads that weigh most show the infarct signs measured on the ECG.

    The signs are the ECG infarct criteria: ST elevation or pathological Q
    waves in contiguous leads (``ecg_infarct_leads``). When the model weighed
    other leads most, the paragraph sends the reader to the measured ones: the
    model may have missed what a cardiologist reads there.
    """
    measured = explanation.get("ecg_infarct_leads", [])
    if not measured:
        return []
    shown = [lead for lead in top if lead in measured]
    if shown:
        return [translate("explain.leads_agree", language, leads=lead_list(shown))]
    return [translate("explain.leads_elsewhere", language, leads=lead_list(measured))]


def _missing(entry: dict, language: str) -> list[str]:
    out = []
    confidence = entry["confidence"]
    overall = _auroc(confidence["held_out_auroc"], language)
    if entry["modalities_missing"]:
        out.append(
            translate(
                "explain.missing",
                language,
                modalities=_modalities(entry["modalities_missing"], language),
            )
        )
        if confidence["subset_auroc"] is not None:
            out.append(
                translate(
                    "explain.confidence_subset",
                    language,
                    subset=_auroc(confidence["subset_auroc"], language),
                    n=confidence["subset_n"],
                    overall=overall,
                )
            )
        elif entry["modalities_read"]:
            out.append(
                translate("explain.confidence_unknown", language, overall=overall)
            )
    elif entry["modalities_read"]:
        out.append(translate("explain.complete", language, overall=overall))
    if entry["modalities_not_used"]:
        out.append(
            translate(
                "explain.not_used",
                language,
                modalities=_modalities(entry["modalities_not_used"], language),
            )
        )
    return out


def _modalities(names: list[str], language: str) -> str:
    return ", ".join(translate(f"modality.{m}", language) for m in names)


def _scores(entry: dict, language: str) -> list[str]:
    """The head's traditional scores (or their absence), then both AUROCs."""
    scores = entry["clinical_scores"]
    out = [
        translate(
            "explain.score",
            language,
            name=translate(f"field.{s['name']}", language),
            value=format_number(s["value"], language, 0)
            + (f" ({lead_list(s['leads'])})" if s.get("leads") else ""),
        )
        for s in scores
    ]
    configured = entry.get("clinical_scores_configured", [])
    if not scores and configured:
        names = ", ".join(translate(f"field.{n}", language) for n in configured)
        out.append(translate("explain.score_missing", language, names=names))
    tool = entry.get("best_tool_held_out_auroc")
    if tool is not None:
        gain_ci = entry.get("gain_over_best_tool_ci")
        unproven = gain_ci is not None and gain_ci[0] <= 0 < gain_ci[1]
        out.append(
            translate(
                "explain.scores_unproven" if unproven else "explain.scores_compared",
                language,
                name=_tool_name(entry, language),
                tool=_auroc(tool, language),
                model=_auroc(entry["confidence"]["held_out_auroc"], language),
                **(
                    {
                        "low": _signed_auroc(gain_ci[0], language),
                        "high": _signed_auroc(gain_ci[1], language),
                    }
                    if unproven
                    else {}
                ),
            )
        )
    return out


def _severity(anomaly: dict) -> float:
    """How far outside its limit, relative to it; a whole territory first."""
    if anomaly["leads"]:
        return float("inf")
    limit = abs(anomaly["limit"]) or 1.0
    return abs(anomaly["value"] - anomaly["limit"]) / limit


def _concept(concept: dict, language: str) -> str:
    key = f"concept.{concept['concept']}"
    return (
        translate(key, language) if has_message(key, language) else concept["display"]
    )


def _in_territory(anomaly: dict, explanation: dict, territories: set[str]) -> bool:
    """Whether a per-lead ST change is already named by its territory."""
    kind, _, lead = anomaly["name"].partition(":")
    return any(
        a["name"] in territories and a["name"].startswith(kind) and lead in a["leads"]
        for a in explanation["anomalies"]
    )


def _percent(risk: float, language: str) -> str:
    return f"{format_number(100 * risk, language, 1)} %"


def _signed(points: float, language: str) -> str:
    sign = "+" if points >= 0 else "−"
    return f"{sign}{format_number(abs(points), language, 1)}"


def _tool_name(entry: dict, language: str) -> str:
    """`` (the ECG infarct criteria)`` for the head's best tool, or nothing."""
    key = f"tool.{entry['head']}.{entry.get('best_tool')}"
    return f" ({translate(key, language)})" if has_message(key, language) else ""


def _signed_auroc(value: float, language: str) -> str:
    sign = "+" if value >= 0 else "−"
    return f"{sign}{format_number(abs(value), language, 2)}"


def _auroc(value: float | None, language: str) -> str:
    return "?" if value is None else format_number(value, language, 2)
