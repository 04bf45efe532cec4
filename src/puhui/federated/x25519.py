"""X25519 over many points with one secret: the scalar multiplication PSI is made of.

DH-PSI raises every id's point to a party's secret, twice per id in all (see :mod:`.psi`).
That multiplication is nearly the whole cost, so it lives here behind one call,
:func:`multiply`, with two backends that compute the same function (RFC 7748's X25519) and
so interoperate — one party may run either:

* ``crypto_mb``: Intel's multi-buffer X25519, eight points per call with AVX-512 IFMA
  (:mod:`.crypto_mb`; the optional ``ipp-crypto`` wheel, Apache-2.0). About 4-5× faster per
  point (``benchmarks/bench_psi_primitives.py``).
* ``openssl``: OpenSSL's X25519 through ``cryptography``, one point per call. Always there.

``PUHUI_PSI_BACKEND`` chooses: ``auto`` (default: ``crypto_mb`` where it runs, else
``openssl``), ``crypto_mb`` (an error where it cannot run) or ``openssl``.

Points are Montgomery u-coordinates, 32 bytes little-endian, joined in one ``bytes`` value.
The secret is any 32 bytes; X25519 clamps it (a multiple of 8, bit 254 set), which is why a
product never depends on a point's small-order component. A product that is zero means the
input had small order; :func:`multiply` refuses it, naming its position.
"""

from __future__ import annotations

import ctypes
import functools
import os
from typing import Literal

import numpy as np
import numpy.typing as npt
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey

from puhui.federated import crypto_mb

__all__ = ["BACKENDS", "POINT_BYTES", "LowOrderPoint", "backend_name", "is_canonical", "multiply"]

POINT_BYTES = 32
BACKENDS = ("auto", "crypto_mb", "openssl")
Backend = Literal["auto", "crypto_mb", "openssl"]


class LowOrderPoint(ValueError):
    """A point whose product is zero: it has small order (or is zero), so it carries no id."""

    def __init__(self, position: int) -> None:
        super().__init__(f"point at position {position} has small order")
        self.position = position


def backend_name(requested: str | None = None) -> str:
    """The backend :func:`multiply` uses for ``requested`` (default: ``PUHUI_PSI_BACKEND``)."""
    return _resolve(requested or os.environ.get("PUHUI_PSI_BACKEND") or "auto")


@functools.cache
def _resolve(choice: str) -> str:
    if choice not in BACKENDS:
        raise ValueError(f"PUHUI_PSI_BACKEND must be one of {', '.join(BACKENDS)}, not {choice!r}")
    if choice == "openssl":
        return "openssl"
    if crypto_mb.load() is not None:
        return "crypto_mb"
    if choice == "crypto_mb":
        raise ValueError(f"the crypto_mb backend cannot run here: {crypto_mb.unavailable_reason()}")
    return "openssl"


def is_canonical(points: bytes) -> npt.NDArray[np.bool_]:
    """For each 32-byte u-coordinate, whether it is a canonical encoding (below 2^255 - 19).

    RFC 7748 tells receivers to accept and reduce larger values; PSI refuses them instead,
    since an honest peer never sends one and a non-canonical twin could match twice.
    """
    rows = np.frombuffer(points, dtype=np.uint8).reshape(-1, POINT_BYTES)
    top_clear = rows[:, 31] < 0x80
    # 2^255 - 19 is ed ff .. ff 7f: values from there to 2^255 - 1 end in 7f, are ff in the
    # middle and at least ed in the first byte.
    too_big = (rows[:, 31] == 0x7F) & (rows[:, 1:31] == 0xFF).all(axis=1) & (rows[:, 0] >= 0xED)
    canonical: npt.NDArray[np.bool_] = top_clear & ~too_big
    return canonical


def multiply(scalar: bytes, points: bytes, backend: str | None = None) -> bytes:
    """``X25519(scalar, u)`` for each joined 32-byte ``u`` in ``points``, joined in order.

    Raises :class:`LowOrderPoint` for the first input whose product is zero.
    """
    if len(scalar) != 32 or len(points) % POINT_BYTES:
        raise ValueError("scalar must be 32 bytes and points a whole number of 32-byte values")
    if not points:
        return b""
    if backend_name(backend) == "crypto_mb":
        product = _multiply_crypto_mb(scalar, points)
    else:
        product = _multiply_openssl(scalar, points)
    zero = ~np.frombuffer(product, dtype=np.uint8).reshape(-1, POINT_BYTES).any(axis=1)
    if zero.any():
        raise LowOrderPoint(int(np.argmax(zero)))
    return product


def _multiply_openssl(scalar: bytes, points: bytes) -> bytes:
    exchange = X25519PrivateKey.from_private_bytes(scalar).exchange
    load = X25519PublicKey.from_public_bytes
    out = bytearray(len(points))
    for offset in range(0, len(points), POINT_BYTES):
        try:  # noqa: SIM105 - a context manager per point costs more than the try
            out[offset : offset + POINT_BYTES] = exchange(load(points[offset : offset + 32]))
        except ValueError:  # OpenSSL refuses an all-zero shared secret; report it as zero
            pass
    return bytes(out)


def _multiply_crypto_mb(scalar: bytes, points: bytes) -> bytes:
    mb = crypto_mb.load()
    assert mb is not None  # backend_name chose it
    lanes = crypto_mb.LANES
    n = len(points) // POINT_BYTES
    padded = -(-n // lanes) * lanes
    # Pad the last call with copies of the first point; their products are dropped.
    source = ctypes.create_string_buffer(points + points[:POINT_BYTES] * (padded - n))
    out = ctypes.create_string_buffer(POINT_BYTES * padded)
    key = ctypes.create_string_buffer(scalar, 32)
    # Arrays of lane pointers, read in place by address: no ctypes object per call.
    offsets = np.arange(padded, dtype=np.uint64) * POINT_BYTES
    in_ptrs = offsets + np.uint64(ctypes.addressof(source))
    out_ptrs = offsets + np.uint64(ctypes.addressof(out))
    key_ptrs = np.full(lanes, ctypes.addressof(key), dtype=np.uint64)
    call, step = mb.raw_x25519_mb8, 8 * lanes
    in_base, out_base, keys = in_ptrs.ctypes.data, out_ptrs.ctypes.data, key_ptrs.ctypes.data
    for k in range(0, step * (padded // lanes), step):
        status = call(out_base + k, keys, in_base + k)
        # A lane whose input has small order reports MBX_STATUS_LOW_ORDER_ERR (4) and leaves
        # zeros, which multiply() reports by position; any other status is a library fault.
        if status and any((status >> 4 * lane) & 0xF not in (0, 4) for lane in range(lanes)):
            raise RuntimeError(f"crypto_mb failed an X25519 batch (status {status:#x})")
    return out.raw[: POINT_BYTES * n]
