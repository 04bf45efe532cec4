"""Planning fraud rings: how many, of which shape and size, over which application slots.

Only the plan lives here; the generator later makes each ring's members share identifiers
(its ``_ring_<shape>`` steps), because that needs the identifiers it has drawn.
"""

from __future__ import annotations

from dataclasses import dataclass

from puhui.synthetic.draw import _Draw, _p
from puhui.synthetic.model import RingShape

# shape -> (relative frequency, smallest ring, largest ring)
_SHAPES: dict[RingShape, tuple[float, int, int]] = {
    "shared_device": (0.20, 3, 8),
    "shared_mobile": (0.15, 3, 8),
    "shared_address": (0.12, 3, 10),
    "shared_bank_card": (0.10, 2, 6),
    "chain": (0.15, 4, 8),
    "repeat": (0.15, 3, 6),
    "sleeper": (0.13, 4, 10),
}
RING_SHAPES: tuple[RingShape, ...] = tuple(_SHAPES)


@dataclass(slots=True)
class _Ring:
    ring_id: str
    shape: RingShape
    slots: list[int]
    shared: tuple[str, ...] = ()


def _plan_rings(d: _Draw, fraud_total: int) -> list[_Ring]:
    shapes = list(_SHAPES)
    shape_p = _p([_SHAPES[s][0] for s in shapes])
    rings: list[_Ring] = []
    remaining, next_slot = fraud_total, 0
    while remaining >= 2:
        shape = shapes[int(d.rng.choice(len(shapes), p=shape_p))]
        _, low, high = _SHAPES[shape]
        size = min(d.int1(low, high + 1), remaining)
        if remaining - size == 1:
            size += 1  # never leave a lone member behind
        rings.append(
            _Ring(f"FR{len(rings) + 1:05d}", shape, list(range(next_slot, next_slot + size)))
        )
        next_slot += size
        remaining -= size
    return rings
