"""Known valid and invalid identifiers, one or more per rule, with field and rule names."""

from __future__ import annotations

from datetime import date

import pytest

from puhui.domain.errors import ErrorCollector, ValidationError
from puhui.domain.identifiers import (
    USCC_AUTHORITIES,
    id_check_char,
    luhn_check_digit,
    org_code_check_char,
    uscc_check_char,
    validate_bank_card,
    validate_mobile,
    validate_resident_id,
    validate_uscc,
)

TODAY = date(2025, 6, 1)


def rule_of(exc: pytest.ExceptionInfo[ValidationError]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    return exc.value.fields, exc.value.rules


def make_uscc(prefix: str, division: str, org8: str) -> str:
    body = prefix + division + org8 + org_code_check_char(org8)
    return body + uscc_check_char(body)


# ----------------------------------------------------------------------------- USCC


@pytest.mark.parametrize("code", ["91350100M000100Y43", "91110108551385082Q", "91110000600037341L"])
def test_uscc_known_valid(code: str) -> None:
    result = validate_uscc(code)
    assert result.value == code
    assert not result.needs_registry_verification
    assert result.verification_reasons == ()
    assert result.authority == "9" and result.org_type == "1"
    assert result.authority_name == "工商" and result.org_type_name == "企业"


def test_uscc_parts() -> None:
    result = validate_uscc("91110108551385082Q")
    assert result.division == "110108"
    assert result.province_code == "11"
    assert result.org_code == "551385082"
    assert result.check_char == "Q"


def test_uscc_normalises_case_and_whitespace() -> None:
    assert validate_uscc("  91350100m000100y43\n").value == "91350100M000100Y43"


def test_uscc_codes_starting_with_letters_are_accepted() -> None:
    # python-stdnum rejects these; GB 32100 allows letters in positions 1-2.
    for prefix in ("Y1", "A1", "N2"):
        code = make_uscc(prefix, "440300", "MA5FXK7W")
        result = validate_uscc(code)
        assert result.value == code and not result.needs_registry_verification


def test_uscc_central_division_100000() -> None:
    code = make_uscc("12", "100000", "40000017")
    assert validate_uscc(code).division == "100000"


def test_uscc_fujian_pilot_code_is_flagged_not_rejected() -> None:
    result = validate_uscc("91350100M0001TGQXM")
    assert result.needs_registry_verification
    assert any("position 18" in r for r in result.verification_reasons)


def test_uscc_org_code_mismatch_alone_is_flagged() -> None:
    body = "91110108" + "55138508" + "7"  # wrong GB 11714 check (should be 2)
    code = body + uscc_check_char(body)
    result = validate_uscc(code)
    assert result.needs_registry_verification
    assert any("GB 11714" in r for r in result.verification_reasons)


@pytest.mark.parametrize(
    ("code", "rule"),
    [
        ("91350100M000100Y4", "uscc.length"),
        ("91350100M000100Y433", "uscc.length"),
        ("", "uscc.length"),
        ("91350100M000100I43", "uscc.charset"),  # I is not used
        ("91350100M0001O0Y43", "uscc.charset"),  # O is not used
        ("91350100M000100Z43", "uscc.charset"),  # Z is not used
        ("91350100M000100Y4-", "uscc.charset"),
        ("B1350100M000100Y43", "uscc.authority"),
        ("94350100M000100Y43", "uscc.org_type"),  # 工商 has types 1-3 only
        ("Y2350100M000100Y43", "uscc.org_type"),  # 其他 uses type 1 only
        ("9100A100M000100Y43", "uscc.division"),
        ("91990100M000100Y43", "uscc.division"),  # 99 is no province
        ("91350100M000200Y43", "uscc.checksum"),  # typo inside the organisation code
    ],
)
def test_uscc_invalid(code: str, rule: str) -> None:
    with pytest.raises(ValidationError) as exc:
        validate_uscc(code, field="enterprise.uscc")
    assert exc.value.fields == ("enterprise.uscc",)
    assert exc.value.rules == (rule,)
    if code:
        assert code not in str(exc.value)


def test_uscc_structural_errors_are_collected_together() -> None:
    with pytest.raises(ValidationError) as exc:
        validate_uscc("B1990100M000100Y43")
    assert set(exc.value.rules) == {"uscc.authority", "uscc.division"}
    assert set(exc.value.fields) == {"uscc"}


def test_uscc_rejects_non_text() -> None:
    with pytest.raises(ValidationError) as exc:
        validate_uscc(91350100)  # type: ignore[arg-type]
    assert exc.value.rules == ("uscc.charset",)


def test_uscc_check_char() -> None:
    assert uscc_check_char("91350100M000100Y4") == "3"
    assert uscc_check_char("91110108551385082") == "Q"
    with pytest.raises(ValueError):
        uscc_check_char("9135010")
    with pytest.raises(ValueError):
        uscc_check_char("91350100M000100I4")


def test_org_code_check_char() -> None:
    assert org_code_check_char("M000100Y") == "4"
    assert org_code_check_char("55138508") == "2"
    assert org_code_check_char("M0001TGQ") == "X"  # 10 is written X
    with pytest.raises(ValueError):
        org_code_check_char("1234")


def test_authority_table_covers_the_standard() -> None:
    assert set(USCC_AUTHORITIES) == set("123456789ANY")
    assert set(USCC_AUTHORITIES["1"][1]) == {"1", "2", "3", "9"}
    assert set(USCC_AUTHORITIES["5"][1]) == {"1", "2", "3", "9"}
    assert set(USCC_AUTHORITIES["9"][1]) == {"1", "2", "3"}
    assert set(USCC_AUTHORITIES["Y"][1]) == {"1"}


# ----------------------------------------------------------------------------- resident ID


def test_id_standard_example() -> None:
    result = validate_resident_id("11010519491231002X", today=TODAY)
    assert result.value == "11010519491231002X"
    assert result.region_code == "110105"
    assert result.province_code == "11"
    assert result.birth_date == date(1949, 12, 31)
    assert result.sequence == "002"
    assert result.sex == "F"
    assert result.holder == "citizen"
    assert not result.converted_from_15


def test_id_lower_case_x_and_spaces_are_normalised() -> None:
    assert validate_resident_id("110105 19491231 002x", today=TODAY).value == "11010519491231002X"


def test_id_male_from_odd_sequence() -> None:
    body = "44030519900101001"
    result = validate_resident_id(body + id_check_char(body), today=TODAY)
    assert result.sex == "M"


def test_id_age_on() -> None:
    result = validate_resident_id("11010519491231002X", today=TODAY)
    assert result.age_on(date(2019, 12, 30)) == 69
    assert result.age_on(date(2019, 12, 31)) == 70
    with pytest.raises(ValueError):
        result.age_on(date(1949, 1, 1))


def test_id_leap_day_birthday() -> None:
    body = "31010419880229003"
    result = validate_resident_id(body + id_check_char(body), today=TODAY)
    assert result.age_on(date(2006, 2, 28)) == 17
    assert result.age_on(date(2006, 3, 1)) == 18


def test_id_legacy_15_digits_converted() -> None:
    result = validate_resident_id("110105491231002", today=TODAY)
    assert result.value == "11010519491231002X"
    assert result.converted_from_15
    assert result.birth_date == date(1949, 12, 31)


def test_id_permit_and_foreign_permanent_resident_prefixes() -> None:
    for body, holder, province in [
        ("81000019900101001", "hmt_resident", "81"),
        ("83000019900101002", "hmt_resident", "83"),
        ("91115619800101001", "foreign_permanent_resident", "11"),
    ]:
        result = validate_resident_id(body + id_check_char(body), today=TODAY)
        assert result.holder == holder
        assert result.province_code == province


def test_id_birth_date_today_is_allowed() -> None:
    body = "110105" + TODAY.strftime("%Y%m%d") + "001"
    assert validate_resident_id(body + id_check_char(body), today=TODAY).birth_date == TODAY


def _with_check(body: str) -> str:
    return body + id_check_char(body)


@pytest.mark.parametrize(
    ("number", "rule"),
    [
        ("11010519491231002", "gb11643.length"),
        ("11010519491231002XX", "gb11643.length"),
        ("1101051949123100", "gb11643.length"),
        ("1101051949123100AX", "gb11643.format"),
        ("11010519491231002Y", "gb11643.format"),
        ("11010549123100X", "gb11643.format"),  # 15-digit numbers have no check char
        ("11010519491231002１", "gb11643.format"),  # full-width digit
        (_with_check("00010519491231002"), "gb11643.region"),
        (_with_check("99010519491231002"), "gb11643.region"),
        (_with_check("91990019800101001"), "gb11643.region"),  # 9 + no province
        (_with_check("11010519490230002"), "gb11643.birth_date"),  # 30 February
        (_with_check("11010519491301002"), "gb11643.birth_date"),  # month 13
        (_with_check("11010518991231002"), "gb11643.birth_date"),  # before 1900
        (_with_check("11010520250602002"), "gb11643.birth_date"),  # after TODAY
        ("110105194912310021", "gb11643.check_digit"),
        ("11010519491231003X", "gb11643.check_digit"),
    ],
)
def test_id_invalid(number: str, rule: str) -> None:
    with pytest.raises(ValidationError) as exc:
        validate_resident_id(number, field="legal_representative.id_number", today=TODAY)
    assert exc.value.fields == ("legal_representative.id_number",)
    assert exc.value.rules == (rule,)
    assert number not in str(exc.value)
    assert number[:14] not in str(exc.value)


def test_id_several_errors_at_once() -> None:
    # bad region, impossible date and wrong check character
    with pytest.raises(ValidationError) as exc:
        validate_resident_id("990105194902300020", today=TODAY)
    assert exc.value.rules == ("gb11643.region", "gb11643.birth_date", "gb11643.check_digit")
    assert exc.value.fields == ("id_number",) * 3


def test_id_default_today_rejects_far_future() -> None:
    with pytest.raises(ValidationError) as exc:
        validate_resident_id(_with_check("11010530000101002"))
    assert exc.value.rules == ("gb11643.birth_date",)


def test_id_check_char() -> None:
    assert id_check_char("11010519491231002") == "X"
    with pytest.raises(ValueError):
        id_check_char("1101051949123100")


def test_errors_nest_under_a_collector() -> None:
    errors = ErrorCollector()
    with errors.checking("legal_representative"):
        validate_resident_id("110105194912310021", today=TODAY)
    with errors.checking("legal_representative"):
        validate_mobile("12345")
    assert [(e.field, e.rule) for e in errors.errors] == [
        ("legal_representative.id_number", "gb11643.check_digit"),
        ("legal_representative.mobile", "mobile.format"),
    ]


# ----------------------------------------------------------------------------- mobile


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("13800138000", "13800138000"),
        ("+8613800138000", "13800138000"),
        ("+86 138 0013 8000", "13800138000"),
        ("0086-138-0013-8000", "13800138000"),
        ("8619912345678", "19912345678"),
        (" 166 1234 5678 ", "16612345678"),
    ],
)
def test_mobile_valid(raw: str, expected: str) -> None:
    result = validate_mobile(raw)
    assert result.value == expected
    assert result.e164 == "+86" + expected


@pytest.mark.parametrize(
    "raw",
    [
        "1380013800",  # 10 digits
        "138001380001",  # 12 digits
        "12800138000",  # second digit 2
        "10800138000",
        "23800138000",  # does not start with 1
        "+85213800138000",  # not a mainland prefix
        "1380013800a",
        "",
        "138.0013.8000",
    ],
)
def test_mobile_invalid(raw: str) -> None:
    with pytest.raises(ValidationError) as exc:
        validate_mobile(raw, field="contact_mobile")
    assert exc.value.fields == ("contact_mobile",)
    assert exc.value.rules == ("mobile.format",)
    if raw:
        assert raw not in str(exc.value)


# ----------------------------------------------------------------------------- bank card


def test_luhn_check_digit() -> None:
    assert luhn_check_digit("7992739871") == "3"  # the textbook example
    card = "622848001234567890"
    full = card + luhn_check_digit(card)
    assert validate_bank_card(full).value == full
    with pytest.raises(ValueError):
        luhn_check_digit("")
    with pytest.raises(ValueError):
        luhn_check_digit("12a")


@pytest.mark.parametrize(
    "raw", ["4111111111111111", "6222 0200 0000 0000 005", "79927398713000000"]
)
def test_bank_card_valid(raw: str) -> None:
    body = "".join(raw.split())[:-1]
    number = body + luhn_check_digit(body)
    result = validate_bank_card(" ".join([number[:4], number[4:]]))
    assert result.value == number
    assert result.bin == number[:6]
    assert result.last4 == number[-4:]


@pytest.mark.parametrize(
    ("raw", "rule"),
    [
        ("4111111111111112", "bank_card.luhn"),
        ("6222020000000000006", "bank_card.luhn"),
        ("411111111111111", "bank_card.length"),  # 15 digits
        ("41111111111111111111", "bank_card.length"),  # 20 digits
        ("4111-1111-1111-1111", "bank_card.format"),
        ("", "bank_card.format"),
    ],
)
def test_bank_card_invalid(raw: str, rule: str) -> None:
    with pytest.raises(ValidationError) as exc:
        validate_bank_card(raw, field="disbursement.card")
    assert exc.value.fields == ("disbursement.card",)
    assert exc.value.rules == (rule,)
    if raw:
        assert raw not in str(exc.value)
