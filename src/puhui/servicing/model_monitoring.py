"""Use case: monitor a credit model on the applications it scored and the loans that followed.

Reads what each automated decision recorded (``details["model"]``: the champion's id, the
score's bin, the features' bins — never feature values), counts outcomes of the loans that
followed (bad = written off, or 90+ days past due as of the business date), and hands both to
:func:`puhui.risk.monitor.monitor`.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime

from sqlalchemy import select

from puhui.domain.errors import ValidationError
from puhui.domain.lifecycle import LoanState
from puhui.federated.artifact import parse_artifact
from puhui.risk.monitor import GradeOutcome, MonitorReport, Thresholds, monitor
from puhui.risk.serving import LiveModels
from puhui.servicing.delinquency import days_past_due
from puhui.servicing.repository import line_of, schedule_rows_of
from puhui.store import models as m
from puhui.store.unit_of_work import UnitOfWork

BAD_DPD = 90


def monitor_model(
    uow: UnitOfWork,
    *,
    since: datetime,
    until: datetime,
    as_of: date,
    model_id: str | None = None,
    thresholds: Thresholds | None = None,
) -> MonitorReport:
    """Stability of the champion (or ``model_id``) over decisions made in [since, until)."""
    with uow:
        session = uow.session
        if model_id is None:
            live = LiveModels().current(session).champion
            model_id, label, artifact = live.id, live.version, live.artifact
        else:
            row = session.get(m.ModelVersion, model_id)
            if row is None:
                raise ValidationError.single(
                    "model_id", "model.not_found", f"no model {model_id!r}"
                )
            label, artifact = f"{row.name}/v{row.version}", parse_artifact(row.artifact)
        if artifact.profile is None:
            raise ValidationError.single(
                "model_id",
                "model.no_profile",
                "this model carries no training profile (a federated model has none: its "
                "partner's half is never seen by the bank)",
            )
        score_bins: list[int] = []
        feature_bins: dict[str, list[int]] = defaultdict(list)
        grade_of_app: dict[str, str] = {}
        decisions = session.execute(
            select(m.Decision.application_id, m.Decision.grade, m.Decision.details).where(
                m.Decision.automated.is_(True),
                m.Decision.created_at >= since,
                m.Decision.created_at < until,
            )
        )
        for application_id, grade, details in decisions:
            recorded = (details or {}).get("model") or {}
            champion = recorded.get("champion") or {}
            if champion.get("id") != model_id or champion.get("score_bin") is None:
                continue
            score_bins.append(int(champion["score_bin"]))
            for name, idx in (recorded.get("bins") or {}).items():
                feature_bins[name].append(int(idx))
            if grade:
                grade_of_app[application_id] = grade
        outcomes = _outcomes(uow, grade_of_app, as_of)
    return monitor(label, artifact.profile, score_bins, feature_bins, outcomes, thresholds)


def _outcomes(uow: UnitOfWork, grade_of_app: dict[str, str], as_of: date) -> list[GradeOutcome]:
    if not grade_of_app:
        return []
    loans = list(
        uow.session.scalars(
            select(m.Loan).where(
                m.Loan.application_id.in_(list(grade_of_app)), m.Loan.disbursed_at.is_not(None)
            )
        )
    )
    lines = schedule_rows_of(uow, [loan.id for loan in loans])
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for loan in loans:
        bad = loan.state == LoanState.WRITTEN_OFF.value or (
            days_past_due([line_of(r) for r in lines[loan.id]], as_of) >= BAD_DPD
        )
        entry = counts[grade_of_app[loan.application_id]]
        entry[0] += 1
        entry[1] += int(bad)
    return [GradeOutcome(g, n, b) for g, (n, b) in sorted(counts.items())]
