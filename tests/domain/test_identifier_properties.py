"""Properties of the identifier checks, explored with hypothesis.

A body with its computed check character always validates; any single-character change of a
valid identifier is caught (for a USCC at least flagged for registry verification, since a
pilot code may legitimately fail its check); normalising twice changes nothing.
"""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from puhui.domain.errors import ValidationError
from puhui.domain.identifiers import (
    GB2260_PROVINCE_CODES,
    USCC_AUTHORITIES,
    USCC_CHARSET,
    id_check_char,
    luhn_check_digit,
    org_code_check_char,
    uscc_check_char,
    validate_bank_card,
    validate_mobile,
    validate_resident_id,
    validate_uscc,
)

FAST = settings(max_examples=200, deadline=None)
TODAY = date(2025, 6, 1)

PROVINCES = sorted(GB2260_PROVINCE_CODES)
AUTHORITY_TYPES = sorted((a, t) for a, (_, types) in USCC_AUTHORITIES.items() for t in types)
DIGITS = "0123456789"


@st.composite
def uscc_bodies(draw: st.DrawFn) -> str:
    """17 characters that satisfy every structural rule, embedded org code check included."""
    authority, org_type = draw(st.sampled_from(AUTHORITY_TYPES))
    division = draw(st.sampled_from(PROVINCES)) + draw(st.text(DIGITS, min_size=4, max_size=4))
    org8 = draw(st.text(USCC_CHARSET, min_size=8, max_size=8))
    return authority + org_type + division + org8 + org_code_check_char(org8)


@st.composite
def uscc_codes(draw: st.DrawFn) -> str:
    body = draw(uscc_bodies())
    return body + uscc_check_char(body)


@st.composite
def id_numbers(draw: st.DrawFn) -> str:
    region = draw(st.sampled_from(PROVINCES)) + draw(st.text(DIGITS, min_size=4, max_size=4))
    birth = draw(st.dates(min_value=date(1900, 1, 1), max_value=TODAY))
    body = region + birth.strftime("%Y%m%d") + draw(st.text(DIGITS, min_size=3, max_size=3))
    return body + id_check_char(body)


@st.composite
def card_numbers(draw: st.DrawFn) -> str:
    body = draw(st.text(DIGITS, min_size=15, max_size=18))
    return body + luhn_check_digit(body)


mobiles = st.builds(
    lambda second, rest: "1" + second + rest,
    st.sampled_from("3456789"),
    st.text(DIGITS, min_size=9, max_size=9),
)


def _single_changes(value: str, alphabet: str, data: st.DataObject) -> str:
    position = data.draw(st.integers(0, len(value) - 1), label="position")
    replacement = data.draw(
        st.sampled_from([c for c in alphabet if c != value[position]]), label="replacement"
    )
    return value[:position] + replacement + value[position + 1 :]


# ----------------------------------------------------------------------------- USCC


@FAST
@given(uscc_codes())
def test_uscc_body_with_computed_check_validates(code: str) -> None:
    result = validate_uscc(code)
    assert result.value == code
    assert not result.needs_registry_verification


@FAST
@given(st.text(USCC_CHARSET, min_size=17, max_size=17))
def test_uscc_any_body_with_computed_check_never_fails_the_final_check(body: str) -> None:
    try:
        result = validate_uscc(body + uscc_check_char(body))
    except ValidationError as exc:
        assert "uscc.checksum" not in exc.rules
    else:
        assert not any("position 18" in r for r in result.verification_reasons)


@FAST
@given(uscc_codes(), st.data())
def test_uscc_single_change_is_rejected_or_flagged(code: str, data: st.DataObject) -> None:
    changed = _single_changes(code, USCC_CHARSET, data)
    try:
        result = validate_uscc(changed)
    except ValidationError:
        return
    assert result.needs_registry_verification


@FAST
@given(uscc_codes(), st.sampled_from(["", " ", "\t"]), st.booleans())
def test_uscc_normalisation_idempotent(code: str, pad: str, lower: bool) -> None:
    once = validate_uscc(pad + (code.lower() if lower else code) + pad).value
    assert once == code
    assert validate_uscc(once).value == once


# ----------------------------------------------------------------------------- resident ID


@FAST
@given(id_numbers())
def test_id_body_with_computed_check_validates(number: str) -> None:
    result = validate_resident_id(number, today=TODAY)
    assert result.value == number
    assert result.birth_date.strftime("%Y%m%d") == number[6:14]
    assert result.sex == ("M" if int(number[16]) % 2 else "F")


@FAST
@given(id_numbers(), st.data())
def test_id_single_change_is_rejected(number: str, data: st.DataObject) -> None:
    changed = _single_changes(number, DIGITS + "X", data)
    with pytest.raises(ValidationError):
        validate_resident_id(changed, today=TODAY)


@FAST
@given(id_numbers())
def test_id_normalisation_idempotent(number: str) -> None:
    once = validate_resident_id(number.lower(), today=TODAY).value
    assert validate_resident_id(once, today=TODAY).value == once == number


@FAST
@given(id_numbers().filter(lambda n: "1900" <= n[6:10] <= "1999"))
def test_id_legacy_form_converts_back(number: str) -> None:
    legacy = number[:6] + number[8:17]
    result = validate_resident_id(legacy, today=TODAY)
    assert result.value == number
    assert result.converted_from_15


# ----------------------------------------------------------------------------- bank card


@FAST
@given(card_numbers())
def test_card_body_with_computed_check_validates(number: str) -> None:
    assert validate_bank_card(number).value == number


@FAST
@given(card_numbers(), st.data())
def test_card_single_change_is_rejected(number: str, data: st.DataObject) -> None:
    changed = _single_changes(number, DIGITS, data)
    with pytest.raises(ValidationError) as exc:
        validate_bank_card(changed)
    assert exc.value.rules == ("bank_card.luhn",)


@FAST
@given(card_numbers(), st.integers(1, 5))
def test_card_normalisation_idempotent(number: str, group: int) -> None:
    spaced = " ".join(number[i : i + group] for i in range(0, len(number), group))
    once = validate_bank_card(spaced).value
    assert validate_bank_card(once).value == once == number


# ----------------------------------------------------------------------------- mobile


@FAST
@given(mobiles, st.sampled_from(["", "+86", "0086", "86", "+86 "]), st.booleans())
def test_mobile_normalisation_idempotent(mobile: str, prefix: str, hyphens: bool) -> None:
    shown = f"{mobile[:3]}-{mobile[3:7]}-{mobile[7:]}" if hyphens else mobile
    once = validate_mobile(prefix + shown).value
    assert validate_mobile(once).value == once == mobile
