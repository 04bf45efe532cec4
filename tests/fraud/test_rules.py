"""Fraud rules as data: checking, evaluating, versioning, activating and dry runs."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from puhui.domain.errors import ValidationError
from puhui.fraud.dry_run import dry_run
from puhui.fraud.rule_store import active_rule_set, load_rule_set
from puhui.fraud.rules import Outcome, default_rule_set, parse_rule_set
from puhui.origination.decide import decide_application
from puhui.origination.submit import submit_application
from puhui.privacy.blind_index import BlindIndexer
from puhui.privacy.vault import Vault
from puhui.store.unit_of_work import UnitOfWork
from tests import factories
from tests.conftest import Database

DEFAULT = default_rule_set()


def _satisfying(rule_when: Any) -> dict[str, float]:
    """Features that make every condition of a rule hold, and nothing else."""
    features: dict[str, float] = {}
    for c in rule_when:
        step = {">=": 0, ">": 1, "<=": 0, "<": -1, "==": 0, "!=": 1}[c.op]
        features[c.feature] = c.value + step
    return features


@pytest.mark.parametrize("rule", DEFAULT.rules, ids=lambda r: r.id)
def test_every_shipped_rule_fires_on_its_own_conditions_and_not_below(rule: Any) -> None:
    outcome, hits = DEFAULT.evaluate(_satisfying(rule.when))
    assert rule.id in [h.code for h in hits]
    assert outcome in (Outcome.REVIEW, Outcome.REJECT)
    if rule.outcome is Outcome.REJECT:
        assert outcome is Outcome.REJECT
    below = {c.feature: c.value - 1 for c in rule.when if c.op in (">=", ">")}
    if below:
        assert rule.id not in [h.code for h in DEFAULT.evaluate(below)[1]]


def test_nothing_fires_on_a_clean_application_and_reject_outranks_review() -> None:
    assert DEFAULT.evaluate({}) == (Outcome.PASS, ())
    outcome, hits = DEFAULT.evaluate({"device.apps_24h": 5, "list.blacklist": 1})
    assert outcome is Outcome.REJECT
    assert next(h.code for h in hits) == "FR_BLACKLIST"  # rejects listed before reviews
    assert "FR_DEVICE_VELOCITY" in [h.code for h in hits]


def test_a_bad_rule_set_is_refused_whole_with_every_problem_named() -> None:
    doc = {
        "version": "",
        "rules": [
            {
                "id": "A",
                "when": [["x", ">=", 1]],
                "outcome": "reject",
                "text_zh": "甲",
                "text_en": "a",
            },
            {"id": "A", "when": [["x", "~", 1]], "outcome": "ban", "text_zh": "", "text_en": "b"},
            {"id": "B", "when": [], "outcome": "review", "text_zh": "乙", "text_en": "b"},
            "not an object",
        ],
    }
    with pytest.raises(ValidationError) as caught:
        parse_rule_set(doc)
    found = {(e.field, e.rule) for e in caught.value.errors}
    assert ("version", "rules.version") in found
    assert ("rules[1].id", "rules.duplicate") in found
    assert ("rules[1].outcome", "rules.outcome") in found
    assert ("rules[1].text_zh", "rules.text") in found
    assert ("rules[1].when[0]", "rules.condition") in found
    assert ("rules[2].when", "rules.when") in found
    assert ("rules[3]", "rules.shape") in found


def test_round_trip_of_the_shipped_set() -> None:
    assert parse_rule_set(DEFAULT.to_dict()) == DEFAULT


def test_loading_versions_activates_exactly_one_and_refuses_a_reused_name(
    database: Database,
) -> None:
    with database.sessions() as s:
        assert active_rule_set(s).version == DEFAULT.version  # nothing loaded: the default
    stricter = copy.deepcopy(DEFAULT.to_dict())
    stricter["version"] = "fraud-rules-test.1"
    stricter["rules"][0]["when"] = [["list.blacklist", ">=", 2]]
    load_rule_set(UnitOfWork(database.sessions), stricter, by="风控部")
    with database.sessions() as s:
        assert active_rule_set(s).version == "fraud-rules-test.1"
    changed = copy.deepcopy(stricter)
    changed["rules"][0]["when"] = [["list.blacklist", ">=", 3]]
    with pytest.raises(ValidationError) as caught:
        load_rule_set(UnitOfWork(database.sessions), changed, by="风控部")
    assert caught.value.errors[0].rule == "rules.version_taken"
    load_rule_set(UnitOfWork(database.sessions), DEFAULT.to_dict(), by="风控部")
    with database.sessions() as s:
        assert active_rule_set(s).version == DEFAULT.version


def test_dry_run_replays_recorded_features(
    database: Database, institution: str, vault: Vault, indexer: BlindIndexer
) -> None:
    at = datetime(2026, 11, 28, 2, 0, tzinfo=UTC)
    with UnitOfWork(database.sessions) as uow:
        inst = uow.institutions.by_code("DEMO_BANK")
        assert inst is not None
        inst_id = inst.id
    for i in range(3):  # one device, three people: the third is reviewed for device reuse
        raw = factories.application(
            external_ref=f"D{i}",
            submitted_at=at + timedelta(minutes=i),
            legal_representative={"id_number": factories.id_number("19800101", seq=f"{i:03d}")},
        )
        app_id = submit_application(
            UnitOfWork(database.sessions), vault, indexer, raw
        ).application_id
        decide_application(
            UnitOfWork(database.sessions), institution_id=inst_id, application_id=app_id, at=at
        )
    lenient = copy.deepcopy(DEFAULT.to_dict())
    lenient["version"] = "lenient"
    lenient["rules"] = [r for r in lenient["rules"] if r["id"].startswith(("FR_BLACK", "FR_CONF"))]
    now = datetime.now(UTC)
    result = dry_run(
        UnitOfWork(database.sessions),
        parse_rule_set(lenient),
        since=now - timedelta(hours=1),
        until=now + timedelta(seconds=1),
    )
    assert result.applications == 3
    assert result.rule_hits["FR_DEVICE_REUSED"] == 0
    baseline = dry_run(
        UnitOfWork(database.sessions),
        DEFAULT,
        since=now - timedelta(hours=1),
        until=now + timedelta(seconds=1),
    )
    assert baseline.rule_hits["FR_DEVICE_REUSED"] >= 1
    assert baseline.changed == 0  # the active rules reproduce what was decided
    assert result.changed == 2  # the two reviewed for sharing would have passed
    assert result.transitions[("review", "pass")] == 2
