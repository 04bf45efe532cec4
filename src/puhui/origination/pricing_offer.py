"""Turning an approved grade into concrete offer terms, within the product and the law.

The limit is the smallest of what was asked, the grade's share of annual revenue and the
product maximum, rounded down to 100 yuan. The schedule assumes disbursement on the decision's
business date (the loan's own schedule is rebuilt from the real disbursement date). The APR
is the IRR over every cost including the up-front fee (PBOC 〔2021〕 No. 3) and must be within
the institution's legal cap; otherwise there is no offer (knock-out KO_RATE_CAP).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import ROUND_DOWN, Decimal

from puhui.domain.money import round_fen
from puhui.domain.pricing import AprResult, InstitutionType, apr_of_schedule, check_rate_cap
from puhui.domain.schedule import LoanTerms, RepaymentMethod, Schedule, build_schedule
from puhui.origination.assessment import Reason
from puhui.origination.product import Product
from puhui.store import models as m

_HUNDRED = Decimal(100)


@dataclass(frozen=True)
class OfferTerms:
    amount: Decimal
    annual_rate: Decimal
    term_months: int
    method: RepaymentMethod
    schedule: Schedule
    upfront_fee: Decimal
    apr: AprResult
    cap: Decimal
    cap_basis: str

    @property
    def total_interest(self) -> Decimal:
        return self.schedule.total_interest

    @property
    def total_cost(self) -> Decimal:
        return self.schedule.total_interest + self.upfront_fee


def nearest_term(product: Product, asked: int) -> int:
    """The asked term if the product has it, else the closest it has (shorter on a tie)."""
    return min(product.terms_months, key=lambda t: (abs(t - asked), t))


def price(
    *,
    product: Product,
    grade: str,
    asked_amount: Decimal,
    annual_revenue: Decimal,
    term_months: int,
    method: RepaymentMethod,
    start: date,
    institution_type: InstitutionType,
    annual_rate: Decimal | None = None,
) -> OfferTerms | Reason:
    """Offer terms for a grade; ``annual_rate`` (a risk-based price from the decision strategy)
    replaces the product's rate for the grade when given."""
    share = product.limit_share_of_revenue_by_grade[grade]
    limit = min(asked_amount, annual_revenue * share, product.max_amount)
    limit = (limit / _HUNDRED).to_integral_value(rounding=ROUND_DOWN) * _HUNDRED
    if limit < product.min_amount:
        return Reason(
            "KO_LIMIT",
            "可授信额度低于产品最低金额",
            "the amount the business qualifies for is below the product minimum",
        )
    rate = product.rate_for(grade) if annual_rate is None else annual_rate
    terms = LoanTerms(
        principal=limit.quantize(Decimal("0.01")),
        annual_rate=rate,
        term_months=nearest_term(product, term_months),
        method=method,
        start_date=start,
        day_count=product.day_count,
        first_period=product.first_period,
    )
    schedule = build_schedule(terms)
    fee = round_fen(terms.principal * product.upfront_fee_rate)
    apr = apr_of_schedule(schedule, upfront_fee=fee)
    cap = check_rate_cap(apr, start, institution_type)
    if not cap.allowed:
        return Reason(
            "KO_RATE_CAP",
            "综合年化成本将超过法定上限",
            f"the all-in APR would exceed the legal cap ({cap.basis})",
        )
    return OfferTerms(
        terms.principal, rate, terms.term_months, method, schedule, fee, apr, cap.cap, cap.basis
    )


def price_application(
    app: m.Application,
    enterprise: m.Enterprise,
    institution: m.Institution,
    *,
    grade: str,
    product: Product,
    start: date,
    annual_rate: Decimal | None = None,
) -> OfferTerms | Reason:
    """:func:`price` for a stored application — as the automated decision and a reviewer's
    approval both need it."""
    return price(
        product=product,
        grade=grade,
        asked_amount=app.amount,
        annual_revenue=enterprise.annual_revenue,
        term_months=app.term_months,
        method=RepaymentMethod(app.repayment_method),
        start=start,
        institution_type=InstitutionType(institution.institution_type),
        annual_rate=annual_rate,
    )
