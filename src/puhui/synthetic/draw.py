"""The one seeded random source a generation run draws from.

Byte-identical output for a seed needs every draw to go through one ``numpy`` Generator in
program order; the generator and the ring planner share this wrapper so neither can bypass it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from puhui.synthetic.reference import (
    CHINA_IPV4_FIRST_OCTETS,
    MOBILE_PREFIXES,
    VIRTUAL_OPERATOR_PREFIXES,
)

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


def _p(weights: Sequence[float]) -> FloatArray:
    w: FloatArray = np.asarray(weights, dtype=np.float64)
    total = float(w.sum())
    return w / total


_MOBILE_P = _p([w for _, w in MOBILE_PREFIXES])


class _Draw:
    """Thin wrapper so every random draw goes through one Generator, in program order."""

    def __init__(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)

    def u(self, size: int) -> FloatArray:
        return self.rng.random(size)

    def ints(self, low: int, high: int, size: int) -> IntArray:
        return self.rng.integers(low, high, size=size, dtype=np.int64)

    def pick(self, p: FloatArray, size: int) -> IntArray:
        return self.rng.choice(len(p), size=size, p=p).astype(np.int64)

    def int1(self, low: int, high: int) -> int:
        return int(self.rng.integers(low, high))

    def mobile(self, virtual_share: float = 0.0) -> str:
        if virtual_share and self.rng.random() < virtual_share:
            prefix = VIRTUAL_OPERATOR_PREFIXES[self.int1(0, len(VIRTUAL_OPERATOR_PREFIXES))]
        else:
            prefix = MOBILE_PREFIXES[int(self.rng.choice(len(_MOBILE_P), p=_MOBILE_P))][0]
        return f"{prefix}{self.int1(0, 100_000_000):08d}"

    def ip(self) -> str:
        first = CHINA_IPV4_FIRST_OCTETS[self.int1(0, len(CHINA_IPV4_FIRST_OCTETS))]
        return f"{first}.{self.int1(0, 256)}.{self.int1(0, 256)}.{self.int1(1, 255)}"
