"""Typed SQLAlchemy 2 models: one table per aggregate or record kind.

Personal data never sits here in plaintext: columns ending in ``_enc`` hold vault tokens
(AES-256-GCM under the subject's data key) and columns ending in ``_bidx`` hold keyed blind
indexes for equality look-ups. Money columns are integer fen (see ``store.types.Money``).
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from puhui.store.types import ExactDecimal, Money, UTCDateTime, utcnow

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def new_id(prefix: str) -> str:
    """A random, prefixed identifier (``app_3f2c…``): unguessable, and says what it names."""
    return f"{prefix}_{uuid.uuid4().hex}"


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


def table(model: type[Base]) -> Table:
    """The model's table, for plain Core statements on the hot paths: built once, executed on
    the connection, they skip the ORM's statement plugin (keys are column names there)."""
    found = model.__table__
    assert isinstance(found, Table)
    return found


class Institution(Base):
    """A lender using the platform: the operator itself or a partner institution (tenant)."""

    __tablename__ = "institutions"
    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("ins"))
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    institution_type: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class DataKey(Base):
    """A data subject's AES-256 data key, wrapped by a master key.

    Erasing a subject deletes ``wrapped`` (crypto-shredding): every ciphertext under this key
    becomes unreadable at once, including copies in backups.
    """

    __tablename__ = "data_keys"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    master_key_id: Mapped[str | None] = mapped_column(String(40), index=True)
    wrapped: Mapped[bytes | None] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    rewrapped_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    shredded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Enterprise(Base):
    """A small or micro enterprise (小微企业) applying for credit at one institution."""

    __tablename__ = "enterprises"
    __table_args__ = (UniqueConstraint("institution_id", "uscc_bidx"),)
    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("ent"))
    institution_id: Mapped[str] = mapped_column(ForeignKey("institutions.id"), index=True)
    data_key_id: Mapped[str] = mapped_column(ForeignKey("data_keys.id"))
    name: Mapped[str] = mapped_column(String(200))
    uscc_enc: Mapped[str | None] = mapped_column(Text)
    uscc_bidx: Mapped[str | None] = mapped_column(String(64), index=True)
    uscc_needs_verification: Mapped[bool] = mapped_column(Boolean, default=False)
    industry_code: Mapped[str] = mapped_column(String(8))
    division_code: Mapped[str] = mapped_column(String(6))
    registered_on: Mapped[date] = mapped_column(Date)
    annual_revenue: Mapped[Decimal] = mapped_column("annual_revenue_fen", Money)
    tax_grade: Mapped[str] = mapped_column(String(1))
    employees: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Applicant(Base):
    """A natural person: the legal representative who applies on the enterprise's behalf."""

    __tablename__ = "applicants"
    __table_args__ = (UniqueConstraint("institution_id", "id_number_bidx"),)
    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("apl"))
    institution_id: Mapped[str] = mapped_column(ForeignKey("institutions.id"), index=True)
    data_key_id: Mapped[str] = mapped_column(ForeignKey("data_keys.id"))
    name_enc: Mapped[str | None] = mapped_column(Text)
    id_number_enc: Mapped[str | None] = mapped_column(Text)
    mobile_enc: Mapped[str | None] = mapped_column(Text)
    bank_account_enc: Mapped[str | None] = mapped_column(Text)
    address_enc: Mapped[str | None] = mapped_column(Text)
    id_number_bidx: Mapped[str | None] = mapped_column(String(64), index=True)
    mobile_bidx: Mapped[str | None] = mapped_column(String(64), index=True)
    bank_account_bidx: Mapped[str | None] = mapped_column(String(64), index=True)
    birth_date: Mapped[date | None] = mapped_column(Date)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    erased_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Consent(Base):
    """A person's consent to one purpose, with the text version and channel it was given on."""

    __tablename__ = "consents"
    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("cns"))
    applicant_id: Mapped[str] = mapped_column(ForeignKey("applicants.id"), index=True)
    purpose: Mapped[str] = mapped_column(String(48))
    scope: Mapped[list[str]] = mapped_column(JSON)
    text_version: Mapped[str] = mapped_column(String(32))
    channel: Mapped[str] = mapped_column(String(32))
    granted_at: Mapped[datetime] = mapped_column(UTCDateTime)
    withdrawn_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Application(Base):
    """A loan application; ``state`` follows ``domain.lifecycle.APPLICATION``."""

    __tablename__ = "applications"
    __table_args__ = (UniqueConstraint("institution_id", "external_ref"),)
    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("app"))
    institution_id: Mapped[str] = mapped_column(ForeignKey("institutions.id"), index=True)
    external_ref: Mapped[str] = mapped_column(String(64))
    enterprise_id: Mapped[str] = mapped_column(ForeignKey("enterprises.id"), index=True)
    applicant_id: Mapped[str] = mapped_column(ForeignKey("applicants.id"), index=True)
    amount: Mapped[Decimal] = mapped_column("amount_fen", Money)
    term_months: Mapped[int] = mapped_column(Integer)
    repayment_method: Mapped[str] = mapped_column(String(32))
    purpose: Mapped[str] = mapped_column(String(200))
    channel: Mapped[str] = mapped_column(String(32))
    device_bidx: Mapped[str | None] = mapped_column(String(64), index=True)
    ip_bidx: Mapped[str | None] = mapped_column(String(64), index=True)
    state: Mapped[str] = mapped_column(String(24), index=True)
    submitted_at: Mapped[datetime] = mapped_column(UTCDateTime)
    business_date: Mapped[date] = mapped_column(Date)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    version: Mapped[int] = mapped_column(Integer, default=1)

    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012 - SQLAlchemy's declarative API


class Decision(Base):
    """An automated or human credit decision, always with its reasons (PIPL Art. 24)."""

    __tablename__ = "decisions"
    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("dec"))
    application_id: Mapped[str] = mapped_column(ForeignKey("applications.id"), index=True)
    outcome: Mapped[str] = mapped_column(String(16))
    reasons: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    decided_by: Mapped[str] = mapped_column(String(64))
    automated: Mapped[bool] = mapped_column(Boolean)
    model_version: Mapped[str | None] = mapped_column(String(64))
    score: Mapped[Decimal | None] = mapped_column(ExactDecimal)
    grade: Mapped[str | None] = mapped_column(String(8))
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Offer(Base):
    """Terms offered on an approved application; the APR is the headline rate."""

    __tablename__ = "offers"
    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("ofr"))
    application_id: Mapped[str] = mapped_column(ForeignKey("applications.id"), index=True)
    amount: Mapped[Decimal] = mapped_column("amount_fen", Money)
    annual_rate: Mapped[Decimal] = mapped_column(ExactDecimal)
    apr: Mapped[Decimal] = mapped_column(ExactDecimal)
    term_months: Mapped[int] = mapped_column(Integer)
    repayment_method: Mapped[str] = mapped_column(String(32))
    day_count: Mapped[str] = mapped_column(String(16))
    upfront_fee: Mapped[Decimal] = mapped_column("upfront_fee_fen", Money, default=Decimal("0"))
    grade: Mapped[str] = mapped_column(String(8), default="")
    indicative_start: Mapped[date] = mapped_column(Date)
    """The disbursement date the offer's schedule assumes; the loan's own uses the real one."""
    total_interest: Mapped[Decimal] = mapped_column("total_interest_fen", Money)
    total_cost: Mapped[Decimal] = mapped_column("total_cost_fen", Money)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    accepted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Loan(Base):
    """A contracted loan; ``state`` follows ``domain.lifecycle.LOAN``."""

    __tablename__ = "loans"
    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("lon"))
    institution_id: Mapped[str] = mapped_column(ForeignKey("institutions.id"), index=True)
    application_id: Mapped[str] = mapped_column(ForeignKey("applications.id"), unique=True)
    offer_id: Mapped[str] = mapped_column(ForeignKey("offers.id"))
    applicant_id: Mapped[str] = mapped_column(ForeignKey("applicants.id"), index=True)
    principal: Mapped[Decimal] = mapped_column("principal_fen", Money)
    annual_rate: Mapped[Decimal] = mapped_column(ExactDecimal)
    apr: Mapped[Decimal] = mapped_column(ExactDecimal)
    term_months: Mapped[int] = mapped_column(Integer)
    repayment_method: Mapped[str] = mapped_column(String(32))
    day_count: Mapped[str] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(24), index=True)
    outstanding_principal: Mapped[Decimal] = mapped_column("outstanding_principal_fen", Money)
    upfront_fee: Mapped[Decimal] = mapped_column("upfront_fee_fen", Money, default=Decimal("0"))
    penalty_rate: Mapped[Decimal] = mapped_column(ExactDecimal, default=Decimal("0"))
    """Annual rate of default interest (罚息) on overdue principal and interest."""
    allocation_order: Mapped[str] = mapped_column(
        String(64), default="penalty,fee,interest,principal"
    )
    contract_version: Mapped[str | None] = mapped_column(String(32))
    contract_digest: Mapped[str | None] = mapped_column(String(64))
    contracted_at: Mapped[datetime] = mapped_column(UTCDateTime)
    disbursed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    disbursement_ref: Mapped[str | None] = mapped_column(String(64), unique=True)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    version: Mapped[int] = mapped_column(Integer, default=1)

    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012 - SQLAlchemy's declarative API


class ScheduleLine(Base):
    """One instalment of a loan's repayment schedule, with what has been paid against it."""

    __tablename__ = "schedule_lines"
    __table_args__ = (UniqueConstraint("loan_id", "number"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    loan_id: Mapped[str] = mapped_column(ForeignKey("loans.id"), index=True)
    number: Mapped[int] = mapped_column(Integer)
    due_date: Mapped[date] = mapped_column(Date)
    principal: Mapped[Decimal] = mapped_column("principal_fen", Money)
    interest: Mapped[Decimal] = mapped_column("interest_fen", Money)
    fee: Mapped[Decimal] = mapped_column("fee_fen", Money, default=Decimal("0"))
    paid_principal: Mapped[Decimal] = mapped_column(
        "paid_principal_fen", Money, default=Decimal("0")
    )
    paid_interest: Mapped[Decimal] = mapped_column("paid_interest_fen", Money, default=Decimal("0"))
    paid_fee: Mapped[Decimal] = mapped_column("paid_fee_fen", Money, default=Decimal("0"))
    paid_penalty: Mapped[Decimal] = mapped_column("paid_penalty_fen", Money, default=Decimal("0"))
    penalty: Mapped[Decimal] = mapped_column("penalty_fen", Money, default=Decimal("0"))
    """Default interest charged so far on this instalment's overdue amounts."""
    penalty_accrued_to: Mapped[date | None] = mapped_column(Date)
    settled_on: Mapped[date | None] = mapped_column(Date)


class Repayment(Base):
    """Money received against a loan; ``external_ref`` makes a retried posting harmless."""

    __tablename__ = "repayments"
    __table_args__ = (UniqueConstraint("loan_id", "external_ref"),)
    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("rpy"))
    loan_id: Mapped[str] = mapped_column(ForeignKey("loans.id"), index=True)
    external_ref: Mapped[str] = mapped_column(String(64))
    amount: Mapped[Decimal] = mapped_column("amount_fen", Money)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)
    business_date: Mapped[date] = mapped_column(Date)
    allocation: Mapped[dict[str, Any]] = mapped_column(JSON)


class ReviewTask(Base):
    """Work for a person: a referred application, or a request under PIPL Art. 24 for an
    explanation of, or a human look at, an automated decision."""

    __tablename__ = "review_tasks"
    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("rev"))
    institution_id: Mapped[str] = mapped_column(ForeignKey("institutions.id"), index=True)
    application_id: Mapped[str] = mapped_column(ForeignKey("applications.id"), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16), index=True)
    reason: Mapped[str] = mapped_column(Text)
    requested_by: Mapped[str] = mapped_column(String(120))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    decided_by: Mapped[str | None] = mapped_column(String(120))
    outcome: Mapped[str | None] = mapped_column(String(32))
    note: Mapped[str | None] = mapped_column(Text)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class ApiClient(Base):
    """A partner institution's API credentials (OAuth2 client id; secrets in ``api_secrets``)."""

    __tablename__ = "api_clients"
    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("cli"))
    client_id: Mapped[str] = mapped_column(String(64), unique=True)
    institution_id: Mapped[str] = mapped_column(ForeignKey("institutions.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    data_key_id: Mapped[str] = mapped_column(ForeignKey("data_keys.id"))
    rate_limit_per_minute: Mapped[int] = mapped_column(Integer, default=600)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class ApiSecret(Base):
    """One client secret. Two can be valid at once: after a rotation the old one keeps working
    until ``expires_at`` (the overlap window), so a partner can roll its servers over."""

    __tablename__ = "api_secrets"
    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("sec"))
    client_pk: Mapped[str] = mapped_column(ForeignKey("api_clients.id"), index=True)
    secret_enc: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class RequestNonce(Base):
    """Nonces seen on signed requests, kept for the clock window, so a replay is refused."""

    __tablename__ = "request_nonces"
    client_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    nonce: Mapped[str] = mapped_column(String(64), primary_key=True)
    seen_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class IdempotencyRecord(Base):
    """A state-changing request's key, its body hash and, once done, its stored response."""

    __tablename__ = "idempotency_keys"
    __table_args__ = (UniqueConstraint("institution_id", "key"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    institution_id: Mapped[str] = mapped_column(String(40))
    key: Mapped[str] = mapped_column(String(255))
    method: Mapped[str] = mapped_column(String(8))
    path: Mapped[str] = mapped_column(String(255))
    request_hash: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(16))
    response_status: Mapped[int | None] = mapped_column(Integer)
    response_body: Mapped[str | None] = mapped_column(Text)
    response_headers: Mapped[dict[str, str] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class RateCounter(Base):
    """Requests per client per minute window, shared by every API worker."""

    __tablename__ = "rate_counters"
    client_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    window_start: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    count: Mapped[int] = mapped_column(Integer)


class WebhookEndpoint(Base):
    """A partner's URL for event notifications, with its signing secret (sealed)."""

    __tablename__ = "webhook_endpoints"
    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("whe"))
    institution_id: Mapped[str] = mapped_column(ForeignKey("institutions.id"), index=True)
    url: Mapped[str] = mapped_column(String(2000))
    data_key_id: Mapped[str] = mapped_column(ForeignKey("data_keys.id"))
    secret_enc: Mapped[str] = mapped_column(Text)
    event_types: Mapped[list[str]] = mapped_column(JSON)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class WebhookDelivery(Base):
    """One event to one endpoint: attempts, back-off schedule and outcome (the delivery log)."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (UniqueConstraint("endpoint_id", "event_id"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    endpoint_id: Mapped[str] = mapped_column(ForeignKey("webhook_endpoints.id"), index=True)
    event_id: Mapped[str] = mapped_column(String(40), index=True)
    status: Mapped[str] = mapped_column(String(16), index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Event(Base):
    """Transactional outbox: every state change, written in the same transaction as the change.

    Payloads carry ids and masked values only, never personal data in the clear; webhooks and
    the audit log are fed from here.
    """

    __tablename__ = "events"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(String(40), unique=True, default=lambda: new_id("evt"))
    institution_id: Mapped[str | None] = mapped_column(String(40), index=True)
    aggregate_type: Mapped[str] = mapped_column(String(32))
    aggregate_id: Mapped[str] = mapped_column(String(40))
    event_type: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)

    __table_args__ = (Index("ix_events_aggregate", "aggregate_type", "aggregate_id"),)


class AuditRecord(Base):
    """One link of the append-only, hash-chained audit log (see ``privacy.audit``)."""

    __tablename__ = "audit_records"
    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)
    actor: Mapped[str] = mapped_column(String(120))
    action: Mapped[str] = mapped_column(String(64))
    subject_type: Mapped[str] = mapped_column(String(32))
    subject_id: Mapped[str] = mapped_column(String(40), index=True)
    purpose: Mapped[str | None] = mapped_column(String(48))
    details: Mapped[dict[str, Any]] = mapped_column(JSON)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64), unique=True)


class AuditPending(Base):
    """An audit record committed with its change but not yet chained (deferred sealing, see
    ``privacy.audit``): the sealer moves it into ``audit_records`` in ``id`` order."""

    __tablename__ = "audit_pending"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)
    actor: Mapped[str] = mapped_column(String(120))
    action: Mapped[str] = mapped_column(String(64))
    subject_type: Mapped[str] = mapped_column(String(32))
    subject_id: Mapped[str] = mapped_column(String(40))
    purpose: Mapped[str | None] = mapped_column(String(48))
    details: Mapped[dict[str, Any]] = mapped_column(JSON)


class AuditHead(Base):
    """The chain's newest link, one row: appenders lock it, so the chain never forks, and a
    deleted tail record is caught because the head no longer matches."""

    __tablename__ = "audit_head"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    seq: Mapped[int] = mapped_column(Integer)
    hash: Mapped[str] = mapped_column(String(64))


class ModelVersion(Base):
    """A credit model in the registry (see ``risk.registry``): the artifact, its metadata, and
    its role. At most one champion and one challenger per model name; every promotion and
    retirement is also an event with its audit record."""

    __tablename__ = "model_versions"
    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("mdl"))
    name: Mapped[str] = mapped_column(String(64))
    version: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), index=True)
    sha256: Mapped[str] = mapped_column(String(64))
    artifact: Mapped[str] = mapped_column(Text)
    details: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_by: Mapped[str] = mapped_column(String(120))
    promoted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    promoted_by: Mapped[str | None] = mapped_column(String(120))
    status_reason: Mapped[str | None] = mapped_column(String(500))

    __table_args__ = (UniqueConstraint("name", "version"),)


class FraudLink(Base):
    """One identifier of one application, as a blind index (see ``fraud.links_store``).

    The identity graph, velocity counts and multi-lending counts all read this table; it holds
    no personal data in the clear — only keyed HMACs that match equal values."""

    __tablename__ = "fraud_links"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    application_id: Mapped[str] = mapped_column(ForeignKey("applications.id"), index=True)
    institution_id: Mapped[str] = mapped_column(String(40))
    kind: Mapped[str] = mapped_column(String(16))
    key: Mapped[str] = mapped_column(String(64))
    identity: Mapped[str] = mapped_column(String(64))
    """The legal representative's id-number blind index: distinct identities per key."""
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (
        Index("ix_fraud_links_kind_key", "kind", "key", "occurred_at"),
        Index("ix_fraud_links_identity", "identity", "occurred_at"),
    )


class FraudListEntry(Base):
    """A blacklisted or confirmed-fraud identifier, by blind index only."""

    __tablename__ = "fraud_list_entries"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    list_name: Mapped[str] = mapped_column(String(24))  # blacklist | confirmed_fraud
    kind: Mapped[str] = mapped_column(String(16))
    key: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(String(500))
    source: Mapped[str] = mapped_column(String(64))
    added_by: Mapped[str] = mapped_column(String(120))
    added_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (
        UniqueConstraint("list_name", "kind", "key"),
        Index("ix_fraud_list_entries_kind_key", "kind", "key"),
    )


class FraudReview(Base):
    """A person's verdict on an application's fraud question: confirmed fraud or cleared."""

    __tablename__ = "fraud_reviews"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    application_id: Mapped[str] = mapped_column(ForeignKey("applications.id"), index=True)
    outcome: Mapped[str] = mapped_column(String(16))  # confirmed | cleared
    reviewed_by: Mapped[str] = mapped_column(String(120))
    reason: Mapped[str] = mapped_column(String(500))
    reviewed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class FraudRuleSet(Base):
    """A version of the fraud rules (data, not code); exactly one is active."""

    __tablename__ = "fraud_rule_sets"
    version: Mapped[str] = mapped_column(String(64), primary_key=True)
    rules: Mapped[dict[str, Any]] = mapped_column(JSON)
    active: Mapped[bool] = mapped_column(Boolean, index=True)
    created_by: Mapped[str] = mapped_column(String(120))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
