"""The credit assessment with a trained model: the registry's champion decides, the challenger
is scored beside it, and the decision strategy turns PD into grade, referral and price.

This replaces the points policy as the journey's default ``CreditAssessor`` and keeps the
policy's knock-out rules and USCC referral (``origination.policy``). Reasons given to the
applicant are the champion's top reason codes — the variables that cost the most points —
in Chinese and English (PIPL Art. 24).

What is recorded (in the decision's details): both models' ids, scores and PDs, which arm the
application fell in, and the *bins* of the champion's features for drift monitoring — never the
feature values themselves.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from puhui.federated.artifact import FederatedArtifact
from puhui.federated.errors import FederatedError
from puhui.federated.partner import partner_client
from puhui.origination.assessment import ApplicationFacts, CreditAssessment, Reason
from puhui.origination.policy import USCC_VERIFICATION, knockouts
from puhui.risk.champion import in_challenger_arm
from puhui.risk.explain import ScoreResult
from puhui.risk.features import amount_to_revenue
from puhui.risk.profile import score_bin
from puhui.risk.serving import LiveModel, LivePair, live_models
from puhui.risk.strategy import DEFAULT_STRATEGY, DecisionStrategy

CHALLENGER_SHARE = 0.5
"""Share of applications the challenger also scores (a deterministic hash split)."""

REFER_PD = Reason(
    "REFER_PD", "违约概率处于人工复核区间", "probability of default is in the band a person reviews"
)


def features_of_facts(facts: ApplicationFacts) -> dict[str, Any]:
    """The model's inputs for one application (see ``risk.features.FEATURES``)."""
    return {
        "applicant_age": facts.applicant_age,
        "years_in_business": float(facts.years_in_business),
        "annual_revenue": float(facts.annual_revenue),
        "amount_to_revenue": amount_to_revenue(facts.amount, facts.annual_revenue),
        "tax_grade": facts.tax_grade,
        "industry_section": facts.industry_code[:1] or None,
        "employees": facts.employees,
        "term_months": facts.term_months,
        "repayment_method": facts.repayment_method,
    }


def _reason_codes(result: ScoreResult, top: int) -> tuple[Reason, ...]:
    return tuple(
        Reason(f"RC_{c.feature.upper()}", c.text_zh, c.text_en, round(-c.points))
        for c in result.reasons(top)
    )


def _score(
    model: LiveModel, facts: ApplicationFacts, features: dict[str, Any]
) -> tuple[ScoreResult, dict[str, Any] | None]:
    """Score with one live model. A federated model asks the data partner and says whether
    it or its fallback scored, and why (recorded with the decision)."""
    artifact = model.artifact
    if not isinstance(artifact, FederatedArtifact):
        return artifact.score_one(features), None
    refusal = facts.partner_refusal
    try:
        client = partner_client()
    except FederatedError as exc:  # a broken configuration must not stop decisions
        client, refusal = None, refusal or f"the partner configuration is unusable: {exc}"
    return artifact.score_live(features, key=facts.partner_key, client=client, refusal=refusal)


def _record(model: LiveModel, result: ScoreResult, how: dict[str, Any] | None) -> dict[str, Any]:
    profile = model.artifact.profile
    record: dict[str, Any] = {
        "id": model.id,
        "version": model.version,
        "score": result.score,
        "pd": round(result.pd, 6),
        "score_bin": score_bin(profile, result.score) if profile else None,
    }
    if how is not None:
        record["federated"] = how
    return record


@dataclass
class ModelCreditAssessor:
    """A ``CreditAssessor`` over a champion (and optional challenger) model."""

    models: LivePair
    strategy: DecisionStrategy = DEFAULT_STRATEGY
    challenger_share: float = CHALLENGER_SHARE
    top_reasons: int = 4

    @property
    def name(self) -> str:
        return self.models.champion.version

    @property
    def needs_partner_key(self) -> bool:
        """Whether a live model is federated (the decision then reveals the business key to
        it, under the applicant's joint-modelling consent)."""
        return any(
            isinstance(model.artifact, FederatedArtifact)
            for model in (self.models.champion, self.models.challenger)
            if model is not None
        )

    def assess(self, facts: ApplicationFacts) -> CreditAssessment:
        features = features_of_facts(facts)
        champion = self.models.champion
        result, how = _score(champion, facts, features)
        details: dict[str, Any] = {
            "strategy": self.strategy.version,
            "champion": _record(champion, result, how),
            "bins": champion.artifact.monitoring_bins(features),
            "arm": "champion",
        }
        challenger = self.models.challenger
        if challenger is not None and in_challenger_arm(
            facts.application_id, self.challenger_share
        ):
            details["arm"] = "challenger"
            details["challenger"] = _record(challenger, *_score(challenger, facts, features))
        grade = self.strategy.grade(result.pd)
        refer = [USCC_VERIFICATION] if facts.uscc_needs_verification else []
        reasons = _reason_codes(result, self.top_reasons)
        if grade is None and self.strategy.refer(result.pd):
            refer.append(REFER_PD)
        return CreditAssessment(
            score=round(result.score),
            grade=grade,
            knockouts=tuple(knockouts(facts)),
            refer=tuple(refer),
            reasons=reasons,
            model_version=champion.version,
            pd=result.pd,
            annual_rate=(
                self.strategy.annual_rate(result.pd, facts.business_date) if grade else None
            ),
            details=details,
        )


def current_credit_assessor(session: Session) -> ModelCreditAssessor:
    """The assessor with the models live for this database right now."""
    return ModelCreditAssessor(live_models(session).current(session))
