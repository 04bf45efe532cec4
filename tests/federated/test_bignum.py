"""The fixed-base table: exponentiation by digit rows equals Python's ``pow``, and the random
exponents it draws cover ``[0, 2^bits)`` and nothing more."""

from __future__ import annotations

import secrets

import numpy as np
import pytest

from puhui.federated.bignum import FixedBase, Modulus

MODULUS = (2**521 - 1) * (2**127 - 1)  # odd, composite like a Paillier n²: any odd m works
BASE = 0x1234_5678_9ABC_DEF0_1122_3344_5566_7788


@pytest.fixture(scope="module")
def table() -> FixedBase:
    return FixedBase(Modulus(MODULUS), BASE, max_bits=70, window=8)


def test_pow_digits_equals_python_pow(table: FixedBase) -> None:
    exponents = [0, 1, 2, 255, 256, 2**70 - 1, *(secrets.randbits(70) for _ in range(50))]
    assert table.pow_digits(table.digits(exponents)).to_ints() == [
        pow(BASE, e, MODULUS) for e in exponents
    ]


def test_exponents_outside_the_table_are_refused(table: FixedBase) -> None:
    with pytest.raises(ValueError, match="outside"):
        table.digits([2**70])
    with pytest.raises(ValueError, match="outside"):
        table.digits([-1])
    with pytest.raises(ValueError, match="digits"):
        table.pow_digits(np.zeros((3, 2), dtype=np.int64))
    bad = np.zeros((2, 9), dtype=np.int64)
    bad[1, 4] = -1  # numpy would read it as the last table entry, silently
    with pytest.raises(ValueError, match=r"\[0, 2\^8\)"):
        table.pow_digits(bad)
    bad[1, 4] = 256
    with pytest.raises(ValueError, match=r"\[0, 2\^8\)"):
        table.pow_digits(bad)


def test_random_digits_are_exponents_below_the_bound(table: FixedBase) -> None:
    digits = table.random_digits(4000)
    assert digits.shape == (4000, 9)  # ceil(70 / 8)
    assert digits.min() >= 0 and digits.max() < 256
    assert digits[:, -1].max() < 2**6  # 70 = 8 * 8 + 6: the top digit holds six bits
    # every digit value of a full digit shows up: the draw is not stuck or biased to a range
    assert len(np.unique(digits[:, 0])) == 256
    exponents = [sum(int(d) << (8 * k) for k, d in enumerate(row)) for row in digits[:20]]
    assert table.pow_digits(digits[:20]).to_ints() == [pow(BASE, e, MODULUS) for e in exponents]
