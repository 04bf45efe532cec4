"""Validating a loan application as submitted, before anything is written.

``validate_submission`` turns raw input (a JSON-like mapping from the API, a partner file or
the simulator) into a fully checked ``Submission`` — or raises one ``ValidationError`` listing
every field error, each with its field path and rule. Nothing in here touches the database.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from puhui.domain.clock import business_date, now_utc, require_aware
from puhui.domain.errors import ErrorCollector, ValidationError
from puhui.domain.identifiers import (
    GB2260_PROVINCE_CODES,
    BankCard,
    MobileNumber,
    ResidentId,
    SocialCreditCode,
    validate_bank_card,
    validate_mobile,
    validate_reference,
    validate_resident_id,
    validate_uscc,
)
from puhui.domain.money import parse_amount
from puhui.domain.schedule import RepaymentMethod
from puhui.privacy.consent import CHANNELS, ConsentGrant, parse_grant

TAX_GRADES = ("A", "B", "M", "C", "D")
"""State Taxation Administration credit grades, best to worst (M: new or small, unrated)."""

MIN_AMOUNT = Decimal("1000.00")
MAX_AMOUNT = Decimal("10000000.00")
"""Platform bounds for one small-business loan; products narrow them further."""

MIN_TERM, MAX_TERM = 1, 360
ADULT_AGE = 18

_INDUSTRY = re.compile(r"^[A-T](\d{2}(\d{1,2})?)?$")


@dataclass(frozen=True)
class EnterpriseInput:
    name: str
    uscc: SocialCreditCode
    industry_code: str
    division_code: str
    registered_on: date
    annual_revenue: Decimal
    tax_grade: str
    employees: int | None


@dataclass(frozen=True)
class PersonInput:
    name: str
    id_number: ResidentId
    mobile: MobileNumber
    bank_account: BankCard
    address: str


@dataclass(frozen=True)
class Submission:
    institution_code: str
    external_ref: str
    enterprise: EnterpriseInput
    legal_representative: PersonInput
    amount: Decimal
    term_months: int
    repayment_method: RepaymentMethod
    purpose: str
    channel: str
    device_id: str | None
    ip: str | None
    consents: tuple[ConsentGrant, ...]
    submitted_at: datetime

    @property
    def business_date(self) -> date:
        return business_date(self.submitted_at)


def _text(
    raw: Mapping[str, Any],
    key: str,
    field: str,
    errors: ErrorCollector,
    *,
    rule: str,
    lo: int,
    hi: int,
    required: bool = True,
) -> str | None:
    value = raw.get(key)
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            errors.add(field, "required", "is required")
        return None
    if not isinstance(value, str):
        errors.add(field, "type.string", "must be a string")
        return None
    value = " ".join(value.split())
    if not lo <= len(value) <= hi:
        errors.add(field, rule, f"must be {lo}-{hi} characters")
        return None
    return value


def _section(raw: Mapping[str, Any], key: str, errors: ErrorCollector) -> Mapping[str, Any]:
    value = raw.get(key)
    if not isinstance(value, Mapping):
        errors.add(key, "required", "is required (an object)")
        return {}
    return value


def _date(value: object, field: str, errors: ErrorCollector) -> date | None:
    if isinstance(value, datetime):
        errors.add(field, "date.format", "must be a date (YYYY-MM-DD), not a date and time")
        return None
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    errors.add(field, "date.format", "must be a date (YYYY-MM-DD)")
    return None


def _int(
    value: object, field: str, errors: ErrorCollector, lo: int, hi: int, rule: str
) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int):
        errors.add(field, "type.integer", "must be a whole number")
        return None
    if not lo <= value <= hi:
        errors.add(field, rule, f"must be between {lo} and {hi}")
        return None
    return value


def _enterprise(
    raw: Mapping[str, Any], today: date, errors: ErrorCollector
) -> EnterpriseInput | None:
    p = "enterprise"
    start = len(errors.errors)
    name = _text(raw, "name", f"{p}.name", errors, rule="enterprise.name", lo=2, hi=200)
    uscc = None
    with errors.checking():
        uscc = validate_uscc(_str(raw.get("uscc")), field=f"{p}.uscc")
    industry = raw.get("industry_code")
    if not isinstance(industry, str) or not _INDUSTRY.match(industry):
        errors.add(
            f"{p}.industry_code",
            "gb4754.format",
            "must be a GB/T 4754 code: a section letter A-T, optionally 2-4 digits",
        )
    province = raw.get("division_code")
    if (
        not isinstance(province, str)
        or len(province) != 6
        or not province.isdigit()
        or province[:2] not in GB2260_PROVINCE_CODES
    ):
        errors.add(
            f"{p}.division_code",
            "gb2260.division",
            "must be a 6-digit GB/T 2260 administrative division code",
        )
    registered = _date(raw.get("registered_on"), f"{p}.registered_on", errors)
    if registered is not None and registered > today:
        errors.add(
            f"{p}.registered_on",
            "enterprise.registered_in_past",
            "registration date cannot be in the future",
        )
        registered = None
    revenue = None
    with errors.checking():
        revenue = parse_amount(raw.get("annual_revenue"), f"{p}.annual_revenue", allow_zero=True)
    grade = raw.get("tax_grade")
    if grade not in TAX_GRADES:
        errors.add(f"{p}.tax_grade", "tax.grade", f"must be one of {', '.join(TAX_GRADES)}")
    employees = raw.get("employees")
    if employees is not None:
        employees = _int(employees, f"{p}.employees", errors, 0, 1_000_000, "enterprise.employees")
    if len(errors.errors) > start:
        return None
    assert name and uscc and registered and revenue is not None
    return EnterpriseInput(
        name, uscc, str(industry), str(province), registered, revenue, str(grade), employees
    )


def _person(raw: Mapping[str, Any], today: date, errors: ErrorCollector) -> PersonInput | None:
    p = "legal_representative"
    start = len(errors.errors)
    name = _text(raw, "name", f"{p}.name", errors, rule="person.name", lo=2, hi=40)
    if name is not None and any(ch.isdigit() for ch in name):
        errors.add(f"{p}.name", "person.name", "a name cannot contain digits")
    ident = mobile = card = None
    with errors.checking():
        ident = validate_resident_id(_str(raw.get("id_number")), f"{p}.id_number", today=today)
    if ident is not None and ident.age_on(today) < ADULT_AGE:
        errors.add(
            f"{p}.id_number",
            "person.adult",
            f"the legal representative must be at least {ADULT_AGE}",
        )
    with errors.checking():
        mobile = validate_mobile(_str(raw.get("mobile")), f"{p}.mobile")
    with errors.checking():
        card = validate_bank_card(_str(raw.get("bank_account")), f"{p}.bank_account")
    address = _text(raw, "address", f"{p}.address", errors, rule="person.address", lo=5, hi=200)
    if len(errors.errors) > start:
        return None
    assert name and ident and mobile and card and address
    return PersonInput(name, ident, mobile, card, address)


def _str(value: object) -> str:
    return value if isinstance(value, str) else ""


def validate_submission(raw: Mapping[str, Any]) -> Submission:
    """Check every field of an application; raise one ValidationError listing all problems."""
    errors = ErrorCollector()
    submitted_at = None
    with errors.checking():
        submitted_at = require_aware(raw.get("submitted_at"), "submitted_at")  # type: ignore[arg-type]
    today = business_date(submitted_at) if submitted_at else date.today()

    institution = raw.get("institution_code")
    if not isinstance(institution, str) or not institution.strip():
        errors.add("institution_code", "required", "is required")
    ref = None
    with errors.checking():
        ref = validate_reference(
            raw.get("external_ref"), "external_ref", "application.external_ref"
        )
    enterprise = _enterprise(_section(raw, "enterprise", errors), today, errors)
    person = _person(_section(raw, "legal_representative", errors), today, errors)
    amount = None
    with errors.checking():
        amount = parse_amount(raw.get("amount"), "amount")
    if amount is not None and not MIN_AMOUNT <= amount <= MAX_AMOUNT:
        errors.add(
            "amount",
            "application.amount_range",
            f"must be between {MIN_AMOUNT} and {MAX_AMOUNT} yuan",
        )
    term = _int(
        raw.get("term_months"), "term_months", errors, MIN_TERM, MAX_TERM, "application.term_range"
    )
    method = None
    try:
        method = RepaymentMethod(raw.get("repayment_method"))
    except ValueError:
        errors.add(
            "repayment_method",
            "application.repayment_method",
            f"must be one of {', '.join(m.value for m in RepaymentMethod)}",
        )
    purpose = _text(raw, "purpose", "purpose", errors, rule="application.purpose", lo=2, hi=200)
    channel = raw.get("channel")
    if channel not in CHANNELS:
        errors.add(
            "channel", "application.channel", f"must be one of {', '.join(sorted(CHANNELS))}"
        )
    device = raw.get("device_id")
    if device is not None and (not isinstance(device, str) or not 1 <= len(device) <= 128):
        errors.add("device_id", "application.device_id", "must be 1-128 characters")
    ip = raw.get("ip")
    if ip is not None:
        try:
            ip = str(ipaddress.ip_address(str(ip)))
        except ValueError:
            errors.add("ip", "application.ip", "must be an IPv4 or IPv6 address")
    grants: list[ConsentGrant] = []
    consents = raw.get("consents")
    if not isinstance(consents, list | tuple) or not consents:
        errors.add(
            "consents",
            "consent.required",
            "the applicant's consents (at least one, for credit assessment) are required",
        )
    else:
        for i, item in enumerate(consents):
            if not isinstance(item, Mapping):
                errors.add(f"consents[{i}]", "type.object", "must be an object")
                continue
            with errors.checking():
                grants.append(parse_grant(dict(item), f"consents[{i}]", submitted_at or now_utc()))
    errors.raise_if_any()
    assert enterprise and person and amount and term and method and purpose and submitted_at
    return Submission(
        institution_code=str(institution).strip().upper(),
        external_ref=str(ref),
        enterprise=enterprise,
        legal_representative=person,
        amount=amount,
        term_months=term,
        repayment_method=method,
        purpose=purpose,
        channel=str(channel),
        device_id=device,
        ip=ip,
        consents=tuple(grants),
        submitted_at=submitted_at,
    )


__all__ = ["Submission", "ValidationError", "validate_submission"]
