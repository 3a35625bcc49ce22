"""Clinical concepts (``configs/ontology.yaml``): codes and data to SNOMED CT concepts.

A concept is one SNOMED CT concept (left ventricular hypertrophy, dyslipidaemia,
...) with the evidence a record can hold for it: registry flags (which the code
tables fill from SNOMED CT, ICD-10 and ATC codes), lab or vital values beyond a
cut-off (filled from LOINC codes), a PTB-XL diagnostic superclass, and the model
outputs that estimate it. Explanations name their reasons by concept, and the
PTB-XL reader takes its auxiliary labels from the superclasses listed here.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, field_validator

from ingest.codes import CodeTables, is_valid_snomed
from ingest.config import load_yaml
from ingest.schema import HEADS, TARGETS

COMPARISONS: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge,
    ">": operator.gt,
    "<=": operator.le,
    "<": operator.lt,
}


class Concept(BaseModel):
    """One clinical concept and the evidence that shows it."""

    snomed: str
    display: str
    flags: list[str] = Field(default_factory=list)
    thresholds: dict[str, tuple[Literal[">=", ">", "<=", "<"], float]] = Field(
        default_factory=dict
    )
    ptbxl_class: str | None = None
    targets: list[str] = Field(default_factory=list)
    features: list[str] = Field(default_factory=list)

    @field_validator("snomed")
    @classmethod
    def _valid_snomed(cls, code: str) -> str:
        if not is_valid_snomed(code):
            raise ValueError(f"not a SNOMED CT identifier (Verhoeff check): {code}")
        return code

    @field_validator("targets")
    @classmethod
    def _known_targets(cls, targets: list[str]) -> list[str]:
        unknown = [name for name in targets if name not in TARGETS]
        if unknown:
            raise ValueError(f"unknown targets {unknown}; expected some of {TARGETS}")
        return targets

    @property
    def inputs(self) -> list[str]:
        """Every feature that belongs to the concept (flags, thresholds, features)."""
        return list(dict.fromkeys([*self.flags, *self.thresholds, *self.features]))


@dataclass(frozen=True)
class Evidence:
    """Why a record shows a concept: the feature and its value (canonical unit)."""

    concept: str
    feature: str
    value: float
    rule: str  # "flag" or the cut-off, e.g. ">= 240"


class Ontology(BaseModel):
    """The whole of ``configs/ontology.yaml``."""

    concepts: dict[str, Concept]

    def check_features(self, registry: Mapping[str, object]) -> None:
        """Raise ValueError when a concept names a feature no reader fills.

        Parameters
        ----------
        registry : mapping
            Every feature a reader may fill (`DataConfig.registry`).
        """
        unknown = sorted(
            {name for c in self.concepts.values() for name in c.inputs} - set(registry)
        )
        if unknown:
            raise ValueError(f"configs/ontology.yaml names unknown features {unknown}")

    def codes(self, name: str, tables: CodeTables) -> dict[str, list[str]]:
        """The SNOMED CT, ICD-10 and LOINC codes whose data show concept ``name``.

        The concept's own SNOMED CT code comes first; then the codes of the
        conditions behind its flags and the LOINC codes of its threshold values.
        """
        concept = self.concepts[name]
        snomed, icd10 = [concept.snomed], []
        for flag in concept.flags:
            if flag in tables.conditions:
                snomed += tables.conditions[flag].snomed
                icd10 += tables.conditions[flag].icd10
        loinc = [
            code
            for code, entry in tables.loinc.items()
            if entry.feature in concept.thresholds
        ]
        return {
            "snomed": list(dict.fromkeys(snomed)),
            "icd10": list(dict.fromkeys(icd10)),
            "loinc": loinc,
        }

    def concept_of_feature(self, feature: str) -> str | None:
        """The first concept a model input belongs to, or None."""
        return next(
            (name for name, c in self.concepts.items() if feature in c.inputs), None
        )

    def concept_of_target(self, target: str) -> str | None:
        """The concept a head or auxiliary target estimates, or None."""
        return next(
            (name for name, c in self.concepts.items() if target in c.targets), None
        )

    def ptbxl_targets(self) -> dict[str, str]:
        """Auxiliary target -> PTB-XL diagnostic superclass that labels it."""
        return {
            target: concept.ptbxl_class
            for concept in self.concepts.values()
            if concept.ptbxl_class
            for target in concept.targets
            if target not in HEADS
        }

    def evidence(self, features: Mapping[str, float]) -> list[Evidence]:
        """The concepts a record's features show, one item per feature that shows one.

        Parameters
        ----------
        features : mapping
            Feature name -> value in its canonical unit.
        """
        found = []
        for name, concept in self.concepts.items():
            for flag in concept.flags:
                if features.get(flag) == 1.0:
                    found.append(Evidence(name, flag, 1.0, "flag"))
            for feature, (sign, cut) in concept.thresholds.items():
                value = features.get(feature)
                if value is not None and COMPARISONS[sign](value, cut):
                    found.append(Evidence(name, feature, value, f"{sign} {cut:g}"))
        return found


def load_ontology(config_dir: Path | None = None) -> Ontology:
    """Load and validate ``configs/ontology.yaml``."""
    return Ontology.model_validate(load_yaml("ontology", config_dir))
