"""Replaying a candidate rule set over history before it goes live.

Every automated decision records the fraud features it saw (counts, no identifiers) and the
outcome the rules of the day gave. A dry run evaluates the candidate over those same
features: how often each rule would fire, and how many applications would move between pass,
review and reject — the numbers a fraud team wants before changing a threshold.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select

from puhui.fraud.rules import RuleSet
from puhui.store import models as m
from puhui.store.unit_of_work import UnitOfWork


@dataclass
class DryRun:
    version: str
    applications: int = 0
    rule_hits: Counter[str] = field(default_factory=Counter)
    outcomes: Counter[str] = field(default_factory=Counter)
    transitions: Counter[tuple[str, str]] = field(default_factory=Counter)
    """(outcome recorded at the time, outcome under the candidate) → applications."""

    @property
    def changed(self) -> int:
        return sum(n for (was, now), n in self.transitions.items() if was != now)


def dry_run(uow: UnitOfWork, candidate: RuleSet, *, since: datetime, until: datetime) -> DryRun:
    result = DryRun(candidate.version)
    with uow:
        rows = uow.session.execute(
            select(m.Decision.details).where(
                m.Decision.automated.is_(True),
                m.Decision.created_at >= since,
                m.Decision.created_at < until,
            )
        )
        for (details,) in rows:
            fraud = (details or {}).get("fraud") or {}
            features = fraud.get("features")
            if not isinstance(features, dict):
                continue  # decided before features were recorded
            outcome, hits = candidate.evaluate(features)
            result.applications += 1
            result.outcomes[outcome.value] += 1
            result.rule_hits.update(h.code for h in hits)
            result.transitions[(str(fraud.get("outcome", "?")), outcome.value)] += 1
    return result
