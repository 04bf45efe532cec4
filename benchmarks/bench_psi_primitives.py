"""The elliptic-curve operations a DH-PSI is made of, one at a time, on one core (issue 6).

Run: ``.venv/bin/python benchmarks/bench_psi_primitives.py [--n 20000]`` (≈ 10 s). Seeded
scalars; the points are fixed, the time per call does not depend on them.

Why: a DH-PSI of N × N ids costs 2N hashes to the group and 4N variable-base scalar
multiplications whatever surrounds them, so these per-call costs set the floor under
``bench_psi.py`` — and tell whether another curve would bring the 1M × 1M run under its target.
Timed here, each through the call the code would make:

* libsodium ristretto255 ``crypto_core_ristretto255_from_hash`` (the hash of both protocol
  versions) and ``crypto_scalarmult_ristretto255`` (version 1's multiplication), through ctypes;
* the step from a ristretto255 encoding ``s`` to the u-coordinate ``s² mod p`` (version 2);
* X25519, version 2's multiplication: OpenSSL through ``cryptography`` (``exchange`` and
  loading the peer's point), libsodium's ``crypto_scalarmult_curve25519``, and Intel's
  multi-buffer ``mbx_x25519_mb8`` (eight per call, per multiplication; where it runs);
* libsodium ``crypto_core_ed25519_from_uniform`` (one Elligator 2 map), for comparison.

Results go to benchmarks/results/psi_primitives.json with the floor each design implies for
1M × 1M on 2 cores.
"""

from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import hashlib
import json
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey

import hostinfo
from puhui.federated import crypto_mb
from puhui.federated.psi import _from_hash, libsodium

RESULTS = Path(__file__).parent / "results" / "psi_primitives.json"
SEED = 20261128


def per_call_us(fn: Callable[[], object], n: int) -> float:
    """Best of three runs of ``n`` calls, in µs per call (the least disturbed by neighbours)."""
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        for _ in range(n):
            fn()
        best = min(best, (time.perf_counter() - started) / n)
    return best * 1e6


def _mb8_per_multiplication(mb: crypto_mb.CryptoMb, key: bytes, point: bytes, n: int) -> float:
    """µs per X25519 of ``mbx_x25519_mb8`` (eight lanes per call, n // 8 calls)."""
    lanes = crypto_mb.LANES
    out = ctypes.create_string_buffer(32 * lanes)
    scalar = ctypes.create_string_buffer(key, 32)
    source = ctypes.create_string_buffer(point, 32)
    array = ctypes.c_void_p * lanes
    outs = array(*(ctypes.addressof(out) + 32 * k for k in range(lanes)))
    keys = array(*[ctypes.addressof(scalar)] * lanes)
    points = array(*[ctypes.addressof(source)] * lanes)
    args = (ctypes.addressof(outs), ctypes.addressof(keys), ctypes.addressof(points))
    call = mb.raw_x25519_mb8
    return per_call_us(lambda: call(*args), max(1, n // lanes)) / lanes


def measure(n: int) -> dict[str, float | None]:
    rng = random.Random(SEED)
    from_hash = _from_hash()
    lib = libsodium()
    ristretto_mult = lib.crypto_scalarmult_ristretto255
    ristretto_mult.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_char_p]
    x25519 = lib.crypto_scalarmult_curve25519
    x25519.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_char_p]
    from_uniform = lib.crypto_core_ed25519_from_uniform
    from_uniform.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
    out = ctypes.create_string_buffer(32)
    out_addr = ctypes.addressof(out)
    digest = hashlib.sha512(b"puhui-psi/v2:913300000000000000").digest()
    scalar = bytearray(rng.randbytes(32))
    scalar[31] &= 0x0F  # below the group order
    key = bytes(scalar)
    from_hash(out_addr, digest)
    point = out.raw
    p = 2**255 - 19

    def to_u() -> bytes:
        s = int.from_bytes(point, "little")
        return (s * s % p).to_bytes(32, "little")

    base_u = bytes([9]) + bytes(31)
    private = X25519PrivateKey.from_private_bytes(key)
    public = X25519PublicKey.from_public_bytes(base_u)
    mb = crypto_mb.load()
    return {
        "sodium_ristretto255_from_hash_us": per_call_us(lambda: from_hash(out_addr, digest), n),
        "ristretto255_encoding_to_u_us": per_call_us(to_u, n),
        "sodium_ristretto255_scalarmult_us": per_call_us(
            lambda: ristretto_mult(out_addr, key, point), n
        ),
        "sodium_x25519_us": per_call_us(lambda: x25519(out_addr, key, base_u), n),
        "sodium_ed25519_from_uniform_us": per_call_us(
            lambda: from_uniform(out_addr, digest[:32]), n
        ),
        "openssl_x25519_exchange_us": per_call_us(lambda: private.exchange(public), n),
        "openssl_x25519_load_point_us": per_call_us(
            lambda: X25519PublicKey.from_public_bytes(base_u), n
        ),
        "crypto_mb_x25519_mb8_per_multiplication_us": (
            _mb8_per_multiplication(mb, key, base_u, n) if mb is not None else None
        ),
    }


def floors(
    us: dict[str, float | None], ids_per_side: int = 1_000_000, cores: int = 2
) -> dict[str, Any]:
    """Seconds for ``ids_per_side`` × ``ids_per_side`` on ``cores`` if only the curve worked."""

    def seconds(per_pair_us: float) -> float:
        return per_pair_us * ids_per_side / 1e6 / cores

    hash_v1 = us["sodium_ristretto255_from_hash_us"] or 0.0
    hash_v2 = hash_v1 + (us["ristretto255_encoding_to_u_us"] or 0.0)
    openssl = (us["openssl_x25519_exchange_us"] or 0.0) + (
        us["openssl_x25519_load_point_us"] or 0.0
    )
    mb8 = us["crypto_mb_x25519_mb8_per_multiplication_us"]
    return {
        "ids_per_side": ids_per_side,
        "cores": cores,
        "v1_ristretto255_s": seconds(
            2 * hash_v1 + 4 * (us["sodium_ristretto255_scalarmult_us"] or 0.0)
        ),
        "v2_x25519_openssl_s": seconds(2 * hash_v2 + 4 * openssl),
        "v2_x25519_crypto_mb_s": seconds(2 * hash_v2 + 4 * mb8) if mb8 is not None else None,
        "note": "2 hashes + 4 multiplications per id pair, nothing else",
    }


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--n", type=int, default=20_000, help="calls per timing")
    args = parser.parse_args(argv)
    us = measure(args.n)
    out = {
        "benchmark": "psi_primitives",
        "machine": hostinfo.describe(),
        "parameters": {"calls": args.n, "timing": "best of 3, µs per call, one core"},
        "per_call_us": us,
        "floor_1m_x_1m_on_2_cores": floors(us),
    }
    RESULTS.write_text(json.dumps(out, indent=1) + "\n")
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
