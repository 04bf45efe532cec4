"""Loading synthetic applicants through the real submission use case.

Used by ``puhui synthetic load`` to give a fresh installation realistic data, and by the
benchmarks. Every record goes through validation, consent checks, sealing and audit exactly as
a partner's submission would; nothing is written around the use case.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from puhui.bootstrap import Platform
from puhui.domain.errors import ValidationError
from puhui.origination.institutions import register_institution
from puhui.origination.submit import submit_application
from puhui.synthetic import SyntheticApplication, generate

INSTITUTION_TYPES = {"BANK": "bank", "LEASE": "leasing", "MICRO": "microlender"}

FULL_CONSENT = {
    "purpose": "credit_assessment",
    "scope": ["identity", "contact", "financial_account", "enterprise", "device"],
    "text_version": "2026.1",
    "channel": "app",
}


def as_submission(app: SyntheticApplication) -> dict[str, Any]:
    """The synthetic application as a partner would submit it."""
    ent, person = app.enterprise, app.legal_representative
    return {
        "institution_code": app.institution_code,
        "external_ref": app.application_id,
        "submitted_at": app.submitted_at,
        "enterprise": {
            "name": ent.name,
            "uscc": ent.uscc,
            "industry_code": f"{ent.industry_section}{ent.industry_division}",
            "division_code": ent.uscc[2:8],
            "registered_on": ent.registered_date.isoformat(),
            "annual_revenue": str(ent.annual_revenue),
            "tax_grade": ent.tax_grade,
            "employees": ent.employees,
        },
        "legal_representative": {
            "name": person.name,
            "id_number": person.id_number,
            "mobile": person.mobile,
            "bank_account": person.bank_card,
            "address": person.address,
        },
        "amount": str(app.requested_amount),
        "term_months": app.term_months,
        "repayment_method": app.repayment_method,
        "purpose": app.purpose,
        "channel": "api",
        "device_id": app.device_id,
        "ip": app.ip_address,
        "consents": [FULL_CONSENT],
    }


@dataclass
class LoadSummary:
    submitted: int = 0
    replayed: int = 0
    rejected: int = 0
    rules: Counter[str] = field(default_factory=Counter)

    @property
    def rejection_rules(self) -> list[str]:
        return [f"{rule} ×{n}" for rule, n in self.rules.most_common()]


def load_synthetic(
    platform: Platform,
    *,
    n: int,
    seed: int,
    fraud_rate: float = 0.02,
    on_progress: Callable[[], None] | None = None,
) -> LoadSummary:
    population = generate(n, seed=seed, fraud_rate=fraud_rate)
    for code in sorted({a.institution_code for a in population.applications}):
        kind = INSTITUTION_TYPES.get(code.split("_")[0], "bank")
        register_institution(
            platform.uow("seed"), code=code, name=f"{code} (synthetic)", institution_type=kind
        )
    summary = LoadSummary()
    for app in population.applications:
        try:
            receipt = submit_application(
                platform.uow("seed"), platform.vault, platform.indexer, as_submission(app)
            )
        except ValidationError as exc:
            summary.rejected += 1
            summary.rules.update(exc.rules)
        else:
            if receipt.replayed:
                summary.replayed += 1
            else:
                summary.submitted += 1
        if on_progress:
            on_progress()
    return summary
