"""Repositories: how use cases load and add aggregates, without writing SQL themselves.

Every query that reads tenant data takes the institution id, so one partner's use case cannot
reach another partner's rows by accident.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date
from decimal import Decimal
from typing import Any, Generic, NamedTuple, TypeVar

from sqlalchemy import Select, and_, bindparam, func, inspect, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from puhui.store import direct
from puhui.store import models as m
from puhui.store.types import utcnow

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


class SubmissionTargets(NamedTuple):
    """What a new submission must know first: its institution, and which of the rows it names
    exist already (None where not)."""

    institution_id: str
    application_id: str | None
    """The institution's application with the same ``external_ref`` (a retry)."""
    applicant_id: str | None
    enterprise_id: str | None


def _submission_targets() -> Select[Any]:
    ins, app, apl, ent = (
        m.table(t) for t in (m.Institution, m.Application, m.Applicant, m.Enterprise)
    )
    return (
        select(ins.c.id, app.c.id, apl.c.id, ent.c.id)
        .select_from(ins)
        .outerjoin(
            app, and_(app.c.institution_id == ins.c.id, app.c.external_ref == bindparam("ref"))
        )
        .outerjoin(
            apl, and_(apl.c.institution_id == ins.c.id, apl.c.id_number_bidx == bindparam("idb"))
        )
        .outerjoin(ent, and_(ent.c.institution_id == ins.c.id, ent.c.uscc_bidx == bindparam("usb")))
        .where(ins.c.code == bindparam("code"))
    )


_SUBMISSION_TARGETS = _submission_targets()


class DecisionInputs(NamedTuple):
    """An application and what deciding it reads of its parties (``for_decision``)."""

    application: m.Application
    birth_date: date | None
    registered_on: date
    annual_revenue: Decimal
    tax_grade: str
    industry_code: str
    employees: int | None
    uscc_needs_verification: bool
    institution_type: str


def _decision_inputs() -> Select[Any]:
    app, apl, ent, ins = (
        m.table(t) for t in (m.Application, m.Applicant, m.Enterprise, m.Institution)
    )
    return (
        select(
            *app.c,
            apl.c.birth_date,
            ent.c.registered_on,
            ent.c.annual_revenue_fen,
            ent.c.tax_grade,
            ent.c.industry_code,
            ent.c.employees,
            ent.c.uscc_needs_verification,
            ins.c.institution_type,
        )
        .join(apl, apl.c.id == app.c.applicant_id)
        .join(ent, ent.c.id == app.c.enterprise_id)
        .join(ins, ins.c.id == app.c.institution_id)
        .where(app.c.id == bindparam("app"), app.c.institution_id == bindparam("inst"))
    )


_DECISION_INPUTS = _decision_inputs()
_APPLICATIONS = m.table(m.Application)
_APPLICATION_ATTRS = tuple(
    (prop.key, list(_APPLICATIONS.c.keys()).index(prop.columns[0].key))
    for prop in inspect(m.Application).column_attrs
)
"""(attribute, position of its column in a row of ``_DECISION_INPUTS``) of an application."""
_SET_STATE = (
    update(_APPLICATIONS)
    .where(
        _APPLICATIONS.c.id == bindparam("b_id"),
        _APPLICATIONS.c.version == bindparam("b_version"),
    )
    .values(
        state=bindparam("b_state"),
        updated_at=bindparam("b_updated_at"),
        version=bindparam("b_next_version"),
    )
)


class ApplicationRepository(Repository[m.Application]):
    model = m.Application

    def submission_targets(
        self, institution_code: str, external_ref: str, id_number_bidx: str, uscc_bidx: str
    ) -> SubmissionTargets | None:
        """One indexed query instead of four: the institution by code, and its application
        by reference, applicant by id-number index and enterprise by USCC index (each unique
        per institution, so at most one row); None for an unknown institution."""
        row = direct.execute(
            self.session.connection(),
            _SUBMISSION_TARGETS,
            {
                "code": institution_code,
                "ref": external_ref,
                "idb": id_number_bidx,
                "usb": uscc_bidx,
            },
        ).first()
        return None if row is None else SubmissionTargets(*row)

    def for_institution(self, institution_id: str, application_id: str) -> m.Application | None:
        return self.session.scalar(
            select(m.Application).where(
                m.Application.id == application_id, m.Application.institution_id == institution_id
            )
        )

    def for_decision(self, institution_id: str, application_id: str) -> DecisionInputs | None:
        """The institution's application with the facts of its applicant, enterprise and
        institution a decision reads, in one query on the connection.

        The application comes back as a row object outside the session (every attribute
        set, as loading it would): a decision changes it only through :meth:`change_state`,
        so the session has nothing to track or flush."""
        row = direct.execute(
            self.session.connection(),
            _DECISION_INPUTS,
            {"app": application_id, "inst": institution_id},
        ).first()
        if row is None:
            return None
        application = m.Application(**{attr: row[i] for attr, i in _APPLICATION_ATTRS})
        return DecisionInputs(application, *row[len(_APPLICATIONS.c) :])

    def change_state(self, application: m.Application, state: str) -> None:
        """Move an application (from :meth:`for_decision`) to ``state`` with the check the
        ORM makes for a versioned row: the update names the version read, so a concurrent
        change that committed first makes this one fail (``StaleDataError``) instead of
        being overwritten. The object is updated to match the row."""
        now = utcnow()
        result = direct.execute(
            self.session.connection(),
            _SET_STATE,
            {
                "b_id": application.id,
                "b_version": application.version,
                "b_state": state,
                "b_updated_at": now,
                "b_next_version": application.version + 1,
            },
        )
        if result.rowcount != 1:
            raise StaleDataError(
                f"application {application.id} changed concurrently (version "
                f"{application.version} is no longer current)"
            )
        application.state = state
        application.updated_at = now
        application.version += 1

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
