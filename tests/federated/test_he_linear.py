"""Encrypted linear algebra: bucket multi-exponentiation against plain arithmetic, and masking."""

from __future__ import annotations

import numpy as np
import pytest

from puhui.federated import he_linear
from puhui.federated.paillier import PrivateKey, generate_keypair


@pytest.fixture(scope="module")
def key() -> PrivateKey:
    return generate_keypair(1024, insecure_for_tests=True)


def _plain_dot(matrix: np.ndarray, values: list[int]) -> list[int]:
    return [int(v) for v in matrix.astype(object).T @ np.array(values, dtype=object)]


@pytest.mark.parametrize(
    ("rows", "bits"), [(5, 20), (24, 3), (300, 1), (300, 12), (700, 23), (2000, 30)]
)
def test_multi_exponentiate_matches_plain_powers(rows: int, bits: int) -> None:
    modulus = generate_keypair(1024, insecure_for_tests=True).public.modulus()
    rng = np.random.default_rng(rows * 100 + bits)
    bases = [int(v) for v in rng.integers(2, 2**62, rows)]
    exponents = rng.integers(0, 2**bits, rows)
    exponents[: rows // 3] = 0  # zero digits are skipped, not multiplied
    expected = 1
    for b, e in zip(bases, exponents.tolist(), strict=True):
        expected = expected * pow(b, e, modulus.m) % modulus.m
    got = he_linear.multi_exponentiate(modulus.vector(bases), exponents).to_ints()
    assert got == [expected]


def test_window_choice_follows_the_cost() -> None:
    assert he_linear.choose_window(10, 20) == 0  # few bases: plain powers
    assert he_linear.choose_window(30_000, 23) >= 8  # many rows: wide windows pay off
    assert he_linear.choose_window(600, 16) < he_linear.choose_window(30_000, 16)


def test_encrypted_matvec_equals_the_integer_product(key: PrivateKey) -> None:
    rng = np.random.default_rng(3)
    rows = 600
    values = [int(v) for v in rng.integers(-(2**45), 2**45, rows)]
    matrix = np.column_stack(
        [
            rng.integers(-(2**20), 2**22, rows),  # signed: shifted, then corrected
            rng.integers(5, 2**16, rows),  # positive offset
            np.full(rows, 1 << 16),  # the intercept column: constant
            np.zeros(rows, dtype=np.int64),
            rng.integers(-3, 0, rows),  # all negative
        ]
    ).astype(np.int64)
    encrypted = key.encrypt(values)
    result = he_linear.encrypted_matvec(encrypted, matrix)
    assert key.decrypt_signed(result) == _plain_dot(matrix, values)


def test_add_plaintext(key: PrivateKey) -> None:
    encrypted = key.encrypt([10, -20, 0])
    added = he_linear.add_plaintext(key.public, encrypted, [5, 5, -(2**70)])
    assert key.decrypt_signed(added) == [15, -15, -(2**70)]


def test_mask_and_blind_hides_the_value_and_the_ciphertext(key: PrivateKey) -> None:
    pk = key.public
    secret_values = [123456789, -987654321, 0]
    encrypted = key.encrypt(secret_values)
    masked, masks = he_linear.mask_and_blind(pk, encrypted)
    opened = key.decrypt(masked)
    assert he_linear.unmask(pk, opened, masks) == secret_values
    assert all(v not in opened for v in secret_values)
    # the key owner sees a fresh ciphertext: not the input times a plaintext encoding
    plain_shift = he_linear.add_plaintext(pk, encrypted, masks)
    assert masked.to_bytes() != plain_shift.to_bytes()
    again, masks_again = he_linear.mask_and_blind(pk, encrypted)
    assert masks_again != masks and key.decrypt(again) != opened


def test_unmask_refuses_unreduced_values(key: PrivateKey) -> None:
    with pytest.raises(ValueError, match="not reduced"):
        he_linear.unmask(key.public, [key.public.n], [0])


def test_shape_errors(key: PrivateKey) -> None:
    encrypted = key.encrypt([1, 2])
    with pytest.raises(ValueError, match="one row per ciphertext"):
        he_linear.encrypted_matvec(encrypted, np.zeros((3, 1), dtype=np.int64))
    with pytest.raises(ValueError, match="non-negative"):
        he_linear.multi_exponentiate(encrypted, np.array([1, -1]))
    with pytest.raises(ValueError, match="one plaintext per ciphertext"):
        he_linear.add_plaintext(key.public, encrypted, [1])
