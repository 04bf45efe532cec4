"""Append-only, hash-chained audit log.

Each record's hash covers its own content, its sequence number and the previous record's hash,
so editing, deleting or reordering any record breaks the chain from that point on; the single
``audit_head`` row catches a deleted tail. Appenders lock the head row, so concurrent
transactions queue instead of forking the chain (PostgreSQL ``SELECT … FOR UPDATE``; SQLite
serialises writers with ``BEGIN IMMEDIATE``).

A unit of work collects its records and hands them over just before it commits, in one of two
ways (``Settings.audit_sealing``):

* **inline** (:func:`write`): chained in the transaction itself — one head lock, one
  multi-row insert and one head move. The record is in the chain the moment the change is
  committed, but the head stays locked until the commit is on disk, so every writer in the
  system queues there: under concurrent API load that queue, not the CPU, bounded
  PostgreSQL's throughput (BENCHMARKS.md, issue 3). The CLI, jobs and tests use it.
* **deferred** (:func:`write_pending`): committed with the change into ``audit_pending``,
  without touching the head; a sealer (:mod:`puhui.privacy.audit_sealer` — ``puhui serve``
  runs one) chains whatever waits, in the order it was written, many transactions' records
  per head lock, usually within half a second. The change is still never committed without its
  record; what changes is that a waiting record is not yet protected by the chain, so the
  window in which an operator with write access could alter it unseen is that half-second.
  :func:`verify` reports how many records wait and since when.

Both ways can run against one database at once: the chain's order is the order records were
sealed, and :func:`verify` checks it the same way.

Records carry ids, field names and masked values only — never personal data in the clear. An
operator who can rewrite the whole table can rewrite the chain too: publish the head hash that
``puhui audit verify`` prints to somewhere the database administrator cannot write (a
ticket, a WORM bucket) to anchor it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import bindparam, delete, func, insert, select, update
from sqlalchemy.orm import Session

from puhui.store import direct
from puhui.store.models import AuditHead, AuditPending, AuditRecord, table

GENESIS_HASH = "0" * 64
SEAL_BATCH = 1000
"""Waiting records one :func:`seal` chains at most (one transaction, one multi-row insert)."""


def _canonical_details(details: Mapping[str, Any] | None) -> dict[str, Any]:
    """JSON-native details (Decimals and dates become strings) so the hash survives a round trip."""
    return dict(json.loads(json.dumps(dict(details or {}), default=str, sort_keys=True)))


def record_hash(
    prev_hash: str,
    seq: int,
    occurred_at: datetime,
    actor: str,
    action: str,
    subject_type: str,
    subject_id: str,
    purpose: str | None,
    details: Mapping[str, Any],
) -> str:
    body = json.dumps(
        {
            "seq": seq,
            "occurred_at": occurred_at.astimezone(UTC).isoformat(timespec="microseconds"),
            "actor": actor,
            "action": action,
            "subject_type": subject_type,
            "subject_id": subject_id,
            "purpose": purpose,
            "details": details,
        },
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return hashlib.sha256(f"{prev_hash}\n{body}".encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Entry:
    """One audit record waiting for its place in the chain (see :func:`write`).

    ``details`` are already canonical: the caller's mapping is snapshotted when the entry is
    made, so a later change to that mapping cannot reach the log."""

    occurred_at: datetime
    actor: str
    action: str
    subject_type: str
    subject_id: str
    purpose: str | None
    details: dict[str, Any]


def entry(
    *,
    actor: str,
    action: str,
    subject_type: str,
    subject_id: str,
    purpose: str | None = None,
    details: Mapping[str, Any] | None = None,
    at: datetime | None = None,
) -> Entry:
    """An :class:`Entry` stamped now (or ``at``), UTC, with canonical details."""
    return Entry(
        (at or datetime.now(UTC)).astimezone(UTC),
        actor,
        action,
        subject_type,
        subject_id,
        purpose,
        _canonical_details(details),
    )


_HEAD = table(AuditHead)
_LOCK_HEAD = select(_HEAD.c.seq, _HEAD.c.hash).where(_HEAD.c.id == 1).with_for_update()
_MOVE_HEAD = (
    update(_HEAD)
    .where(_HEAD.c.id == 1)
    .values(seq=bindparam("new_seq"), hash=bindparam("new_hash"))
)
_RECORDS = table(AuditRecord)


_PENDING = table(AuditPending)
_ANY_WAITING = select(_PENDING.c.id).order_by(_PENDING.c.id).limit(1)
_WAITING = (
    select(
        _PENDING.c.id,
        _PENDING.c.occurred_at,
        _PENDING.c.actor,
        _PENDING.c.action,
        _PENDING.c.subject_type,
        _PENDING.c.subject_id,
        _PENDING.c.purpose,
        _PENDING.c.details,
    )
    .order_by(_PENDING.c.id)
    .limit(bindparam("limit"))
)


def _as_row(e: Entry) -> dict[str, Any]:
    return {
        "occurred_at": e.occurred_at,
        "actor": e.actor,
        "action": e.action,
        "subject_type": e.subject_type,
        "subject_id": e.subject_id,
        "purpose": e.purpose,
        "details": e.details,
    }


def write(session: Session, entries: Sequence[Entry]) -> int:
    """Chain ``entries``, in order, onto the log in the session's transaction (inline
    sealing); returns the new head's sequence number (the old one when there is nothing to
    write).

    The head row is locked, read and moved once per call, and the records go in as one
    multi-row insert: a unit of work collects its entries and calls this once, just before
    it commits (``store.unit_of_work``). Locking late keeps the head — the one row every
    writer queues on — locked for the end of the transaction only, not from its first change.
    Each record's hash is computed exactly as :func:`record_hash` defines it, so
    :func:`verify` checks records written one at a time and in batches alike.
    """
    conn = session.connection()
    head = direct.execute(conn, _LOCK_HEAD).first()
    return _chain(session, head, entries)


def write_pending(session: Session, entries: Sequence[Entry]) -> None:
    """Commit ``entries`` with the session's transaction for the sealer to chain later
    (deferred sealing): one multi-row insert, no lock on the head."""
    if entries:
        rows = [_as_row(e) for e in entries]
        direct.insert_rows(session.connection(), _PENDING, rows, later=True)


def seal(session: Session, *, limit: int = SEAL_BATCH) -> int:
    """Chain up to ``limit`` waiting records, in the order they were written (their ids), in
    the session's transaction (the caller commits); returns how many.

    The head is locked before the waiting records are read, so a second sealer waits for the
    first to commit and then finds only what the first left. The records are removed by id,
    not by range: on PostgreSQL a transaction can commit a lower id after a higher one was
    read, and that record must wait for the next round rather than vanish. When nothing
    waits, nothing is locked — an idle sealer writes nothing.
    """
    conn = session.connection()
    if direct.execute(conn, _ANY_WAITING).first() is None:
        return 0
    head = direct.execute(conn, _LOCK_HEAD).first()
    rows = direct.execute(conn, _WAITING, {"limit": limit}).rows
    if not rows:  # another sealer took them while this one waited for the head
        return 0
    _chain(session, head, [_waiting_entry(r) for r in rows])
    conn.execute(delete(_PENDING).where(_PENDING.c.id.in_([r[0] for r in rows])))
    return len(rows)


def _waiting_entry(row: tuple[Any, ...]) -> Entry:
    _id, occurred_at, actor, action, subject_type, subject_id, purpose, details = row
    return Entry(occurred_at, actor, action, subject_type, subject_id, purpose, dict(details))


def waiting(session: Session) -> tuple[int, datetime | None]:
    """How many records wait to be sealed, and when the oldest of them happened."""
    count, oldest = session.execute(select(func.count(), func.min(AuditPending.occurred_at))).one()
    return int(count or 0), oldest


def _chain(session: Session, head: tuple[Any, ...] | None, entries: Sequence[Entry]) -> int:
    """Hash ``entries`` onto ``head`` (locked by the caller), insert them, move the head."""
    seq, prev = (0, GENESIS_HASH) if head is None else (int(head[0]), str(head[1]))
    if not entries:
        return seq
    rows = []
    for e in entries:
        seq += 1
        digest = record_hash(
            prev,
            seq,
            e.occurred_at,
            e.actor,
            e.action,
            e.subject_type,
            e.subject_id,
            e.purpose,
            e.details,
        )
        rows.append({"seq": seq, **_as_row(e), "prev_hash": prev, "hash": digest})
        prev = digest
    conn = session.connection()
    direct.insert_rows(conn, _RECORDS, rows, later=True)
    if head is None:  # a database whose migration did not seed the head
        conn.execute(insert(_HEAD).values(id=1, seq=seq, hash=prev))
    else:
        direct.execute(conn, _MOVE_HEAD, {"new_seq": seq, "new_hash": prev}, later=True)
    return seq


def append(
    session: Session,
    *,
    actor: str,
    action: str,
    subject_type: str,
    subject_id: str,
    purpose: str | None = None,
    details: Mapping[str, Any] | None = None,
    at: datetime | None = None,
) -> int:
    """Append one record now, in the caller's transaction (it commits or rolls back with the
    change); returns its sequence number. A unit of work batches its records instead."""
    return write(
        session,
        [
            entry(
                actor=actor,
                action=action,
                subject_type=subject_type,
                subject_id=subject_id,
                purpose=purpose,
                details=details,
                at=at,
            )
        ],
    )


@dataclass
class VerifyReport:
    checked: int = 0
    head_seq: int = 0
    head_hash: str = GENESIS_HASH
    problems: list[str] = field(default_factory=list)
    waiting: int = 0
    """Records committed but not yet sealed (deferred sealing): not covered by the chain."""
    oldest_waiting: datetime | None = None

    @property
    def ok(self) -> bool:
        return not self.problems


_READ_HEAD = select(AuditHead.seq, AuditHead.hash).where(AuditHead.id == 1)


def verify(
    session: Session,
    *,
    batch_size: int = 5000,
    on_progress: Callable[[int, int], None] | None = None,
) -> VerifyReport:
    """Walk the chain from the first record and report every break found.

    Finds an edited record (its hash no longer matches its content), a deleted one (a gap in
    the sequence or a broken ``prev_hash`` link), reordered ones (links out of order) and a
    deleted or altered tail (the head row disagrees with the last record). A sealer or an
    inline writer may extend the chain while the walk runs: when the head is found past the
    walk's end, the walk goes on to it, so a live system verifies without a false alarm.
    Records still waiting to be sealed are counted, not checked.
    """
    report = VerifyReport()
    report.waiting, report.oldest_waiting = waiting(session)
    total = int(session.scalar(select(func.count()).select_from(AuditRecord)) or 0)
    expected_seq = 1
    prev = GENESIS_HASH
    last_seq = 0
    while True:
        walked_from = last_seq
        while True:
            rows = session.scalars(
                select(AuditRecord)
                .where(AuditRecord.seq > last_seq)
                .order_by(AuditRecord.seq)
                .limit(batch_size)
            ).all()
            if not rows:
                break
            for r in rows:
                if r.seq != expected_seq:
                    report.problems.append(
                        f"record {expected_seq}: missing (next present is {r.seq}) "
                        "— deleted records"
                    )
                if r.prev_hash != prev:
                    report.problems.append(
                        f"record {r.seq}: link to the previous record is broken "
                        "— deleted or reordered"
                    )
                recomputed = record_hash(
                    r.prev_hash,
                    r.seq,
                    r.occurred_at,
                    r.actor,
                    r.action,
                    r.subject_type,
                    r.subject_id,
                    r.purpose,
                    r.details,
                )
                if recomputed != r.hash:
                    report.problems.append(
                        f"record {r.seq}: content does not match its hash — edited"
                    )
                prev = r.hash
                expected_seq = r.seq + 1
                last_seq = r.seq
                report.checked += 1
            session.expunge_all()
            if on_progress:
                on_progress(report.checked, max(total, report.checked))
        head = session.execute(_READ_HEAD).first()
        if head is None or head[0] <= last_seq or last_seq == walked_from:
            break  # the walk reached the head, or the head points past records that are gone
    if head is not None:
        report.head_seq, report.head_hash = int(head[0]), str(head[1])
        if report.head_seq != last_seq or report.head_hash != prev:
            report.problems.append(
                f"head says record {report.head_seq} is the newest but the chain ends at "
                f"{last_seq} — records were removed from the end, or the head was altered"
            )
    elif last_seq:
        report.problems.append("the audit head row is missing")
    return report
