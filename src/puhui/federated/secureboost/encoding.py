"""Fixed-point gradients and hessians, one Paillier plaintext per row, and their exact sums.

Why fixed point in *both* algorithms: the host adds encrypted integers, so the federated
histograms are sums of integers. If the central reference summed floats, the two would differ
in the last bits and a split could flip. Here the central run uses the very same integers
``g_int = round(g · 2^F)``, ``h_int = round(h · 2^F)`` (``F = fixed_point_bits``), so every
histogram sum is the same integer on both sides and every gain is bit-identical.

Packing. Each row's pair becomes one plaintext ``v = g_int · 2^B + h_int`` where ``B`` bits hold
the hessian sum of *all* rows (``h ≤ ¼`` so ``Σ h_int < n_rows · 2^(F−2) < 2^B``). Paillier adds
such values without carries from ``h`` into ``g``, so a sum decrypts to ``G · 2^B + H`` and
``H = v mod 2^B``, ``G = v >> B`` (floor division) recover both sums exactly.

A deviation from FATE, and why: FATE shifts ``g`` non-negative (adds an offset per row) before
packing, which needs the *row count* of every histogram bin to undo — a count the host would
have to send, revealing the distribution of its feature values in each node. We keep ``g``
signed instead: Paillier plaintexts are residues mod ``n`` and the guest decrypts to the signed
range ``(−n/2, n/2]`` (:meth:`PrivateKey.decrypt_signed`), where floor division is exact. No
count crosses.

Several sums are then packed into one ciphertext by the host (:meth:`PublicKey.shift_pack`,
``Σ v_j · 2^(S·j)``) before the guest decrypts; because each ``v_j`` is signed the slots are
read back from the lowest up with a borrow (:func:`split_slots` — ``paillier.unpack`` assumes
non-negative slots). ``S`` (``slot_bits``) bounds any sum over all rows: ``|v| < 2^(S−2)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]

_FLOAT_EXACT_BITS = 53


def _bits_for(count: int) -> int:
    """Bits needed to hold ``count`` (the number of rows a sum can run over)."""
    return max(1, int(count).bit_length())


@dataclass(frozen=True)
class Layout:
    """Bit widths for ``n_rows`` rows at ``fixed_point_bits`` of precision."""

    fixed_point_bits: int
    n_rows: int

    def __post_init__(self) -> None:
        if self.n_rows < 1:
            raise ValueError("at least one row is needed")
        # Plaintext histograms are summed with numpy in float64: exact only below 2^53.
        if self.fixed_point_bits + _bits_for(self.n_rows) + 1 > _FLOAT_EXACT_BITS:
            raise ValueError(
                f"fixed_point_bits={self.fixed_point_bits} is too large for {self.n_rows} rows: "
                f"sums must stay below 2^{_FLOAT_EXACT_BITS}"
            )

    @property
    def scale(self) -> float:
        """Multiply a fixed-point integer by this to get the real value (a power of two: exact)."""
        return 2.0**-self.fixed_point_bits

    @property
    def h_bits(self) -> int:
        """Low bits of a packed value that hold the hessian sum over any subset of rows."""
        return self.fixed_point_bits - 2 + _bits_for(self.n_rows) + 1

    @property
    def slot_bits(self) -> int:
        """Bits per packed sum inside one ciphertext: ``|G · 2^B + H| < 2^(slot_bits − 2)``."""
        return self.fixed_point_bits + _bits_for(self.n_rows) + self.h_bits + 3

    def slots_per_ciphertext(self, key_bits: int) -> int:
        """How many sums :meth:`PublicKey.shift_pack` puts in one ciphertext (its own rule)."""
        count = (key_bits - 1) // self.slot_bits
        if count < 1:
            raise ValueError(f"a {key_bits}-bit key cannot hold a {self.slot_bits}-bit slot")
        return count


def quantise(g: FloatArray, h: FloatArray, bits: int) -> tuple[IntArray, IntArray]:
    """``round(g · 2^bits)`` and ``round(h · 2^bits)``; ``g`` in [−1, 1], ``h`` in [0, ¼]."""
    one = float(2**bits)
    g_int = np.rint(np.clip(g, -1.0, 1.0) * one).astype(np.int64)
    h_int = np.rint(np.clip(h, 0.0, 0.25) * one).astype(np.int64)
    return g_int, h_int


def pack_rows(g_int: IntArray, h_int: IntArray, layout: Layout) -> list[int]:
    """One signed plaintext per row: ``g_int · 2^B + h_int``."""
    shift = layout.h_bits
    return [(g << shift) + h for g, h in zip(g_int.tolist(), h_int.tolist(), strict=True)]


def unpack_sum(value: int, layout: Layout) -> tuple[int, int]:
    """``(G, H)`` from a decrypted (signed) sum of packed rows."""
    shift = layout.h_bits
    return value >> shift, value & ((1 << shift) - 1)


def split_slots(value: int, slot_bits: int, count: int) -> list[int]:
    """The ``count`` signed slots of ``Σ v_j · 2^(slot_bits · j)``, lowest first."""
    modulus = 1 << slot_bits
    half = modulus >> 1
    out = []
    for _ in range(count):
        slot = value & (modulus - 1)
        if slot >= half:
            slot -= modulus
        out.append(slot)
        value = (value - slot) >> slot_bits
    if value != 0:
        raise ValueError("a packed value holds more slots than expected (corrupt or misdecoded)")
    return out
