"""Deferred audit sealing: records committed with their change, chained later by a sealer.

On both databases: nothing is lost or chained twice with writers and sealers running at once,
the chain verifies while it grows, inline and deferred writers can share one chain, and a
downgrade refuses to drop records that still wait.
"""

from __future__ import annotations

import threading
from collections import Counter

import pytest
from sqlalchemy import func, select, text

from puhui.privacy import audit, audit_sealer
from puhui.store import migrate
from puhui.store.models import AuditPending, AuditRecord
from puhui.store.unit_of_work import AuditSealing, UnitOfWork
from tests.conftest import Database


def _write(db: Database, ids: list[str], sealing: AuditSealing = "deferred") -> None:
    with UnitOfWork(db.sessions, actor="tester", audit_sealing=sealing) as uow:
        for subject in ids:
            uow.audit(action="test.action", subject_type="thing", subject_id=subject)
        uow.commit()


def _subjects(db: Database) -> list[str]:
    with db.sessions() as s:
        return list(s.scalars(select(AuditRecord.subject_id).order_by(AuditRecord.seq)))


def _waiting(db: Database) -> int:
    with db.sessions() as s:
        return int(s.scalar(select(func.count()).select_from(AuditPending)) or 0)


def _verify(db: Database) -> audit.VerifyReport:
    with db.sessions() as s:
        return audit.verify(s, batch_size=7)


def test_deferred_records_wait_uncovered_until_sealed_then_verify(database: Database) -> None:
    _write(database, ["a1", "a2"])
    _write(database, ["b1"])
    assert _subjects(database) == []
    report = _verify(database)
    assert report.ok and report.checked == 0
    assert report.waiting == 3 and report.oldest_waiting is not None

    assert audit_sealer.seal_all(database.sessions) == 3
    assert _subjects(database) == ["a1", "a2", "b1"]  # in commit order
    assert _waiting(database) == 0
    report = _verify(database)
    assert report.ok, report.problems
    assert (report.checked, report.head_seq, report.waiting) == (3, 3, 0)
    assert audit_sealer.seal_all(database.sessions) == 0  # nothing left; nothing re-chained


def test_a_rolled_back_deferred_transaction_leaves_nothing_waiting(database: Database) -> None:
    with UnitOfWork(database.sessions, audit_sealing="deferred") as uow:
        uow.audit(action="x", subject_type="thing", subject_id="gone")
    assert _waiting(database) == 0


def test_a_sealed_record_is_edited_detectably(database: Database) -> None:
    """Sealing hashes the record as it was written: an edit afterwards breaks the chain."""
    _write(database, ["a", "b", "c"])
    audit_sealer.seal_all(database.sessions)
    with database.sessions.begin() as s:
        s.execute(text("UPDATE audit_records SET actor = 'mallory' WHERE seq = 2"))
    report = _verify(database)
    assert any("record 2" in p and "edited" in p for p in report.problems)


def test_limit_seals_the_oldest_first_and_leaves_the_rest(database: Database) -> None:
    _write(database, [f"r{i}" for i in range(5)])
    assert audit_sealer.seal_once(database.sessions, limit=2) == 2
    assert _subjects(database) == ["r0", "r1"] and _waiting(database) == 3
    assert audit_sealer.seal_all(database.sessions, limit=2) == 3
    assert _subjects(database) == [f"r{i}" for i in range(5)]
    assert _verify(database).ok


def test_a_record_committed_while_the_sealer_works_waits_for_the_next_round(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On PostgreSQL a transaction can take a lower id and commit after a higher one was read:
    the sealer must remove exactly what it chained, not everything up to the highest id."""
    if database.kind != "postgresql":
        pytest.skip("SQLite serialises writers: none commits while the sealer works")
    late = database.sessions()
    audit.write_pending(
        late, [audit.entry(actor="t", action="a", subject_type="x", subject_id="late")]
    )
    late.execute(text("SELECT 1"))  # the insert is sent: "late" holds the lower id, uncommitted
    _write(database, ["early"])
    chain = audit._chain

    def commit_late_then_chain(*args: object, **kwargs: object) -> int:
        late.commit()  # lands after the sealer read what waits, before it removes it
        return chain(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(audit, "_chain", commit_late_then_chain)
    assert audit_sealer.seal_once(database.sessions) == 1
    monkeypatch.setattr(audit, "_chain", chain)
    late.close()
    assert _subjects(database) == ["early"] and _waiting(database) == 1
    assert audit_sealer.seal_all(database.sessions) == 1
    assert _subjects(database) == ["early", "late"]
    assert _verify(database).ok


def test_inline_and_deferred_writers_share_one_chain(database: Database) -> None:
    _write(database, ["inline-1"], "inline")
    _write(database, ["deferred-1"])
    _write(database, ["inline-2"], "inline")  # chained at once, ahead of the waiting record
    audit_sealer.seal_all(database.sessions)
    _write(database, ["inline-3"], "inline")
    assert _subjects(database) == ["inline-1", "inline-2", "deferred-1", "inline-3"]
    report = _verify(database)
    assert report.ok, report.problems
    assert report.head_seq == 4


def test_writers_and_two_sealers_at_once_lose_nothing_and_chain_nothing_twice(
    database: Database,
) -> None:
    writers, commits = 4, 12
    stop = threading.Event()
    errors: list[BaseException] = []

    def write(w: int) -> None:
        try:
            for c in range(commits):
                _write(database, [f"w{w}c{c}a", f"w{w}c{c}b"])
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    sealers = [
        threading.Thread(
            target=audit_sealer.run,
            args=(database.sessions, stop),
            kwargs={"interval": 0.01, "gather": 0.0, "limit": 5},
        )
        for _ in range(2)
    ]
    threads = [threading.Thread(target=write, args=(w,)) for w in range(writers)]
    for t in sealers + threads:
        t.start()
    live_reports = []
    for t in threads:
        while t.is_alive():
            live_reports.append(_verify(database))  # verifies while the chain grows
            t.join(timeout=0.05)
    stop.set()
    for t in sealers:
        t.join(timeout=60)
    assert not errors, errors
    subjects = _subjects(database)
    expected = {f"w{w}c{c}{x}" for w in range(writers) for c in range(commits) for x in "ab"}
    assert Counter(subjects) == Counter(expected)  # every record once
    for w in range(writers):  # one writer's records keep their commit order
        mine = [s for s in subjects if s.startswith(f"w{w}c")]
        assert mine == sorted(mine, key=lambda s: (int(s[len(f"w{w}c") : -1]), s[-1]))
    assert _waiting(database) == 0
    final = _verify(database)
    assert final.ok, final.problems
    assert final.checked == len(expected)
    assert all(r.ok for r in live_reports), [r.problems for r in live_reports if not r.ok]


def test_downgrade_refuses_to_drop_waiting_records(database: Database) -> None:
    _write(database, ["waiting"])
    with pytest.raises(RuntimeError, match="1 audit records wait to be sealed"):
        migrate.downgrade(database.url, "0005")
    assert _waiting(database) == 1
    audit_sealer.seal_all(database.sessions)
    migrate.downgrade(database.url, "0005")
    migrate.upgrade(database.url)
    assert _verify(database).ok
