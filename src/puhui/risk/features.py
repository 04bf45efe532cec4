"""The credit features the platform's own model sees, from one definition.

Two producers must agree exactly: the decision (``origination.credit_model`` builds them from
the application's facts, no personal data decrypted) and the training set built here from
synthetic applications. Both name :data:`FEATURES` and share :func:`amount_to_revenue`, so a
feature means the same at training and serving; a test feeds one application through both.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from decimal import Decimal
from typing import Any

import pandas as pd

from puhui.domain.identifiers import age_on
from puhui.synthetic.model import SyntheticApplication

FEATURES: tuple[str, ...] = (
    "applicant_age",
    "years_in_business",
    "annual_revenue",
    "amount_to_revenue",
    "tax_grade",
    "industry_section",
    "employees",
    "term_months",
    "repayment_method",
)


def amount_to_revenue(amount: Decimal, revenue: Decimal) -> float | None:
    """Amount asked over annual revenue; missing (not infinite) when there is no revenue."""
    return float(amount / revenue) if revenue > 0 else None


def features_of_synthetic(app: SyntheticApplication) -> dict[str, Any]:
    e = app.enterprise
    submitted: date = app.submitted_at.date()
    return {
        "applicant_age": age_on(app.legal_representative.birth_date, submitted),
        "years_in_business": round(float(e.years_in_business), 2),
        "annual_revenue": float(e.annual_revenue),
        "amount_to_revenue": amount_to_revenue(
            Decimal(app.requested_amount), Decimal(e.annual_revenue)
        ),
        "tax_grade": e.tax_grade,
        "industry_section": e.industry_section,
        "employees": e.employees,
        "term_months": app.term_months,
        "repayment_method": app.repayment_method,
    }


def training_frame(applications: Iterable[SyntheticApplication]) -> tuple[pd.DataFrame, pd.Series]:
    """Features and the default label (1 = defaulted) of synthetic applications.

    Members of planted fraud rings are left out: their "defaults" are fraud, which the
    anti-fraud assessment is there to stop, and a credit model trained on them would learn
    the ring's disguise as credit risk."""
    rows, labels = [], []
    for app in applications:
        if app.is_fraud:
            continue
        rows.append(features_of_synthetic(app))
        labels.append(int(app.defaulted))
    return pd.DataFrame(rows, columns=list(FEATURES)), pd.Series(labels, name="defaulted")
