"""Guideline risk scores computed from a record's features, where the fields exist.

Each score is the clinical tool's point sum, from the fields our schema holds;
a field the record lacks counts as absent (0 points), and a score whose core
fields are missing is not computed at all (``None``), never guessed. The same
functions give the traditional baselines of the evaluation and the derived
``score_*`` inputs of the model (see `derived_features`).

- **CHA2DS2-VASc** (Lip et al., Chest 2010): heart failure, hypertension,
  age >= 75 (2), diabetes, prior stroke or TIA (2), vascular disease, age 65-74,
  female sex. Needs age and sex.
- **Framingham Stroke Risk Profile** (Wolf et al., Stroke 1991, with the
  treated-blood-pressure columns of D'Agostino et al., Stroke 1994): sex-specific
  points for age, systolic pressure (treated or not), diabetes, smoking, prior
  cardiovascular disease, atrial fibrillation and left ventricular hypertrophy.
  Needs age, sex and systolic pressure. The tables start at age 55: younger
  patients score 0 age points (outside the profile's validated range).
- **RCRI** (Lee et al., Circulation 1999): high-risk (intraperitoneal) surgery,
  ischaemic heart disease, heart failure, cerebrovascular disease, insulin
  therapy, creatinine > 2 mg/dL. Needs the surgery context.
- **HEART-like** (after Six et al., Neth Heart J 2008): History (chest-pain
  type), ECG, Age, Risk factors, Troponin, each 0-2. Needs age and one of the
  chest-pain type, an ECG finding or a troponin; the missing parts count 0.
"""

from __future__ import annotations

from collections.abc import Mapping

# --- CHA2DS2-VASc ---------------------------------------------------------------


def cha2ds2_vasc(f: Mapping[str, float]) -> float | None:
    """CHA2DS2-VASc points (0-9), or None without age and sex."""
    if "age" not in f or "sex_male" not in f:
        return None
    age = f["age"]
    score = 2.0 if age >= 75 else 1.0 if age >= 65 else 0.0
    score += 1.0 if f["sex_male"] == 0.0 else 0.0
    score += 1.0 if _any(f, "heart_failure") else 0.0
    score += 1.0 if _any(f, "hypertension", "bp_medication") else 0.0
    score += 1.0 if _any(f, "diabetes") else 0.0
    score += 2.0 if _any(f, "prior_stroke") else 0.0
    score += 1.0 if _any(f, "prior_mi", "prior_chd") else 0.0
    return score


# --- Framingham Stroke Risk Profile ------------------------------------------------

# Lower bounds of each point step (points 0, 1, 2, ...); a value below the first
# bound scores 0, one above the last scores the last step.
FSRP_AGE = {
    "male": (55, 57, 60, 63, 66, 69, 73, 76, 79, 82, 85),
    "female": (55, 57, 60, 63, 65, 68, 71, 74, 77, 79, 82),
}
FSRP_SBP_UNTREATED = {
    "male": (97, 106, 116, 126, 136, 146, 156, 166, 176, 186, 196),
    "female": (0, 95, 107, 119, 131, 144, 156, 168, 181, 193, 205),
}
FSRP_SBP_TREATED = {
    "male": (97, 106, 113, 118, 124, 130, 136, 143, 151, 162, 177),
    "female": (0, 95, 107, 114, 120, 126, 132, 140, 149, 161, 205),
}
FSRP_POINTS = {  # diabetes, smoking, CVD, AF, LVH
    "male": {"diabetes": 2, "smoking": 3, "cvd": 4, "af": 4, "lvh": 5},
    "female": {"diabetes": 3, "smoking": 3, "cvd": 2, "af": 6, "lvh": 4},
}


def framingham_stroke_points(f: Mapping[str, float]) -> float | None:
    """Framingham Stroke Risk Profile points, or None without age, sex and SBP."""
    if not {"age", "sex_male", "systolic_bp"} <= set(f):
        return None
    sex = "male" if f["sex_male"] == 1.0 else "female"
    treated = _any(f, "bp_medication")
    sbp_table = FSRP_SBP_TREATED if treated else FSRP_SBP_UNTREATED
    points = FSRP_POINTS[sex]
    score = float(
        _step(f["age"], FSRP_AGE[sex]) + _step(f["systolic_bp"], sbp_table[sex])
    )
    score += points["diabetes"] if _any(f, "diabetes") else 0
    score += points["smoking"] if _any(f, "current_smoker") else 0
    cvd = _any(f, "prior_chd", "prior_mi", "prior_angina", "heart_failure")
    score += points["cvd"] if cvd else 0
    score += points["af"] if _any(f, "atrial_fibrillation") else 0
    score += points["lvh"] if _any(f, "rest_ecg_lvh") else 0
    return score


# --- RCRI --------------------------------------------------------------------

RCRI_CREATININE_MG_DL = 2.0


def rcri(f: Mapping[str, float]) -> float | None:
    """Revised Cardiac Risk Index items (0-6), or None without a surgery context.

    High-risk surgery is read from ``surgery_major_abdominal`` (intraperitoneal
    operations); insulin therapy only from ``insulin_therapy`` (diabetes alone
    does not count).
    """
    if "surgery_major_abdominal" not in f:
        return None
    score = 1.0 if f["surgery_major_abdominal"] == 1.0 else 0.0
    score += 1.0 if _any(f, "prior_mi", "prior_chd", "prior_angina") else 0.0
    score += 1.0 if _any(f, "heart_failure") else 0.0
    score += 1.0 if _any(f, "prior_stroke") else 0.0
    score += 1.0 if _any(f, "insulin_therapy") else 0.0
    score += 1.0 if f.get("creatinine", 0.0) > RCRI_CREATININE_MG_DL else 0.0
    return score


# --- HEART-like ----------------------------------------------------------------

# Troponin's 99th-percentile upper reference limits (ng/L): the high-sensitivity
# assays' usual values; a site with another assay should set its own.
TROPONIN_URL_NG_L = {"troponin_t": 14.0, "troponin_i": 26.0}
HIGH_CHOLESTEROL_MG_DL = 240.0
HIGH_SBP_MMHG = 140.0  # a resting value this high counts as hypertension
OBESE_BMI = 30.0


def heart_score(
    f: Mapping[str, float], ecg_points: float | None = None
) -> float | None:
    """HEART-like points (0-10) from the fields the record holds.

    Parameters
    ----------
    f : mapping
        Features in canonical units.
    ecg_points : float, optional
        The ECG part (0, 1 or 2) when measured from a recording (see
        `fusion.baselines`); otherwise read from the resting-ECG flags:
        ST-T abnormality 2, left ventricular hypertrophy 1.

    Returns
    -------
    float or None
        None without age, or without any of the chest-pain type, an ECG
        finding and a troponin.
    """
    chest_pain = [
        name
        for name in (
            "chest_pain_typical",
            "chest_pain_atypical",
            "chest_pain_non_anginal",
            "chest_pain_asymptomatic",
        )
        if name in f
    ]
    ecg_flags = {"rest_ecg_st_t", "rest_ecg_lvh"} & set(f)
    troponins = set(TROPONIN_URL_NG_L) & set(f)
    has_basis = bool(chest_pain or ecg_flags or troponins) or ecg_points is not None
    if "age" not in f or not has_basis:
        return None
    # History: typical angina is highly suspicious, atypical moderately.
    history = 2 if _any(f, "chest_pain_typical") else 0
    history = 1 if not history and _any(f, "chest_pain_atypical") else history
    # ECG: significant ST deviation 2, repolarisation disturbance / LVH 1.
    if ecg_points is None:
        ecg_points = 2 if _any(f, "rest_ecg_st_t") else 0
        ecg_points = 1 if not ecg_points and _any(f, "rest_ecg_lvh") else ecg_points
    age = f["age"]
    age_points = 2 if age >= 65 else 1 if age >= 45 else 0
    # Risk factors: known atherosclerotic disease scores 2 on its own.
    factors = sum(
        (
            _any(f, "hypertension", "bp_medication")
            or f.get("systolic_bp", 0.0) >= HIGH_SBP_MMHG,
            f.get("total_cholesterol", 0.0) >= HIGH_CHOLESTEROL_MG_DL,
            _any(f, "diabetes", "fasting_glucose_high"),
            f.get("bmi", 0.0) > OBESE_BMI,
            _any(f, "current_smoker"),
        )
    )
    known_disease = _any(f, "prior_mi", "prior_chd", "prior_stroke")
    risk = 2 if known_disease or factors >= 3 else 1 if factors else 0
    # Troponin against its upper reference limit.
    ratio = max((f[name] / TROPONIN_URL_NG_L[name] for name in troponins), default=0.0)
    troponin = 2 if ratio > 3 else 1 if ratio > 1 else 0
    return float(history + ecg_points + age_points + risk + troponin)


# --- as model inputs -----------------------------------------------------------

SCORES = {
    "score_cha2ds2_vasc": cha2ds2_vasc,
    "score_fsrp": framingham_stroke_points,
    "score_rcri": rcri,
    "score_heart": heart_score,
}


def derived_features(f: Mapping[str, float]) -> dict[str, float]:
    """The guideline scores a record's features allow, keyed by feature name."""
    scores = {name: score(f) for name, score in SCORES.items()}
    return {name: value for name, value in scores.items() if value is not None}


def with_scores(f: Mapping[str, float]) -> dict[str, float]:
    """The features with the computable guideline scores added."""
    return {**f, **derived_features(f)}


def _any(f: Mapping[str, float], *names: str) -> bool:
    return any(f.get(name) == 1.0 for name in names)


def _step(value: float, bounds: tuple[int, ...]) -> int:
    """Points of ``value`` in a table of lower bounds (points = bounds passed - 1)."""
    passed = sum(value >= bound for bound in bounds)
    return max(passed - 1, 0)
