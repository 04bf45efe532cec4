"""Submitting an application: validation before any write, consent, sealing, one transaction."""

from __future__ import annotations

import threading
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import func, select, text

from puhui.domain.errors import ValidationError
from puhui.origination.submit import submit_application
from puhui.privacy import audit
from puhui.privacy.blind_index import BlindIndexer, IndexKind
from puhui.privacy.errors import ConsentRequired
from puhui.privacy.vault import Vault
from puhui.store import models as m
from puhui.store.unit_of_work import UnitOfWork
from tests import factories
from tests.conftest import Database

TABLES = [m.Enterprise, m.Applicant, m.Application, m.Consent, m.DataKey, m.Event, m.AuditRecord]


def _counts(db: Database) -> dict[str, int]:
    with db.sessions() as s:
        return {
            t.__tablename__: int(s.scalar(select(func.count()).select_from(t)) or 0) for t in TABLES
        }


def _submit(db: Database, vault: Vault, indexer: BlindIndexer, raw: dict[str, Any]) -> Any:
    return submit_application(UnitOfWork(db.sessions, actor="test"), vault, indexer, raw)


def test_submission_creates_sealed_records_event_and_audit(
    database: Database, institution: str, vault: Vault, indexer: BlindIndexer
) -> None:
    receipt = _submit(database, vault, indexer, factories.application())
    assert receipt.state == "submitted" and not receipt.replayed
    with database.sessions() as s:
        app = s.get(m.Application, receipt.application_id)
        applicant = s.get(m.Applicant, receipt.applicant_id)
        assert app is not None and applicant is not None
        assert app.amount == Decimal("300000.00") and app.term_months == 12
        assert str(app.business_date) == "2026-11-28"  # 02:30 UTC is 10:30 in Shanghai
        assert applicant.id_number_bidx == indexer.index(IndexKind.ID_NUMBER, factories.ID_NUMBER)
        events = s.scalars(select(m.Event).where(m.Event.aggregate_id == app.id)).all()
        assert [e.event_type for e in events] == ["application.submitted"]
        assert events[0].payload["mobile"] == "138****5678"
        assert audit.verify(s).ok


def test_no_plaintext_personal_data_in_any_table(
    database: Database, institution: str, vault: Vault, indexer: BlindIndexer
) -> None:
    _submit(database, vault, indexer, factories.application())
    secrets = [
        factories.ID_NUMBER,
        factories.MOBILE,
        factories.BANK_CARD,
        factories.NAME,
        "建国路",
        factories.USCC,
    ]
    with database.engine.connect() as conn:
        for table in m.Base.metadata.sorted_tables:
            for row in conn.execute(table.select()):
                dumped = " ".join(str(v) for v in row)
                for secret in secrets:
                    assert secret not in dumped, f"{secret!r} in plaintext in {table.name}"


def test_every_field_error_is_listed_and_nothing_is_written(
    database: Database, institution: str, vault: Vault, indexer: BlindIndexer
) -> None:
    before = _counts(database)
    raw = factories.application(
        amount="12.345",
        term_months=0,
        repayment_method="balloon",
        channel="fax",
        ip="999.1.1.1",
        enterprise={
            "uscc": "91110108551385082",
            "tax_grade": "E",
            "division_code": "990000",
            "registered_on": "2999-01-01",
            "industry_code": "Z99",
        },
        legal_representative={
            "id_number": "110105194912310021",
            "mobile": "12345678901",
            "bank_account": "6222020200112233440",
            "name": "",
        },
    )
    with pytest.raises(ValidationError) as caught:
        _submit(database, vault, indexer, raw)
    got = {(e.field, e.rule) for e in caught.value.errors}
    expected = {
        ("amount", "money.precision"),
        ("term_months", "application.term_range"),
        ("repayment_method", "application.repayment_method"),
        ("channel", "application.channel"),
        ("ip", "application.ip"),
        ("enterprise.tax_grade", "tax.grade"),
        ("enterprise.division_code", "gb2260.division"),
        ("enterprise.registered_on", "enterprise.registered_in_past"),
        ("enterprise.industry_code", "gb4754.format"),
        ("legal_representative.id_number", "gb11643.check_digit"),
        ("legal_representative.mobile", "mobile.format"),
        ("legal_representative.bank_account", "bank_card.luhn"),
        ("legal_representative.name", "required"),
    }
    assert expected <= got, expected - got
    assert ("enterprise.uscc", "uscc.length") in got
    assert factories.MOBILE not in str(caught.value)
    assert _counts(database) == before


def test_minor_legal_representative_is_refused(
    database: Database, institution: str, vault: Vault, indexer: BlindIndexer
) -> None:
    raw = factories.application(legal_representative={"id_number": factories.id_number("20150101")})
    with pytest.raises(ValidationError) as caught:
        _submit(database, vault, indexer, raw)
    assert caught.value.rules == ("person.adult",)


def test_naive_submission_time_is_refused(
    database: Database, institution: str, vault: Vault, indexer: BlindIndexer
) -> None:
    from datetime import datetime

    with pytest.raises(ValidationError) as caught:
        _submit(
            database,
            vault,
            indexer,
            factories.application(submitted_at=datetime(2026, 11, 28, 10, 0)),
        )
    assert ("submitted_at", "time.timezone") in {(e.field, e.rule) for e in caught.value.errors}


def test_unknown_institution_writes_nothing(
    database: Database, institution: str, vault: Vault, indexer: BlindIndexer
) -> None:
    before = _counts(database)
    with pytest.raises(ValidationError) as caught:
        _submit(database, vault, indexer, factories.application(institution_code="NOPE"))
    assert caught.value.rules == ("institution.unknown",)
    assert _counts(database) == before


def test_without_consent_for_the_purpose_it_is_refused(
    database: Database, institution: str, vault: Vault, indexer: BlindIndexer
) -> None:
    before = _counts(database)
    raw = factories.application(
        consents=[
            {"purpose": "marketing", "scope": ["contact"], "text_version": "1", "channel": "app"}
        ]
    )
    with pytest.raises(ConsentRequired) as caught:
        _submit(database, vault, indexer, raw)
    assert caught.value.purpose == "credit_assessment"
    assert _counts(database) == before


def test_consent_that_does_not_cover_bank_account_is_refused(
    database: Database, institution: str, vault: Vault, indexer: BlindIndexer
) -> None:
    raw = factories.application(
        consents=[
            {
                "purpose": "credit_assessment",
                "scope": ["identity", "contact", "enterprise"],
                "text_version": "1",
                "channel": "app",
            }
        ]
    )
    with pytest.raises(ConsentRequired, match="financial_account"):
        _submit(database, vault, indexer, raw)


def test_retry_with_same_reference_returns_the_same_application(
    database: Database, institution: str, vault: Vault, indexer: BlindIndexer
) -> None:
    first = _submit(database, vault, indexer, factories.application())
    after_first = _counts(database)
    again = _submit(database, vault, indexer, factories.application())
    assert again.replayed and again.application_id == first.application_id
    assert _counts(database) == after_first
    with pytest.raises(ValidationError) as caught:
        _submit(database, vault, indexer, factories.application(amount="500000.00"))
    assert caught.value.rules == ("application.external_ref_reused",)


def test_second_application_of_same_person_reuses_their_records(
    database: Database, institution: str, vault: Vault, indexer: BlindIndexer
) -> None:
    a = _submit(database, vault, indexer, factories.application())
    b = _submit(database, vault, indexer, factories.application(external_ref="REF-0002"))
    assert a.applicant_id == b.applicant_id and a.enterprise_id == b.enterprise_id
    assert a.application_id != b.application_id


def test_uscc_failing_only_its_checksum_is_flagged_not_accepted_silently(
    database: Database, institution: str, vault: Vault, indexer: BlindIndexer
) -> None:
    raw = factories.application(enterprise={"uscc": "91350100M0001TGQXM"})
    receipt = _submit(database, vault, indexer, raw)
    assert receipt.uscc_needs_verification
    with database.sessions() as s:
        ent = s.get(m.Enterprise, receipt.enterprise_id)
        assert ent is not None and ent.uscc_needs_verification


def test_a_failure_after_some_writes_rolls_everything_back(
    database: Database,
    institution: str,
    vault: Vault,
    indexer: BlindIndexer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    before = _counts(database)

    def boom(*_a: object, **_k: object) -> None:
        raise RuntimeError("outbox unavailable")

    monkeypatch.setattr(UnitOfWork, "record_event", boom)
    with pytest.raises(RuntimeError):
        _submit(database, vault, indexer, factories.application())
    assert _counts(database) == before


def test_concurrent_retries_create_one_application(
    database: Database, institution: str, vault: Vault, indexer: BlindIndexer
) -> None:
    results: list[Any] = []
    errors: list[BaseException] = []

    def go() -> None:
        try:
            results.append(_submit(database, vault, indexer, factories.application()))
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=go) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert len({r.application_id for r in results}) == 1
    assert sum(not r.replayed for r in results) == 1
    with database.engine.connect() as conn:
        assert conn.execute(text("select count(*) from applications")).scalar() == 1
    with database.sessions() as s:
        assert audit.verify(s).ok


def test_concurrent_distinct_submissions_keep_one_unbroken_audit_chain(
    database: Database, institution: str, vault: Vault, indexer: BlindIndexer
) -> None:
    errors: list[BaseException] = []

    def worker(w: int) -> None:
        for i in range(4):
            raw = factories.application(
                external_ref=f"W{w}-{i}",
                legal_representative={"id_number": factories.id_number(f"198{w}0{i + 1}15")},
            )
            try:
                _submit(database, vault, indexer, raw)
            except BaseException as exc:  # collected and asserted below
                errors.append(exc)

    threads = [threading.Thread(target=worker, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    with database.sessions() as s:
        assert s.scalar(select(func.count()).select_from(m.Application)) == 16
        report = audit.verify(s)
        assert report.ok, report.problems
        seqs = s.scalars(select(m.AuditRecord.seq).order_by(m.AuditRecord.seq)).all()
        assert seqs == list(range(1, len(seqs) + 1))
