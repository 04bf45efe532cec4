"""The X25519 backends of PSI: RFC 7748's answers, agreement, and the hash's derivation.

``crypto_mb`` tests run where Intel's multi-buffer library loads (the ``ipp-crypto`` wheel and
an AVX-512 IFMA CPU) and are skipped, with the reason, elsewhere.
"""

from __future__ import annotations

import ctypes
import random
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from puhui.federated import crypto_mb, x25519
from puhui.federated.psi import PsiParty, _from_hash, hash_to_group, libsodium

needs_crypto_mb = pytest.mark.skipif(
    crypto_mb.load() is None,
    reason="Intel crypto_mb cannot run here (no ipp-crypto wheel or no AVX-512 IFMA)",
)
BACKENDS = ["openssl", pytest.param("crypto_mb", marks=needs_crypto_mb)]

# RFC 7748: section 5.2's first vector, and section 6.1's Diffie-Hellman exchange.
_ALICE = "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a"
_ALICE_PUBLIC = "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a"
_BOB = "5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb"
_BOB_PUBLIC = "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f"
_SHARED = "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742"
_NINE = "09" + "00" * 31
RFC7748 = [
    (
        "a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4",
        "e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c",
        "c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552",
    ),
    (_ALICE, _NINE, _ALICE_PUBLIC),
    (_BOB, _NINE, _BOB_PUBLIC),
    (_ALICE, _BOB_PUBLIC, _SHARED),
    (_BOB, _ALICE_PUBLIC, _SHARED),
]


def _points(count: int, seed: int) -> bytes:
    """Valid u-coordinates: public keys of seeded random secrets."""
    rng = random.Random(seed)
    return b"".join(
        X25519PrivateKey.from_private_bytes(rng.randbytes(32)).public_key().public_bytes_raw()
        for _ in range(count)
    )


@pytest.mark.parametrize("backend", BACKENDS)
def test_rfc7748_vectors(backend: str) -> None:
    for scalar, point, expected in RFC7748:
        # 11 copies: more than one batch of eight lanes, and a partial last batch.
        product = x25519.multiply(bytes.fromhex(scalar), bytes.fromhex(point) * 11, backend)
        assert product == bytes.fromhex(expected) * 11


@needs_crypto_mb
def test_backends_agree_on_many_points() -> None:
    points = _points(1_003, seed=4)
    scalar = random.Random(5).randbytes(32)
    assert x25519.multiply(scalar, points, "crypto_mb") == x25519.multiply(
        scalar, points, "openssl"
    )


@pytest.mark.parametrize("backend", BACKENDS)
def test_small_order_points_are_refused_by_position(backend: str) -> None:
    good = _points(9, seed=1)
    with pytest.raises(x25519.LowOrderPoint) as caught:
        x25519.multiply(b"\x07" * 32, good + bytes(32), backend)  # u = 0 at position 9
    assert caught.value.position == 9
    assert x25519.multiply(b"\x07" * 32, b"", backend) == b""


def test_canonical_encodings() -> None:
    p = 2**255 - 19
    values = [0, 1, 9, p - 1, p, p + 1, 2**255 - 1]
    encoded = b"".join(v.to_bytes(32, "little") for v in values)
    assert list(x25519.is_canonical(encoded)) == [True, True, True, True, False, False, False]
    assert not x25519.is_canonical(b"\x00" * 31 + b"\x80")[0]  # top bit set


def test_an_unknown_backend_is_named() -> None:
    with pytest.raises(ValueError, match="must be one of auto, crypto_mb, openssl"):
        x25519.backend_name("fastest")


@pytest.mark.libsodium
def test_hash_to_group_is_ristretto255_from_hash_as_a_u_coordinate() -> None:
    """``s² mod p`` stands for the ristretto255 element ``s``: multiplying the element with
    libsodium and then mapping it, or mapping it and multiplying with X25519, agree."""
    lib = libsodium()
    lib.crypto_scalarmult_ristretto255.argtypes = [
        ctypes.c_void_p,
        ctypes.c_char_p,
        ctypes.c_char_p,
    ]
    from_hash, p, rng = _from_hash(), 2**255 - 19, random.Random(8)
    for k in range(50):
        digest = rng.randbytes(64)
        element = ctypes.create_string_buffer(32)
        from_hash(ctypes.addressof(element), digest)
        secret = bytearray(rng.randbytes(32))  # X25519's clamping, applied for libsodium
        secret[0] &= 248
        secret[31] = (secret[31] & 127) | 64
        product = ctypes.create_string_buffer(32)
        assert lib.crypto_scalarmult_ristretto255(product, bytes(secret), element.raw) == 0

        def as_u(encoded: bytes) -> bytes:
            s = int.from_bytes(encoded, "little")
            return (s * s % p).to_bytes(32, "little")

        check = rng.randbytes(32)  # one more clamped multiplication removes torsion on both
        via_ristretto = x25519.multiply(check, as_u(product.raw), "openssl")
        via_x25519 = x25519.multiply(
            check, x25519.multiply(bytes(secret), as_u(element.raw), "openssl"), "openssl"
        )
        assert via_ristretto == via_x25519, k
    # The ristretto255 base point maps to the u-coordinate class of Curve25519's base point.
    base = bytes.fromhex("e2f2ae0a6abc4e71a884a961c500515f58e30b6aa582dd8db6a65945e08d2d76")
    nine = (9).to_bytes(32, "little")
    assert x25519.multiply(b"\x05" * 32, as_u(base), "openssl") == x25519.multiply(
        b"\x05" * 32, nine, "openssl"
    )
    assert len(hash_to_group("913301001234567890")) == 32


@pytest.mark.libsodium
@needs_crypto_mb
def test_parties_on_different_backends_interoperate() -> None:
    ids = [f"91{k:016d}" for k in range(300)]
    fast = PsiParty.from_seed("g", backend="crypto_mb")
    portable = PsiParty.from_seed("h", backend="openssl")
    mixed = fast.intersect(portable.reblind(fast.blind(ids)), fast.reblind(portable.blind(ids)))
    assert mixed == [(k, k) for k in range(300)]
    same = PsiParty.from_seed("g", backend="openssl").blind(ids)
    assert fast.blind(ids) == same  # identical bytes from either backend


def test_patch_needed_redirects_only_the_unused_runtime() -> None:
    source = crypto_mb._wheel_library()
    if source is None or not source.exists():
        pytest.skip("the ipp-crypto wheel is not installed")
    image = source.read_bytes()
    patched = crypto_mb.patch_needed(image)
    assert len(patched) == len(image)
    changed = [k for k in range(len(image)) if image[k] != patched[k]]
    assert 0 < len(changed) <= 4 * 8  # only DT_NEEDED values (8 bytes each) differ
    before, after = crypto_mb.needed_libraries(image), crypto_mb.needed_libraries(patched)
    runtime = {"libsvml.so", "libirng.so", "libimf.so", "libintlc.so.5"}
    assert runtime <= set(before)
    assert after == ["libm.so.6" if lib in runtime else lib for lib in before]
    with pytest.raises(ValueError, match="not a 64-bit little-endian ELF"):
        crypto_mb.patch_needed(b"#!/bin/sh\n")


def test_a_missing_library_means_openssl(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PUHUI_CRYPTO_MB", str(tmp_path / "absent.so"))
    crypto_mb._load.cache_clear()
    x25519._resolve.cache_clear()
    try:
        assert crypto_mb.load() is None
        assert x25519.backend_name("auto") == "openssl"
        with pytest.raises(ValueError, match=r"cannot run here: cannot load .*absent\.so"):
            x25519.backend_name("crypto_mb")
    finally:
        monkeypatch.delenv("PUHUI_CRYPTO_MB")
        crypto_mb._load.cache_clear()
        x25519._resolve.cache_clear()
