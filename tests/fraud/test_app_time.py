"""Application-time fraud features and decisions, over hand-built histories on both databases."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select

from puhui.domain.identifiers import luhn_check_digit, org_code_check_char, uscc_check_char
from puhui.fraud.features import HUB_CAP, fraud_features
from puhui.fraud.lists import add_to_list, record_fraud_review
from puhui.origination.decide import decide_application
from puhui.origination.institutions import register_institution
from puhui.origination.submit import submit_application
from puhui.privacy.blind_index import BlindIndexer
from puhui.privacy.vault import Vault
from puhui.store import models as m
from puhui.store.unit_of_work import UnitOfWork
from tests import factories
from tests.conftest import Database

T0 = datetime(2026, 11, 28, 2, 0, tzinfo=UTC)


def card(n: int) -> str:
    body = f"62220202001122{n:04d}"
    return body + luhn_check_digit(body)


def uscc(n: int) -> str:
    org8 = f"{55000000 + n:08d}"
    first17 = "91110108" + org8 + org_code_check_char(org8)
    return first17 + uscc_check_char(first17)


def mobile(n: int) -> str:
    return f"139{n:08d}"


class History:
    """Submits applications with exactly the identifiers a test names; all else unique."""

    def __init__(self, db: Database, vault: Vault, indexer: BlindIndexer) -> None:
        self.db, self.vault, self.indexer = db, vault, indexer
        self.n = 0

    def submit(
        self,
        *,
        at: datetime = T0,
        person: int | None = None,
        institution: str = "DEMO_BANK",
        business: str | None = None,
        revenue: str = "3600000.00",
        **ids: Any,
    ) -> str:
        self.n += 1
        n = self.n
        who = n if person is None else person
        raw = factories.application(
            institution_code=institution,
            external_ref=f"H{n}",
            submitted_at=at,
            device_id=ids.get("device", f"dev-{n}"),
            ip=ids.get("ip", f"198.51.100.{n % 250}"),
            legal_representative={
                "id_number": factories.id_number(
                    f"1980{(who % 12) + 1:02d}{(who % 27) + 1:02d}", seq=f"{who % 1000:03d}"
                ),
                "mobile": ids.get("mobile", mobile(1000 + n)),
                "bank_account": ids.get("bank_account", card(1000 + n)),
                "address": ids.get("address", f"北京市朝阳区建国路{n}号院{n}室"),
            },
        )
        raw["enterprise"]["annual_revenue"] = revenue
        raw["enterprise"]["uscc"] = business if business is not None else uscc(n)
        return submit_application(
            UnitOfWork(self.db.sessions), self.vault, self.indexer, raw
        ).application_id

    def features(self, app_id: str, revenue: str = "3600000.00") -> dict[str, float]:
        with self.db.sessions() as s:
            return fraud_features(s, app_id, Decimal(revenue))[0]

    def decide(self, app_id: str) -> Any:
        with self.db.sessions() as s:
            app = s.get(m.Application, app_id)
            assert app is not None
            inst = app.institution_id
        return decide_application(
            UnitOfWork(self.db.sessions),
            institution_id=inst,
            application_id=app_id,
            at=T0 + timedelta(days=1),
        )


@pytest.fixture
def history(database: Database, institution: str, vault: Vault, indexer: BlindIndexer) -> History:
    return History(database, vault, indexer)


def test_velocity_windows_count_only_earlier_applications(history: History) -> None:
    for minutes in (-60 * 24 * 20, -60 * 24 * 3, -60 * 5, -30):
        history.submit(at=T0 + timedelta(minutes=minutes), device="dev-shared")
    later = history.submit(at=T0 + timedelta(hours=1), device="dev-shared")
    now = history.submit(at=T0, device="dev-shared")
    f = history.features(now)
    assert f["device.apps_1h"] == 1  # the one 30 minutes before, not the one an hour later
    assert f["device.apps_24h"] == 2
    assert f["device.apps_7d"] == 3
    assert f["device.apps_30d"] == 4
    assert f["device.identities_7d"] == 3 and f["device.identities_30d"] == 4
    f_later = history.features(later)  # an hour after T0: windows are (t - span, t]
    assert f_later["device.apps_1h"] == 0  # 'now' sits exactly on the window's open edge
    assert f_later["device.apps_24h"] == 3  # T0 - 5 h, T0 - 30 min and 'now'; not itself


def test_identity_consistency_counts_other_mobiles_accounts_and_businesses(
    history: History,
) -> None:
    history.submit(person=7, at=T0 - timedelta(days=2), mobile=mobile(1), business=uscc(500))
    history.submit(person=7, at=T0 - timedelta(days=1), mobile=mobile(2), business=uscc(9001))
    history.submit(person=7, at=T0 - timedelta(days=40), mobile=mobile(3))  # too old
    now = history.submit(person=7, at=T0, mobile=mobile(1), business=uscc(500))
    f = history.features(now)
    assert f["identity.mobiles_30d"] == 1  # mobile(2); mobile(1) is its own, mobile(3) is old
    assert f["identity.bank_accounts_30d"] == 2
    assert f["identity.businesses_30d"] == 1  # uscc(9001); uscc(500) is its own
    assert f["id_number.apps_30d"] == 2


def test_lists_match_by_blind_index_and_reject(history: History, database: Database) -> None:
    assert add_to_list(
        UnitOfWork(database.sessions),
        history.indexer,
        list_name="blacklist",
        kind="mobile",
        value="+86 139-0000-0042",  # normalised to the same index as 13900000042
        reason="court-listed defaulter",
        added_by="风控部",
    )
    assert not add_to_list(
        UnitOfWork(database.sessions),
        history.indexer,
        list_name="blacklist",
        kind="mobile",
        value="13900000042",
        reason="again",
        added_by="风控部",
    )
    app = history.submit(mobile="13900000042")
    assert history.features(app)["list.blacklist"] == 1
    result = history.decide(app)
    assert result.outcome == "declined"
    assert "FR_BLACKLIST" in [r.code for r in result.reasons]


def test_confirmed_fraud_review_lists_identifiers_and_reaches_the_neighbourhood(
    history: History, database: Database
) -> None:
    bad = history.submit(at=T0 - timedelta(days=3), bank_account=card(77), device="dev-ring")
    record_fraud_review(
        UnitOfWork(database.sessions),
        application_id=bad,
        verdict="confirmed",
        reviewed_by="李审核",
        reason="forged invoices",
        at=T0,
    )
    # shares the ring's device (one hop) -> the confirmed case is within two hops
    near = history.submit(at=T0 - timedelta(days=1), device="dev-ring", mobile=mobile(555))
    # shares only a mobile with 'near' -> two hops from the confirmed case
    far = history.submit(at=T0, mobile=mobile(555))
    f_far = history.features(far)
    assert f_far["graph.linked_1hop"] == 1 and f_far["graph.linked_2hop"] == 2
    assert f_far["graph.confirmed_fraud_2hop"] == 1
    assert history.features(near)["list.confirmed_fraud"] == 1  # the device is listed now
    with database.sessions() as s:
        listed = s.scalars(select(m.FraudListEntry.kind)).all()
    assert set(listed) == {"device", "mobile", "bank_account", "id_number", "uscc"}


def test_hub_keys_are_not_followed(history: History) -> None:
    hub_account = card(9)
    for i in range(HUB_CAP + 1):
        history.submit(at=T0 - timedelta(days=1, minutes=i), bank_account=hub_account)
    app = history.submit(at=T0, bank_account=hub_account)
    f = history.features(app)
    assert f["bank_account.apps_30d"] == HUB_CAP + 1  # velocity still counts it
    assert f["graph.hub_keys"] >= 1
    assert f["graph.linked_1hop"] == 0  # ...but the graph does not join everyone through it


def test_multi_lending_counts_other_institutions_only_and_reveals_no_names(
    history: History, database: Database
) -> None:
    for code in ("BANK_B", "LEASE_C"):
        register_institution(
            UnitOfWork(database.sessions), code=code, name=f"{code} 名称", institution_type="bank"
        )
    shared = factories.USCC
    history.submit(person=3, institution="BANK_B", at=T0 - timedelta(days=5), business=shared)
    history.submit(person=3, institution="LEASE_C", at=T0 - timedelta(days=20), business=shared)
    history.submit(person=3, institution="DEMO_BANK", at=T0 - timedelta(days=2), business=shared)
    history.submit(person=3, institution="BANK_B", at=T0 - timedelta(days=60), business=shared)
    now = history.submit(person=3, institution="DEMO_BANK", at=T0, business=shared)
    f = history.features(now)
    assert (f["ml.rep_apps_7d"], f["ml.rep_apps_30d"], f["ml.rep_apps_90d"]) == (1, 2, 3)
    assert f["ml.enterprise_apps_30d"] == 2
    result = history.decide(now)
    with database.sessions() as s:
        decision = s.scalar(select(m.Decision).where(m.Decision.application_id == now))
        assert decision is not None
        text = str(decision.details) + str(decision.reasons)
    for name in ("BANK_B", "LEASE_C", "名称"):
        assert name not in text  # counts only: never which institution
    assert result.outcome in ("approved", "referred", "declined")


def test_no_plaintext_identifier_reaches_the_link_table_or_logs(
    history: History, database: Database, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    logging.getLogger("sqlalchemy.engine").setLevel(logging.INFO)
    try:
        app = history.submit(device="dev-secret-handset", mobile="13912345670", ip="203.0.113.99")
        history.features(app)
        history.decide(app)
    finally:
        logging.getLogger("sqlalchemy.engine").setLevel(logging.WARNING)
    with database.sessions() as s:
        rows = s.execute(select(m.FraudLink.key, m.FraudLink.identity)).all()
    dumped = " ".join(f"{k} {i}" for k, i in rows)
    for secret in ("dev-secret-handset", "13912345670", "203.0.113.99", factories.USCC):
        assert secret not in dumped
        assert secret not in caplog.text
    assert all(len(k) == 32 and int(k, 16) >= 0 for k, _ in rows)  # truncated keyed HMACs, hex
