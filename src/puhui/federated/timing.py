"""Seconds per protocol phase, as each party measures them (reported with models and runs).

One clock for every protocol: SecureBoost times each tree with it, vertical LR each run.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager


class PhaseClock:
    """Accumulates wall seconds per named phase; ``total`` is the wall time since creation."""

    def __init__(self, *phases: str) -> None:
        self.seconds = dict.fromkeys(phases, 0.0)
        self._started = time.perf_counter()

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - started

    def as_dict(self) -> dict[str, float]:
        """Seconds per phase so far."""
        return dict(self.seconds)

    def finish(self) -> dict[str, float]:
        """Seconds per phase, plus ``total``: wall time since the clock was created."""
        return {**self.seconds, "total": time.perf_counter() - self._started}
