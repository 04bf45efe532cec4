"""Paillier: round trips, the homomorphic operations, packing, wire checks and key-size refusal.

Most tests use a 1024-bit key (``insecure_for_tests``): correctness does not depend on the
size, and a 2048-bit key's tables take a second to build. One test uses a real 2048-bit key.
"""

from __future__ import annotations

import secrets

import numpy as np
import pytest

from puhui.federated.errors import FederatedError
from puhui.federated.paillier import (
    MIN_KEY_BITS,
    PrivateKey,
    PublicKey,
    generate_keypair,
    unpack,
)


@pytest.fixture(scope="module")
def key() -> PrivateKey:
    return generate_keypair(1024, insecure_for_tests=True)


VALUES = [0, 1, -1, 42, -42, 2**62, -(2**62), 2**200 + 7, -(2**200) - 7]


def test_round_trip_including_negatives(key: PrivateKey) -> None:
    assert key.decrypt_signed(key.encrypt(VALUES)) == VALUES
    assert key.decrypt_signed(key.encrypt_to_bytes(VALUES)) == VALUES
    n = key.public.n
    assert key.decrypt(key.encrypt(VALUES)) == [v % n for v in VALUES]


def test_public_key_encryption_decrypts_like_crt_encryption(key: PrivateKey) -> None:
    by_public = key.public.encrypt(VALUES)
    by_owner = key.encrypt(VALUES)
    assert key.decrypt_signed(by_public) == key.decrypt_signed(by_owner) == VALUES
    # both randomised: the same values never give the same ciphertexts twice
    assert by_public.to_bytes() != by_owner.to_bytes()
    assert key.encrypt(VALUES).to_bytes() != by_owner.to_bytes()


def test_parallel_encryption_matches(key: PrivateKey) -> None:
    values = [secrets.randbelow(2**64) - 2**63 for _ in range(2500)]
    assert key.decrypt_signed(key.encrypt_to_bytes(values, workers=2)) == values


def test_homomorphic_add_subtract_multiply(key: PrivateKey) -> None:
    pk = key.public
    a, b = [5, -7, 10**30, 0], [11, 3, -(10**30), -9]
    ca, cb = key.encrypt(a), key.encrypt(b)
    assert key.decrypt_signed(pk.add(ca, cb)) == [x + y for x, y in zip(a, b, strict=True)]
    assert key.decrypt_signed(pk.subtract(ca, cb)) == [x - y for x, y in zip(a, b, strict=True)]
    scalars = [3, -2, 0, 2**40]
    assert key.decrypt_signed(pk.multiply(ca, scalars)) == [
        x * k for x, k in zip(a, scalars, strict=True)
    ]
    assert key.decrypt_signed(pk.multiply(ca, [2, 2, 2, 2])) == [2 * x for x in a]


def test_group_products_are_sums_per_group(key: PrivateKey) -> None:
    values = [3, 4, -5, 6, 7]
    groups = np.array([0, 1, 0, -1, 1])
    sums = key.decrypt_signed(key.encrypt(values).group_products(groups, 3))
    assert sums == [3 - 5, 4 + 7, 0]


def test_shift_pack_and_unpack(key: PrivateKey) -> None:
    slot = 40
    values = [secrets.randbelow(2**slot) for _ in range(60)]
    packed = key.public.shift_pack(key.encrypt(values), slot)
    per = (key.public.bits - 1) // slot
    assert len(packed) == -(-len(values) // per)
    out: list[int] = []
    for k, plain in enumerate(key.decrypt(packed)):
        out += unpack(plain, slot, min(per, len(values) - k * per))
    assert out == values


def test_ciphertexts_refuse_unreduced_numbers(key: PrivateKey) -> None:
    pk = key.public
    good = key.encrypt_to_bytes([1, 2])
    assert key.decrypt(pk.ciphertexts(good)) == [1, 2]
    too_big = pk.nsq.to_bytes(pk.ciphertext_bytes, "big")  # n² itself is not reduced
    with pytest.raises(FederatedError, match="not reduced"):
        pk.ciphertexts(good + too_big)
    with pytest.raises(FederatedError, match="bytes long"):
        pk.ciphertexts(good[:-1])


def test_key_size_refused_below_2048_bits(key: PrivateKey) -> None:
    with pytest.raises(ValueError, match="at least 2048"):
        generate_keypair(1024)
    message = key.public.to_message()
    with pytest.raises(FederatedError, match="at least 2048 are required"):
        PublicKey.from_message(message)
    assert PublicKey.from_message(message, insecure_for_tests=True) == key.public


def test_malformed_public_keys_refused(key: PrivateKey) -> None:
    message = key.public.to_message()
    with pytest.raises(FederatedError, match="malformed"):
        PublicKey.from_message({"n": message["n"]}, insecure_for_tests=True)
    with pytest.raises(FederatedError, match="not a valid"):
        PublicKey.from_message({**message, "hs": 0}, insecure_for_tests=True)
    with pytest.raises(FederatedError, match="not a valid"):
        PublicKey.from_message({**message, "n": message["n"] + 1}, insecure_for_tests=True)


def test_a_real_2048_bit_key() -> None:
    key = generate_keypair()
    assert key.public.bits >= MIN_KEY_BITS
    assert key.public.ciphertext_bytes == 512
    assert key.decrypt_signed(key.encrypt([-3, 5])) == [-3, 5]
