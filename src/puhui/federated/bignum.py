"""Vectors of big integers modulo an odd modulus, computed by OpenSSL's BIGNUM library.

Paillier arithmetic is multiplication modulo a 4096-bit number, hundreds of thousands of times
per tree. CPython's own ``int`` does one such ``(a * b) % m`` in ≈ 35 µs; OpenSSL's Montgomery
multiplication, called through ctypes, in ≈ 4.6 µs including the call. The usual fast choice,
GMP through gmpy2, is LGPL; OpenSSL 3 is Apache-2.0 and already on every Debian/Ubuntu machine
(``libssl3``). ``PUHUI_LIBCRYPTO`` may name the library file.

Elements live in C memory as ``BIGNUM*`` in **Montgomery form** (``a·R mod m``) so a product is
one ``BN_mod_mul_montgomery`` call with no conversion; they are converted on the way in
(:meth:`Modulus.vector`, :meth:`Modulus.vector_from_bytes`) and out (:meth:`MontVector.to_ints`,
:meth:`MontVector.to_bytes`). A :class:`Modulus` owns one ``BN_CTX`` scratch area and is **not
thread-safe**; give each thread (or forked worker) its own.

:class:`FixedBase` raises one fixed base to many exponents with a precomputed table of
``base^(d·2^(w·k))`` — ``⌈bits/w⌉`` multiplications per exponent instead of ≈ 1.2 per bit —
which is what makes Paillier encryption with a fixed ``h^n`` (Damgård–Jurik–Nielsen) cheap.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import secrets
import threading
import weakref
from collections.abc import Iterable, Sequence
from functools import cache

import numpy as np

from puhui.federated.errors import FederatedError

_P = ctypes.c_void_p


@cache
def _libcrypto() -> ctypes.CDLL:
    """Load libcrypto once and declare the functions used (wrong signatures would crash)."""
    candidates = [
        os.environ.get("PUHUI_LIBCRYPTO"),
        "libcrypto.so.3",
        ctypes.util.find_library("crypto"),
    ]
    errors = []
    for name in [c for c in candidates if c]:
        try:
            lib = ctypes.CDLL(name)
            break
        except OSError as exc:
            errors.append(f"{name}: {exc}")
    else:
        raise FederatedError(
            "OpenSSL's libcrypto (3.x) was not found; install it (Debian/Ubuntu: libssl3) or set "
            "PUHUI_LIBCRYPTO to its path. Tried: " + "; ".join(errors or ["nothing to try"])
        )
    signatures: list[tuple[str, type | None, list[type]]] = [
        ("BN_new", _P, []),
        ("BN_free", None, [_P]),
        ("BN_dup", _P, [_P]),
        ("BN_CTX_new", _P, []),
        ("BN_CTX_free", None, [_P]),
        ("BN_MONT_CTX_new", _P, []),
        ("BN_MONT_CTX_free", None, [_P]),
        ("BN_MONT_CTX_set", ctypes.c_int, [_P, _P, _P]),
        ("BN_bin2bn", _P, [_P, ctypes.c_int, _P]),
        ("BN_bn2binpad", ctypes.c_int, [_P, _P, ctypes.c_int]),
        ("BN_num_bits", ctypes.c_int, [_P]),
        ("BN_mod_mul_montgomery", ctypes.c_int, [_P, _P, _P, _P, _P]),
        ("BN_to_montgomery", ctypes.c_int, [_P, _P, _P, _P]),
        ("BN_from_montgomery", ctypes.c_int, [_P, _P, _P, _P]),
        ("BN_mod_exp_mont", ctypes.c_int, [_P, _P, _P, _P, _P, _P]),
        ("BN_mod_inverse", _P, [_P, _P, _P, _P]),
    ]
    for fname, restype, argtypes in signatures:
        function = getattr(lib, fname)
        function.restype = restype
        function.argtypes = argtypes
    return lib


def _int_to_bn(value: int) -> int:
    lib = _libcrypto()
    raw = value.to_bytes(max(1, (value.bit_length() + 7) // 8), "big")
    pointer = lib.BN_bin2bn(raw, len(raw), None)
    if not pointer:
        raise MemoryError("BN_bin2bn failed")
    return int(pointer)


def _bn_to_int(pointer: int, scratch: ctypes.Array[ctypes.c_char], width: int) -> int:
    _libcrypto().BN_bn2binpad(pointer, scratch, width)
    return int.from_bytes(scratch.raw[:width], "big")


def _free_all(pointers: list[int]) -> None:
    free = _libcrypto().BN_free
    for pointer in pointers:
        free(pointer)
    pointers.clear()


class Modulus:
    """Montgomery arithmetic modulo one odd modulus ``m`` (one scratch context: not thread-safe)."""

    def __init__(self, m: int) -> None:
        if m < 3 or m % 2 == 0:
            raise ValueError("the modulus must be an odd integer greater than 2")
        lib = _libcrypto()
        self.m = m
        self.width = (m.bit_length() + 7) // 8
        self._ctx = int(lib.BN_CTX_new())
        self._m_bn = _int_to_bn(m)
        self._mont = int(lib.BN_MONT_CTX_new())
        if not lib.BN_MONT_CTX_set(self._mont, self._m_bn, self._ctx):
            raise FederatedError("OpenSSL could not set up Montgomery arithmetic for the modulus")
        self._owner_pid = os.getpid()
        self._lock = threading.Lock()
        self._finalizer = weakref.finalize(self, _free_modulus, self._ctx, self._mont, self._m_bn)

    # -- conversions ---------------------------------------------------------------------------
    def vector(self, values: Iterable[int]) -> MontVector:
        """Elements ``v mod m`` in Montgomery form."""
        lib = _libcrypto()
        to_mont = lib.BN_to_montgomery
        pointers: list[int] = []
        m = self.m
        for value in values:
            pointer = _int_to_bn(value % m)
            to_mont(pointer, pointer, self._mont, self._ctx)
            pointers.append(pointer)
        return MontVector(self, pointers)

    def vector_from_bytes(self, blob: bytes, width: int | None = None) -> MontVector:
        """Elements from fixed-width big-endian records (as :meth:`MontVector.to_bytes` wrote)."""
        width = width or self.width
        if len(blob) % width:
            raise FederatedError(
                f"a vector of {width}-byte numbers cannot be {len(blob)} bytes long"
            )
        lib = _libcrypto()
        bin2bn, to_mont = lib.BN_bin2bn, lib.BN_to_montgomery
        buffer = ctypes.create_string_buffer(blob, len(blob))
        base = ctypes.addressof(buffer)
        pointers: list[int] = []
        for offset in range(0, len(blob), width):
            if not _below(blob, offset, width, self.m):
                _free_all(pointers)
                raise FederatedError("the peer sent a number that is not reduced modulo the key")
            pointer = bin2bn(base + offset, width, None)
            to_mont(pointer, pointer, self._mont, self._ctx)
            pointers.append(int(pointer))
        return MontVector(self, pointers)

    def ones(self, count: int) -> MontVector:
        """``count`` copies of 1 (the neutral element of multiplication)."""
        return self.vector([1] * count)


def _below(blob: bytes, offset: int, width: int, m: int) -> bool:
    return int.from_bytes(blob[offset : offset + width], "big") < m


def _free_modulus(ctx: int, mont: int, m_bn: int) -> None:
    lib = _libcrypto()
    lib.BN_MONT_CTX_free(mont)
    lib.BN_free(m_bn)
    lib.BN_CTX_free(ctx)


class MontVector:
    """A vector of elements modulo ``modulus.m``, in Montgomery form, owned in C memory."""

    def __init__(self, modulus: Modulus, pointers: list[int]) -> None:
        self.modulus = modulus
        self._pointers = pointers
        self._finalizer = weakref.finalize(self, _free_all, pointers)

    def __len__(self) -> int:
        return len(self._pointers)

    def _new(self, count: int) -> list[int]:
        lib = _libcrypto()
        return [int(lib.BN_new()) for _ in range(count)]

    # -- out -----------------------------------------------------------------------------------
    def to_ints(self) -> list[int]:
        """The elements as Python ints (out of Montgomery form)."""
        mod = self.modulus
        lib = _libcrypto()
        tmp = int(lib.BN_new())
        scratch = ctypes.create_string_buffer(mod.width)
        try:
            out = []
            for pointer in self._pointers:
                lib.BN_from_montgomery(tmp, pointer, mod._mont, mod._ctx)
                out.append(_bn_to_int(tmp, scratch, mod.width))
            return out
        finally:
            lib.BN_free(tmp)

    def to_bytes(self) -> bytes:
        """Fixed-width big-endian records, ``modulus.width`` bytes each."""
        mod = self.modulus
        lib = _libcrypto()
        width = mod.width
        buffer = ctypes.create_string_buffer(width * len(self._pointers))
        base = ctypes.addressof(buffer)
        tmp = int(lib.BN_new())
        from_mont, bn2bin = lib.BN_from_montgomery, lib.BN_bn2binpad
        try:
            for k, pointer in enumerate(self._pointers):
                from_mont(tmp, pointer, mod._mont, mod._ctx)
                bn2bin(tmp, base + k * width, width)
        finally:
            lib.BN_free(tmp)
        return buffer.raw

    # -- arithmetic ------------------------------------------------------------------------------
    def mul(self, other: MontVector) -> MontVector:
        """Element-wise product."""
        if len(other) != len(self) or other.modulus is not self.modulus:
            raise ValueError("vectors differ in length or modulus")
        mod = self.modulus
        mul = _libcrypto().BN_mod_mul_montgomery
        out = self._new(len(self))
        for r, a, b in zip(out, self._pointers, other._pointers, strict=True):
            mul(r, a, b, mod._mont, mod._ctx)
        return MontVector(mod, out)

    def group_products(self, groups: np.ndarray, n_groups: int) -> MontVector:
        """Product of the elements in each group: ``out[g] = Π_{i: groups[i] == g} self[i]``.

        ``groups[i] < 0`` leaves element ``i`` out. With Paillier ciphertexts this is the
        homomorphic sum per group — a histogram — at one multiplication per element.
        """
        if len(groups) != len(self):
            raise ValueError("one group id per element is needed")
        mod = self.modulus
        mul = _libcrypto().BN_mod_mul_montgomery
        accumulators = mod.ones(n_groups)
        acc = accumulators._pointers
        touched = [False] * n_groups
        pointers = self._pointers
        mont, ctx = mod._mont, mod._ctx
        dup = _libcrypto().BN_dup
        for i, group in enumerate(groups.tolist()):
            if group < 0:
                continue
            if touched[group]:
                mul(acc[group], acc[group], pointers[i], mont, ctx)
            else:  # the first element is copied, saving one multiplication by 1
                _libcrypto().BN_free(acc[group])
                acc[group] = int(dup(pointers[i]))
                touched[group] = True
        return accumulators

    def inverse(self) -> MontVector:
        """Element-wise modular inverse (for Paillier: the homomorphic negation).

        Montgomery's trick: one modular inversion of the product of all elements, then three
        multiplications per element peel the individual inverses off — ≈ 50× cheaper than one
        inversion each (≈ 0.64 ms per 4096-bit element)."""
        count = len(self)
        mod = self.modulus
        if count == 0:
            return MontVector(mod, [])
        lib = _libcrypto()
        mul = lib.BN_mod_mul_montgomery
        mont, ctx = mod._mont, mod._ctx
        pointers = self._pointers
        prefixes = self._new(count)  # prefixes[i] = a_0 · … · a_i
        lib.BN_free(prefixes[0])
        prefixes[0] = int(lib.BN_dup(pointers[0]))
        for i in range(1, count):
            mul(prefixes[i], prefixes[i - 1], pointers[i], mont, ctx)
        running = int(lib.BN_new())  # (a_0 · … · a_i)^-1, from the end down
        lib.BN_from_montgomery(running, prefixes[-1], mont, ctx)
        if not lib.BN_mod_inverse(running, running, mod._m_bn, ctx):
            _free_all(prefixes)
            lib.BN_free(running)
            raise FederatedError("an element has no inverse modulo the key (corrupt ciphertext)")
        lib.BN_to_montgomery(running, running, mont, ctx)
        out = self._new(count)
        for i in range(count - 1, 0, -1):
            mul(out[i], running, prefixes[i - 1], mont, ctx)
            mul(running, running, pointers[i], mont, ctx)
        lib.BN_free(out[0])
        out[0] = running
        _free_all(prefixes)
        return MontVector(mod, out)

    def pow(self, exponents: Sequence[int]) -> MontVector:
        """Element-wise ``self[i] ** exponents[i]`` (non-negative exponents)."""
        if len(exponents) != len(self):
            raise ValueError("one exponent per element is needed")
        mod = self.modulus
        lib = _libcrypto()
        out = self._new(len(self))
        for r, a, e in zip(out, self._pointers, exponents, strict=True):
            if e < 0:
                _free_all(out)
                raise ValueError("exponents must be non-negative")
            e_bn = _int_to_bn(e)
            lib.BN_from_montgomery(r, a, mod._mont, mod._ctx)
            lib.BN_mod_exp_mont(r, r, e_bn, mod._m_bn, mod._ctx, mod._mont)
            lib.BN_to_montgomery(r, r, mod._mont, mod._ctx)
            lib.BN_free(e_bn)
        return MontVector(mod, out)

    def take(self, indexes: Sequence[int]) -> MontVector:
        """A new vector of copies of the chosen elements."""
        dup = _libcrypto().BN_dup
        return MontVector(self.modulus, [int(dup(self._pointers[i])) for i in indexes])

    @staticmethod
    def concat(vectors: Sequence[MontVector]) -> MontVector:
        """One vector holding copies of all elements, in order."""
        if not vectors:
            raise ValueError("nothing to concatenate")
        dup = _libcrypto().BN_dup
        return MontVector(vectors[0].modulus, [int(dup(p)) for v in vectors for p in v._pointers])


class FixedBase:
    """``base ** e mod m`` for many exponents ``e`` < 2^max_bits, by a windowed table.

    The table holds ``base^(d · 2^(window·k))`` for every window position ``k`` and digit
    ``d``, so one exponentiation is one multiplication per digit. A 448-bit exponent with
    12-bit windows takes 37 multiplications (38 digits, the first copied); the table for a
    2048-bit modulus is 38 × 4096 × 256 bytes ≈ 40 MB and takes ≈ 0.25 s to build.
    """

    def __init__(self, modulus: Modulus, base: int, max_bits: int, window: int = 12) -> None:
        if not 1 <= window <= 16:
            raise ValueError("window must be between 1 and 16 bits")
        self.modulus = modulus
        self.max_bits = max_bits
        self.window = window
        self._digits = -(-max_bits // window)
        self._exponent_bytes = -(-max_bits // 8)
        lib = _libcrypto()
        mul = lib.BN_mod_mul_montgomery
        mont, ctx = modulus._mont, modulus._ctx
        size = 1 << window
        rows: list[MontVector] = []
        power = modulus.vector([base])  # base^(2^(window·k)) for the current k
        for _ in range(self._digits):
            row = modulus.ones(size)
            row_pointers = row._pointers
            step = power._pointers[0]
            for d in range(1, size):
                mul(row_pointers[d], row_pointers[d - 1], step, mont, ctx)
            rows.append(row)
            nxt = modulus.ones(1)
            mul(nxt._pointers[0], row_pointers[size - 1], step, mont, ctx)  # base^(2^(w(k+1)))
            power = nxt
        self._rows = rows  # owns the table's memory
        self._pointer_table = np.array([row._pointers for row in rows], dtype=np.uint64)

    def digits(self, exponents: Sequence[int]) -> np.ndarray:
        """The base-``2^window`` digits of each exponent, least significant first: (n, D),
        for :meth:`pow_digits` when the exponents are given rather than drawn."""
        limit = 1 << self.max_bits
        if any(not 0 <= e < limit for e in exponents):
            raise ValueError(f"exponent outside [0, 2^{self.max_bits})")
        raw = b"".join(e.to_bytes(self._exponent_bytes, "little") for e in exponents)
        return self._digits_of(raw, len(exponents))

    def random_digits(self, count: int) -> np.ndarray:
        """Digits of ``count`` exponents drawn uniformly from ``[0, 2^max_bits)`` by the OS.

        Drawing the digits directly skips building and splitting Python ints, which is a
        tenth of an encryption's cost.
        """
        return self._digits_of(secrets.token_bytes(count * self._exponent_bytes), count)

    def _digits_of(self, raw: bytes, count: int) -> np.ndarray:
        """Little-endian exponents of ``_exponent_bytes`` each → their window digits."""
        rows = np.frombuffer(raw, dtype=np.uint8).reshape(count, self._exponent_bytes)
        bits = np.unpackbits(rows, axis=1, bitorder="little")[:, : self.max_bits]
        padded = np.zeros((count, self._digits * self.window), dtype=np.int64)
        padded[:, : self.max_bits] = bits
        weights = 1 << np.arange(self.window, dtype=np.int64)
        return padded.reshape(count, self._digits, self.window) @ weights

    def pow_digits(self, digits: np.ndarray) -> MontVector:
        """``base ** e`` for each row of digits (from :meth:`digits`), in Montgomery form.

        The table entries are looked up for all rows at once, so the inner loop is one
        ``BN_mod_mul_montgomery`` call per digit and nothing else (zero digits multiply by
        the table's 1, which keeps the work independent of the exponent).
        """
        if digits.ndim != 2 or digits.shape[1] != self._digits:
            raise ValueError(f"need one row of {self._digits} digits per exponent")
        if digits.size and (digits.min() < 0 or digits.max() >= 1 << self.window):
            raise ValueError(f"digits must be in [0, 2^{self.window})")
        modulus = self.modulus
        lib = _libcrypto()
        mul, dup = lib.BN_mod_mul_montgomery, lib.BN_dup
        mont, ctx = modulus._mont, modulus._ctx
        entries = self._pointer_table[np.arange(self._digits), digits].tolist()
        out: list[int] = []
        for row in entries:
            acc = int(dup(row[0]))
            for entry in row[1:]:
                mul(acc, acc, entry, mont, ctx)
            out.append(acc)
        return MontVector(modulus, out)
