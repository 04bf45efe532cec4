"""Sealing personal data into rows and revealing it again, under consent and audit.

Sealing: each data subject gets a data key (a ``data_keys`` row holding it wrapped); every
personal field is stored as a vault token bound to its column, and the fields the platform
must match on get a blind index. Revealing: a caller states its purpose; it is refused without
a matching consent (or a legal basis such as the person's own access request), and every
reveal is written to the audit log with the fields read — never the values.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime

from puhui.privacy import consent as consent_rules
from puhui.privacy.consent import DataCategory, Purpose
from puhui.privacy.vault import Vault, WrappedDataKey
from puhui.store import models as m
from puhui.store.types import utcnow
from puhui.store.unit_of_work import UnitOfWork

APPLICANT_FIELDS: Mapping[str, DataCategory] = {
    "name": DataCategory.IDENTITY,
    "id_number": DataCategory.IDENTITY,
    "mobile": DataCategory.CONTACT,
    "address": DataCategory.CONTACT,
    "bank_account": DataCategory.FINANCIAL_ACCOUNT,
}
"""The applicant's encrypted columns (``<field>_enc``) and the consent category of each."""

ENTERPRISE_FIELDS: Mapping[str, DataCategory] = {"uscc": DataCategory.ENTERPRISE}

LEGAL_BASES = frozenset({"data_subject_request", "legal_obligation"})
"""Reasons to reveal without consent: the person's own request (Art. 45), or a duty in law."""


def wrapped_key(row: m.DataKey | None) -> WrappedDataKey | None:
    """The stored data key as the vault wants it; None once shredded."""
    if row is None or row.wrapped is None or row.master_key_id is None:
        return None
    return WrappedDataKey(row.id, row.master_key_id, row.wrapped)


def subject_key(vault: Vault) -> tuple[WrappedDataKey, m.DataKey]:
    """A new data key for a new data subject, and its row — for the caller to insert ahead of
    the subject's row (``UnitOfWork.insert``), with other rows in one go."""
    _, wrapped = vault.new_data_key()
    row = m.DataKey(
        id=wrapped.key_id,
        master_key_id=wrapped.master_key_id,
        wrapped=wrapped.wrapped,
        created_at=utcnow(),
    )
    return wrapped, row


def new_subject_key(uow: UnitOfWork, vault: Vault) -> WrappedDataKey:
    """Create and store a data key for a new data subject."""
    wrapped, row = subject_key(vault)
    # Written at once, before the subject that references it (no ORM relationship would order
    # the two in a flush); a plain INSERT, since nothing reads the row back as an object.
    uow.insert(row)
    return wrapped


def seal(vault: Vault, key: WrappedDataKey, table: str, field: str, value: str) -> str:
    return vault.encrypt(key, value, f"{table}.{field}")


def reveal(
    uow: UnitOfWork,
    vault: Vault,
    applicant: m.Applicant,
    *,
    fields: Iterable[str],
    purpose: Purpose | str,
    at: datetime,
) -> dict[str, str | None]:
    """Decrypt some of an applicant's fields for a stated purpose, audited.

    ``purpose`` is a consent purpose (checked against the applicant's active consents) or one
    of ``LEGAL_BASES``. Raises ``ConsentRequired`` or ``PersonalDataErased``.
    """
    wanted = list(dict.fromkeys(fields))
    unknown = [f for f in wanted if f not in APPLICANT_FIELDS]
    if unknown:
        raise ValueError(f"not personal fields of an applicant: {unknown}")
    purpose_name = str(purpose)
    if purpose_name not in LEGAL_BASES:
        consent_rules.require(
            uow.consents.for_applicant(applicant.id),
            subject=applicant.id,
            purpose=Purpose(purpose_name),
            categories={APPLICANT_FIELDS[f] for f in wanted},
            at=at,
        )
    key = wrapped_key(uow.data_keys.get(applicant.data_key_id))
    values: dict[str, str | None] = {}
    for f in wanted:
        token = getattr(applicant, f"{f}_enc")
        values[f] = None if token is None else vault.decrypt(key, token, f"applicants.{f}")
    uow.audit(
        action="personal_data.read",
        subject_type="applicant",
        subject_id=applicant.id,
        purpose=purpose_name,
        details={"fields": wanted},
    )
    return values
