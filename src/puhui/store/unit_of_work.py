"""The unit of work: one transaction per use case.

A use case opens a unit of work, loads aggregates through its repositories, applies domain
rules, records the events of what changed, and commits once. If it raises, nothing it wrote is
kept — no half-written application, no event without its change, no change without its audit
record. Events are mirrored into the hash-chained audit log in the same transaction.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import TracebackType
from typing import Any, Self

from sqlalchemy.orm import Session, sessionmaker

from puhui.privacy import audit
from puhui.store import models as m
from puhui.store import repositories as repo


class UnitOfWork:
    def __init__(self, session_factory: sessionmaker[Session], *, actor: str = "system") -> None:
        self._session_factory = session_factory
        self.actor = actor
        self._session: Session | None = None

    @property
    def session(self) -> Session:
        if self._session is None:
            raise RuntimeError("the unit of work is not open; use it as a context manager")
        return self._session

    def __enter__(self) -> Self:
        self._session = self._session_factory()
        s = self._session
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
            audit.forget_cached_head(session)
            session.close()
            self._session = None

    def commit(self) -> None:
        self.session.commit()
        audit.forget_cached_head(self.session)

    def flush(self) -> None:
        self.session.flush()

    def record_event(
        self,
        *,
        aggregate_type: str,
        aggregate_id: str,
        event_type: str,
        payload: Mapping[str, Any] | None = None,
        institution_id: str | None = None,
        purpose: str | None = None,
    ) -> m.Event:
        """Write an outbox event and its audit record, in this transaction."""
        event = m.Event(
            event_id=m.new_id("evt"),
            institution_id=institution_id,
            aggregate_type=aggregate_type,
            aggregate_id=aggregate_id,
            event_type=event_type,
            payload=dict(payload or {}),
        )
        self.session.add(event)
        audit.append(
            self.session,
            actor=self.actor,
            action=event_type,
            subject_type=aggregate_type,
            subject_id=aggregate_id,
            purpose=purpose,
            details={"event_id": event.event_id, **(payload or {})},
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
    ) -> m.AuditRecord:
        """Audit something that is not a state change (a read of decrypted personal data)."""
        return audit.append(
            self.session,
            actor=self.actor,
            action=action,
            subject_type=subject_type,
            subject_id=subject_id,
            purpose=purpose,
            details=details,
        )
