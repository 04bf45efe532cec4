"""Counting earlier applications that share an identifier with this one, by blind index.

The counts span every institution on the platform (multi-lending, 多头借贷) but come back as
counts only, so a partner learns nothing about who else applied where. Three queries: the
device's recent use, the mobile and bank account shared with other people, and the person's
own recent applications.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import case, func, or_, select
from sqlalchemy.orm import Session

from puhui.origination.assessment import FraudSignals
from puhui.store.models import Applicant, Application


def fraud_signals(session: Session, app: Application, applicant: Applicant) -> FraudSignals:
    t = app.submitted_at
    person = applicant.id_number_bidx
    joined = (
        select().select_from(Application).join(Applicant, Application.applicant_id == Applicant.id)
    )

    device_24h = device_7d = 0
    if app.device_bidx:
        row = session.execute(
            joined.add_columns(
                func.count().filter(Application.submitted_at > t - timedelta(hours=24)),
                func.count(func.distinct(Applicant.id_number_bidx)),
            ).where(
                Application.device_bidx == app.device_bidx,
                Application.submitted_at > t - timedelta(days=7),
                Application.submitted_at <= t,
            )
        ).one()
        device_24h, device_7d = int(row[0] or 0), int(row[1] or 0)

    mobile_others = account_others = 0
    shared = [
        c == v
        for c, v in (
            (Applicant.mobile_bidx, applicant.mobile_bidx),
            (Applicant.bank_account_bidx, applicant.bank_account_bidx),
        )
        if v is not None
    ]
    if shared:
        row = session.execute(
            select(
                func.count(
                    func.distinct(
                        case(
                            (
                                Applicant.mobile_bidx == applicant.mobile_bidx,
                                Applicant.id_number_bidx,
                            )
                        )
                    )
                ),
                func.count(
                    func.distinct(
                        case(
                            (
                                Applicant.bank_account_bidx == applicant.bank_account_bidx,
                                Applicant.id_number_bidx,
                            )
                        )
                    )
                ),
            ).where(or_(*shared), Applicant.id_number_bidx != person)
        ).one()
        mobile_others, account_others = int(row[0] or 0), int(row[1] or 0)

    repeat_30d = int(
        session.scalar(
            joined.add_columns(func.count()).where(
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
        mobile_other_applicants=mobile_others,
        bank_account_other_applicants=account_others,
        applicant_applications_30d=repeat_30d,
    )
