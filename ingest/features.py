"""Putting values into a record's features: registry lookup and plausibility checks."""

from __future__ import annotations

import math

from ingest.config import FeatureSpec
from ingest.errors import QuarantineItem


class FeatureWriter:
    """Write canonical-unit values into a record, quarantining implausible ones.

    Parameters
    ----------
    registry : dict
        Feature name -> `FeatureSpec` (``configs/data.yaml``).
    source : str
        Source name written into quarantine items.
    quarantine : list
        Where implausible values are set aside, with a reason.
    """

    def __init__(
        self,
        registry: dict[str, FeatureSpec],
        source: str,
        quarantine: list[QuarantineItem],
    ) -> None:
        self.registry = registry
        self.source = source
        self.quarantine = quarantine

    def put(
        self, features: dict[str, float], record_id: str, name: str, value: object
    ) -> None:
        """Store ``value`` under ``name`` unless it is missing or implausible.

        Missing values (None, NaN) are skipped: absence is normal. A value out of
        the registry's plausible range is quarantined with a reason, never clipped.
        """
        if name not in self.registry:
            raise KeyError(
                f"feature '{name}' is not in the registry (configs/data.yaml)"
            )
        if value is None:
            return
        try:
            number = float(value)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            self.quarantine.append(
                QuarantineItem(self.source, record_id, name, "value is not a number")
            )
            return
        if math.isnan(number):
            return
        spec = self.registry[name]
        if not spec.is_plausible(number):
            reason = f"outside plausible range {spec.range_text}"
            self.quarantine.append(QuarantineItem(self.source, record_id, name, reason))
            return
        features[name] = number
