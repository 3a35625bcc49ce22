"""TCAV concepts learned from real labelled examples, and a record placed on them."""

from __future__ import annotations

import numpy as np
import torch

from explain.concepts import (
    FUSED,
    LAYERS,
    ConceptBank,
    ConceptSettings,
    HeadView,
    LearnedConcept,
    concept_alignment,
    concept_examples,
    learn_concepts,
)
from ingest.ontology import load_ontology
from ingest.schema import HEADS

SETTINGS = ConceptSettings(
    ecg=["myocardial_infarction", "st_t_change"],
    labs=["dyslipidaemia"],
    examples=8,
    random_sets=3,
    inputs=20,
)


def test_the_head_view_is_the_models_own_logit(trained):
    inputs = trained.inputs["test"]
    with torch.no_grad():
        logits = trained.model(*inputs.forward_args())
        for index in range(len(HEADS)):
            view = HeadView(trained.model, index)
            mine = view(*inputs.forward_args())[:, 0]
            assert torch.allclose(mine, logits[:, index], atol=1e-5)


def test_concept_examples_come_from_real_labels_and_cut_offs(trained):
    ontology = load_ontology()
    records = trained.records["train"]
    positives, pool = concept_examples(
        records, ontology, "myocardial_infarction", "ecg"
    )
    assert len(positives) >= 5 and set(positives) <= set(pool)
    assert all(records[i].labels["acute_mi"] == 1 for i in positives)
    assert all(records[i].ecg is not None for i in pool)
    lipids, measured = concept_examples(records, ontology, "dyslipidaemia", "tabular")
    for i in lipids:
        f = records[i].features
        assert f.get("total_cholesterol", 0) >= 240 or f.get("hdl_cholesterol", 99) < 40
    assert len(measured) > len(lipids) > 10


def test_tcav_with_random_concepts_and_a_record_placed_on_them(trained, tmp_path):
    bank = learn_concepts(
        trained.model,
        (trained.records["train"], trained.inputs["train"]),
        (trained.records["validation"], trained.inputs["validation"]),
        load_ontology(),
        SETTINGS,
    )
    found = {(c.head, c.concept, c.layer) for c in bank.concepts}
    # acute MI reads the ECG: its concepts in the ECG encoder and the fused state.
    assert ("acute_mi", "myocardial_infarction", LAYERS["ecg"]) in found
    assert ("acute_mi", "myocardial_infarction", FUSED) in found
    # heart disease never read an ECG: no ECG concept is tested for it.
    assert not any(h == "heart_disease" and c == "st_t_change" for h, c, _ in found)
    for concept in bank.concepts:
        assert len(concept.tcav_runs) == len(concept.random_runs) == 3
        assert 0.0 <= concept.tcav <= 1.0 and 0.0 <= concept.p_value <= 1.0
        assert abs(np.linalg.norm(concept.cav) - 1.0) < 1e-5
        assert concept.significant == (
            concept.p_value < 0.05 and concept.accuracy >= 0.6
        )
    mi = next(c for c in bank.concepts if c.concept == "myocardial_infarction")
    assert mi.snomed == "22298006"
    bank.save(tmp_path / "concepts.pt")
    again = ConceptBank.load(tmp_path / "concepts.pt")
    assert [vars(c) for c in again.concepts] == [vars(c) for c in bank.concepts]

    # The concept's own examples sit, on average, at alignment 1; random pool
    # records near 0 (the scale's definition, checked on real records).
    mi.significant = True
    positives, pool = concept_examples(
        trained.records["train"], load_ontology(), mi.concept, "ecg"
    )
    only = ConceptBank([mi])

    def mean_alignment(rows) -> float:
        values = []
        for row in rows:
            one = trained.inputs["train"].select(slice(int(row), int(row) + 1))
            [item] = concept_alignment(trained.model, only, one)[mi.head]
            values.append(item["alignment"])
        return float(np.mean(values))

    assert mean_alignment(positives) > mean_alignment(np.setdiff1d(pool, positives))


def test_a_lab_concept_is_claimed_only_when_one_of_its_labs_was_given(
    trained, small_config
):
    from explain.report import VersionFacts, explain_record

    mi = LearnedConcept(
        "acute_mi", "myocardial_infarction", LAYERS["ecg"], "22298006", "MI",
        0.9, [0.9], [0.5], 0.01, 0.8, True, 10, [1.0] + [0.0] * 63, -1e3, -1e3 - 1,
    )  # fmt: skip
    renal = LearnedConcept(
        "acute_mi", "renal_impairment", LAYERS["tabular"], "236423003", "Renal",
        0.9, [0.9], [0.5], 0.01, 0.8, True, 10, [1.0] + [0.0] * 63, -1e3, -1e3 - 1,
    )  # fmt: skip
    bank = ConceptBank([mi, renal])  # both placed far on the concept side
    record = next(r for r in trained.records["test"] if r.ecg is not None)
    record.features.pop("creatinine", None)
    record.features.pop("urea_nitrogen", None)
    facts = VersionFacts({}, [])
    [head] = [
        h
        for h in explain_record(
            trained.model, record, small_config, load_ontology(), facts, bank
        )["heads"]
        if h["head"] == "acute_mi"
    ]
    found = {c["concept"]: c for c in head["concepts"]}
    # MI is an ECG concept: its troponin cut-offs do not gate it.
    assert found["myocardial_infarction"]["aligns"]
    assert found["renal_impairment"]["measured"] is False
    assert found["renal_impairment"]["aligns"] is False
