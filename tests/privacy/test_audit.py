"""The audit chain: appends in the caller's transaction; verify finds edits, deletions, reorders."""

from __future__ import annotations

from sqlalchemy import delete, select, update

from puhui.privacy import audit
from puhui.store.models import AuditHead, AuditRecord
from puhui.store.unit_of_work import UnitOfWork
from tests.conftest import Database


def _write(db: Database, n: int) -> None:
    with UnitOfWork(db.sessions, actor="tester") as uow:
        for i in range(n):
            uow.audit(
                action="test.action",
                subject_type="thing",
                subject_id=f"t{i}",
                details={"i": i, "note": "维护"},
            )
        uow.commit()


def _verify(db: Database) -> audit.VerifyReport:
    with db.sessions() as s:
        return audit.verify(s, batch_size=3)


def test_chain_of_several_transactions_verifies(database: Database) -> None:
    _write(database, 4)
    _write(database, 3)
    report = _verify(database)
    assert report.ok, report.problems
    assert report.checked == 7 and report.head_seq == 7


def test_rolled_back_transaction_leaves_no_record_and_no_gap(database: Database) -> None:
    _write(database, 2)
    with UnitOfWork(database.sessions) as uow:
        uow.audit(action="x", subject_type="thing", subject_id="gone")
        # leaves without commit: rolled back
    _write(database, 1)
    report = _verify(database)
    assert report.ok, report.problems
    with database.sessions() as s:
        assert [r.subject_id for r in s.scalars(select(AuditRecord).order_by(AuditRecord.seq))] == [
            "t0",
            "t1",
            "t0",
        ]


def test_edited_record_is_found(database: Database) -> None:
    _write(database, 5)
    with database.sessions.begin() as s:
        s.execute(update(AuditRecord).where(AuditRecord.seq == 3).values(actor="mallory"))
    report = _verify(database)
    assert not report.ok
    assert any("record 3" in p and "edited" in p for p in report.problems)


def test_deleted_record_is_found(database: Database) -> None:
    _write(database, 5)
    with database.sessions.begin() as s:
        s.execute(delete(AuditRecord).where(AuditRecord.seq == 2))
    report = _verify(database)
    assert any("record 2: missing" in p for p in report.problems)


def test_deleted_tail_is_found_through_the_head(database: Database) -> None:
    _write(database, 5)
    with database.sessions.begin() as s:
        s.execute(delete(AuditRecord).where(AuditRecord.seq == 5))
    report = _verify(database)
    assert any("head says record 5" in p for p in report.problems)


def test_reordered_records_are_found(database: Database) -> None:
    _write(database, 4)
    with database.sessions.begin() as s:
        r2 = s.get(AuditRecord, 2)
        r3 = s.get(AuditRecord, 3)
        assert r2 is not None and r3 is not None
        a, b = (
            (r2.subject_id, r2.details, r2.hash, r2.prev_hash),
            (r3.subject_id, r3.details, r3.hash, r3.prev_hash),
        )
        # swap contents; unique hash forces a temporary value
        r2.hash = "tmp"
        s.flush()
        r3.subject_id, r3.details, r3.hash, r3.prev_hash = a
        s.flush()
        r2.subject_id, r2.details, r2.hash, r2.prev_hash = b
    report = _verify(database)
    assert not report.ok
    assert any("record 2" in p for p in report.problems)


def test_forged_head_is_found(database: Database) -> None:
    _write(database, 3)
    with database.sessions.begin() as s:
        s.execute(update(AuditHead).values(hash="f" * 64))
    assert not _verify(database).ok


def test_details_are_canonical_json(database: Database) -> None:
    from decimal import Decimal

    with UnitOfWork(database.sessions) as uow:
        uow.audit(
            action="x", subject_type="thing", subject_id="d", details={"amount": Decimal("12.30")}
        )
        uow.commit()
    assert _verify(database).ok
