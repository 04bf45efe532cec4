"""Fraud rules as data: versioned rule sets, checked when loaded, evaluated over features.

A rule set is JSON — ``{"version", "description", "rules": [{"id", "when", "outcome",
"text_zh", "text_en"}]}`` — where ``when`` is a list of ``[feature, op, number]`` conditions
that must all hold, ``op`` one of ``>= > <= < == !=``, and ``outcome`` is ``review`` or
``reject``. Changing a threshold is a new version loaded with ``puhui fraud rules load``, not
a code edit; ``puhui fraud rules dry-run FILE`` replays a candidate over the features recorded
with past decisions before it goes live.

Outcome of a set: reject if any reject rule hits, else review if any review rule hits, else
pass; every hit is named. A feature that was not computed (e.g. no device given) is 0.
"""

from __future__ import annotations

import json
import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from importlib import resources
from typing import Any

from puhui.domain.errors import ErrorCollector

OPS: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge,
    ">": operator.gt,
    "<=": operator.le,
    "<": operator.lt,
    "==": operator.eq,
    "!=": operator.ne,
}


class Outcome(StrEnum):
    PASS = "pass"
    REVIEW = "review"
    REJECT = "reject"


OUTCOMES = {"review": Outcome.REVIEW, "reject": Outcome.REJECT}


@dataclass(frozen=True)
class Hit:
    """A rule that fired, with the reason the applicant is given."""

    code: str
    text_zh: str
    text_en: str


@dataclass(frozen=True)
class Condition:
    feature: str
    op: str
    value: float

    def holds(self, features: Mapping[str, float]) -> bool:
        return OPS[self.op](float(features.get(self.feature, 0.0)), self.value)


@dataclass(frozen=True)
class Rule:
    id: str
    when: tuple[Condition, ...]
    outcome: Outcome
    text_zh: str
    text_en: str

    def hits(self, features: Mapping[str, float]) -> bool:
        return all(c.holds(features) for c in self.when)

    @property
    def hit(self) -> Hit:
        return Hit(self.id, self.text_zh, self.text_en)


@dataclass(frozen=True)
class RuleSet:
    version: str
    rules: tuple[Rule, ...]
    description: str = ""

    def evaluate(self, features: Mapping[str, float]) -> tuple[Outcome, tuple[Hit, ...]]:
        fired = [r for r in self.rules if r.hits(features)]
        rejects = [r.hit for r in fired if r.outcome is Outcome.REJECT]
        reviews = [r.hit for r in fired if r.outcome is Outcome.REVIEW]
        if rejects:
            return Outcome.REJECT, tuple(rejects + reviews)
        if reviews:
            return Outcome.REVIEW, tuple(reviews)
        return Outcome.PASS, ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "description": self.description,
            "rules": [
                {
                    "id": r.id,
                    "when": [[c.feature, c.op, c.value] for c in r.when],
                    "outcome": r.outcome.value,
                    "text_zh": r.text_zh,
                    "text_en": r.text_en,
                }
                for r in self.rules
            ],
        }


def parse_rule_set(doc: Mapping[str, Any]) -> RuleSet:
    """Check a rule set whole and report every problem with its path (nothing half-loaded)."""
    errors = ErrorCollector()
    version = doc.get("version")
    if not isinstance(version, str) or not version.strip() or len(version) > 64:
        errors.add("version", "rules.version", "a non-empty version name up to 64 characters")
    raw_rules = doc.get("rules")
    if not isinstance(raw_rules, list) or not raw_rules:
        errors.add("rules", "rules.empty", "a non-empty list of rules")
        raw_rules = []
    rules: list[Rule] = []
    seen: set[str] = set()
    for i, raw in enumerate(raw_rules):
        path = f"rules[{i}]"
        if not isinstance(raw, Mapping):
            errors.add(path, "rules.shape", "each rule is an object")
            continue
        rid = raw.get("id")
        if not isinstance(rid, str) or not rid:
            errors.add(f"{path}.id", "rules.id", "a non-empty id")
        elif rid in seen:
            errors.add(f"{path}.id", "rules.duplicate", f"id {rid!r} is used twice")
        else:
            seen.add(rid)
        outcome = OUTCOMES.get(str(raw.get("outcome")))
        if outcome is None:
            errors.add(f"{path}.outcome", "rules.outcome", "outcome must be review or reject")
        for key in ("text_zh", "text_en"):
            if not isinstance(raw.get(key), str) or not raw.get(key):
                errors.add(f"{path}.{key}", "rules.text", "a reason text the applicant can read")
        conditions: list[Condition] = []
        when = raw.get("when")
        if not isinstance(when, list) or not when:
            errors.add(f"{path}.when", "rules.when", "a non-empty list of [feature, op, number]")
            when = []
        for j, cond in enumerate(when):
            cpath = f"{path}.when[{j}]"
            ok = (
                isinstance(cond, list)
                and len(cond) == 3
                and isinstance(cond[0], str)
                and cond[1] in OPS
                and isinstance(cond[2], int | float)
                and not isinstance(cond[2], bool)
            )
            if not ok:
                errors.add(cpath, "rules.condition", f"[feature, one of {sorted(OPS)}, number]")
                continue
            conditions.append(Condition(cond[0], cond[1], float(cond[2])))
        if isinstance(rid, str) and rid and outcome is not None and conditions:
            rules.append(
                Rule(rid, tuple(conditions), outcome, str(raw["text_zh"]), str(raw["text_en"]))
            )
    errors.raise_if_any()
    return RuleSet(str(version), tuple(rules), str(doc.get("description", "")))


def default_rule_set() -> RuleSet:
    text = resources.files("puhui.fraud").joinpath("data", "default_rules.json").read_text("utf-8")
    return parse_rule_set(json.loads(text))
