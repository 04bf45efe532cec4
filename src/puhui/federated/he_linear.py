"""Linear algebra on Paillier ciphertexts: encrypted matrix–vector products, masking, blinding.

Vertical logistic regression needs, per mini-batch, ``Σ_i x_ij · [[d_i]]`` for every feature
``j`` of one party: a plaintext matrix times an encrypted vector. Done naively that is one
modular exponentiation per matrix entry (``[[d_i]]^x_ij mod n²``, ≈ 120 µs for a 24-bit
exponent at 4096 bits), which would dominate the whole protocol. This module does it as a
**bucket multi-exponentiation** (Pippenger's method) on top of
:meth:`~puhui.federated.bignum.MontVector.group_products`, the one fast loop we have
(≈ 4.5 µs per element):

* each column's integers are shifted to be non-negative (``e_i = x_i − min x``; the shift is put
  back with one power of ``Π_i [[d_i]]``), then cut into ``w``-bit windows;
* for each window, ``group_products`` by digit gives the bucket products ``B_v = Π_{e_i's digit
  = v} [[d_i]]`` — one multiplication per row;
* ``Π_v B_v^v`` is itself a multi-exponentiation, over ``2^w`` buckets with ``w``-bit
  exponents, solved by the same routine with a smaller window (recursion bottoms out in direct
  powers), and the windows are combined Horner-style with ``w`` squarings each.

So a 23-bit column over ``m`` rows costs ≈ ``⌈23/w⌉ · m`` multiplications plus a per-window
overhead of a few ``2^w``; ``w`` is chosen per call to minimise the estimate. Only the public
:class:`~puhui.federated.bignum.MontVector` operations are used.

The other helpers are what a party needs around such a product before asking the key owner to
decrypt it: :func:`add_plaintext` (``[[x]] → [[x + v]]`` at one multiplication), and
:func:`mask_and_blind`, which adds a uniformly random mask modulo ``n`` **and** multiplies by a
fresh ``r^n`` with ``r`` uniform in ``Z_n*``. The mask hides the value perfectly (a one-time
pad in ``Z_n``); the fresh ``r^n`` hides *how* the ciphertext was computed. Without it the key
owner — who chose the randomness of the ciphertexts it sent — could read
``Π_i (r_i^n)^(x_ij)`` off the result (a key owner can strip the plaintext from a ciphertext)
and learn about the other party's ``x_ij``. With it the result is a uniformly random encryption
of a uniformly random number ("circuit privacy"), at one full 2048-bit exponentiation
(≈ 7 ms) per ciphertext — a handful per mini-batch.
"""

from __future__ import annotations

import math
import secrets
from collections.abc import Sequence
from functools import cache

import numpy as np
import numpy.typing as npt

from puhui.federated.bignum import MontVector
from puhui.federated.paillier import PublicKey

__all__ = [
    "add_plaintext",
    "choose_window",
    "encrypted_matvec",
    "mask_and_blind",
    "multi_exponentiate",
    "product",
    "unmask",
]

IntArray = npt.NDArray[np.int64]

MAX_EXPONENT_BITS = 62  # exponents travel as int64 digits
_DIRECT_MAX = 24  # at or below this many bases, plain powers beat buckets
# Relative costs in multiplications, measured at 4096 bits (group_products ≈ 4.5 µs per
# element; a fresh bucket vector ≈ 1.6 multiplications per bucket to allocate; a power with a
# w-bit exponent ≈ 1.2·w + 25 multiplications including the call).
_BUCKET_ALLOC = 1.6
_POW_FIXED = 25.0


def product(ciphertexts: MontVector) -> MontVector:
    """``[[Σ x_i]]`` as a one-element vector: the product of all elements."""
    return ciphertexts.group_products(np.zeros(len(ciphertexts), dtype=np.int64), 1)


def _direct_cost(count: int, bits: int) -> float:
    return count * (1.2 * bits + _POW_FIXED)


@cache
def _plan(count: int, bits: int) -> tuple[float, int]:
    """(estimated multiplications, first window) for ``count`` bases and ``bits``-bit exponents.

    Window 0 means plain powers. A bucket pass is only considered with fewer buckets than bases
    (``2^w < count``), so the recursion on the buckets always shrinks.
    """
    best = (_direct_cost(count, bits), 0)
    if count <= _DIRECT_MAX:
        return best
    for window in range(1, min(bits, 16) + 1):
        buckets = 1 << window
        if buckets >= count:
            break
        passes = -(-bits // window)
        reduce = _plan(buckets, window)[0]
        cost = passes * (count + _BUCKET_ALLOC * buckets + reduce) + (passes - 1) * (window + 5)
        if cost < best[0]:
            best = (cost, window)
    return best


def choose_window(count: int, bits: int) -> int:
    """The bucket window (bits per pass) minimising the estimated cost; 0 means plain powers."""
    return _plan(count, bits)[1]


def multi_exponentiate(bases: MontVector, exponents: IntArray) -> MontVector:
    """``Π_i bases[i] ** exponents[i]`` as a one-element vector (non-negative int64 exponents).

    With Paillier ciphertexts as bases this is ``[[Σ_i e_i · x_i]]``.
    """
    exponents = np.asarray(exponents, dtype=np.int64)
    if exponents.shape != (len(bases),):
        raise ValueError("one exponent per base is needed")
    if len(bases) == 0:
        raise ValueError("nothing to exponentiate")
    if exponents.size and int(exponents.min()) < 0:
        raise ValueError("exponents must be non-negative")
    top = int(exponents.max())
    if top == 0:
        return bases.modulus.ones(1)
    bits = top.bit_length()
    if bits > MAX_EXPONENT_BITS:
        raise ValueError(f"exponents must be below 2^{MAX_EXPONENT_BITS}")
    window = choose_window(len(bases), bits)
    if window == 0:
        used = np.flatnonzero(exponents)
        powered = bases.take(used.tolist()).pow([int(e) for e in exponents[used]])
        return product(powered)
    mask = (1 << window) - 1
    result: MontVector | None = None
    for k in reversed(range(-(-bits // window))):  # most significant window first (Horner)
        digits = (exponents >> (window * k)) & mask
        if result is not None:
            result = result.pow([1 << window])
        if not digits.any():
            continue
        groups = np.where(digits == 0, -1, digits)  # digit 0 contributes nothing: skip it
        buckets = bases.group_products(groups, mask + 1)
        part = multi_exponentiate(buckets, np.arange(mask + 1, dtype=np.int64))
        result = part if result is None else result.mul(part)
    assert result is not None  # top > 0, so some window had a non-zero digit
    return result


def encrypted_matvec(ciphertexts: MontVector, matrix: IntArray) -> MontVector:
    """``[[Σ_i matrix[i, j] · x_i]]`` for every column ``j``, from ``[[x_i]]`` (signed entries).

    Each column is shifted to start at 0 (fewer exponent bits, no negative exponents); the
    shift ``o_j`` is restored with ``(Π_i [[x_i]])^o_j``, or its inverse when ``o_j < 0``.
    """
    matrix = np.asarray(matrix, dtype=np.int64)
    if matrix.ndim != 2 or matrix.shape[0] != len(ciphertexts):
        raise ValueError("the matrix needs one row per ciphertext")
    total: MontVector | None = None
    total_inverse: MontVector | None = None
    columns: list[MontVector] = []
    for j in range(matrix.shape[1]):
        column = matrix[:, j]
        offset = int(column.min())
        if int(column.max()) - offset >= 1 << MAX_EXPONENT_BITS:
            raise ValueError(f"column {j} spans more than 2^{MAX_EXPONENT_BITS}")
        shifted = column - offset
        value = multi_exponentiate(ciphertexts, shifted)
        if offset:
            if total is None:
                total = product(ciphertexts)
            if offset > 0:
                value = value.mul(total.pow([offset]))
            else:
                if total_inverse is None:
                    total_inverse = total.inverse()
                value = value.mul(total_inverse.pow([-offset]))
        columns.append(value)
    if not columns:
        raise ValueError("the matrix has no columns")
    return MontVector.concat(columns)


def add_plaintext(public: PublicKey, ciphertexts: MontVector, values: Sequence[int]) -> MontVector:
    """``[[x_i + v_i]]`` from ``[[x_i]]``: one multiplication by ``1 + v_i·n`` each.

    No fresh randomness is added: the result keeps the randomness of ``[[x_i]]``. That is
    sound here because such results never go back to the key owner unblinded (see
    :func:`mask_and_blind`).
    """
    if len(values) != len(ciphertexts):
        raise ValueError("one plaintext per ciphertext is needed")
    n, nsq = public.n, public.nsq
    encoded = ciphertexts.modulus.vector((1 + (v % n) * n) % nsq for v in values)
    return ciphertexts.mul(encoded)


def mask_and_blind(public: PublicKey, ciphertexts: MontVector) -> tuple[MontVector, list[int]]:
    """``[[x_j + r_j]]`` with ``r_j`` uniform in ``Z_n`` and fresh full-size randomness; the masks.

    The key owner decrypts ``x_j + r_j mod n``, uniformly random whatever ``x_j`` is, and the
    ciphertext it sees is a uniformly random encryption of it (``s^n`` for ``s`` uniform in
    ``Z_n*``, not the key's short-exponent randomiser), so it learns nothing about ``x_j`` nor
    about how the ciphertext was computed. Masks come from :mod:`secrets`.
    """
    n, nsq = public.n, public.nsq
    masks = [secrets.randbelow(n) for _ in range(len(ciphertexts))]
    blinders: list[int] = []
    while len(blinders) < len(ciphertexts):
        s = secrets.randbelow(n - 2) + 2
        if math.gcd(s, n) == 1:  # fails only if s reveals a factor of n (probability ~2^-1023)
            blinders.append(s)
    modulus = ciphertexts.modulus
    fresh = modulus.vector(blinders).pow([n] * len(blinders))
    shifted = modulus.vector((1 + r * n) % nsq for r in masks)
    return ciphertexts.mul(shifted).mul(fresh), masks


def unmask(public: PublicKey, masked: Sequence[int], masks: Sequence[int]) -> list[int]:
    """``x_j`` as signed integers in ``(−n/2, n/2]`` from the decrypted ``x_j + r_j mod n``."""
    if len(masked) != len(masks):
        raise ValueError("one mask per masked value is needed")
    n = public.n
    half = n // 2
    out = []
    for value, mask in zip(masked, masks, strict=True):
        if not 0 <= value < n:
            raise ValueError("a decrypted value is not reduced modulo n")
        plain = (value - mask) % n
        out.append(plain - n if plain > half else plain)
    return out
