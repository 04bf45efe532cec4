"""The assessment interfaces the decision depends on, and the facts they see.

Anti-fraud and credit assessment are pluggable: anything with an ``assess(facts)`` method of
the right shape can be used. The origination journey ships a documented rules-and-points
policy (``origination.policy``); the anti-fraud and credit-model issues bring graph features
and trained scorecards behind the same interfaces. Facts are plain values — no personal data
in the clear, no database handles — so an assessor is easy to test and to explain.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from enum import StrEnum
from typing import Any, Protocol


@dataclass(frozen=True)
class Reason:
    """One reason behind an assessment, readable by the applicant (PIPL Art. 24)."""

    code: str
    text_zh: str
    text_en: str
    points_lost: int = 0

    def as_dict(self) -> dict[str, object]:
        return {
            "code": self.code,
            "text_zh": self.text_zh,
            "text_en": self.text_en,
            "points_lost": self.points_lost,
        }


@dataclass(frozen=True)
class ApplicationFacts:
    application_id: str
    institution_id: str
    business_date: date
    amount: Decimal
    term_months: int
    repayment_method: str
    applicant_age: int
    years_in_business: Decimal
    annual_revenue: Decimal
    tax_grade: str
    industry_code: str
    employees: int | None
    uscc_needs_verification: bool
    fraud_features: Mapping[str, float] = field(default_factory=dict)
    """Counts and sums over earlier applications, matched through blind indexes only
    (``fraud.features``): velocity, identity consistency, lists, neighbourhood, multi-lending.
    Cross-institution figures are counts — a partner never learns which institution."""
    partner_key: str | None = None
    """The business key a federated model's data partner knows (the USCC), revealed only when
    the live model is federated and the applicant consented to joint modelling; else None."""
    partner_refusal: str | None = None
    """Why the partner must not be asked for this application (e.g. no consent), if so."""


class FraudOutcome(StrEnum):
    PASS = "pass"
    REVIEW = "review"
    REJECT = "reject"


@dataclass(frozen=True)
class FraudAssessment:
    outcome: FraudOutcome
    hits: tuple[Reason, ...]
    assessor: str


@dataclass(frozen=True)
class CreditAssessment:
    """A score with its grade, or knock-outs; ``refer`` lists reasons a person must look."""

    score: int
    grade: str | None
    knockouts: tuple[Reason, ...]
    refer: tuple[Reason, ...]
    reasons: tuple[Reason, ...]
    model_version: str
    pd: float | None = None
    """The model's probability of default, when a model (not a points policy) scored."""
    annual_rate: Decimal | None = None
    """A risk-based price set by the strategy; None means the product's rate for the grade."""
    details: Mapping[str, Any] = field(default_factory=dict)
    """What to record with the decision (model ids, scores, monitoring bins)."""


class FraudAssessor(Protocol):
    name: str

    def assess(self, facts: ApplicationFacts) -> FraudAssessment: ...


class CreditAssessor(Protocol):
    name: str

    def assess(self, facts: ApplicationFacts) -> CreditAssessment: ...
