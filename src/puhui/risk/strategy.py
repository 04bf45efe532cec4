"""The decision strategy: from a probability of default to approve, refer or decline, a risk
grade, a credit limit and a risk-based price.

Every number is a policy a credit committee sets, written here once with its reasoning:

* **Grades by PD** (the model's probability of default over the loan's life):
  A ≤ 2 %, B ≤ 4 %, C ≤ 7 %, D ≤ 10 %. Above 10 % and up to 14 % the application is
  **referred** to a person; above 14 % it is declined (reason: the score's top reason codes).
* **Limit**: the product's share of annual revenue for the grade (richer, safer businesses
  borrow more), never more than asked or the product maximum (``origination.pricing_offer``).
* **Risk-based price**: annual rate = the 1-year LPR in force + operating cost 1.5 % + margin
  1.0 % + expected loss PD × LGD (45 %, the Basel foundation LGD for senior unsecured claims),
  rounded *up* to 5 basis points. The APR that results (fees included, by IRR) must still be
  within the institution's legal cap; otherwise there is no offer (knock-out KO_RATE_CAP).

Knock-out rules stay as the origination policy wrote them (``origination.policy.knockouts``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import ROUND_CEILING, Decimal
from itertools import pairwise

from puhui.domain.pricing import lpr_on

_STEP = Decimal("0.0005")


@dataclass(frozen=True)
class DecisionStrategy:
    grade_max_pd: tuple[tuple[str, float], ...] = (
        ("A", 0.02),
        ("B", 0.04),
        ("C", 0.07),
        ("D", 0.10),
    )
    refer_max_pd: float = 0.14
    lgd: Decimal = Decimal("0.45")
    operating_cost: Decimal = Decimal("0.015")
    margin: Decimal = Decimal("0.010")
    version: str = "pd-strategy-2026.1"

    def __post_init__(self) -> None:
        cuts = [c for _, c in self.grade_max_pd]
        rising = all(a < b for a, b in pairwise(cuts))
        if not cuts or not rising or cuts[-1] > self.refer_max_pd:
            raise ValueError("grade cut-offs must rise and end below the refer band's top")

    def grade(self, pd: float) -> str | None:
        """The grade of a PD, or None when it is past the last grade's cut-off."""
        for g, cut in self.grade_max_pd:
            if pd <= cut:
                return g
        return None

    def refer(self, pd: float) -> bool:
        return self.grade(pd) is None and pd <= self.refer_max_pd

    def annual_rate(self, pd: float, on: date) -> Decimal:
        """LPR + cost + margin + PD × LGD, rounded up to 5 bp."""
        expected_loss = Decimal(str(round(pd, 6))) * self.lgd
        raw = lpr_on(on) + self.operating_cost + self.margin + expected_loss
        return (raw / _STEP).to_integral_value(rounding=ROUND_CEILING) * _STEP


DEFAULT_STRATEGY = DecisionStrategy()
