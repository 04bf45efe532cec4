"""Black and confirmed-fraud lists, and reviewers' fraud verdicts feeding them.

Identifiers enter a list as blind indexes: an operator types a mobile or an account number,
it is normalised and HMAC-ed at once, and only the index is stored — matching at application
time needs nothing more. A reviewer's "confirmed fraud" verdict on an application puts every
strong identifier of that application on the confirmed-fraud list and becomes a label for
the ring finder; "cleared" is recorded as a label too (and lists nothing).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select

from puhui.domain.errors import ValidationError
from puhui.fraud.link_store import KINDS, STRONG
from puhui.privacy.blind_index import BlindIndexer
from puhui.store import models as m
from puhui.store.unit_of_work import UnitOfWork

LISTS = ("blacklist", "confirmed_fraud")
VERDICTS = ("confirmed", "cleared")


def _require(field: str, value: str, rule: str, message: str) -> None:
    if not value.strip():
        raise ValidationError.single(field, rule, message)


def add_to_list(
    uow: UnitOfWork,
    indexer: BlindIndexer,
    *,
    list_name: str,
    kind: str,
    value: str,
    reason: str,
    added_by: str,
    source: str = "operator",
) -> bool:
    """Blind-index ``value`` and list it; False when it was listed already (idempotent)."""
    if list_name not in LISTS:
        raise ValidationError.single("list", "fraud.list_unknown", f"one of {LISTS}")
    if kind not in KINDS:
        raise ValidationError.single("kind", "fraud.kind_unknown", f"one of {sorted(KINDS)}")
    _require("value", value, "fraud.value_required", "the identifier to list")
    _require("reason", reason, "fraud.reason_required", "say why it is listed")
    _require("by", added_by, "fraud.by_required", "say who lists it")
    key = indexer.index(KINDS[kind], value)
    with uow:
        E = m.FraudListEntry
        exists = uow.session.scalar(
            select(E.id).where(E.list_name == list_name, E.kind == kind, E.key == key)
        )
        if exists is not None:
            return False
        uow.session.add(
            E(
                list_name=list_name,
                kind=kind,
                key=key,
                reason=reason,
                source=source,
                added_by=added_by,
            )
        )
        uow.flush()
        uow.record_event(
            aggregate_type="fraud_list",
            aggregate_id=key[:40],
            event_type="fraud.listed",
            payload={"list": list_name, "kind": kind, "by": added_by, "source": source},
        )
        uow.commit()
        return True


def record_fraud_review(
    uow: UnitOfWork,
    *,
    application_id: str,
    verdict: str,
    reviewed_by: str,
    reason: str,
    at: datetime,
) -> int:
    """Record a person's verdict; a confirmed case lists the application's strong
    identifiers on the confirmed-fraud list. Returns how many identifiers were newly listed."""
    if verdict not in VERDICTS:
        raise ValidationError.single("verdict", "fraud.verdict_unknown", f"one of {VERDICTS}")
    _require("by", reviewed_by, "fraud.by_required", "say who reviewed")
    _require("reason", reason, "fraud.reason_required", "say why")
    listed = 0
    with uow:
        s = uow.session
        if s.get(m.Application, application_id) is None:
            raise ValidationError.single(
                "application_id", "application.not_found", "no such application"
            )
        s.add(
            m.FraudReview(
                application_id=application_id,
                outcome=verdict,
                reviewed_by=reviewed_by,
                reason=reason,
                reviewed_at=at,
            )
        )
        if verdict == "confirmed":
            E = m.FraudListEntry
            links = s.execute(
                select(m.FraudLink.kind, m.FraudLink.key).where(
                    m.FraudLink.application_id == application_id,
                    m.FraudLink.kind.in_(sorted(STRONG)),
                )
            ).all()
            for kind, key in links:
                exists = s.scalar(
                    select(E.id).where(
                        E.list_name == "confirmed_fraud", E.kind == kind, E.key == key
                    )
                )
                if exists is None:
                    s.add(
                        E(
                            list_name="confirmed_fraud",
                            kind=kind,
                            key=key,
                            reason=f"confirmed fraud on {application_id}: {reason}"[:500],
                            source="fraud_review",
                            added_by=reviewed_by,
                        )
                    )
                    listed += 1
        uow.flush()
        uow.record_event(
            aggregate_type="application",
            aggregate_id=application_id,
            event_type=f"fraud.review_{verdict}",
            payload={"verdict": verdict, "by": reviewed_by, "listed": listed},
        )
        uow.commit()
    return listed
