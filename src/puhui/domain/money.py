"""Money in CNY as exact ``Decimal``, stored as integer fen (分).

Rounding is ROUND_HALF_UP to the fen, the convention of Chinese bank statements and of the
PBOC's own examples. No float ever touches an amount: a float is rejected on input because
``0.1 + 0.2`` is not ``0.3``.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from puhui.domain.errors import ValidationError

FEN = Decimal("0.01")
"""One fen, the smallest unit of CNY."""

ZERO = Decimal("0.00")

MAX_AMOUNT = Decimal("100000000000.00")
"""One hundred billion yuan: above any small-business loan, far inside BIGINT fen."""


def round_fen(value: Decimal) -> Decimal:
    """Round to the fen, half up (0.005 → 0.01)."""
    return value.quantize(FEN, rounding=ROUND_HALF_UP)


def to_fen(value: Decimal) -> int:
    """An amount in yuan as integer fen, rounding half up first."""
    return int(round_fen(value) * 100)


def from_fen(fen: int) -> Decimal:
    """Integer fen back to yuan with exactly two decimal places."""
    if isinstance(fen, bool) or not isinstance(fen, int):
        raise TypeError(f"fen must be an int, got {type(fen).__name__}")
    return (Decimal(fen) / 100).quantize(FEN)


def parse_amount(
    raw: object,
    field: str = "amount",
    *,
    allow_zero: bool = False,
    maximum: Decimal = MAX_AMOUNT,
) -> Decimal:
    """Parse a money amount from a decimal string, int or Decimal.

    Rules, each named in the error: ``money.type`` (no float, no bool), ``money.format``
    (a finite decimal number), ``money.precision`` (at most two decimal places — an amount
    with a fraction of a fen is a mistake to report, not to round silently),
    ``money.positive`` and ``money.maximum``.
    """
    if isinstance(raw, bool | float) or not isinstance(raw, str | int | Decimal):
        raise ValidationError.single(
            field, "money.type", "amount must be a decimal string or an integer, not a float"
        )
    try:
        value = Decimal(raw.strip()) if isinstance(raw, str) else Decimal(raw)
    except InvalidOperation:
        raise ValidationError.single(
            field, "money.format", f"{raw!r} is not a decimal number"
        ) from None
    if not value.is_finite():
        raise ValidationError.single(field, "money.format", "amount must be a finite number")
    exponent = value.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -2 and value != value.quantize(FEN):
        raise ValidationError.single(
            field, "money.precision", "amount has more than two decimal places (finer than a fen)"
        )
    if value < 0 or (value == 0 and not allow_zero):
        rule_text = "zero or more" if allow_zero else "more than zero"
        raise ValidationError.single(field, "money.positive", f"amount must be {rule_text}")
    if value > maximum:
        raise ValidationError.single(field, "money.maximum", f"amount must not exceed {maximum}")
    return value.quantize(FEN)


def format_cny(value: Decimal) -> str:
    """A human-readable amount: ``¥1,234,567.80``."""
    return f"¥{round_fen(value):,.2f}"
