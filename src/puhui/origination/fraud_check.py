"""The application-time fraud assessment: the active fraud rule set over the application's
features (``puhui.fraud``), as the journey's ``FraudAssessor``."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from puhui.fraud.rule_store import active_rule_set
from puhui.fraud.rules import RuleSet
from puhui.origination.assessment import ApplicationFacts, FraudAssessment, FraudOutcome, Reason


@dataclass(frozen=True)
class RuleFraudAssessor:
    """Evaluates one rule set over ``facts.fraud_features``; every hit becomes a reason."""

    rules: RuleSet

    @property
    def name(self) -> str:
        return self.rules.version

    def assess(self, facts: ApplicationFacts) -> FraudAssessment:
        outcome, hits = self.rules.evaluate(facts.fraud_features)
        return FraudAssessment(
            FraudOutcome(outcome.value),
            tuple(Reason(h.code, h.text_zh, h.text_en) for h in hits),
            self.rules.version,
        )


def current_fraud_assessor(session: Session) -> RuleFraudAssessor:
    return RuleFraudAssessor(active_rule_set(session))
