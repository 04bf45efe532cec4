"""Use case: submit a loan application.

Validate everything first (``validate_submission``), then in one unit of work: check the
institution and the consent for the purpose (credit assessment), find or create the enterprise
and the legal representative by blind index, seal their personal data, record the consents,
create the application in state ``submitted``, and write the ``application.submitted`` event
and its audit record. A failure anywhere leaves nothing behind.

Retrying with the same institution and ``external_ref`` returns the application already
created (``replayed=True``); reusing the reference for a different application is refused.

It is the API's hot path, so it is written for few statements: one query finds the institution
and whichever of the application, the person and the business exist already, and new rows go
in with one INSERT per table (``UnitOfWork.insert``) rather than through the ORM's flush.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy.exc import IntegrityError

from puhui.domain.errors import ValidationError
from puhui.domain.lifecycle import ApplicationState
from puhui.fraud.link_store import links_of, record_links
from puhui.origination.submission import (
    EnterpriseInput,
    PersonInput,
    Submission,
    validate_submission,
)
from puhui.privacy import consent as consent_rules
from puhui.privacy.blind_index import BlindIndexer
from puhui.privacy.consent import DataCategory, Purpose
from puhui.privacy.masking import mask_mobile
from puhui.privacy.personal_data import seal, subject_key, wrapped_key
from puhui.privacy.vault import Vault, WrappedDataKey
from puhui.store import models as m
from puhui.store.unit_of_work import UnitOfWork

PURPOSE = Purpose.CREDIT_ASSESSMENT
CATEGORIES = frozenset(
    {
        DataCategory.IDENTITY,
        DataCategory.CONTACT,
        DataCategory.FINANCIAL_ACCOUNT,
        DataCategory.ENTERPRISE,
    }
)
"""What assessing an application processes; the applicant's consent must cover all of it."""


@dataclass(frozen=True)
class Receipt:
    application_id: str
    state: str
    applicant_id: str
    enterprise_id: str
    replayed: bool
    uscc_needs_verification: bool


def submit_application(
    uow: UnitOfWork, vault: Vault, indexer: BlindIndexer, raw: Mapping[str, Any]
) -> Receipt:
    """Validate and record one application; see the module docstring for the guarantees."""
    sub = validate_submission(raw)
    try:
        return _submit(uow, vault, indexer, sub)
    except IntegrityError:
        # A concurrent request with the same reference (or the same new person or business)
        # committed first; our transaction rolled back whole. Once more sees its rows.
        return _submit(uow, vault, indexer, sub)


def _submit(uow: UnitOfWork, vault: Vault, indexer: BlindIndexer, sub: Submission) -> Receipt:
    person = sub.legal_representative
    # Every blind index once: the link rows, the look-ups and the columns share them.
    links = links_of(
        indexer,
        (
            ("device", sub.device_id),
            ("ip", sub.ip),
            ("mobile", person.mobile.value),
            ("bank_account", person.bank_account.value),
            ("id_number", person.id_number.value),
            ("uscc", sub.enterprise.uscc.value),
            ("address", person.address),
        ),
    )
    index = {link.kind: link.key for link in links}
    id_bidx, uscc_bidx = index["id_number"], index["uscc"]
    with uow:
        found = uow.applications.submission_targets(
            sub.institution_code, sub.external_ref, id_bidx, uscc_bidx
        )
        if found is None:
            raise ValidationError.single(
                "institution_code", "institution.unknown", "no institution with this code"
            )
        if found.application_id is not None:
            existing = uow.applications.get(found.application_id)
            assert existing is not None
            return _replay(uow, existing, sub, id_bidx, uscc_bidx)

        applicant = None if found.applicant_id is None else uow.applicants.get(found.applicant_id)
        # Consent is checked before anything is written: the new grants and any on record.
        on_record = list(uow.consents.for_applicant(applicant.id)) if applicant else []
        proposed = [consent_rules.to_row("pending", g) for g in sub.consents]
        consent_rules.require(
            on_record + proposed,
            subject=applicant.id if applicant else "new",
            purpose=PURPOSE,
            categories=CATEGORIES,
            at=sub.submitted_at,
        )

        # New rows are written with one INSERT per table (``UnitOfWork.insert``), keys first:
        # the subjects reference their keys, the application its subjects, links the
        # application. Existing subjects are updated through the session and flushed at commit.
        keys: list[m.DataKey] = []
        rows: list[m.Base] = []
        institution_id = found.institution_id
        applicant = _seal_applicant(uow, vault, institution_id, applicant, person, index, keys)
        if applicant not in uow.session:
            rows.append(applicant)
        enterprise = (
            None if found.enterprise_id is None else uow.enterprises.get(found.enterprise_id)
        )
        enterprise = _seal_enterprise(
            vault, institution_id, enterprise, sub.enterprise, uscc_bidx, keys
        )
        if enterprise not in uow.session:
            rows.append(enterprise)
        rows += [consent_rules.to_row(applicant.id, grant) for grant in sub.consents]
        application = m.Application(
            id=m.new_id("app"),
            institution_id=institution_id,
            external_ref=sub.external_ref,
            enterprise_id=enterprise.id,
            applicant_id=applicant.id,
            amount=sub.amount,
            term_months=sub.term_months,
            repayment_method=sub.repayment_method.value,
            purpose=sub.purpose,
            channel=sub.channel,
            device_bidx=index.get("device") if sub.device_id else None,
            ip_bidx=index.get("ip") if sub.ip else None,
            state=ApplicationState.SUBMITTED.value,
            submitted_at=sub.submitted_at,
            business_date=sub.business_date,
        )
        rows.append(application)
        uow.insert(*keys, *rows)
        record_links(
            uow.session,
            application_id=application.id,
            institution_id=institution_id,
            identity=id_bidx,
            occurred_at=sub.submitted_at,
            links=links,
        )
        uow.record_event(
            aggregate_type="application",
            aggregate_id=application.id,
            event_type="application.submitted",
            institution_id=institution_id,
            purpose=PURPOSE.value,
            payload={
                "external_ref": sub.external_ref,
                "amount": str(sub.amount),
                "term_months": sub.term_months,
                "repayment_method": sub.repayment_method.value,
                "applicant_id": applicant.id,
                "enterprise_id": enterprise.id,
                "mobile": mask_mobile(person.mobile.value),
                "uscc_needs_verification": sub.enterprise.uscc.needs_registry_verification,
            },
        )
        uow.commit()
        return Receipt(
            application.id,
            application.state,
            applicant.id,
            enterprise.id,
            False,
            enterprise.uscc_needs_verification,
        )


def _replay(
    uow: UnitOfWork, existing: m.Application, sub: Submission, id_bidx: str, uscc_bidx: str
) -> Receipt:
    applicant = uow.applicants.get(existing.applicant_id)
    enterprise = uow.enterprises.get(existing.enterprise_id)
    assert applicant is not None and enterprise is not None
    same = (
        applicant.id_number_bidx == id_bidx
        and enterprise.uscc_bidx == uscc_bidx
        and existing.amount == sub.amount
        and existing.term_months == sub.term_months
        and existing.repayment_method == sub.repayment_method.value
    )
    if not same:
        raise ValidationError.single(
            "external_ref",
            "application.external_ref_reused",
            "this reference was already used for a different application",
        )
    return Receipt(
        existing.id,
        existing.state,
        applicant.id,
        enterprise.id,
        True,
        enterprise.uscc_needs_verification,
    )


def _seal_applicant(
    uow: UnitOfWork,
    vault: Vault,
    institution_id: str,
    applicant: m.Applicant | None,
    person: PersonInput,
    index: Mapping[str, str],
    keys: list[m.DataKey],
) -> m.Applicant:
    """The applicant with the person's data sealed: a new row (not in the session, with its
    new data key appended to ``keys``), or the one on record updated in the session."""
    key: WrappedDataKey | None
    if applicant is None or applicant.erased_at is not None:
        key, key_row = subject_key(vault)
        keys.append(key_row)
        if applicant is None:
            applicant = m.Applicant(
                id=m.new_id("apl"), institution_id=institution_id, data_key_id=key.key_id
            )
        else:  # a person erased earlier applies again: a fresh key, a fresh record
            applicant.data_key_id = key.key_id
            applicant.erased_at = None
    else:
        key = wrapped_key(uow.data_keys.get(applicant.data_key_id))
        assert key is not None
    t = "applicants"
    applicant.name_enc = seal(vault, key, t, "name", person.name)
    applicant.id_number_enc = seal(vault, key, t, "id_number", person.id_number.value)
    applicant.mobile_enc = seal(vault, key, t, "mobile", person.mobile.value)
    applicant.bank_account_enc = seal(vault, key, t, "bank_account", person.bank_account.value)
    applicant.address_enc = seal(vault, key, t, "address", person.address)
    applicant.id_number_bidx = index["id_number"]
    applicant.mobile_bidx = index["mobile"]
    applicant.bank_account_bidx = index["bank_account"]
    applicant.birth_date = person.id_number.birth_date
    return applicant


def _seal_enterprise(
    vault: Vault,
    institution_id: str,
    enterprise: m.Enterprise | None,
    ent: EnterpriseInput,
    uscc_bidx: str,
    keys: list[m.DataKey],
) -> m.Enterprise:
    """The enterprise with this submission's facts: a new row (its key appended to ``keys``)
    or the one on record, updated in the session."""
    if enterprise is None:
        key, key_row = subject_key(vault)
        keys.append(key_row)
        enterprise = m.Enterprise(
            id=m.new_id("ent"),
            institution_id=institution_id,
            data_key_id=key.key_id,
            uscc_bidx=uscc_bidx,
            uscc_enc=seal(vault, key, "enterprises", "uscc", ent.uscc.value),
        )
    enterprise.name = ent.name
    enterprise.uscc_needs_verification = ent.uscc.needs_registry_verification
    enterprise.industry_code = ent.industry_code
    enterprise.division_code = ent.division_code
    enterprise.registered_on = ent.registered_on
    enterprise.annual_revenue = ent.annual_revenue
    enterprise.tax_grade = ent.tax_grade
    enterprise.employees = ent.employees
    return enterprise
