"""Data-subject requests, consent-checked reveal, and key rotation on a live database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select

from puhui.domain.errors import ValidationError
from puhui.origination.submit import submit_application
from puhui.privacy import audit
from puhui.privacy.blind_index import BlindIndexer
from puhui.privacy.consent import Purpose, withdraw
from puhui.privacy.errors import ConsentRequired, PersonalDataErased
from puhui.privacy.keys import KeyRing
from puhui.privacy.personal_data import reveal, wrapped_key
from puhui.privacy.rotation import rewrap_all
from puhui.privacy.subject_requests import erase_subject, export_subject
from puhui.privacy.vault import Vault
from puhui.store import models as m
from puhui.store.unit_of_work import UnitOfWork
from tests import factories
from tests.conftest import Database

AT = datetime(2026, 11, 28, 3, 0, tzinfo=UTC)


def _submit(db: Database, vault: Vault, indexer: BlindIndexer, **overrides: object) -> str:
    receipt = submit_application(
        UnitOfWork(db.sessions), vault, indexer, factories.application(**overrides)
    )
    return receipt.applicant_id


def _uow(db: Database) -> UnitOfWork:
    return UnitOfWork(db.sessions, actor="dpo")


def test_export_returns_everything_decrypted_and_is_audited(
    database: Database, institution: str, vault: Vault, indexer: BlindIndexer
) -> None:
    _submit(database, vault, indexer)
    _submit(database, vault, indexer, external_ref="REF-0002")
    data = export_subject(
        _uow(database),
        vault,
        indexer,
        institution_code=institution,
        id_number=factories.ID_NUMBER,
        at=AT,
    )
    assert data["person"]["id_number"] == factories.ID_NUMBER
    assert data["person"]["mobile"] == factories.MOBILE
    assert data["person"]["bank_account"] == factories.BANK_CARD
    assert len(data["applications"]) == 2
    assert data["enterprises"][0]["uscc"] == factories.USCC
    assert data["consents"][0]["purpose"] == "credit_assessment"
    with database.sessions() as s:
        actions = [r.action for r in s.scalars(select(m.AuditRecord).order_by(m.AuditRecord.seq))]
        reads = s.scalars(
            select(m.AuditRecord).where(m.AuditRecord.action == "personal_data.read")
        ).all()
        assert "subject.exported" in actions
        assert reads[-1].purpose == "data_subject_request" and reads[-1].actor == "dpo"
        assert factories.ID_NUMBER not in str([r.details for r in reads])
        assert audit.verify(s).ok


def test_export_of_unknown_person_names_the_rule(
    database: Database, institution: str, vault: Vault, indexer: BlindIndexer
) -> None:
    with pytest.raises(ValidationError) as caught:
        export_subject(
            _uow(database),
            vault,
            indexer,
            institution_code=institution,
            id_number=factories.id_number("19700101"),
        )
    assert caught.value.rules == ("subject.unknown",)
    with pytest.raises(ValidationError) as caught:
        export_subject(
            _uow(database), vault, indexer, institution_code=institution, id_number="123"
        )
    assert caught.value.rules == ("gb11643.length",)


def test_erasure_shreds_the_key_and_nothing_decrypts_afterwards(
    database: Database, institution: str, vault: Vault, indexer: BlindIndexer
) -> None:
    applicant_id = _submit(database, vault, indexer)
    result = erase_subject(
        _uow(database),
        vault,
        indexer,
        institution_code=institution,
        id_number=factories.ID_NUMBER,
        at=AT,
    )
    assert result.applicant_id == applicant_id
    fresh_vault = Vault(vault.keyring)  # no cached keys: as another worker would see it
    with database.sessions() as s:
        applicant = s.get(m.Applicant, applicant_id)
        assert applicant is not None and applicant.id_number_enc is not None
        key = s.get(m.DataKey, applicant.data_key_id)
        assert key is not None and key.wrapped is None and key.shredded_at is not None
        assert applicant.id_number_bidx is None and applicant.mobile_bidx is None
        for v in (vault, fresh_vault):
            with pytest.raises(PersonalDataErased):
                v.decrypt(wrapped_key(key), applicant.id_number_enc, "applicants.id_number")
        assert audit.verify(s).ok
    # The person is no longer findable by their identifiers.
    with pytest.raises(ValidationError) as caught:
        export_subject(
            _uow(database),
            vault,
            indexer,
            institution_code=institution,
            id_number=factories.ID_NUMBER,
        )
    assert caught.value.rules == ("subject.unknown",)


def test_erasure_is_refused_while_a_loan_is_open(
    database: Database, institution: str, vault: Vault, indexer: BlindIndexer
) -> None:
    applicant_id = _submit(database, vault, indexer)
    with database.sessions.begin() as s:
        app = s.scalars(select(m.Application)).one()
        offer = m.Offer(
            application_id=app.id,
            amount=Decimal("300000.00"),
            annual_rate=Decimal("0.06"),
            apr=Decimal("0.0617"),
            term_months=12,
            repayment_method="equal_installment",
            day_count="30/360",
            total_interest=Decimal("9835.60"),
            total_cost=Decimal("9835.60"),
            expires_at=AT + timedelta(days=7),
            indicative_start=AT.date(),
        )
        s.add(offer)
        s.flush()
        s.add(
            m.Loan(
                institution_id=app.institution_id,
                application_id=app.id,
                offer_id=offer.id,
                applicant_id=applicant_id,
                principal=Decimal("300000.00"),
                annual_rate=Decimal("0.06"),
                apr=Decimal("0.0617"),
                term_months=12,
                repayment_method="equal_installment",
                day_count="30/360",
                state="active",
                outstanding_principal=Decimal("300000.00"),
                contracted_at=AT,
            )
        )
    with pytest.raises(ValidationError) as caught:
        erase_subject(
            _uow(database),
            vault,
            indexer,
            institution_code=institution,
            id_number=factories.ID_NUMBER,
        )
    assert caught.value.rules == ("erasure.open_loan",)
    with database.sessions() as s:
        key = s.scalars(select(m.DataKey)).first()
        assert key is not None and key.wrapped is not None


def test_reveal_needs_consent_for_the_purpose_and_respects_withdrawal(
    database: Database, institution: str, vault: Vault, indexer: BlindIndexer
) -> None:
    applicant_id = _submit(database, vault, indexer)
    with _uow(database) as uow:
        applicant = uow.applicants.get(applicant_id)
        assert applicant is not None
        got = reveal(uow, vault, applicant, fields=["mobile"], purpose="credit_assessment", at=AT)
        assert got == {"mobile": factories.MOBILE}
        with pytest.raises(ConsentRequired):
            reveal(uow, vault, applicant, fields=["mobile"], purpose="marketing", at=AT)
        uow.commit()
    assert (
        withdraw(
            _uow(database), applicant_id=applicant_id, purpose=Purpose.CREDIT_ASSESSMENT, at=AT
        )
        == 1
    )
    with _uow(database) as uow:
        applicant = uow.applicants.get(applicant_id)
        assert applicant is not None
        with pytest.raises(ConsentRequired):
            reveal(
                uow,
                vault,
                applicant,
                fields=["mobile"],
                purpose="credit_assessment",
                at=AT + timedelta(seconds=1),
            )
        # before the withdrawal it was allowed, and an audit of that past use still checks out
        reveal(
            uow,
            vault,
            applicant,
            fields=["mobile"],
            purpose="credit_assessment",
            at=AT - timedelta(seconds=1),
        )
    with pytest.raises(ValidationError) as caught:
        withdraw(_uow(database), applicant_id="apl_nobody", purpose=Purpose.MARKETING, at=AT)
    assert caught.value.rules == ("subject.unknown",)


def test_rotation_rewraps_every_data_key_and_data_still_decrypts(
    database: Database, institution: str, vault: Vault, indexer: BlindIndexer, keyring: KeyRing
) -> None:
    _submit(database, vault, indexer)
    _submit(
        database,
        vault,
        indexer,
        external_ref="R2",
        legal_representative={"id_number": factories.id_number("19850505")},
        enterprise={"uscc": "91110000600037341L"},
    )
    old_master = keyring.active_master_id
    running_worker = Vault(KeyRing.load(keyring.key_dir))  # loaded before the rotation
    with database.sessions() as s:
        tokens_before = sorted(a.id_number_enc or "" for a in s.scalars(select(m.Applicant)))
    new_master = keyring.rotate_master()
    progress: list[tuple[int, int]] = []
    result = rewrap_all(
        database.sessions, vault, batch_size=1, on_progress=lambda d, t: progress.append((d, t))
    )
    assert result.rewrapped == 4 and progress[-1] == (4, 4)  # 2 people + 2 enterprises
    with UnitOfWork(database.sessions) as uow:
        assert uow.data_keys.count_by_master() == {new_master: 4}
    keyring.drop_master(old_master, remaining_wrapped=0, grace=timedelta(0))
    fresh = Vault(KeyRing.load(keyring.key_dir))
    with database.sessions() as s:
        applicants = s.scalars(select(m.Applicant)).all()
        assert sorted(a.id_number_enc or "" for a in applicants) == tokens_before  # untouched
        for a in applicants:
            key = wrapped_key(s.get(m.DataKey, a.data_key_id))
            assert a.id_number_enc is not None
            for v in (fresh, running_worker):
                assert v.decrypt(key, a.id_number_enc, "applicants.id_number").startswith("1101")
