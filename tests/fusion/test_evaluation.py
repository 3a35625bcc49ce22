import numpy as np
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score

from fusion.evaluation import (
    auroc,
    bootstrap_ci,
    calibration_curve,
    expected_calibration_error,
    head_metrics,
    paired_bootstrap_difference,
    resample_weights,
    weighted_auroc,
    weighted_average_precision,
)


def _expand(values: np.ndarray, row: np.ndarray) -> np.ndarray:
    return np.repeat(values, row.astype(int))


def test_vectorised_bootstrap_metrics_equal_scikit_learns():
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 2, 80)
    scores = np.round(labels * 0.5 + rng.normal(0, 0.6, 80), 1)  # with ties
    weights = resample_weights(labels, n_resamples=25, seed=1)
    assert weights.shape[1] == 80 and (weights.sum(axis=1) == 80).all()
    fast_auroc = weighted_auroc(labels, scores, weights)
    fast_ap = weighted_average_precision(labels, scores, weights)
    for row, a, ap in zip(weights, fast_auroc, fast_ap, strict=True):
        y, s = _expand(labels, row), _expand(scores, row)
        assert a == pytest.approx(roc_auc_score(y, s), abs=1e-12)
        assert ap == pytest.approx(average_precision_score(y, s), abs=1e-12)


def test_head_metrics_on_risks():
    labels = np.array([0, 0, 1, 1, 0, 1, 0, 1])
    assert auroc(labels, labels.astype(float)) == 1.0
    assert np.isnan(auroc(np.zeros(4), np.arange(4.0)))
    rng = np.random.default_rng(0)
    risks = 1 / (1 + np.exp(-(labels * 2 - 1 + rng.normal(0, 1.0, len(labels)))))
    low, high = bootstrap_ci(labels, risks)
    assert low <= auroc(labels, risks) <= high
    metrics = head_metrics(labels, risks)
    assert metrics["n_test"] == 8 and metrics["n_positive"] == 4
    assert metrics["brier"] == pytest.approx(np.mean((risks - labels) ** 2))
    assert 0 <= metrics["ece"] <= 1


def test_calibration_of_a_perfectly_calibrated_risk():
    rng = np.random.default_rng(0)
    risks = rng.uniform(0, 1, 20000)
    labels = (rng.uniform(0, 1, 20000) < risks).astype(int)
    assert expected_calibration_error(labels, risks) < 0.02
    assert expected_calibration_error(labels, np.clip(risks + 0.3, 0, 1)) > 0.2
    curve = calibration_curve(labels, risks)
    assert len(curve) == 10 and sum(b["n"] for b in curve) == 20000
    assert all(abs(b["observed"] - b["predicted"]) < 0.03 for b in curve)


def test_paired_difference_sees_a_better_score():
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 2, 400)
    good = labels + rng.normal(0, 0.5, 400)
    poor = labels + rng.normal(0, 2.0, 400)
    point, low, high = paired_bootstrap_difference(labels, good, poor)
    assert point == pytest.approx(auroc(labels, good) - auroc(labels, poor))
    assert 0 < low <= point <= high


def test_a_gain_whose_ci_reaches_zero_is_not_called_shown():
    from fusion.report import _where_not_met, target_verdict

    def head(gain, low, high):
        return {
            "target_met": gain >= 0.05, "gain_over_best": gain,
            "gain_ci": [low, high], "n_test": 136, "note": "",
            "best_baseline": "tool", "baselines": {"tool": {"name": "ECG criteria"}},
        }  # fmt: skip

    assert target_verdict(head(0.10, 0.04, 0.17)) == "yes"
    assert target_verdict(head(0.053, -0.064, 0.172)) == "yes, but its CI reaches 0"
    assert target_verdict(head(-0.04, -0.08, -0.001)) == "no"
    text = "\n".join(_where_not_met({"acute_mi": head(0.053, -0.064, 0.172)}))
    assert "Every head meets the target" in text
    assert "Where the gain is not shown" in text
    assert "[-0.064–0.172] reaches 0" in text
