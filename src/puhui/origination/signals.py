"""Counting earlier applications that share an identifier with this one, by blind index.

The counts span every institution on the platform (multi-lending, 多头借贷) but come back as
counts only, so a partner learns nothing about who else applied where.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import InstrumentedAttribute, Session

from puhui.origination.assessment import FraudSignals
from puhui.store.models import Applicant, Application


def fraud_signals(session: Session, app: Application, applicant: Applicant) -> FraudSignals:
    t = app.submitted_at
    person = applicant.id_number_bidx

    def distinct_people(*conditions: ColumnElement[bool]) -> int:
        q = (
            select(func.count(func.distinct(Applicant.id_number_bidx)))
            .select_from(Application)
            .join(Applicant, Application.applicant_id == Applicant.id)
            .where(*conditions)
        )
        return int(session.scalar(q) or 0)

    device_24h = device_7d = 0
    if app.device_bidx:
        device_24h = int(
            session.scalar(
                select(func.count())
                .select_from(Application)
                .where(
                    Application.device_bidx == app.device_bidx,
                    Application.submitted_at > t - timedelta(hours=24),
                    Application.submitted_at <= t,
                )
            )
            or 0
        )
        device_7d = distinct_people(
            Application.device_bidx == app.device_bidx,
            Application.submitted_at > t - timedelta(days=7),
            Application.submitted_at <= t,
        )

    def others_sharing(column: InstrumentedAttribute[str | None], value: str | None) -> int:
        if value is None:
            return 0
        return int(
            session.scalar(
                select(func.count(func.distinct(Applicant.id_number_bidx))).where(
                    column == value,
                    Applicant.id_number_bidx != person,
                )
            )
            or 0
        )

    repeat_30d = int(
        session.scalar(
            select(func.count())
            .select_from(Application)
            .join(Applicant, Application.applicant_id == Applicant.id)
            .where(
                Applicant.id_number_bidx == person,
                Application.submitted_at > t - timedelta(days=30),
                Application.submitted_at <= t,
            )
        )
        or 0
    )
    return FraudSignals(
        device_applications_24h=device_24h,
        device_distinct_applicants_7d=device_7d,
        mobile_other_applicants=others_sharing(Applicant.mobile_bidx, applicant.mobile_bidx),
        bank_account_other_applicants=others_sharing(
            Applicant.bank_account_bidx, applicant.bank_account_bidx
        ),
        applicant_applications_30d=repeat_30d,
    )
