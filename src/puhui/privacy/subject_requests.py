"""Data-subject requests (PIPL Art. 44-47): access/copy and erasure.

Export gives the person everything held about them, decrypted, for delivery to them only; the
export itself is audited (fields read, not values). Erasure crypto-shreds the person's data key:
the wrapped key is deleted and the blind indexes cleared, so no ciphertext of theirs — in the
database, a replica or a backup — can be decrypted or matched again. The law does not let us
erase what we must keep: a person with a loan still open is refused (rule
``erasure.open_loan``); the financial records of closed loans are kept without the identity.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from puhui.domain.clock import now_utc
from puhui.domain.errors import ValidationError
from puhui.domain.identifiers import validate_resident_id
from puhui.domain.lifecycle import LOAN, LoanState
from puhui.privacy.blind_index import BlindIndexer, IndexKind
from puhui.privacy.errors import PersonalDataErased
from puhui.privacy.personal_data import APPLICANT_FIELDS, reveal, wrapped_key
from puhui.privacy.vault import Vault
from puhui.store import models as m
from puhui.store.unit_of_work import UnitOfWork

PURPOSE = "data_subject_request"


@dataclass(frozen=True)
class ErasureResult:
    applicant_id: str
    data_key_id: str
    erased_at: datetime


def _find_applicant(
    uow: UnitOfWork, indexer: BlindIndexer, institution_code: str, id_number: str
) -> tuple[m.Institution, m.Applicant]:
    ident = validate_resident_id(id_number, "id_number")
    institution = uow.institutions.by_code(institution_code.strip().upper())
    if institution is None:
        raise ValidationError.single(
            "institution", "institution.unknown", "no institution with this code"
        )
    applicant = uow.applicants.by_id_number(
        institution.id, indexer.index(IndexKind.ID_NUMBER, ident.value)
    )
    if applicant is None:
        raise ValidationError.single(
            "id_number", "subject.unknown", "no personal data is held for this person"
        )
    return institution, applicant


def export_subject(
    uow: UnitOfWork,
    vault: Vault,
    indexer: BlindIndexer,
    *,
    institution_code: str,
    id_number: str,
    at: datetime | None = None,
) -> dict[str, Any]:
    """Everything held about one person at one institution, decrypted (audited)."""
    at = at or now_utc()
    with uow:
        institution, applicant = _find_applicant(uow, indexer, institution_code, id_number)
        personal = reveal(
            uow, vault, applicant, fields=list(APPLICANT_FIELDS), purpose=PURPOSE, at=at
        )
        applications = uow.applications.of_applicant(applicant.id)
        loans = uow.loans.of_applicant(applicant.id)
        enterprises = {a.enterprise_id for a in applications}
        export = {
            "institution": institution.code,
            "exported_at": at.isoformat(),
            "person": {**personal, "birth_date": applicant.birth_date},
            "consents": [
                {
                    "purpose": c.purpose,
                    "scope": c.scope,
                    "text_version": c.text_version,
                    "channel": c.channel,
                    "granted_at": c.granted_at,
                    "withdrawn_at": c.withdrawn_at,
                }
                for c in uow.consents.for_applicant(applicant.id)
            ],
            "enterprises": [_enterprise(uow, vault, e) for e in sorted(enterprises)],
            "applications": [
                {
                    "id": a.id,
                    "external_ref": a.external_ref,
                    "amount": str(a.amount),
                    "term_months": a.term_months,
                    "repayment_method": a.repayment_method,
                    "purpose": a.purpose,
                    "state": a.state,
                    "submitted_at": a.submitted_at,
                }
                for a in applications
            ],
            "loans": [
                {
                    "id": ln.id,
                    "principal": str(ln.principal),
                    "apr": str(ln.apr),
                    "state": ln.state,
                    "outstanding_principal": str(ln.outstanding_principal),
                }
                for ln in loans
            ],
        }
        uow.record_event(
            aggregate_type="applicant",
            aggregate_id=applicant.id,
            event_type="subject.exported",
            institution_id=institution.id,
            purpose=PURPOSE,
            payload={"applications": len(applications)},
        )
        uow.commit()
        return export


def _enterprise(uow: UnitOfWork, vault: Vault, enterprise_id: str) -> dict[str, Any]:
    e = uow.enterprises.get(enterprise_id)
    assert e is not None
    try:
        uscc = (
            None
            if e.uscc_enc is None
            else vault.decrypt(
                wrapped_key(uow.data_keys.get(e.data_key_id)), e.uscc_enc, "enterprises.uscc"
            )
        )
    except PersonalDataErased:
        uscc = None
    return {
        "id": e.id,
        "name": e.name,
        "uscc": uscc,
        "industry_code": e.industry_code,
        "registered_on": e.registered_on,
        "annual_revenue": str(e.annual_revenue),
        "tax_grade": e.tax_grade,
    }


def erase_subject(
    uow: UnitOfWork,
    vault: Vault,
    indexer: BlindIndexer,
    *,
    institution_code: str,
    id_number: str,
    at: datetime | None = None,
) -> ErasureResult:
    """Crypto-shred one person's personal data, unless the law requires keeping it."""
    at = at or now_utc()
    with uow:
        institution, applicant = _find_applicant(uow, indexer, institution_code, id_number)
        open_loans = [
            ln.id
            for ln in uow.loans.of_applicant(applicant.id)
            if LoanState(ln.state) not in LOAN.terminal
        ]
        if open_loans:
            raise ValidationError.single(
                "id_number",
                "erasure.open_loan",
                f"{len(open_loans)} loan(s) still open: records must be kept until they close",
            )
        key = uow.data_keys.get(applicant.data_key_id)
        assert key is not None
        key.wrapped = None
        key.master_key_id = None
        key.shredded_at = at
        applicant.id_number_bidx = None
        applicant.mobile_bidx = None
        applicant.bank_account_bidx = None
        applicant.erased_at = at
        uow.record_event(
            aggregate_type="applicant",
            aggregate_id=applicant.id,
            event_type="subject.erased",
            institution_id=institution.id,
            purpose=PURPOSE,
            payload={"data_key_id": key.id},
        )
        uow.commit()
    vault.forget(key.id)
    return ErasureResult(applicant.id, key.id, at)
