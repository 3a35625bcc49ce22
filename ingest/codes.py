"""The clinical code tables of ``configs/codes.yaml``: LOINC, SNOMED CT, ICD-10, ATC."""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import BaseModel, Field, field_validator
from stdnum import verhoeff

from ingest.config import load_yaml

LOINC_FORMAT = re.compile(r"^(\d{1,7})-(\d)$")
ICD10_PREFIX = re.compile(r"^[A-Z]\d{2}(\.\d{1,4})?$")  # I21, I25.2, Z86.73
LOINC_SYSTEM = "http://loinc.org"
SNOMED_SYSTEM = "http://snomed.info/sct"
ICD10_SYSTEMS = ("http://hl7.org/fhir/sid/icd-10", "http://hl7.org/fhir/sid/icd-10-cm")
ATC_SYSTEM = "http://www.whocc.no/atc"
RXNORM_SYSTEM = "http://www.nlm.nih.gov/research/umls/rxnorm"


def loinc_check_digit(number: str) -> int:
    """Return the mod-10 check digit LOINC appends to a code's number part.

    The digits in odd places counted from the right are read right to left as
    one number and doubled; the digits in even places are written before it;
    the check digit brings the sum of all these digits up to a multiple of ten.
    """
    reverse = number[::-1]
    doubled = str(2 * int(reverse[0::2]))
    digits = reverse[1::2] + doubled
    return (10 - sum(int(d) for d in digits) % 10) % 10


def is_valid_snomed(code: str) -> bool:
    """Return whether ``code`` is a well-formed SNOMED CT identifier.

    6 to 18 digits, no leading zero, ending in its Verhoeff check digit
    (``stdnum.verhoeff``).
    """
    return (
        code.isdigit()
        and 6 <= len(code) <= 18
        and not code.startswith("0")
        and verhoeff.is_valid(code)
    )


def is_valid_loinc(code: str) -> bool:
    """Return whether ``code`` is a well-formed LOINC code with a right check digit."""
    match = LOINC_FORMAT.match(code)
    return bool(match) and loinc_check_digit(match[1]) == int(match[2])


class LoincEntry(BaseModel):
    """One LOINC code and the feature it fills."""

    feature: str
    display: str


class SmokingStatus(BaseModel):
    """Answers to the smoking-status question (SNOMED CT codes)."""

    loinc: str
    current_smoker: list[str]
    former_smoker: list[str]
    never_smoker: list[str]

    @field_validator("current_smoker", "former_smoker", "never_smoker")
    @classmethod
    def _valid_snomed(cls, codes: list[str]) -> list[str]:
        return _checked_snomed(codes)


class ConditionCodes(BaseModel):
    """SNOMED CT codes (exact) and ICD-10 prefixes of one condition flag."""

    snomed: list[str] = Field(default_factory=list)
    icd10: list[str] = Field(default_factory=list)

    @field_validator("snomed")
    @classmethod
    def _valid_snomed(cls, codes: list[str]) -> list[str]:
        return _checked_snomed(codes)

    @field_validator("icd10")
    @classmethod
    def _valid_icd10(cls, codes: list[str]) -> list[str]:
        wrong = [code for code in codes if not ICD10_PREFIX.match(code)]
        if wrong:
            raise ValueError(f"not ICD-10 codes or prefixes (A00, A00.0): {wrong}")
        return codes


class MedicationCodes(BaseModel):
    """ATC prefixes, RxNorm codes and ingredient words of one medication class."""

    atc: list[str] = Field(default_factory=list)
    rxnorm: list[str] = Field(default_factory=list)
    ingredients: list[str] = Field(default_factory=list)


class ProcedureCodes(BaseModel):
    """SNOMED CT procedure codes (exact) that set one surgery flag."""

    snomed: list[str] = Field(default_factory=list)

    @field_validator("snomed")
    @classmethod
    def _valid_snomed(cls, codes: list[str]) -> list[str]:
        return _checked_snomed(codes)


class CodeTables(BaseModel):
    """The whole of ``configs/codes.yaml``."""

    loinc: dict[str, LoincEntry]
    panels: dict[str, str]
    smoking_status: SmokingStatus
    conditions: dict[str, ConditionCodes]
    medications: dict[str, MedicationCodes]
    procedures: dict[str, ProcedureCodes] = Field(default_factory=dict)

    @field_validator("loinc", "panels")
    @classmethod
    def _valid_loinc(cls, table: dict) -> dict:
        wrong = [code for code in table if not is_valid_loinc(code)]
        if wrong:
            raise ValueError(f"not LOINC codes (format NNNNN-C, check digit): {wrong}")
        return table

    def check_features(self, registry: dict) -> None:
        """Raise ValueError when a table names a feature the registry lacks."""
        named = {entry.feature for entry in self.loinc.values()}
        named |= set(self.conditions) | set(self.medications)
        named |= set(self.procedures)
        named |= {"current_smoker", "former_smoker"}
        unknown = sorted(named - set(registry))
        if unknown:
            raise ValueError(f"configs/codes.yaml names unknown features {unknown}")

    def feature_for_loinc(self, code: str) -> str | None:
        """The feature a LOINC code fills, or None when the code is not mapped."""
        entry = self.loinc.get(code)
        return entry.feature if entry else None

    def condition_flags(self, system: str, code: str) -> list[str]:
        """The condition flags a SNOMED CT or ICD-10 code sets (may be empty)."""
        flags = []
        for flag, codes in self.conditions.items():
            if system == SNOMED_SYSTEM and code in codes.snomed:
                flags.append(flag)
            elif system in ICD10_SYSTEMS and _has_prefix(code, codes.icd10):
                flags.append(flag)
        return flags

    def medication_flags(self, system: str, code: str, text: str = "") -> list[str]:
        """The medication flags a coded medication sets (may be empty).

        Parameters
        ----------
        system, code : str
            The coding's system URI and code (ATC or RxNorm).
        text : str
            The coding's display or the concept's text, matched against the
            ingredient words when the code itself is not listed.
        """
        words = set(re.findall(r"[a-z]+", text.lower()))
        flags = []
        for flag, codes in self.medications.items():
            if system == ATC_SYSTEM and _has_prefix(code, codes.atc):
                flags.append(flag)
            elif system == RXNORM_SYSTEM and code in codes.rxnorm:
                flags.append(flag)
            elif words & set(codes.ingredients):
                flags.append(flag)
        return flags

    def procedure_flags(self, system: str, code: str) -> list[str]:
        """The surgery flags a SNOMED CT procedure code sets (may be empty).

        Parameters
        ----------
        system, code : str
            The coding's system URI and code; only SNOMED CT is listed.
        """
        if system != SNOMED_SYSTEM:
            return []
        table = self.procedures.items()
        return [flag for flag, codes in table if code in codes.snomed]


def _checked_snomed(codes: list[str]) -> list[str]:
    wrong = [code for code in codes if not is_valid_snomed(code)]
    if wrong:
        raise ValueError(f"not SNOMED CT identifiers (Verhoeff check digit): {wrong}")
    return codes


def _has_prefix(code: str, prefixes: list[str]) -> bool:
    return any(code.upper().startswith(prefix.upper()) for prefix in prefixes)


def load_code_tables(config_dir: Path | None = None) -> CodeTables:
    """Load and check ``configs/codes.yaml``."""
    return CodeTables.model_validate(load_yaml("codes", config_dir))
