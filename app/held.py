"""Recent predictions held in memory, so their explanation can be asked for later.

``GET /v1/predictions/{id}/explanation`` explains a prediction made earlier by
the same service process. The patient's record is kept only in memory, for at
most ``minutes`` and for the ``capacity`` most recent predictions, never on
disk: a restart, or an older prediction, answers 404 and the caller posts the
patient again.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from typing import Generic, TypeVar

T = TypeVar("T")


class HeldPredictions(Generic[T]):
    """A bounded, time-limited map from prediction id to what explains it.

    Parameters
    ----------
    capacity : int
        Predictions kept; the oldest goes first.
    minutes : float
        How long one is kept.
    """

    def __init__(self, capacity: int = 256, minutes: float = 60.0) -> None:
        self.capacity = capacity
        self.seconds = minutes * 60.0
        self._items: OrderedDict[str, tuple[float, T]] = OrderedDict()
        self._lock = threading.Lock()

    def put(self, key: str, value: T) -> None:
        """Keep ``value`` under ``key`` (the newest)."""
        with self._lock:
            self._items[key] = (time.monotonic(), value)
            self._items.move_to_end(key)
            self._expire()
            while len(self._items) > self.capacity:
                self._items.popitem(last=False)

    def get(self, key: str) -> T | None:
        """The value kept under ``key``, or None when it was never kept or expired."""
        with self._lock:
            self._expire()
            found = self._items.get(key)
            return None if found is None else found[1]

    def replace(self, key: str, value: T) -> None:
        """Update a kept value without renewing its time (a cached result)."""
        with self._lock:
            if key in self._items:
                self._items[key] = (self._items[key][0], value)

    def _expire(self) -> None:
        cutoff = time.monotonic() - self.seconds
        while self._items and next(iter(self._items.values()))[0] < cutoff:
            self._items.popitem(last=False)
