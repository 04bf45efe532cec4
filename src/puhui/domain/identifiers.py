"""Chinese identifiers: USCC (GB 32100), resident ID (GB 11643), mobile and bank card.

An application is only as good as the identifiers on it: a mistyped ID number sends a
credit-bureau query about someone else, and a mistyped card sends money to a stranger. So
every identifier is checked by its standard's own rules at the edge, normalised once, and
carried as a small frozen value with its parsed parts.

Each ``validate_*`` function raises :class:`~puhui.domain.errors.ValidationError` naming the
caller's field and a stable rule (``uscc.length``, ``gb11643.check_digit``, ...). Messages say
what is wrong in plain words but never repeat the identifier: it is personal data, and error
messages end up in logs.

Decisions (see also the docstrings below):

* **USCC check character.** Some real codes fail it (early Fujian pilot codes such as
  ``91350100M0001TGQXM``), so a code whose *only* defect is the final check character is
  returned flagged ``needs_registry_verification`` rather than rejected.
* **USCC embedded organisation code (GB 11714, positions 9-17).** On its own a mismatch is
  also a flag, not an error: the final check character (mod 31 over a 31-character set)
  catches every single-character substitution, so when it matches the code was very likely
  copied faithfully and a GB 11714 mismatch says more about how the code was assigned than
  about the input. When *both* checks fail the code is rejected (``uscc.checksum``): that is
  what a typo in positions 9-17 looks like.
* **Registering authority table** (positions 1-2): the GB 32100 table as commonly published
  with its later allocations — 1 机构编制, 2 外交, 3 司法行政, 4 文化, 5 民政, 6 旅游, 7 宗教,
  8 工会, 9 工商, A 中央军委改革和编制办公室, N 农业, Y 其他 — each with its organisation
  types (:data:`USCC_AUTHORITIES`). It was taken from public summaries, not re-read from the
  standard's text. A code outside the table is rejected; a newly allocated authority code
  must be added there.
* **15-digit resident IDs** (the pre-1999 form) are converted to 18 digits by inserting the
  century ``19`` and computing the check character — the same upgrade their holders' numbers
  went through — and flagged ``converted_from_15``, so there is one canonical form to match on.
  (Sequence codes 996-999 once marked centenarians born in the 1800s, for whom ``19`` is the
  wrong century; no borrower is affected.)
* **Resident ID address prefix**: a GB/T 2260 province code, including 71 (Taiwan) and the
  81/82/83 prefixes of the Hong Kong, Macao and Taiwan residents' residence permits; or 9
  followed by a mainland province code, the 2023 foreign permanent resident ID, which uses
  the same check. Only the province digits are checked, not the full six-digit county code.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from operator import mul
from typing import Literal

from puhui.domain.errors import ErrorCollector, ValidationError

__all__ = [
    "GB2260_PROVINCE_CODES",
    "USCC_AUTHORITIES",
    "USCC_CHARSET",
    "BankCard",
    "MobileNumber",
    "ResidentId",
    "SocialCreditCode",
    "id_check_char",
    "luhn_check_digit",
    "luhn_valid",
    "org_code_check_char",
    "uscc_check_char",
    "validate_bank_card",
    "validate_mobile",
    "validate_resident_id",
    "validate_uscc",
]

# --------------------------------------------------------------------------------------
# Shared tables
# --------------------------------------------------------------------------------------

GB2260_PROVINCE_CODES: dict[str, str] = {
    "11": "北京市",
    "12": "天津市",
    "13": "河北省",
    "14": "山西省",
    "15": "内蒙古自治区",
    "21": "辽宁省",
    "22": "吉林省",
    "23": "黑龙江省",
    "31": "上海市",
    "32": "江苏省",
    "33": "浙江省",
    "34": "安徽省",
    "35": "福建省",
    "36": "江西省",
    "37": "山东省",
    "41": "河南省",
    "42": "湖北省",
    "43": "湖南省",
    "44": "广东省",
    "45": "广西壮族自治区",
    "46": "海南省",
    "50": "重庆市",
    "51": "四川省",
    "52": "贵州省",
    "53": "云南省",
    "54": "西藏自治区",
    "61": "陕西省",
    "62": "甘肃省",
    "63": "青海省",
    "64": "宁夏回族自治区",
    "65": "新疆维吾尔自治区",
    "71": "台湾省",
    "81": "香港特别行政区",
    "82": "澳门特别行政区",
}
"""Province-level codes of GB/T 2260 (the first two digits of every division code)."""

_MAINLAND_PROVINCES = frozenset(c for c in GB2260_PROVINCE_CODES if c < "70")

# Address prefixes of the residence permits for Hong Kong, Macao and Taiwan residents
# (港澳台居民居住证, 2018): 810000, 820000 and 830000, checked like GB 11643 numbers.
_HMT_PERMIT_PREFIXES = frozenset({"81", "82", "83"})


def _china_today() -> date:
    """Today's business date in China (UTC+8 all year, no daylight saving)."""
    return datetime.now(timezone(timedelta(hours=8))).date()


def _type_error(field_name: str, rule: str, what: str) -> ValidationError:
    return ValidationError.single(field_name, rule, f"{what} must be given as text")


# --------------------------------------------------------------------------------------
# Unified social credit code, GB 32100-2015
# --------------------------------------------------------------------------------------

USCC_CHARSET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
"""The 31 characters of GB 32100 (no I, O, S, V, Z), in value order."""

_USCC_VALUES = {c: i for i, c in enumerate(USCC_CHARSET)}
_USCC_WEIGHTS = tuple(pow(3, i, 31) for i in range(17))

USCC_AUTHORITIES: dict[str, tuple[str, dict[str, str]]] = {
    "1": (
        "机构编制",
        {"1": "机关", "2": "事业单位", "3": "中央编办直接管理机构编制的群众团体", "9": "其他"},
    ),
    "2": ("外交", {"1": "外国常驻新闻机构", "9": "其他"}),
    "3": (
        "司法行政",
        {
            "1": "律师执业机构",
            "2": "公证处",
            "3": "基层法律服务所",
            "4": "司法鉴定机构",
            "5": "仲裁委员会",
            "9": "其他",
        },
    ),
    "4": ("文化", {"1": "外国在华文化中心", "9": "其他"}),
    "5": ("民政", {"1": "社会团体", "2": "民办非企业单位", "3": "基金会", "9": "其他"}),
    "6": (
        "旅游",
        {
            "1": "外国旅游部门常驻代表机构",
            "2": "港澳台地区旅游部门常驻内地(大陆)代表机构",
            "9": "其他",
        },
    ),
    "7": ("宗教", {"1": "宗教活动场所", "2": "宗教院校", "9": "其他"}),
    "8": ("工会", {"1": "基层工会", "9": "其他"}),
    "9": ("工商", {"1": "企业", "2": "个体工商户", "3": "农民专业合作社"}),
    "A": ("中央军委改革和编制办公室", {"1": "军队事业单位", "9": "其他"}),
    "N": (
        "农业",
        {"1": "组级集体经济组织", "2": "村级集体经济组织", "3": "乡镇级集体经济组织", "9": "其他"},
    ),
    "Y": ("其他", {"1": "不再具体划分机构类别"}),
}
"""Registering authority (position 1) → (name, {organisation type (position 2) → name})."""

_GB11714_WEIGHTS = (3, 7, 9, 10, 5, 8, 4, 2)


# GB 11714 values: digits, then the upper-case Latin letters A=10 ... Z=35.
_GB11714_VALUES = {c: int(c, 36) for c in "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"}


def org_code_check_char(first8: str) -> str:
    """The GB 11714 check character of an organisation code's first eight characters.

    ``11 - (sum of weighted values mod 11)``, with 10 written ``X`` and 11 written ``0``.
    """
    try:
        values = [_GB11714_VALUES[c] for c in first8.upper()]
    except KeyError:
        values = []
    if len(values) != 8:
        raise ValueError("an organisation code body is 8 digits or upper-case letters")
    check = 11 - sum(map(mul, _GB11714_WEIGHTS, values)) % 11
    return "X" if check == 10 else "0" if check == 11 else str(check)


def uscc_check_char(first17: str) -> str:
    """The GB 32100 check character (position 18) of a code's first 17 characters.

    Weights ``3^i mod 31``; ``c = 31 - (sum mod 31)`` with 31 written as 0, mapped back
    through :data:`USCC_CHARSET`.
    """
    try:
        values = [_USCC_VALUES[c] for c in first17]
    except KeyError:
        values = []
    if len(values) != 17:
        raise ValueError("a USCC body is 17 characters from the GB 32100 character set")
    return USCC_CHARSET[(31 - sum(map(mul, _USCC_WEIGHTS, values)) % 31) % 31]


@dataclass(frozen=True, slots=True)
class SocialCreditCode:
    """A structurally valid unified social credit code and its parts.

    ``needs_registry_verification`` is set when a check character does not match but the
    code may still be real; ``verification_reasons`` says which. Such a code must be
    confirmed against the registry (国家企业信用信息公示系统) before it is relied on.
    """

    value: str
    authority: str
    org_type: str
    division: str
    org_code: str
    check_char: str
    needs_registry_verification: bool = False
    verification_reasons: tuple[str, ...] = ()

    @property
    def authority_name(self) -> str:
        return USCC_AUTHORITIES[self.authority][0]

    @property
    def org_type_name(self) -> str:
        return USCC_AUTHORITIES[self.authority][1][self.org_type]

    @property
    def province_code(self) -> str:
        return self.division[:2]


def _valid_uscc_division(division: str) -> bool:
    if not division.isdigit():
        return False
    # 100000 (the whole country) is the division of centrally registered bodies.
    return division == "100000" or division[:2] in GB2260_PROVINCE_CODES


def validate_uscc(raw: str, field: str = "uscc") -> SocialCreditCode:
    """Validate a unified social credit code (统一社会信用代码, GB 32100-2015).

    Surrounding whitespace is dropped and letters are upper-cased. Rules: ``uscc.length``
    (18 characters), ``uscc.charset`` (GB 32100 set only), ``uscc.authority`` (position 1 a
    known registering authority), ``uscc.org_type`` (position 2 a type of that authority),
    ``uscc.division`` (positions 3-8 a GB/T 2260 division), ``uscc.checksum`` (both the
    embedded GB 11714 check and the final check fail). A code failing only one of the two
    checks is returned with ``needs_registry_verification=True``.
    """
    if not isinstance(raw, str):
        raise _type_error(field, "uscc.charset", "a unified social credit code")
    code = raw.strip().upper()
    if len(code) != 18:
        raise ValidationError.single(
            field, "uscc.length", f"a unified social credit code has 18 characters, not {len(code)}"
        )
    bad = [i + 1 for i, c in enumerate(code) if c not in _USCC_VALUES]
    if bad:
        where = ", ".join(str(p) for p in bad[:5])
        raise ValidationError.single(
            field,
            "uscc.charset",
            f"character(s) at position {where} are not allowed in a unified social credit code "
            "(digits and upper-case letters except I, O, S, V, Z)",
        )

    errors = ErrorCollector()
    authority, org_type, division = code[0], code[1], code[2:8]
    if authority not in USCC_AUTHORITIES:
        errors.add(field, "uscc.authority", "position 1 is not a known registering authority code")
    elif org_type not in USCC_AUTHORITIES[authority][1]:
        errors.add(
            field,
            "uscc.org_type",
            "position 2 is not an organisation type of the registering authority in position 1",
        )
    if not _valid_uscc_division(division):
        errors.add(
            field,
            "uscc.division",
            "positions 3-8 are not a GB/T 2260 administrative division code",
        )
    errors.raise_if_any()

    reasons: list[str] = []
    org_code = code[8:17]
    if org_code_check_char(org_code[:8]) != org_code[8]:
        reasons.append("the embedded organisation code (positions 9-17) fails its GB 11714 check")
    if uscc_check_char(code[:17]) != code[17]:
        reasons.append("the check character (position 18) does not match")
    if len(reasons) == 2:
        raise ValidationError.single(
            field,
            "uscc.checksum",
            "neither the check character nor the embedded organisation code check matches; "
            "the code is probably mistyped",
        )
    return SocialCreditCode(
        value=code,
        authority=authority,
        org_type=org_type,
        division=division,
        org_code=org_code,
        check_char=code[17],
        needs_registry_verification=bool(reasons),
        verification_reasons=tuple(reasons),
    )


# --------------------------------------------------------------------------------------
# Resident identity number, GB 11643-1999
# --------------------------------------------------------------------------------------

_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"
_EARLIEST_BIRTH = date(1900, 1, 1)

Holder = Literal["citizen", "hmt_resident", "foreign_permanent_resident"]


def id_check_char(first17: str) -> str:
    """The GB 11643 (ISO 7064 MOD 11-2) check character of the first 17 digits."""
    if len(first17) != 17 or not (first17.isascii() and first17.isdigit()):
        raise ValueError("an ID number body is 17 digits")
    # Weighted sum over the ASCII codes, less 48 ("0") times the sum of the weights (100).
    total = sum(map(mul, _ID_WEIGHTS, first17.encode("ascii"))) - 48 * 100
    return _ID_CHECK[total % 11]


@dataclass(frozen=True, slots=True)
class ResidentId:
    """A valid 18-character identity number and what it encodes.

    ``holder`` tells citizens' numbers (居民身份证) apart from the residence permits of Hong
    Kong, Macao and Taiwan residents (address 81/82/83) and the 2023 foreign permanent
    resident ID (first digit 9, then the issuing province), which share the algorithm.
    """

    value: str
    region_code: str
    birth_date: date
    sequence: str
    sex: Literal["M", "F"]
    holder: Holder = "citizen"
    converted_from_15: bool = False

    @property
    def province_code(self) -> str:
        return (
            self.region_code[1:3]
            if self.holder == "foreign_permanent_resident"
            else self.region_code[:2]
        )

    def age_on(self, day: date) -> int:
        """Completed years of age on ``day`` (see :func:`age_on`)."""
        return age_on(self.birth_date, day)


def age_on(birth_date: date, day: date) -> int:
    """Completed years of age on ``day`` (someone born on 29 February ages on 1 March)."""
    if day < birth_date:
        raise ValueError("day is before the birth date")
    had_birthday = (day.month, day.day) >= (birth_date.month, birth_date.day)
    return day.year - birth_date.year - (0 if had_birthday else 1)


def _id_holder(region: str) -> Holder | None:
    if region[0] == "9":
        return "foreign_permanent_resident" if region[1:3] in _MAINLAND_PROVINCES else None
    if region[:2] in _HMT_PERMIT_PREFIXES:
        return "hmt_resident"
    return "citizen" if region[:2] in GB2260_PROVINCE_CODES else None


def validate_resident_id(
    raw: str, field: str = "id_number", *, today: date | None = None
) -> ResidentId:
    """Validate a resident identity number (公民身份号码, GB 11643-1999).

    Spaces are dropped and a lower-case ``x`` check character is upper-cased. A legacy
    15-digit number is converted to 18 digits (century 19 inserted, check computed) and
    flagged ``converted_from_15``. Rules: ``gb11643.length`` (18 or 15 characters),
    ``gb11643.format`` (digits, last may be X), ``gb11643.region`` (a province-level
    address prefix), ``gb11643.birth_date`` (a real date from 1900 up to ``today``, which
    defaults to today's date in China), ``gb11643.check_digit``.
    """
    if not isinstance(raw, str):
        raise _type_error(field, "gb11643.format", "an ID number")
    number = "".join(raw.split()).upper()
    if len(number) not in (15, 18):
        raise ValidationError.single(
            field, "gb11643.length", f"an ID number has 18 digits (or 15 if old), not {len(number)}"
        )
    legacy = len(number) == 15
    body = number if legacy else number[:17]
    if not (body.isascii() and body.isdigit()) or not (legacy or number[17] in "0123456789X"):
        raise ValidationError.single(
            field,
            "gb11643.format",
            "an ID number is digits only, except that the last of 18 may be X",
        )
    if legacy:
        body = number[:6] + "19" + number[6:]

    errors = ErrorCollector()
    region = body[:6]
    holder = _id_holder(region)
    if holder is None:
        errors.add(field, "gb11643.region", "the first digits are not a valid province-level code")
    try:
        birth = date(int(body[6:10]), int(body[10:12]), int(body[12:14]))
    except ValueError:
        birth = None
        errors.add(field, "gb11643.birth_date", "digits 7-14 are not a real calendar date")
    if birth is not None:
        latest = today if today is not None else _china_today()
        if birth < _EARLIEST_BIRTH:
            errors.add(field, "gb11643.birth_date", "the birth date is before 1900")
        elif birth > latest:
            errors.add(field, "gb11643.birth_date", "the birth date is in the future")
    check = id_check_char(body)
    if not legacy and number[17] != check:
        errors.add(field, "gb11643.check_digit", "the check character (last) does not match")
    errors.raise_if_any()
    assert birth is not None and holder is not None  # raise_if_any guarantees both
    return ResidentId(
        value=body + check,
        region_code=region,
        birth_date=birth,
        sequence=body[14:17],
        sex="M" if int(body[16]) % 2 else "F",
        holder=holder,
        converted_from_15=legacy,
    )


# --------------------------------------------------------------------------------------
# Mainland mobile numbers
# --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MobileNumber:
    """A mainland mobile number as its 11 national digits."""

    value: str

    @property
    def e164(self) -> str:
        return "+86" + self.value


def validate_mobile(raw: str, field: str = "mobile") -> MobileNumber:
    """Validate a mainland mobile number: 11 digits, ``1`` then 3-9.

    Spaces and hyphens are dropped, as is a country prefix ``+86``, ``0086`` or a bare ``86``
    in front of 11 digits. One rule, ``mobile.format``.
    """
    if not isinstance(raw, str):
        raise _type_error(field, "mobile.format", "a mobile number")
    digits = "".join(raw.split()).replace("-", "")
    for prefix in ("+86", "0086"):
        if digits.startswith(prefix):
            digits = digits[len(prefix) :]
            break
    else:
        if len(digits) == 13 and digits.startswith("86"):
            digits = digits[2:]
    if not (digits.isascii() and digits.isdigit()) or len(digits) != 11:
        raise ValidationError.single(
            field, "mobile.format", "a mainland mobile number has 11 digits (after +86, if given)"
        )
    if digits[0] != "1" or digits[1] not in "3456789":
        raise ValidationError.single(
            field, "mobile.format", "a mainland mobile number starts with 1 and then 3-9"
        )
    return MobileNumber(digits)


# --------------------------------------------------------------------------------------
# Bank cards (Luhn)
# --------------------------------------------------------------------------------------


# A doubled digit's contribution, by ASCII code: 2d, less 9 when that is two digits.
_LUHN_DOUBLED = {48 + d: 2 * d if d < 5 else 2 * d - 9 for d in range(10)}


def _luhn_sum(digits: str, double_first: bool) -> int:
    """Luhn sum from the rightmost digit; ``double_first`` doubles that rightmost digit."""
    reverse = digits.encode("ascii")[::-1]
    doubled, plain = (
        (reverse[0::2], reverse[1::2]) if double_first else (reverse[1::2], reverse[0::2])
    )
    return sum(plain) - 48 * len(plain) + sum(map(_LUHN_DOUBLED.__getitem__, doubled))


def luhn_valid(digits: str) -> bool:
    """Whether a run of ASCII digits passes the Luhn (mod 10) check."""
    return _luhn_sum(digits, double_first=False) % 10 == 0


def luhn_check_digit(partial: str) -> str:
    """The Luhn (mod 10) digit that completes ``partial`` into a valid card number."""
    if not partial or not (partial.isascii() and partial.isdigit()):
        raise ValueError("a card number body is one or more digits")
    return str((10 - _luhn_sum(partial, double_first=True) % 10) % 10)


@dataclass(frozen=True, slots=True)
class BankCard:
    """A bank card number that passes Luhn; ``bin`` is its first six digits (issuer)."""

    value: str

    @property
    def bin(self) -> str:
        return self.value[:6]

    @property
    def last4(self) -> str:
        return self.value[-4:]


def validate_bank_card(raw: str, field: str = "bank_card") -> BankCard:
    """Validate a mainland debit card number: 16-19 digits passing Luhn.

    Spaces are dropped. Rules: ``bank_card.format`` (digits only), ``bank_card.length``,
    ``bank_card.luhn``. Passing Luhn says nothing about the account existing; that needs the
    four-element check through a bank channel.
    """
    if not isinstance(raw, str):
        raise _type_error(field, "bank_card.format", "a card number")
    number = "".join(raw.split())
    if not (number.isascii() and number.isdigit()):
        raise ValidationError.single(field, "bank_card.format", "a card number has digits only")
    if not 16 <= len(number) <= 19:
        raise ValidationError.single(
            field, "bank_card.length", f"a card number has 16 to 19 digits, not {len(number)}"
        )
    if not luhn_valid(number):
        raise ValidationError.single(
            field,
            "bank_card.luhn",
            "the card number fails its check digit (Luhn); check for a typo",
        )
    return BankCard(number)


# -- external references ---------------------------------------------------------------------

_REFERENCE = re.compile(r"[A-Za-z0-9_.:-]{1,64}")


def validate_reference(raw: object, field: str, rule: str) -> str:
    """A caller's own reference (application, payment, disbursement): the key that makes a
    retried request harmless. 1-64 characters of letters, digits and ``_ . : -`` — printable
    everywhere, safe in logs and URLs, identical in every database collation."""
    if not isinstance(raw, str) or not _REFERENCE.fullmatch(raw.strip()):
        raise ValidationError.single(
            field, rule, "must be 1-64 characters: letters, digits and _ . : -"
        )
    return raw.strip()
