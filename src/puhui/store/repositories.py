"""Repositories: how use cases load and add aggregates, without writing SQL themselves.

Every query that reads tenant data takes the institution id, so one partner's use case cannot
reach another partner's rows by accident.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Generic, TypeVar

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from puhui.store import models as m

T = TypeVar("T", bound=m.Base)


class Repository(Generic[T]):
    model: type[T]

    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, obj: T) -> T:
        self.session.add(obj)
        return obj

    def get(self, id_: object) -> T | None:
        return self.session.get(self.model, id_)

    def count(self) -> int:
        return int(self.session.scalar(select(func.count()).select_from(self.model)) or 0)


class InstitutionRepository(Repository[m.Institution]):
    model = m.Institution

    def by_code(self, code: str) -> m.Institution | None:
        return self.session.scalar(select(m.Institution).where(m.Institution.code == code))

    def all(self) -> Sequence[m.Institution]:
        return self.session.scalars(select(m.Institution).order_by(m.Institution.code)).all()


class DataKeyRepository(Repository[m.DataKey]):
    model = m.DataKey

    def needing_rewrap(self, active_master_id: str, limit: int) -> Sequence[m.DataKey]:
        """Live keys still wrapped by an older master key, oldest first, in batches."""
        return self.session.scalars(
            select(m.DataKey)
            .where(m.DataKey.master_key_id != active_master_id, m.DataKey.wrapped.is_not(None))
            .order_by(m.DataKey.id)
            .limit(limit)
        ).all()

    def count_by_master(self) -> dict[str, int]:
        rows = self.session.execute(
            select(m.DataKey.master_key_id, func.count())
            .where(m.DataKey.wrapped.is_not(None))
            .group_by(m.DataKey.master_key_id)
        ).all()
        return {str(k): int(n) for k, n in rows}


class EnterpriseRepository(Repository[m.Enterprise]):
    model = m.Enterprise

    def by_uscc(self, institution_id: str, uscc_bidx: str) -> m.Enterprise | None:
        return self.session.scalar(
            select(m.Enterprise).where(
                m.Enterprise.institution_id == institution_id, m.Enterprise.uscc_bidx == uscc_bidx
            )
        )


class ApplicantRepository(Repository[m.Applicant]):
    model = m.Applicant

    def by_id_number(self, institution_id: str, id_number_bidx: str) -> m.Applicant | None:
        return self.session.scalar(
            select(m.Applicant).where(
                m.Applicant.institution_id == institution_id,
                m.Applicant.id_number_bidx == id_number_bidx,
            )
        )

    def count_by_mobile(self, mobile_bidx: str) -> int:
        return int(
            self.session.scalar(select(func.count()).where(m.Applicant.mobile_bidx == mobile_bidx))
            or 0
        )


class ConsentRepository(Repository[m.Consent]):
    model = m.Consent

    def for_applicant(self, applicant_id: str) -> Sequence[m.Consent]:
        return self.session.scalars(
            select(m.Consent)
            .where(m.Consent.applicant_id == applicant_id)
            .order_by(m.Consent.granted_at, m.Consent.id)
        ).all()


class ApplicationRepository(Repository[m.Application]):
    model = m.Application

    def for_institution(self, institution_id: str, application_id: str) -> m.Application | None:
        return self.session.scalar(
            select(m.Application).where(
                m.Application.id == application_id, m.Application.institution_id == institution_id
            )
        )

    def with_parties(
        self, institution_id: str, application_id: str
    ) -> tuple[m.Application, m.Applicant, m.Enterprise, m.Institution] | None:
        """The institution's application with its applicant, enterprise and institution, in
        one query (a decision needs all four)."""
        row = self.session.execute(
            select(m.Application, m.Applicant, m.Enterprise, m.Institution)
            .join(m.Applicant, m.Applicant.id == m.Application.applicant_id)
            .join(m.Enterprise, m.Enterprise.id == m.Application.enterprise_id)
            .join(m.Institution, m.Institution.id == m.Application.institution_id)
            .where(
                m.Application.id == application_id,
                m.Application.institution_id == institution_id,
            )
        ).first()
        return None if row is None else (row[0], row[1], row[2], row[3])

    def by_external_ref(self, institution_id: str, external_ref: str) -> m.Application | None:
        return self.session.scalar(
            select(m.Application).where(
                m.Application.institution_id == institution_id,
                m.Application.external_ref == external_ref,
            )
        )

    def of_applicant(self, applicant_id: str) -> Sequence[m.Application]:
        return self.session.scalars(
            select(m.Application)
            .where(m.Application.applicant_id == applicant_id)
            .order_by(m.Application.submitted_at)
        ).all()


class LoanRepository(Repository[m.Loan]):
    model = m.Loan

    def of_applicant(self, applicant_id: str) -> Sequence[m.Loan]:
        return self.session.scalars(select(m.Loan).where(m.Loan.applicant_id == applicant_id)).all()

    def schedule(self, loan_id: str) -> Sequence[m.ScheduleLine]:
        return self.session.scalars(
            select(m.ScheduleLine)
            .where(m.ScheduleLine.loan_id == loan_id)
            .order_by(m.ScheduleLine.number)
        ).all()

    def add_schedule(self, lines: Iterable[m.ScheduleLine]) -> None:
        self.session.add_all(list(lines))


class EventRepository(Repository[m.Event]):
    model = m.Event

    def for_aggregate(self, aggregate_type: str, aggregate_id: str) -> Sequence[m.Event]:
        return self.session.scalars(
            select(m.Event)
            .where(m.Event.aggregate_type == aggregate_type, m.Event.aggregate_id == aggregate_id)
            .order_by(m.Event.id)
        ).all()

    def unpublished(self, limit: int = 100) -> Sequence[m.Event]:
        return self.session.scalars(
            select(m.Event).where(m.Event.published_at.is_(None)).order_by(m.Event.id).limit(limit)
        ).all()
