"""Base pieces for request and response bodies of the open API.

* :class:`StrictModel` rejects unknown fields (``extra="forbid"``): a misspelt field in a
  partner's request is an error it hears about, not a value silently dropped — on a lending
  API a dropped ``guarantor`` or ``term_months`` is a wrong loan. Surrounding whitespace in
  strings is stripped.
* :data:`DecimalString` is an amount as a JSON *string* (``"1234.50"``): a JSON number is
  a binary float in most partner languages, and ``0.1 + 0.2`` is not ``0.3``. It accepts only
  plain decimal notation with at most two places (a fen), becomes a ``Decimal``, and is
  written back as a string.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    PlainSerializer,
    PlainValidator,
    WithJsonSchema,
    field_validator,
)
from pydantic_core import PydanticCustomError

DECIMAL_PATTERN = r"^-?(0|[1-9][0-9]{0,14})(\.[0-9]{1,2})?$"
"""Plain notation, optional minus, no leading zeros, no exponent, at most two places."""

_DECIMAL = re.compile(DECIMAL_PATTERN)


class ResponseModel(BaseModel):
    """Base of a response body: the same schema rules as :class:`StrictModel` (no unknown
    fields, stripped strings) without its NUL check.

    A response is built from values already checked on their way in, and the check walks
    every string of nested lists and dicts — an offer's schedule is a few hundred of them —
    on each response the hot path sends."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class StrictModel(BaseModel):
    """Base of every API request body (and of responses not on a hot path): unknown fields
    are an error, strings are stripped, and text must not contain NUL."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    @field_validator("*", mode="after")
    @classmethod
    def _no_nul(cls, value: Any) -> Any:
        # PostgreSQL text cannot hold U+0000: refuse it here (422), not in the database (500).
        if contains_nul(value):
            raise PydanticCustomError("string_nul", "text must not contain NUL (U+0000)")
        return value


def contains_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, list | tuple | set | frozenset):
        return any(contains_nul(v) for v in value)
    if isinstance(value, dict):
        return any(contains_nul(k) or contains_nul(v) for k, v in value.items())
    return False


def parse_decimal_string(value: Any) -> Decimal:
    """A ``Decimal`` from a decimal string; a ``Decimal`` made in code passes unchanged.

    Numbers (int, float, bool) are refused even when exact, so a partner learns on the first
    request that amounts are strings rather than when a float finally rounds wrong.
    """
    if isinstance(value, Decimal):
        if not value.is_finite() or not _DECIMAL.fullmatch(format(value, "f")):
            raise PydanticCustomError(
                "decimal_string", "amount must be finite with at most two decimal places"
            )
        return value
    if not isinstance(value, str):
        raise PydanticCustomError(
            "decimal_string", 'amounts are decimal strings, e.g. "1234.50", not JSON numbers'
        )
    if not _DECIMAL.fullmatch(value):
        raise PydanticCustomError(
            "decimal_string",
            'amount must be a decimal string with at most two decimal places, e.g. "1234.50"',
        )
    return Decimal(value)


def format_decimal(value: Decimal) -> str:
    return format(value, "f")


DecimalString = Annotated[
    Decimal,
    PlainValidator(parse_decimal_string),
    PlainSerializer(format_decimal, return_type=str, when_used="json"),
    WithJsonSchema(
        {"type": "string", "pattern": DECIMAL_PATTERN, "examples": ["1234.50"]},
        mode="validation",
    ),
    WithJsonSchema({"type": "string", "examples": ["1234.50"]}, mode="serialization"),
]
"""An amount in yuan: a JSON string such as ``"1234.50"`` in and out, a ``Decimal`` in code."""
