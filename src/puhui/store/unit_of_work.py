"""The unit of work: one transaction per use case.

A use case opens a unit of work, loads aggregates through its repositories, applies domain
rules, records the events of what changed, and commits once. If it raises, nothing it wrote is
kept — no half-written application, no event without its change, no change without its audit
record. Events are mirrored into the hash-chained audit log in the same transaction.

Events and audit records are collected as the use case runs and written when it commits, as
one multi-row insert each, after the ORM's own flush: a use case that records three events
pays for two statements, not six ORM rows. Audit records are chained right there (inline, one
move of the chain's head) or left for the sealer (deferred), as ``audit_sealing`` says — see
``privacy.audit`` for why the API server defers. They are never visible to queries inside the
same transaction — no use case reads its own outbox — and a rollback simply drops them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from itertools import groupby
from types import TracebackType
from typing import Any, Literal, Self, cast

from sqlalchemy import Table, inspect
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.sql.schema import Column

from puhui.privacy import audit
from puhui.store import direct
from puhui.store import models as m
from puhui.store import repositories as repo
from puhui.store.types import utcnow

_EVENTS = m.table(m.Event)


@dataclass(frozen=True, slots=True)
class _InsertPlan:
    table: Table
    columns: tuple[tuple[str, str, Column[Any]], ...]
    """(attribute, column key, column) for every column but an autoincrement key."""


@lru_cache(maxsize=64)
def _insert_plan(cls: type[m.Base]) -> _InsertPlan:
    mapper = inspect(cls)
    table = cast(Table, mapper.local_table)
    columns = []
    for prop in mapper.column_attrs:
        column = cast(Column[Any], prop.columns[0])
        if column.server_default is not None:  # pragma: no cover - no model has one
            raise TypeError(f"{column}: a server default cannot be filled in here")
        if column is table.autoincrement_column:
            continue
        columns.append((prop.key, column.key, column))
    return _InsertPlan(table, tuple(columns))


def _row_values(plan: _InsertPlan, row: m.Base) -> dict[str, Any]:
    """The row's column values. One that is unset or None takes the column's default, as in
    the ORM's flush, and is set on the row too (an unset one without a default reads None on
    a row outside a session anyway)."""
    values: dict[str, Any] = {}
    state = row.__dict__
    for attr, key, column in plan.columns:
        value = state.get(attr)
        if value is None and column.default is not None:
            value = direct.python_default(column)
            setattr(row, attr, value)
        values[key] = value
    return values


@dataclass(frozen=True, slots=True)
class RecordedEvent:
    """An outbox event as :meth:`UnitOfWork.record_event` will write it at commit."""

    event_id: str
    event_type: str
    aggregate_type: str
    aggregate_id: str
    institution_id: str | None
    occurred_at: datetime


AuditSealing = Literal["inline", "deferred"]


class UnitOfWork:
    def __init__(
        self,
        session_factory: sessionmaker[Session],
        *,
        actor: str = "system",
        audit_sealing: AuditSealing = "inline",
    ) -> None:
        self._session_factory = session_factory
        self.actor = actor
        self._defer_audit = audit_sealing == "deferred"
        self._session: Session | None = None
        self._events: list[dict[str, Any]] = []
        self._audit: list[audit.Entry] = []

    @property
    def session(self) -> Session:
        if self._session is None:
            raise RuntimeError("the unit of work is not open; use it as a context manager")
        return self._session

    def _require_open(self) -> None:
        if self._session is None:
            raise RuntimeError("the unit of work is not open; use it as a context manager")

    def __enter__(self) -> Self:
        self._session = self._session_factory()
        s = self._session
        self._events = []
        self._audit = []
        self.institutions = repo.InstitutionRepository(s)
        self.data_keys = repo.DataKeyRepository(s)
        self.enterprises = repo.EnterpriseRepository(s)
        self.applicants = repo.ApplicantRepository(s)
        self.consents = repo.ConsentRepository(s)
        self.applications = repo.ApplicationRepository(s)
        self.loans = repo.LoanRepository(s)
        self.events = repo.EventRepository(s)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        session = self.session
        try:
            session.rollback()  # a no-op after commit(); discards everything otherwise
        finally:
            self._events = []
            self._audit = []
            session.close()
            self._session = None

    def commit(self) -> None:
        """Flush the ORM's changes, write the collected events and audit records, commit."""
        session = self.session
        if self._events or self._audit:
            session.flush()
            conn = session.connection()
            if self._events:
                direct.insert_rows(conn, _EVENTS, self._events, later=True)
            if self._audit and self._defer_audit:
                audit.write_pending(session, self._audit)
            elif self._audit:
                audit.write(session, self._audit)
        self._events = []
        self._audit = []
        session.commit()

    def flush(self) -> None:
        self.session.flush()

    def insert(self, *rows: m.Base) -> None:
        """Write new rows now, one INSERT per run of rows of the same table, in order.

        For rows a use case creates and never changes again in the transaction (a decision, an
        offer, an applicant just sealed): the ORM's unit of work would track each one, sort the
        flush and read defaults back, which costs several times the INSERT itself. Here every
        column's value is taken from the object or, when unset, from the column's default —
        and set on the object too, so it reads exactly like a row loaded back (e.g.
        ``created_at``); an autoincrement key is left to the database (and not read back).
        The rows are not added to the session: callers order them after the rows they
        reference, and change them no further.
        """
        conn = self.session.connection()
        for cls, run in groupby(rows, key=type):
            plan = _insert_plan(cls)
            values = [_row_values(plan, row) for row in run]
            direct.insert_rows(conn, plan.table, values, later=True)

    def record_event(
        self,
        *,
        aggregate_type: str,
        aggregate_id: str,
        event_type: str,
        payload: Mapping[str, Any] | None = None,
        institution_id: str | None = None,
        purpose: str | None = None,
    ) -> RecordedEvent:
        """Record an outbox event and its audit record, written in this transaction."""
        self._require_open()
        event = RecordedEvent(
            m.new_id("evt"), event_type, aggregate_type, aggregate_id, institution_id, utcnow()
        )
        body = dict(payload or {})
        self._events.append(
            {
                "event_id": event.event_id,
                "institution_id": institution_id,
                "aggregate_type": aggregate_type,
                "aggregate_id": aggregate_id,
                "event_type": event_type,
                "payload": body,
                "occurred_at": event.occurred_at,
            }
        )
        self._audit.append(
            audit.entry(
                actor=self.actor,
                action=event_type,
                subject_type=aggregate_type,
                subject_id=aggregate_id,
                purpose=purpose,
                details={"event_id": event.event_id, **body},
                at=event.occurred_at,
            )
        )
        return event

    def audit(
        self,
        *,
        action: str,
        subject_type: str,
        subject_id: str,
        purpose: str | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> None:
        """Audit something that is not a state change (a read of decrypted personal data);
        written with the transaction's other records when it commits."""
        self._require_open()
        self._audit.append(
            audit.entry(
                actor=self.actor,
                action=action,
                subject_type=subject_type,
                subject_id=subject_id,
                purpose=purpose,
                details=details,
            )
        )
