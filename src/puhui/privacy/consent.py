"""Consent records and purpose checks (PIPL Art. 6, 14-16, 23, 28-29).

A use case that touches personal data names its purpose and the categories of data it needs;
``require`` refuses it unless the person has an active consent for that purpose whose scope
covers those categories. Consent is per purpose (re-asked when the purpose changes), carries the
version of the text the person saw and the channel, and can be withdrawn at any time.
Sharing with another handler (a partner bank) and sensitive categories (financial accounts,
identity numbers) need their own, separate consent — they are separate purposes and scopes here.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from puhui.domain.errors import ErrorCollector, ValidationError
from puhui.privacy.errors import ConsentRequired
from puhui.store.models import Consent
from puhui.store.unit_of_work import UnitOfWork


class Purpose(StrEnum):
    CREDIT_ASSESSMENT = "credit_assessment"
    """Assessing the application: identity checks, credit and fraud assessment, the decision."""
    LOAN_SERVICING = "loan_servicing"
    """Contract, disbursement, repayment collection and post-loan monitoring."""
    PARTNER_SHARING = "partner_sharing"
    """Providing data to another handler (a partner institution) — separate consent, Art. 23."""
    JOINT_MODELLING = "joint_modelling"
    """Using the person's records in federated model training with a data partner."""
    MARKETING = "marketing"
    """Offers of other products; never required for the loan itself (Art. 16)."""


class DataCategory(StrEnum):
    IDENTITY = "identity"  # name, resident ID number (sensitive: specific identity)
    CONTACT = "contact"  # mobile, address
    FINANCIAL_ACCOUNT = "financial_account"  # bank account (sensitive: financial account)
    ENTERPRISE = "enterprise"  # the business's registration, revenue, tax and invoices
    DEVICE = "device"  # device id and IP of the application


SENSITIVE = frozenset({DataCategory.IDENTITY, DataCategory.FINANCIAL_ACCOUNT})

CHANNELS = frozenset({"app", "web", "api", "branch", "phone"})


@dataclass(frozen=True)
class ConsentGrant:
    """What the person agreed to, as captured by the channel that showed them the text."""

    purpose: Purpose
    scope: tuple[DataCategory, ...]
    text_version: str
    channel: str
    granted_at: datetime


def parse_grant(raw: dict[str, object], field: str, granted_at: datetime) -> ConsentGrant:
    """Validate one consent from input; every problem is reported with its field and rule."""
    errors = ErrorCollector()
    purpose_raw = raw.get("purpose")
    purpose: Purpose | None = None
    try:
        purpose = Purpose(str(purpose_raw))
    except ValueError:
        errors.add(
            f"{field}.purpose",
            "consent.purpose",
            f"purpose must be one of {sorted(p.value for p in Purpose)}",
        )
    scope_raw = raw.get("scope")
    scope: list[DataCategory] = []
    if not isinstance(scope_raw, list | tuple) or not scope_raw:
        errors.add(
            f"{field}.scope", "consent.scope", "scope must be a non-empty list of categories"
        )
    else:
        for i, item in enumerate(scope_raw):
            try:
                scope.append(DataCategory(str(item)))
            except ValueError:
                errors.add(
                    f"{field}.scope[{i}]",
                    "consent.scope",
                    f"category must be one of {sorted(c.value for c in DataCategory)}",
                )
    version = raw.get("text_version")
    if not isinstance(version, str) or not version.strip() or len(version) > 32:
        errors.add(
            f"{field}.text_version",
            "consent.text_version",
            "the version of the consent text shown is required (1-32 characters)",
        )
    channel = raw.get("channel")
    if channel not in CHANNELS:
        errors.add(
            f"{field}.channel", "consent.channel", f"channel must be one of {sorted(CHANNELS)}"
        )
    errors.raise_if_any()
    assert purpose is not None
    return ConsentGrant(
        purpose, tuple(dict.fromkeys(scope)), str(version).strip(), str(channel), granted_at
    )


def to_row(applicant_id: str, grant: ConsentGrant) -> Consent:
    return Consent(
        applicant_id=applicant_id,
        purpose=grant.purpose.value,
        scope=[c.value for c in grant.scope],
        text_version=grant.text_version,
        channel=grant.channel,
        granted_at=grant.granted_at,
    )


def active(consents: Iterable[Consent], purpose: Purpose, at: datetime) -> list[Consent]:
    return [
        c
        for c in consents
        if c.purpose == purpose.value
        and c.granted_at <= at
        and (c.withdrawn_at is None or c.withdrawn_at > at)
    ]


def require(
    consents: Sequence[Consent],
    *,
    subject: str,
    purpose: Purpose,
    categories: Iterable[DataCategory],
    at: datetime,
) -> None:
    """Raise ``ConsentRequired`` unless an active consent for ``purpose`` covers ``categories``."""
    needed = set(categories)
    covered: set[str] = set()
    for c in active(consents, purpose, at):
        covered.update(c.scope)
    missing = sorted(cat.value for cat in needed if cat.value not in covered)
    if missing:
        raise ConsentRequired(
            purpose=purpose.value,
            subject=subject,
            message=(
                f"no active consent from subject {subject!r} for purpose {purpose.value!r} "
                f"covering {', '.join(missing)}"
            ),
        )


def withdraw(uow: UnitOfWork, *, applicant_id: str, purpose: Purpose, at: datetime) -> int:
    """Withdraw a person's active consents for ``purpose`` (Art. 15); returns how many.

    Withdrawal does not undo processing already done; from ``at`` on, any use case with this
    purpose is refused for the person until they consent again. One transaction, audited.
    """
    with uow:
        if uow.applicants.get(applicant_id) is None:
            raise ValidationError.single("applicant_id", "subject.unknown", "no such applicant")
        withdrawn = active(uow.consents.for_applicant(applicant_id), purpose, at)
        for c in withdrawn:
            c.withdrawn_at = at
        uow.record_event(
            aggregate_type="applicant",
            aggregate_id=applicant_id,
            event_type="consent.withdrawn",
            purpose=purpose.value,
            payload={"purpose": purpose.value, "consents": len(withdrawn)},
        )
        uow.commit()
        return len(withdrawn)
