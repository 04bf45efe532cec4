"""Append-only, hash-chained audit log.

Each record's hash covers its own content, its sequence number and the previous record's hash,
so editing, deleting or reordering any record breaks the chain from that point on; the single
``audit_head`` row catches a deleted tail. Appenders lock the head row, so concurrent
transactions queue instead of forking the chain (PostgreSQL ``SELECT … FOR UPDATE``; SQLite
serialises writers with ``BEGIN IMMEDIATE``).

Records carry ids, field names and masked values only — never personal data in the clear. An
operator who can rewrite the whole table can rewrite the chain too: publish the head hash that
``puhui audit verify`` prints to somewhere the database administrator cannot write (a
ticket, a WORM bucket) to anchor it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from puhui.store.models import AuditHead, AuditRecord

GENESIS_HASH = "0" * 64
_HEAD_KEY = "puhui.audit_head"


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
) -> AuditRecord:
    """Append one record in the caller's transaction; it commits or rolls back with the change."""
    head = session.info.get(_HEAD_KEY)
    if head is None:
        head = session.scalar(select(AuditHead).where(AuditHead.id == 1).with_for_update())
        if head is None:
            head = AuditHead(id=1, seq=0, hash=GENESIS_HASH)
            session.add(head)
        session.info[_HEAD_KEY] = head
    occurred_at = (at or datetime.now(UTC)).astimezone(UTC)
    canonical = _canonical_details(details)
    seq = head.seq + 1
    digest = record_hash(
        head.hash, seq, occurred_at, actor, action, subject_type, subject_id, purpose, canonical
    )
    record = AuditRecord(
        seq=seq,
        occurred_at=occurred_at,
        actor=actor,
        action=action,
        subject_type=subject_type,
        subject_id=subject_id,
        purpose=purpose,
        details=canonical,
        prev_hash=head.hash,
        hash=digest,
    )
    session.add(record)
    head.seq = seq
    head.hash = digest
    return record


def forget_cached_head(session: Session) -> None:
    """Forget the cached head after commit or rollback: its lock ended with the transaction."""
    session.info.pop(_HEAD_KEY, None)


@dataclass
class VerifyReport:
    checked: int = 0
    head_seq: int = 0
    head_hash: str = GENESIS_HASH
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def verify(
    session: Session,
    *,
    batch_size: int = 5000,
    on_progress: Callable[[int, int], None] | None = None,
) -> VerifyReport:
    """Walk the chain from the first record and report every break found.

    Finds an edited record (its hash no longer matches its content), a deleted one (a gap in
    the sequence or a broken ``prev_hash`` link), reordered ones (links out of order) and a
    deleted or altered tail (the head row disagrees with the last record).
    """
    report = VerifyReport()
    total = int(session.scalar(select(func.count()).select_from(AuditRecord)) or 0)
    expected_seq = 1
    prev = GENESIS_HASH
    last_seq = 0
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
                    f"record {expected_seq}: missing (next present is {r.seq}) — deleted records"
                )
            if r.prev_hash != prev:
                report.problems.append(
                    f"record {r.seq}: link to the previous record is broken — deleted or reordered"
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
                report.problems.append(f"record {r.seq}: content does not match its hash — edited")
            prev = r.hash
            expected_seq = r.seq + 1
            last_seq = r.seq
            report.checked += 1
        session.expunge_all()
        if on_progress:
            on_progress(report.checked, total)
    head = session.get(AuditHead, 1)
    if head is not None:
        report.head_seq, report.head_hash = head.seq, head.hash
        if head.seq != last_seq or head.hash != prev:
            report.problems.append(
                f"head says record {head.seq} is the newest but the chain ends at {last_seq} "
                "— records were removed from the end, or the head was altered"
            )
    elif last_seq:
        report.problems.append("the audit head row is missing")
    return report
