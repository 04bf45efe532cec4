"""The journey decides with the registry's models: champion decides, challenger is recorded,
the strategy prices by PD, and only bins (never values) are kept for monitoring."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select

from puhui.origination.credit_model import ModelCreditAssessor, features_of_facts
from puhui.origination.decide import decide_application
from puhui.origination.submit import submit_application
from puhui.privacy.blind_index import BlindIndexer
from puhui.privacy.vault import Vault
from puhui.risk import bundled
from puhui.risk.champion import in_challenger_arm
from puhui.risk.features import features_of_synthetic
from puhui.risk.registry import promote, register
from puhui.risk.serving import LiveModel, LivePair
from puhui.risk.strategy import DEFAULT_STRATEGY
from puhui.store import models as m
from puhui.store.unit_of_work import UnitOfWork
from puhui.synthetic import generate
from tests import factories
from tests.conftest import Database

AT = datetime(2026, 11, 28, 3, 0, tzinfo=UTC)


def _submit(database: Database, vault: Vault, indexer: BlindIndexer, ref: str) -> str:
    raw = factories.application(
        external_ref=ref, legal_representative={"id_number": factories.id_number("19800101")}
    )
    return submit_application(UnitOfWork(database.sessions), vault, indexer, raw).application_id


def _institution_id(database: Database) -> str:
    with database.sessions() as s:
        inst = s.scalar(select(m.Institution).where(m.Institution.code == "DEMO_BANK"))
        assert inst is not None
        return inst.id


def _decision(database: Database, app_id: str) -> m.Decision:
    with database.sessions() as s:
        d = s.scalar(select(m.Decision).where(m.Decision.application_id == app_id))
        assert d is not None
        return d


def test_default_decision_uses_the_bundled_champion_and_prices_by_pd(
    database: Database, institution: str, vault: Vault, indexer: BlindIndexer
) -> None:
    app_id = _submit(database, vault, indexer, "REF-1")
    inst = _institution_id(database)
    result = decide_application(
        UnitOfWork(database.sessions), institution_id=inst, application_id=app_id, at=AT
    )
    assert result.outcome == "approved"
    d = _decision(database, app_id)
    recorded: dict[str, Any] = d.details["model"]
    assert recorded["champion"]["id"] == "bundled-default"
    assert d.model_version == "sme-credit/bundled"
    pd_ = recorded["champion"]["pd"]
    assert DEFAULT_STRATEGY.grade(pd_) == d.grade
    # only bin indices are kept for monitoring, never the applicant's values
    assert all(isinstance(v, int) for v in recorded["bins"].values())
    assert "applicant_age" in recorded["bins"]
    with database.sessions() as s:
        offer = s.scalar(select(m.Offer).where(m.Offer.application_id == app_id))
        assert offer is not None
        expected = DEFAULT_STRATEGY.annual_rate(pd_, AT.date())
        # the recorded PD is rounded to 6 places; the rate steps are 5 bp, so they agree
        assert offer.annual_rate == expected


def test_challenger_is_scored_on_its_arm_and_never_decides(
    database: Database, institution: str, vault: Vault, indexer: BlindIndexer
) -> None:
    champion = bundled.load()
    uow = UnitOfWork(database.sessions, actor="test")
    cid = register(uow, champion, name="sme-credit", created_by="t").id
    promote(UnitOfWork(database.sessions), cid, role="challenger", by="t", reason="r", at=AT)
    inst = _institution_id(database)
    arms = {}
    for i in range(12):
        app_id = _submit(database, vault, indexer, f"REF-{i}")
        decide_application(
            UnitOfWork(database.sessions), institution_id=inst, application_id=app_id, at=AT
        )
        recorded = _decision(database, app_id).details["model"]
        arms[app_id] = recorded["arm"]
        assert recorded["arm"] == ("challenger" if in_challenger_arm(app_id, 0.5) else "champion")
        if recorded["arm"] == "challenger":
            assert recorded["challenger"]["id"] == cid
            # same artifact in both roles here: same score, and the champion still decided
            assert recorded["challenger"]["score"] == recorded["champion"]["score"]
        assert recorded["champion"]["id"] == "bundled-default"
    assert set(arms.values()) == {"champion", "challenger"}


@pytest.mark.parametrize("seed", [3])
def test_decision_and_training_see_the_same_features(seed: int) -> None:
    """One synthetic application through both feature builders gives the same inputs."""
    from puhui.domain.identifiers import age_on
    from puhui.origination.assessment import ApplicationFacts

    app = generate(5, seed=seed).applications[0]
    e = app.enterprise
    facts = ApplicationFacts(
        application_id="app_x",
        institution_id="ins_x",
        business_date=app.submitted_at.date(),
        amount=Decimal(app.requested_amount),
        term_months=app.term_months,
        repayment_method=app.repayment_method,
        applicant_age=age_on(app.legal_representative.birth_date, app.submitted_at.date()),
        years_in_business=Decimal(str(round(e.years_in_business, 2))),
        annual_revenue=Decimal(e.annual_revenue),
        tax_grade=e.tax_grade,
        industry_code=e.industry_section,
        employees=e.employees,
        uscc_needs_verification=False,
    )
    assert features_of_facts(facts) == features_of_synthetic(app)


def test_refer_band_and_reason_codes(database: Database) -> None:
    from dataclasses import replace

    from puhui.origination.assessment import ApplicationFacts

    facts = ApplicationFacts(
        application_id="app_y",
        institution_id="ins_y",
        business_date=AT.date(),
        amount=Decimal("400000"),
        term_months=12,
        repayment_method="equal_installment",
        applicant_age=23,
        years_in_business=Decimal("1.1"),
        annual_revenue=Decimal("900000"),
        tax_grade="C",
        industry_code="A",
        employees=1,
        uscc_needs_verification=False,
    )
    assessor = ModelCreditAssessor(LivePair(LiveModel("b", "b", bundled.load()), None))
    weak = assessor.assess(facts)
    assert weak.pd is not None and weak.pd > DEFAULT_STRATEGY.grade_max_pd[-1][1]
    assert weak.grade is None and weak.annual_rate is None
    assert weak.reasons and all(r.code.startswith("RC_") for r in weak.reasons)
    assert weak.reasons[0].points_lost >= weak.reasons[-1].points_lost > 0
    strong = assessor.assess(
        replace(
            facts,
            tax_grade="A",
            years_in_business=Decimal("20"),
            employees=60,
            annual_revenue=Decimal("20000000"),
            applicant_age=45,
        )
    )
    assert strong.grade == "A" and strong.annual_rate is not None
    assert strong.score > weak.score
