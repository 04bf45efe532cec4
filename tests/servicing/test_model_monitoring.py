"""Monitoring the live model over real decisions on both databases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from puhui.origination.decide import decide_application
from puhui.origination.submit import submit_application
from puhui.privacy.blind_index import BlindIndexer
from puhui.privacy.vault import Vault
from puhui.risk.monitor import Thresholds
from puhui.servicing.model_monitoring import monitor_model
from puhui.store import models as m
from puhui.store.unit_of_work import UnitOfWork
from tests import factories
from tests.conftest import Database

AT = datetime(2026, 11, 28, 3, 0, tzinfo=UTC)


def _decide_many(
    database: Database, vault: Vault, indexer: BlindIndexer, n: int, **enterprise: object
) -> None:
    with database.sessions() as s:
        inst = s.scalar(select(m.Institution.id).where(m.Institution.code == "DEMO_BANK"))
    assert inst is not None
    for i in range(n):
        raw = factories.application(
            external_ref=f"MON-{i}",
            legal_representative={"id_number": factories.id_number("19800101", seq=f"{i:03d}")},
        )
        raw["enterprise"].update(enterprise)
        app_id = submit_application(
            UnitOfWork(database.sessions), vault, indexer, raw
        ).application_id
        decide_application(
            UnitOfWork(database.sessions), institution_id=inst, application_id=app_id, at=AT
        )


def test_a_shifted_population_raises_alerts_that_name_the_feature(
    database: Database, institution: str, vault: Vault, indexer: BlindIndexer
) -> None:
    # every applicant the same: tax grade C, so the grade mix is far from training's
    _decide_many(database, vault, indexer, 6, tax_grade="C")
    now = datetime.now(UTC)
    report = monitor_model(
        UnitOfWork(database.sessions),
        since=now - timedelta(days=1),
        until=now + timedelta(seconds=1),
        as_of=AT.date(),
        thresholds=Thresholds(min_applications=5),
    )
    assert report.applications == 6
    assert report.feature_csi["tax_grade"] >= 0.25
    assert any(a.startswith("tax_grade: CSI") for a in report.alerts)
    assert report.score_psi > 0.25
    quiet = monitor_model(
        UnitOfWork(database.sessions),
        since=now - timedelta(days=1),
        until=now + timedelta(seconds=1),
        as_of=AT.date(),
    )
    assert quiet.alerts == []  # 6 applications are too few to alert on by default
    empty = monitor_model(
        UnitOfWork(database.sessions),
        since=now - timedelta(days=30),
        until=now - timedelta(days=29),
        as_of=AT.date(),
    )
    assert empty.applications == 0 and empty.alerts == []
