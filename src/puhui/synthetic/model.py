"""The public shape of a synthetic population: frozen records, nothing that computes them.

Kept apart from the generator so that code which only reads a population (the CSV export,
the seed loader, tests) depends on these plain records and not on the drawing machinery.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Literal

RingShape = Literal[
    "shared_device",
    "shared_mobile",
    "shared_address",
    "shared_bank_card",
    "chain",
    "repeat",
    "sleeper",
]


@dataclass(frozen=True, slots=True)
class SyntheticEnterprise:
    """The borrowing business. Financials are as of its first application."""

    uscc: str
    name: str
    industry_section: str
    industry_division: str
    province_code: str
    city_code: str
    address: str
    registered_date: date
    years_in_business: float
    annual_revenue: Decimal
    tax_grade: str
    monthly_invoices: tuple[Decimal, ...]
    """Invoiced amounts of the 12 calendar months before the first application, oldest first."""
    employees: int


@dataclass(frozen=True, slots=True)
class SyntheticPerson:
    """The legal representative (法定代表人), who also signs and guarantees."""

    name: str
    id_number: str
    sex: Literal["M", "F"]
    birth_date: date
    mobile: str
    bank_card: str
    bank_name: str
    address: str


@dataclass(frozen=True, slots=True)
class SyntheticApplication:
    application_id: str
    institution_code: str
    submitted_at: datetime
    requested_amount: Decimal
    term_months: int
    repayment_method: str
    purpose: str
    enterprise: SyntheticEnterprise
    legal_representative: SyntheticPerson
    contact_mobiles: tuple[str, ...]
    device_id: str
    ip_address: str
    latent_risk: float
    defaulted: bool
    fraud_ring_id: str | None
    is_fraud: bool


@dataclass(frozen=True, slots=True)
class FraudRing:
    """A planted ring: its members and the identifier fields they share.

    ``shared`` names fields of :func:`to_rows` (``device_id``, ``rep_bank_card``, ...); an
    entry ``a=b`` means one member's field ``a`` reappears as other members' field ``b``.
    """

    ring_id: str
    shape: RingShape
    application_ids: tuple[str, ...]
    shared: tuple[str, ...]


@dataclass(frozen=True)
class Population:
    """A generated population, applications in order of submission."""

    seed: int
    applications: tuple[SyntheticApplication, ...]
    rings: tuple[FraudRing, ...]
    hubs: dict[str, tuple[str, ...]] = field(default_factory=dict)
    """Identifier values that honest applicants share by nature, by field name."""

    def __len__(self) -> int:
        return len(self.applications)

    def __iter__(self) -> Iterator[SyntheticApplication]:
        return iter(self.applications)
