"""Which fraud rule set is active: stored versions, loading a new one, and a short cache.

A version is loaded whole or not at all (``parse_rule_set`` checks every rule first), made the
only active one in the same transaction, and recorded as an event with its audit record — who
changed the rules, when, to what. Decisions read the active set at most every ``ttl`` seconds
per process; with none loaded, the shipped default applies.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from puhui.domain.errors import ValidationError
from puhui.fraud.rules import RuleSet, default_rule_set, parse_rule_set
from puhui.store import models as m
from puhui.store.unit_of_work import UnitOfWork


class _ActiveRules:
    def __init__(self, ttl: float = 5.0) -> None:
        self.ttl = ttl
        self._lock = threading.Lock()
        self._by_db: dict[str, tuple[float, RuleSet]] = {}
        self._default: RuleSet | None = None

    def get(self, session: Session) -> RuleSet:
        key = str(session.get_bind().engine.url)
        now = time.monotonic()
        with self._lock:
            cached = self._by_db.get(key)
            if cached is not None and now - cached[0] < self.ttl:
                return cached[1]
            doc = session.scalar(
                select(m.FraudRuleSet.rules).where(m.FraudRuleSet.active.is_(True))
            )
            if doc is not None:
                rules = parse_rule_set(doc)
            else:
                self._default = self._default or default_rule_set()
                rules = self._default
            self._by_db[key] = (now, rules)
            return rules

    def forget(self) -> None:
        with self._lock:
            self._by_db.clear()


ACTIVE_RULES = _ActiveRules()


def load_rule_set(uow: UnitOfWork, doc: Mapping[str, Any], *, by: str) -> RuleSet:
    """Store and activate a rule set. The same version with other content is refused (a
    version names one set of rules forever); loading an identical version re-activates it."""
    rules = parse_rule_set(doc)
    if not by.strip():
        raise ValidationError.single("by", "rules.loader_required", "say who loads the rules")
    with uow:
        s = uow.session
        existing = s.get(m.FraudRuleSet, rules.version)
        if existing is not None and parse_rule_set(existing.rules) != rules:
            raise ValidationError.single(
                "version",
                "rules.version_taken",
                f"version {rules.version!r} exists with other rules; name the new set anew",
            )
        s.execute(update(m.FraudRuleSet).values(active=False))
        if existing is None:
            s.add(
                m.FraudRuleSet(
                    version=rules.version, rules=rules.to_dict(), active=True, created_by=by
                )
            )
        else:
            existing.active = True
        uow.flush()
        uow.record_event(
            aggregate_type="fraud_rules",
            aggregate_id=rules.version[:40],
            event_type="fraud.rules_activated",
            payload={"version": rules.version, "rules": len(rules.rules), "by": by},
        )
        uow.commit()
    ACTIVE_RULES.forget()
    return rules


def active_rule_set(session: Session) -> RuleSet:
    return ACTIVE_RULES.get(session)
