"""Clinical concepts in the model's internal state: Captum's TCAV, per head.

A concept activation vector (CAV) is the direction, in one layer's activations,
that separates real examples of a clinical concept from random examples
(Kim et al., ICML 2018). The concepts and their examples, all from the training
split:

- from PTB-XL ECGs, by their cardiologist-assigned diagnostic superclass:
  myocardial infarction (MI), left ventricular hypertrophy (HYP), ST/T change
  (STTC), conduction disturbance (CD);
- from labs, by the cut-offs of ``configs/ontology.yaml``: dyslipidaemia and
  renal impairment.

The layers: the ECG or tabular encoder's output (the concept's own modality)
and the fused state each head reads (`HeadView.fused`). For each head, concept
and layer, TCAV's score is the share of the head's positive validation records
whose logit rises along the CAV; it is computed against several random sets,
and a two-sided t-test against random-vs-random scores says whether the concept
matters to the head (``p_value``; significant below
``concepts.significance``, and only when the CAV separates concept from random
examples on held-out activations, ``concepts.min_accuracy``).

For one prediction, `concept_alignment` places the record's activation on each
significant CAV: 0 at the random examples' mean projection, 1 at the concept
examples' mean; the record "aligns" with a concept at 0.5 or more. Its
``sensitivity`` is the head's gradient along the CAV at that record (positive:
more of the concept, higher risk). Each concept carries its SNOMED CT code.
"""

from __future__ import annotations

import logging
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from captum.attr import LayerActivation, LayerGradientXActivation
from captum.concept import TCAV, Classifier, Concept
from pydantic import BaseModel, Field
from scipy import stats
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import balanced_accuracy_score
from sklearn.model_selection import train_test_split
from torch import nn

from fusion.model import FusedRiskModel
from ingest.config import load_yaml
from ingest.ontology import COMPARISONS, Ontology
from ingest.schema import HEADS, PatientRecord
from modalities.batch import MODALITIES, ModelInputs

logger = logging.getLogger(__name__)

CONCEPTS = "concepts.pt"  # the bank's file in a model version's folder
LAYERS = {"ecg": "model.encoders.ecg", "tabular": "model.encoders.tabular"}
FUSED = "fused"


class ConceptSettings(BaseModel):
    """``concepts`` of ``configs/explain.yaml``."""

    ecg: list[str]
    labs: list[str]
    examples: int = Field(60, gt=4)
    random_sets: int = Field(6, ge=3)
    inputs: int = Field(80, gt=0)
    significance: float = Field(0.05, gt=0, lt=1)
    min_accuracy: float = Field(0.6, ge=0.5, le=1)
    alignment: float = 0.5
    seed: int = 0


def load_concept_settings(config_dir: Path | None = None) -> ConceptSettings:
    """The ``concepts`` block of ``configs/explain.yaml``."""
    return ConceptSettings.model_validate(load_yaml("explain", config_dir)["concepts"])


class HeadView(nn.Module):
    """One head's calibrated logit ``(B, 1)``, its fused state exposed as `fused`.

    The same computation as `FusedRiskModel.outputs` for that head: the head
    sees the present modalities it covers, fused once.
    """

    def __init__(self, model: FusedRiskModel, head_index: int) -> None:
        super().__init__()
        self.model = model
        self.head_index = head_index
        self.fused = nn.Identity()

    def forward(self, *args: torch.Tensor) -> torch.Tensor:
        """``model``'s arguments in order; the head's logit ``(B, 1)``."""
        model, head = self.model, self.head_index
        tokens = model.tokens(*args)
        visible = args[-1].bool() & (model.coverage[head] > 0.5)
        state = self.fused(model.fused_state(tokens, visible))
        present = tokens * visible.unsqueeze(-1).to(tokens.dtype)
        features = torch.cat([state, present.flatten(start_dim=1)], dim=1)
        logit = model.heads[HEADS[head]](features)
        return logit * model.calibration_scale[head] + model.calibration_bias[head]


class StandardisedLogistic(Classifier):
    """The CAV classifier: logistic regression on standardised activations.

    Captum's default (an SGD classifier on raw activations) separated none of
    the PTB-XL concepts on our ECG encoder (held-out accuracy about 0.5), where
    a standardised logistic regression reaches a cross-validated AUROC of
    0.83-0.94. The CAV is the boundary's normal in the layer's own units
    (``w / sigma``); the accuracy is balanced accuracy on a stratified third
    held out, so a concept rarer than its random set cannot score by majority.
    """

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed
        self.model: LogisticRegression | None = None
        self.scale: np.ndarray | None = None

    def train_and_eval(self, dataloader, **kwargs: object) -> dict:  # noqa: ANN001
        """Fit on two thirds of the activations; balanced accuracy on the rest."""
        inputs, labels = zip(*dataloader, strict=True)
        x = torch.cat(inputs).double().numpy()
        y = torch.cat(labels).long().numpy()
        x_fit, x_held, y_fit, y_held = train_test_split(
            x, y, test_size=1 / 3, stratify=y, random_state=self.seed
        )
        centre, scale = x_fit.mean(axis=0), x_fit.std(axis=0) + 1e-6
        self.model = LogisticRegression(max_iter=2000, class_weight="balanced")
        self.model.fit((x_fit - centre) / scale, y_fit)
        self.scale = scale
        predicted = self.model.predict((x_held - centre) / scale)
        return {"accs": torch.tensor(balanced_accuracy_score(y_held, predicted))}

    def weights(self) -> torch.Tensor:
        """``(2, F)``: one row per class, the boundary's normal in layer units."""
        assert self.model is not None and self.scale is not None
        normal = torch.from_numpy(self.model.coef_[0] / self.scale).float()
        return torch.stack([-normal, normal])

    def classes(self) -> list[int]:
        """The two concept ids, in the order of `weights`' rows."""
        assert self.model is not None
        return [int(c) for c in self.model.classes_]


@dataclass
class LearnedConcept:
    """One concept in one layer as one head reads it."""

    head: str
    concept: str
    layer: str
    snomed: str
    display: str
    tcav: float  # mean TCAV sign-count score over the random sets
    tcav_runs: list[float]
    random_runs: list[float]
    p_value: float
    accuracy: float  # mean held-out accuracy of the CAV classifiers
    significant: bool
    n_examples: int
    cav: list[float] = field(repr=False)  # unit vector
    concept_projection: float = 0.0
    random_projection: float = 0.0


@dataclass
class ConceptBank:
    """Every learned concept of a model version."""

    concepts: list[LearnedConcept]

    def save(self, path: Path) -> None:
        """Write the bank (a torch file of plain values)."""
        torch.save([vars(c) for c in self.concepts], path)

    @classmethod
    def load(cls, path: Path) -> ConceptBank:
        """Read a bank written by `save`."""
        return cls([LearnedConcept(**c) for c in torch.load(path, weights_only=True)])

    def significant(self, head: str) -> list[LearnedConcept]:
        """The head's concepts that passed the random-concept test."""
        return [c for c in self.concepts if c.head == head and c.significant]


def learn_concepts(
    model: FusedRiskModel,
    train: tuple[list[PatientRecord], ModelInputs],
    validation: tuple[list[PatientRecord], ModelInputs],
    ontology: Ontology,
    settings: ConceptSettings,
) -> ConceptBank:
    """TCAV of every configured concept, for every head that can read it.

    Parameters
    ----------
    model : FusedRiskModel
        The trained model (left in eval mode).
    train : tuple
        Training records and their inputs: the concept and random examples.
    validation : tuple
        Validation records and inputs: the records TCAV scores are measured on.
    ontology : Ontology
        Names, SNOMED CT codes, PTB-XL classes and lab cut-offs of the concepts.
    settings : ConceptSettings
    """
    model.eval()
    rng = np.random.default_rng(settings.seed)
    records, inputs = train
    learned: list[LearnedConcept] = []
    groups = [("ecg", name) for name in settings.ecg] + [
        ("tabular", name) for name in settings.labs
    ]
    with tempfile.TemporaryDirectory() as cache:
        for head_index, head in enumerate(HEADS):
            view = HeadView(model, head_index)
            for modality, name in groups:
                if model.coverage[head_index, MODALITIES.index(modality)] <= 0.5:
                    continue  # the head never reads this modality
                positives, pool = concept_examples(records, ontology, name, modality)
                if len(positives) < 10 or len(pool) < 2 * settings.examples:
                    logger.info("concept %s: too few examples; skipped", name)
                    continue
                scored = _scored_inputs(validation, head, modality, settings, rng)
                if scored is None:
                    continue
                for layer in (LAYERS[modality], FUSED):
                    learned.append(
                        _tcav(
                            view,
                            head,
                            name,
                            layer,
                            inputs,
                            positives,
                            pool,
                            scored,
                            ontology,
                            settings,
                            rng,
                            Path(cache) / f"{head}-{name}",
                        )
                    )
    bank = ConceptBank(learned)
    for concept in bank.concepts:
        logger.info(
            "TCAV %s / %s / %s: score %.2f, p %.3g, CAV accuracy %.2f%s",
            concept.head,
            concept.concept,
            concept.layer,
            concept.tcav,
            concept.p_value,
            concept.accuracy,
            " (significant)" if concept.significant else "",
        )
    return bank


def concept_examples(
    records: list[PatientRecord], ontology: Ontology, name: str, modality: str
) -> tuple[np.ndarray, np.ndarray]:
    """Row indices of the concept's examples, and of the pool randoms come from.

    An ECG concept's examples are the ECGs labelled with its PTB-XL class (its
    target's label); the pool, every record with an ECG and that label. A lab
    concept's examples meet one of its cut-offs; the pool, every record where
    one of its labs was measured.
    """
    concept = ontology.concepts[name]
    positives, pool = [], []
    for row, record in enumerate(records):
        if modality == "ecg":
            if record.ecg is None:
                continue
            labels = [record.labels[t] for t in concept.targets if t in record.labels]
            if not labels:
                continue
            pool.append(row)
            if any(labels):
                positives.append(row)
        else:
            measured = {
                feature: record.features[feature]
                for feature in concept.thresholds
                if feature in record.features
            }
            if not measured:
                continue
            pool.append(row)
            if any(
                COMPARISONS[sign](measured[feature], cut)
                for feature, (sign, cut) in concept.thresholds.items()
                if feature in measured
            ):
                positives.append(row)
    return np.array(positives, dtype=int), np.array(pool, dtype=int)


def concept_alignment(
    model: FusedRiskModel, bank: ConceptBank | None, inputs: ModelInputs
) -> dict[str, list[dict]]:
    """Where one record's internal state lies on each significant concept, per head.

    Returns
    -------
    dict
        Head -> list of ``{concept, display, snomed, layer, alignment, aligns,
        sensitivity, tcav, p_value}``, most aligned first; a head with no
        significant concept (or no bank) has an empty list.
    """
    if len(inputs) != 1:
        raise ValueError(f"concept_alignment explains one record; got {len(inputs)}")
    out: dict[str, list[dict]] = {head: [] for head in HEADS}
    if bank is None:
        return out
    args = inputs.forward_args()
    held = {m for i, m in enumerate(MODALITIES) if bool(inputs.modality_mask[0, i])}
    for head_index, head in enumerate(HEADS):
        concepts = bank.significant(head)
        if not concepts:
            continue
        view = HeadView(model, head_index).eval()
        states: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
        for concept in concepts:
            modality = "ecg" if concept.layer == LAYERS["ecg"] else "tabular"
            if concept.layer != FUSED and modality not in held:
                continue
            if concept.layer not in states:
                states[concept.layer] = _state_and_gradient(view, concept.layer, args)
            activation, gradient = states[concept.layer]
            cav = torch.tensor(concept.cav)
            spread = concept.concept_projection - concept.random_projection
            projection = float(activation @ cav)
            alignment = (projection - concept.random_projection) / (
                spread if abs(spread) > 1e-9 else 1e-9
            )
            out[head].append(
                {
                    "concept": concept.concept,
                    "display": concept.display,
                    "snomed": concept.snomed,
                    "layer": concept.layer,
                    "alignment": alignment,
                    "aligns": alignment >= 0.5,
                    "sensitivity": float(gradient @ cav),
                    "tcav": concept.tcav,
                    "p_value": concept.p_value,
                }
            )
        out[head].sort(key=lambda item: item["alignment"], reverse=True)
    return out


def _state_and_gradient(
    view: HeadView, layer: str, args: tuple[torch.Tensor, ...]
) -> tuple[torch.Tensor, torch.Tensor]:
    module = view.fused if layer == FUSED else view.get_submodule(layer)
    activation = LayerActivation(view, module).attribute(args)
    gradient = LayerGradientXActivation(
        view, module, multiply_by_inputs=False
    ).attribute(args, target=0)
    return activation.reshape(-1).detach(), gradient.reshape(-1).detach()


def _scored_inputs(
    validation: tuple[list[PatientRecord], ModelInputs],
    head: str,
    modality: str,
    settings: ConceptSettings,
    rng: np.random.Generator,
) -> tuple[torch.Tensor, ...] | None:
    """The validation records TCAV scores: the head's positives holding the modality.

    With fewer than 5 such positives, every validation record labelled for the
    head and holding the modality (TCAV over the head's population, not its
    class); with fewer than 5 of those, none (the concept is not scored).
    """
    records, inputs = validation
    column = MODALITIES.index(modality)
    holding = [
        row
        for row, record in enumerate(records)
        if head in record.labels and bool(inputs.modality_mask[row, column])
    ]
    rows = [row for row in holding if records[row].labels[head] == 1]
    if len(rows) < 5:
        rows = holding
    if len(rows) < 5:
        logger.info("head %s: too few validation records for TCAV", head)
        return None
    if len(rows) > settings.inputs:
        rows = sorted(rng.choice(rows, settings.inputs, replace=False).tolist())
    return inputs.select(torch.as_tensor(rows)).forward_args()


def _tcav(
    view: HeadView,
    head: str,
    name: str,
    layer: str,
    inputs: ModelInputs,
    positives: np.ndarray,
    pool: np.ndarray,
    scored: tuple[torch.Tensor, ...],
    ontology: Ontology,
    settings: ConceptSettings,
    rng: np.random.Generator,
    cache: Path,
) -> LearnedConcept:
    """TCAV of one concept in one layer against random sets, with its t-test."""
    size = min(settings.examples, len(positives))
    chosen = rng.choice(positives, size, replace=False)

    def concept(identifier: int, label: str, rows: np.ndarray) -> Concept:
        batch = inputs.select(torch.as_tensor(np.sort(rows))).forward_args()
        return Concept(identifier, label, [batch])

    target = concept(0, name, chosen)
    randoms = [
        concept(100 + i, f"random{i}", rng.choice(pool, size, replace=False))
        for i in range(settings.random_sets + 1)
    ]
    tcav = TCAV(
        view,
        layers=[layer],
        model_id=f"{head}-{layer}",
        classifier=StandardisedLogistic(settings.seed),
        save_path=str(cache),
    )
    sets = [[target, r] for r in randoms[1:]] + [[randoms[0], r] for r in randoms[1:]]
    scores = tcav.interpret(scored, experimental_sets=sets, target=0)
    n = settings.random_sets
    concept_runs, random_runs, vectors, accuracies = [], [], [], []
    for index, pair in enumerate(sets):
        key = f"{pair[0].id}-{pair[1].id}"
        score = float(scores[key][layer]["sign_count"][0])
        if index < n:
            concept_runs.append(score)
            cav = tcav.cavs[key][layer]
            classes = list(cav.stats["classes"])
            vector = cav.stats["weights"][classes.index(0)].float()
            vectors.append(vector / vector.norm())
            accuracies.append(float(cav.stats["accs"]))
        else:
            random_runs.append(score)
    with warnings.catch_warnings():  # runs that are all equal: no variance
        warnings.simplefilter("ignore", RuntimeWarning)
        p_value = float(stats.ttest_ind(concept_runs, random_runs).pvalue)
    if not np.isfinite(p_value):  # identical runs: no evidence either way
        p_value = 1.0
    direction = torch.stack(vectors).mean(dim=0)
    direction = direction / direction.norm()
    module = view.fused if layer == FUSED else view.get_submodule(layer)
    activation = LayerActivation(view, module)
    with torch.no_grad():
        on_concept = activation.attribute(target.data_iter[0]).reshape(size, -1)
        pool_rows = rng.choice(pool, min(len(pool), 4 * size), replace=False)
        on_pool = activation.attribute(
            inputs.select(torch.as_tensor(np.sort(pool_rows))).forward_args()
        ).reshape(len(pool_rows), -1)
    accuracy = float(np.mean(accuracies))
    entry = ontology.concepts[name]
    return LearnedConcept(
        head=head,
        concept=name,
        layer=layer,
        snomed=entry.snomed,
        display=entry.display,
        tcav=float(np.mean(concept_runs)),
        tcav_runs=concept_runs,
        random_runs=random_runs,
        p_value=p_value,
        accuracy=accuracy,
        significant=p_value < settings.significance
        and accuracy >= settings.min_accuracy,
        n_examples=size,
        cav=direction.tolist(),
        concept_projection=float((on_concept @ direction).mean()),
        random_projection=float((on_pool @ direction).mean()),
    )
