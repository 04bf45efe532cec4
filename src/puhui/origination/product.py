"""A lending product: the bounds, prices and servicing rules an offer is made under.

Products are data. ``DEFAULT_PRODUCT`` is a plain small-business working-capital loan; an
institution configures its own by constructing another ``Product``. Prices are by risk grade
and always checked against the institution's legal cap (``domain.pricing``) before an offer is
made — a grade whose price would break the cap is declined, never quietly repriced.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from types import MappingProxyType

from puhui.domain.daycount import DayCount
from puhui.domain.schedule import FirstPeriod, RepaymentMethod


@dataclass(frozen=True)
class Product:
    code: str
    name: str
    min_amount: Decimal
    max_amount: Decimal
    terms_months: tuple[int, ...]
    methods: tuple[RepaymentMethod, ...]
    annual_rate_by_grade: Mapping[str, Decimal]
    """Nominal annual interest rate for each approvable grade."""
    limit_share_of_revenue_by_grade: Mapping[str, Decimal]
    """The most a grade may borrow, as a share of the enterprise's annual revenue."""
    upfront_fee_rate: Decimal = Decimal("0")
    """Fee deducted at disbursement, as a share of the amount (counted in the APR)."""
    penalty_rate_multiplier: Decimal = Decimal("1.5")
    """Default interest (罚息) = annual rate × this; the SPC cap applies to the total."""
    day_count: DayCount = DayCount.THIRTY_360
    first_period: FirstPeriod = FirstPeriod.ACTUAL_DAYS
    allocation_order: str = "penalty,fee,interest,principal"
    offer_validity: timedelta = timedelta(days=7)
    contract_version: str = "clickwrap-2026.1"
    grade_order: tuple[str, ...] = field(default=("A", "B", "C", "D"))

    def rate_for(self, grade: str) -> Decimal:
        return self.annual_rate_by_grade[grade]


DEFAULT_PRODUCT = Product(
    code="SME_WORKING_CAPITAL",
    name="小微企业经营贷 (small-business working capital)",
    min_amount=Decimal("10000.00"),
    max_amount=Decimal("3000000.00"),
    terms_months=(6, 12, 24, 36),
    methods=tuple(RepaymentMethod),
    annual_rate_by_grade=MappingProxyType(
        {
            "A": Decimal("0.0420"),
            "B": Decimal("0.0650"),
            "C": Decimal("0.0980"),
            "D": Decimal("0.1450"),
        }
    ),
    limit_share_of_revenue_by_grade=MappingProxyType(
        {"A": Decimal("0.50"), "B": Decimal("0.35"), "C": Decimal("0.25"), "D": Decimal("0.15")}
    ),
    upfront_fee_rate=Decimal("0.005"),
)
"""Rates sit between the 1-year LPR (3.0 %) and well under the 24 % licensed line."""
