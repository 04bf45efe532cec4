"""APR by IRR as the PBOC requires, and the legal caps an offer must stay under.

Why it is done this way
-----------------------
* **APR (PBOC announcement 〔2021〕 No. 3).** The annualised rate counts every cost to the
  borrower — interest and every loan-related fee — over the principal actually outstanding,
  computed as an internal rate of return. A "0.6% monthly flat fee" on 10,000 over 12 months
  is not 7.2% but 13.03%. :func:`apr_by_irr` finds the periodic IRR by safeguarded Newton
  iteration with a bisection fallback, in ``Decimal`` at 40 significant digits, to better than
  1e-28 in the discount factor; the periodic rate is kept to 20 decimal places. It reports

  - ``nominal_annual`` = periodic × periods per year — **the disclosure APR** (the PBOC's
    worked examples and Chinese contracts annualise a monthly IRR by × 12), and
  - ``effective_annual`` = (1 + periodic)^k − 1, the compound figure.

  For display both are shown in percent with 2 decimals, ROUND_HALF_UP (``13.03%``). Cap
  checks compare the *unrounded* nominal APR, so 24.004% is above a 24% cap.
* **Dated flows.** :func:`apr_by_xirr` takes (date, amount) flows for irregular dates and
  solves with actual/365 time (a daily discount factor raised to whole days, so the solver
  stays polynomial and exact); its effective annual rate is the usual XIRR and its nominal
  APR the equivalent periodic rate × k.
* **Caps.** The Supreme People's Court private-lending provisions (in force 2021-01-01,
  Art. 25) do not support interest above 4 × the 1-year LPR at contract formation. Licensed
  institutions are outside those provisions; courts and regulators use 24% a year all-in as
  their line. Which rule applies is data — :data:`DEFAULT_CAP_RULES`, overridable per
  operator with :func:`cap_rules` — not code.

All rates are ``Decimal`` fractions (0.06 = 6%); no float is accepted anywhere.
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Context, Decimal
from enum import Enum
from types import MappingProxyType
from typing import Any

from puhui.domain.errors import ErrorCollector, ValidationError
from puhui.domain.money import ZERO, parse_amount, round_fen
from puhui.domain.schedule import Schedule

_CTX = Context(prec=40)
_ONE = Decimal(1)
_HUNDRED = Decimal(100)

PERCENT_PLACES = Decimal("0.01")
"""Display precision of a rate in percent: 2 decimals, ROUND_HALF_UP."""

RATE_PLACES = Decimal("1e-20")
"""Precision kept for computed rates (periodic, nominal, effective)."""

_TOLERANCE = Decimal("1e-30")
_MAX_ITERATIONS = 300

# Points (periodic rates) scanned outward from zero to bracket the IRR.
_POSITIVE_GRID = tuple(
    Decimal(x)
    for x in ("0", "0.0001", "0.001", "0.01", "0.03", "0.1", "0.3", "1", "3", "10", "100", "1000")
)
_NEGATIVE_GRID = tuple(
    Decimal(x)
    for x in ("0", "-0.0001", "-0.001", "-0.01", "-0.1", "-0.5", "-0.9", "-0.99", "-0.999")
)


def percent(rate: Decimal) -> Decimal:
    """A fraction as a percent for display: ``0.130343`` → ``13.03`` (ROUND_HALF_UP)."""
    return (rate * _HUNDRED).quantize(PERCENT_PLACES, rounding=ROUND_HALF_UP)


@dataclass(frozen=True, slots=True)
class AprResult:
    """The IRR of a loan's cash flows, as the periodic, nominal and effective annual rate."""

    periodic_rate: Decimal
    periods_per_year: int
    nominal_annual: Decimal
    """periodic × periods_per_year: the APR to disclose."""
    effective_annual: Decimal
    """(1 + periodic)^periods_per_year − 1."""

    @property
    def nominal_percent(self) -> Decimal:
        return percent(self.nominal_annual)

    @property
    def effective_percent(self) -> Decimal:
        return percent(self.effective_annual)

    def __str__(self) -> str:
        return f"APR {self.nominal_percent}% (effective {self.effective_percent}%)"


def apr_by_irr(
    cash_flows: Sequence[Decimal | int] | Sequence[tuple[int, Decimal | int]],
    periods_per_year: int = 12,
) -> AprResult:
    """The APR of periodic cash flows by IRR.

    ``cash_flows`` is either a list of amounts, position = period (index 0 the disbursement
    net of up-front fees), or a list of ``(period_index, amount)``; repeated indices add up.
    Either sign convention works (lender: ``-9700, 860.66, ...``; borrower: the negation).

    Errors (field ``cash_flows`` or ``cash_flows[i]``): ``apr.flow_type`` (an amount that is a
    float, bool or not finite), ``apr.period_index`` (a negative or non-integer index),
    ``apr.periods_per_year``, ``apr.sign_change`` (money must flow both ways) and
    ``apr.no_solution`` (no rate above −100% balances the flows).
    """
    _check_periods(periods_per_year)
    return _result(_irr(_normalise(cash_flows)), periods_per_year)


def apr_by_xirr(
    cash_flows: Sequence[tuple[date, Decimal | int]], periods_per_year: int = 12
) -> AprResult:
    """The APR of dated cash flows by IRR on actual/365 time (XIRR).

    ``effective_annual`` is the XIRR; ``periodic_rate`` is the equivalent rate per
    1/``periods_per_year`` of a year and ``nominal_annual`` that × ``periods_per_year``, so a
    regular monthly loan gives nearly the same APR as :func:`apr_by_irr`.
    Errors as :func:`apr_by_irr`, plus ``apr.flow_date`` for an entry without a ``date``.
    """
    _check_periods(periods_per_year)
    errors = ErrorCollector()
    dated: list[tuple[date, Decimal | int]] = []
    for i, entry in enumerate(cash_flows):
        day = entry[0] if isinstance(entry, tuple) and len(entry) == 2 else None
        if not isinstance(day, date) or isinstance(day, datetime):
            errors.add(f"cash_flows[{i}]", "apr.flow_date", "each flow must be (date, amount)")
        else:
            dated.append((day, entry[1]))
    errors.raise_if_any()
    if not dated:
        raise ValidationError.single("cash_flows", "apr.sign_change", "no cash flows")
    origin = min(day for day, _ in dated)
    daily = _irr(_normalise([((day - origin).days, amount) for day, amount in dated]))
    effective = _CTX.subtract(_CTX.power(_CTX.add(_ONE, daily), 365), _ONE)
    exponent = _CTX.divide(_ONE, Decimal(periods_per_year))
    periodic = _CTX.subtract(_CTX.power(_CTX.add(_ONE, effective), exponent), _ONE)
    return AprResult(
        periodic_rate=periodic.quantize(RATE_PLACES, context=_CTX),
        periods_per_year=periods_per_year,
        nominal_annual=(periodic * periods_per_year).quantize(RATE_PLACES, context=_CTX),
        effective_annual=effective.quantize(RATE_PLACES, context=_CTX),
    )


# --- cash flows from a schedule ----------------------------------------------------------


def flat_fee(principal: Decimal, monthly_rate: Decimal) -> Decimal:
    """A "monthly flat fee" (月费率) on the original principal, rounded to the fen."""
    return round_fen(principal * monthly_rate)


def schedule_cash_flows(
    schedule: Schedule,
    *,
    upfront_fee: Decimal = ZERO,
    fee_per_instalment: Decimal = ZERO,
) -> tuple[Decimal, ...]:
    """Periodic cash flows from the lender's side: ``-(principal - upfront_fee)``, then each
    payment plus ``fee_per_instalment``.

    Errors: ``money.*`` on ``fees.upfront`` / ``fees.per_instalment`` and
    ``fees.upfront_below_principal`` when the up-front fee would swallow the loan.
    """
    upfront, monthly = _parse_fees(schedule, upfront_fee, fee_per_instalment)
    net = schedule.terms.principal - upfront
    return (-net, *(row.payment + monthly for row in schedule.instalments))


def schedule_dated_cash_flows(
    schedule: Schedule,
    *,
    upfront_fee: Decimal = ZERO,
    fee_per_instalment: Decimal = ZERO,
) -> tuple[tuple[date, Decimal], ...]:
    """As :func:`schedule_cash_flows`, dated: disbursement on the start date, then due dates."""
    flows = schedule_cash_flows(
        schedule, upfront_fee=upfront_fee, fee_per_instalment=fee_per_instalment
    )
    days = (schedule.terms.start_date, *(row.due_date for row in schedule.instalments))
    return tuple(zip(days, flows, strict=True))


def apr_of_schedule(
    schedule: Schedule,
    *,
    upfront_fee: Decimal = ZERO,
    fee_per_instalment: Decimal = ZERO,
    dated: bool | None = None,
) -> AprResult:
    """The APR of a schedule with its fees.

    Periodic (monthly IRR × 12) by default, the PBOC's and the contract's convention; dated
    (XIRR, actual/365) when ``dated`` is true, or by default when the first period is broken,
    since a periodic IRR would then treat an odd-length period as a whole month.
    """
    use_dates = schedule.terms.has_broken_first_period if dated is None else dated
    if use_dates:
        return apr_by_xirr(
            schedule_dated_cash_flows(
                schedule, upfront_fee=upfront_fee, fee_per_instalment=fee_per_instalment
            )
        )
    return apr_by_irr(
        schedule_cash_flows(
            schedule, upfront_fee=upfront_fee, fee_per_instalment=fee_per_instalment
        )
    )


def _parse_fees(
    schedule: Schedule, upfront_fee: object, fee_per_instalment: object
) -> tuple[Decimal, Decimal]:
    errors = ErrorCollector()
    upfront = monthly = ZERO
    with errors.checking():
        upfront = parse_amount(upfront_fee, "fees.upfront", allow_zero=True)
        if upfront >= schedule.terms.principal:
            errors.add(
                "fees.upfront",
                "fees.upfront_below_principal",
                "the up-front fee must be less than the principal",
            )
    with errors.checking():
        monthly = parse_amount(fee_per_instalment, "fees.per_instalment", allow_zero=True)
    errors.raise_if_any()
    return upfront, monthly


# --- the IRR solver ----------------------------------------------------------------------


def _check_periods(periods_per_year: object) -> None:
    if (
        isinstance(periods_per_year, bool)
        or not isinstance(periods_per_year, int)
        or not (1 <= periods_per_year <= 366)
    ):
        raise ValidationError.single(
            "periods_per_year", "apr.periods_per_year", "periods per year must be 1 to 366"
        )


def _normalise(
    cash_flows: Sequence[Decimal | int] | Sequence[tuple[int, Decimal | int]],
) -> list[tuple[int, Decimal]]:
    errors = ErrorCollector()
    merged: dict[int, Decimal] = {}
    for position, entry in enumerate(cash_flows):
        index: object
        amount: object
        if isinstance(entry, tuple):
            index, amount = entry if len(entry) == 2 else (None, None)
        else:
            index, amount = position, entry
        where = f"cash_flows[{position}]"
        if isinstance(index, bool) or not isinstance(index, int) or index < 0:
            errors.add(where, "apr.period_index", "the period index must be an integer ≥ 0")
            continue
        if isinstance(amount, bool) or not isinstance(amount, int | Decimal):
            errors.add(where, "apr.flow_type", "an amount must be a Decimal or int, not a float")
            continue
        value = Decimal(amount)
        if not value.is_finite():
            errors.add(where, "apr.flow_type", "an amount must be finite")
            continue
        merged[index] = merged.get(index, Decimal(0)) + value
    errors.raise_if_any()
    flows = sorted((t, c) for t, c in merged.items() if c != 0)
    if not any(c > 0 for _, c in flows) or not any(c < 0 for _, c in flows):
        raise ValidationError.single(
            "cash_flows",
            "apr.sign_change",
            "cash flows must include money both lent and repaid (amounts of both signs)",
        )
    return flows


def _npv(flows: Sequence[tuple[int, Decimal]], v: Decimal) -> tuple[Decimal, Decimal]:
    """``f(v) = Σ c·v^t`` and ``f'(v)``, v the one-period discount factor ``1/(1+r)``."""
    ctx = _CTX
    powers: dict[int, Decimal] = {}
    first = flows[0][0]
    power = ctx.power(v, first)
    previous = first
    total = Decimal(0)
    slope = Decimal(0)
    for t, c in flows:
        gap = t - previous
        if gap:
            step = powers.get(gap)
            if step is None:
                step = powers[gap] = ctx.power(v, gap)
            power = ctx.multiply(power, step)
            previous = t
        term = ctx.multiply(c, power)
        total = ctx.add(total, term)
        slope = ctx.add(slope, ctx.multiply(Decimal(t), term))
    return total, ctx.divide(slope, v)


def _irr(flows: Sequence[tuple[int, Decimal]]) -> Decimal:
    """The periodic IRR: scan outward from 0 for a sign change, then safeguarded Newton."""
    bracket = _bracket(flows, _POSITIVE_GRID) or _bracket(flows, _NEGATIVE_GRID)
    if bracket is None:
        raise ValidationError.single(
            "cash_flows", "apr.no_solution", "no interest rate above -100% balances these flows"
        )
    (lo, f_lo), (hi, _f_hi) = bracket
    if f_lo == 0:
        return _rate(lo)
    v = _CTX.divide(_CTX.add(lo, hi), Decimal(2))
    for _ in range(_MAX_ITERATIONS):
        f, slope = _npv(flows, v)
        if f == 0:
            break
        if (f < 0) == (f_lo < 0):
            lo, f_lo = v, f
        else:
            hi = v
        if slope != 0:
            step = _CTX.divide(f, slope)
            if abs(step) < _TOLERANCE:  # converged: the step is below the precision we keep
                v = _CTX.subtract(v, step)
                break
            candidate = _CTX.subtract(v, step)
        else:
            candidate = lo
        if not min(lo, hi) < candidate < max(lo, hi):  # Newton left the bracket: bisect
            candidate = _CTX.divide(_CTX.add(lo, hi), Decimal(2))
        if abs(hi - lo) < _TOLERANCE:
            break
        v = candidate
    return _rate(v)


def _bracket(
    flows: Sequence[tuple[int, Decimal]], grid: Sequence[Decimal]
) -> tuple[tuple[Decimal, Decimal], tuple[Decimal, Decimal]] | None:
    """Two discount factors, the first's NPV exactly 0 or of the other sign from the second's."""
    previous: tuple[Decimal, Decimal] | None = None
    for rate in grid:
        v = _CTX.divide(_ONE, _CTX.add(_ONE, rate))
        f, _ = _npv(flows, v)
        if f == 0:
            return (v, f), (v, f)
        if previous is not None and (previous[1] < 0) != (f < 0):
            return previous, (v, f)
        previous = (v, f)
    return None


def _rate(v: Decimal) -> Decimal:
    return _CTX.subtract(_CTX.divide(_ONE, v), _ONE)


def _result(periodic: Decimal, periods_per_year: int) -> AprResult:
    periodic = periodic.quantize(RATE_PLACES, context=_CTX)
    effective = _CTX.subtract(_CTX.power(_CTX.add(_ONE, periodic), periods_per_year), _ONE)
    return AprResult(
        periodic_rate=periodic,
        periods_per_year=periods_per_year,
        nominal_annual=periodic * periods_per_year,
        effective_annual=effective.quantize(RATE_PLACES, context=_CTX),
    )


# --- the 1-year LPR and legal caps -------------------------------------------------------

LPR_1Y: tuple[tuple[date, Decimal], ...] = tuple(
    (date.fromisoformat(day), Decimal(rate))
    for day, rate in (
        ("2019-08-20", "0.0425"),
        ("2019-09-20", "0.0420"),
        ("2019-11-20", "0.0415"),
        ("2020-02-20", "0.0405"),
        ("2020-04-20", "0.0385"),
        ("2021-12-20", "0.0380"),
        ("2022-01-20", "0.0370"),
        ("2022-08-22", "0.0365"),
        ("2023-06-20", "0.0355"),
        ("2023-08-21", "0.0345"),
        ("2024-07-22", "0.0335"),
        ("2024-10-21", "0.0310"),
        ("2025-05-20", "0.0300"),
    )
)
"""Changes of the 1-year loan prime rate since the 2019 reform: (publication date, rate).

Published by the National Interbank Funding Center on the 20th (or the next business day)
and in force until the next publication; months without a change are omitted. Monthly
publications through 2026-05-20 left 3.00% unchanged (third-party history table, checked
2026). An operator must append new changes — :func:`lpr_on` keeps returning the last entry.
"""


def lpr_on(day: date, table: Sequence[tuple[date, Decimal]] = LPR_1Y) -> Decimal:
    """The 1-year LPR in force on ``day`` (``table`` sorted by date, changes only).

    Raises ``ValidationError`` field ``contract_date`` rule ``pricing.lpr_unknown`` for a day
    before the table's first entry (before the 2019 reform the LPR meant something else).
    """
    return _lpr_entry(day, table)[1]


def _lpr_entry(day: date, table: Sequence[tuple[date, Decimal]]) -> tuple[date, Decimal]:
    if not isinstance(day, date) or isinstance(day, datetime):
        raise ValidationError.single("contract_date", "pricing.date_type", "must be a date")
    position = bisect.bisect_right([d for d, _ in table], day)
    if position == 0:
        first = table[0][0] if table else None
        raise ValidationError.single(
            "contract_date",
            "pricing.lpr_unknown",
            f"no 1-year LPR is known for {day.isoformat()} (table starts {first})",
        )
    return table[position - 1]


class InstitutionType(Enum):
    """Who lends; decides which cap applies. Values are stable names for configuration."""

    BANK = "bank"
    CONSUMER_FINANCE = "consumer_finance"
    TRUST = "trust"
    MICROLENDER = "microlender"
    GUARANTOR = "guarantor"
    LEASING = "leasing"
    FACTORING = "factoring"
    PAWNSHOP = "pawnshop"
    LOCAL_AMC = "local_amc"
    PRIVATE_LENDER = "private_lender"


def _positive_decimal(raw: object) -> Decimal | None:
    if isinstance(raw, bool | float) or not isinstance(raw, str | int | Decimal):
        return None
    try:
        value = Decimal(raw)
    except ArithmeticError:
        return None
    return value if value.is_finite() and value > 0 else None


class CapKind(Enum):
    LPR_MULTIPLE = "lpr_multiple"
    """A multiple of the 1-year LPR in force at contract formation."""
    FIXED_APR = "fixed_apr"
    """A fixed all-in APR line."""


@dataclass(frozen=True, slots=True)
class CapRule:
    """A ceiling on the all-in APR: ``value`` × LPR, or ``value`` itself; ``source`` cites it.

    Errors: ``pricing.cap_rule_kind`` (field ``cap_rule.kind``) and ``pricing.cap_rule_value``
    (field ``cap_rule.value``: a positive Decimal or decimal string).
    """

    kind: CapKind
    value: Decimal
    source: str

    def __post_init__(self) -> None:
        errors = ErrorCollector()
        kind: CapKind | None = None
        try:
            kind = self.kind if isinstance(self.kind, CapKind) else CapKind(self.kind)
        except (ValueError, TypeError):
            errors.add(
                "cap_rule.kind", "pricing.cap_rule_kind", "kind must be lpr_multiple or fixed_apr"
            )
        value = _positive_decimal(self.value)
        if value is None:
            errors.add(
                "cap_rule.value", "pricing.cap_rule_value", "value must be a positive decimal"
            )
        errors.raise_if_any()
        object.__setattr__(self, "kind", kind)
        object.__setattr__(self, "value", value)

    @classmethod
    def lpr_multiple(cls, multiple: Decimal, source: str) -> CapRule:
        return cls(CapKind.LPR_MULTIPLE, multiple, source)

    @classmethod
    def fixed_apr(cls, apr: Decimal, source: str) -> CapRule:
        return cls(CapKind.FIXED_APR, apr, source)

    def cap_on(
        self, contract_date: date, lpr_table: Sequence[tuple[date, Decimal]] = LPR_1Y
    ) -> tuple[Decimal, str]:
        """The cap for a contract formed on ``contract_date`` and a sentence saying why."""
        if self.kind is CapKind.FIXED_APR:
            return self.value, f"{percent(self.value)}% a year all-in ({self.source})"
        published, lpr = _lpr_entry(contract_date, lpr_table)
        cap = self.value * lpr
        return cap, (
            f"{self.value.normalize()} × the 1-year LPR of {percent(lpr)}% "
            f"(published {published.isoformat()}, in force on {contract_date.isoformat()}) "
            f"= {percent(cap)}% ({self.source})"
        )


_SPC_ART_25 = "SPC provisions on private lending, text in force 2021-01-01, Art. 25"
_LICENSED_LINE = (
    "the line courts and regulators apply to licensed lenders, outside the private-lending "
    "provisions per 法释〔2020〕27号; a policy setting, not a statute"
)

DEFAULT_CAP_RULES: Mapping[InstitutionType, CapRule] = MappingProxyType(
    {
        **{
            kind: CapRule.fixed_apr(Decimal("0.24"), _LICENSED_LINE)
            for kind in InstitutionType
            if kind is not InstitutionType.PRIVATE_LENDER
        },
        InstitutionType.PRIVATE_LENDER: CapRule.lpr_multiple(Decimal(4), _SPC_ART_25),
    }
)
"""Private lenders: 4 × LPR at contract formation; every licensed type: 24% all-in."""


_Override = CapRule | Mapping[str, object]


def cap_rules(
    overrides: Mapping[Any, _Override] | None = None,  # keys: InstitutionType or its value
    base: Mapping[InstitutionType, CapRule] = DEFAULT_CAP_RULES,
) -> Mapping[InstitutionType, CapRule]:
    """``base`` with an operator's overrides applied, read-only.

    An override is a :class:`CapRule` or configuration data
    ``{"kind": "fixed_apr", "value": "0.18", "source": "..."}``, keyed by an
    :class:`InstitutionType` or its value. Errors name ``cap_rules.<key>.*`` with rule
    ``pricing.institution_type`` or the :class:`CapRule` rules.
    """
    merged = dict(base)
    errors = ErrorCollector()
    for key, raw in (overrides or {}).items():
        try:
            kind = key if isinstance(key, InstitutionType) else InstitutionType(key)
        except ValueError:
            errors.add(f"cap_rules.{key}", "pricing.institution_type", "unknown institution type")
            continue
        if isinstance(raw, CapRule):
            merged[kind] = raw
            continue
        with errors.checking(f"cap_rules.{kind.value}"):
            merged[kind] = CapRule(
                raw.get("kind"),  # type: ignore[arg-type]  # validated by CapRule
                raw.get("value"),  # type: ignore[arg-type]
                str(raw.get("source", "operator setting")),
            )
    errors.raise_if_any()
    return MappingProxyType(merged)


@dataclass(frozen=True, slots=True)
class CapCheck:
    """The outcome of a cap check: whether the APR is allowed, the cap, and why that cap."""

    allowed: bool
    cap: Decimal
    basis: str


def check_rate_cap(
    apr: Decimal | AprResult,
    contract_date: date,
    institution: InstitutionType | CapRule,
    *,
    rules: Mapping[InstitutionType, CapRule] = DEFAULT_CAP_RULES,
    lpr_table: Sequence[tuple[date, Decimal]] = LPR_1Y,
    field: str = "offer.apr",
) -> CapCheck:
    """Whether ``apr`` (the nominal, unrounded all-in APR) is at most the applicable cap.

    ``institution`` picks the rule from ``rules``, or is the rule itself. Errors: ``rate.type``
    on ``field`` for an APR that is not a finite Decimal; ``pricing.institution_type`` (field
    ``institution_type``) when ``rules`` has no rule for it; ``pricing.lpr_unknown`` for a
    contract date before the LPR table.
    """
    value = apr.nominal_annual if isinstance(apr, AprResult) else apr
    if isinstance(value, bool) or not isinstance(value, Decimal) or not value.is_finite():
        raise ValidationError.single(field, "rate.type", "the APR must be a finite Decimal")
    rule = institution if isinstance(institution, CapRule) else rules.get(institution)
    if rule is None:
        raise ValidationError.single(
            "institution_type",
            "pricing.institution_type",
            f"no cap rule is configured for {institution!r}",
        )
    cap, basis = rule.cap_on(contract_date, lpr_table)
    return CapCheck(allowed=value <= cap, cap=cap, basis=basis)


def ensure_within_cap(
    apr: Decimal | AprResult,
    contract_date: date,
    institution: InstitutionType | CapRule,
    *,
    rules: Mapping[InstitutionType, CapRule] = DEFAULT_CAP_RULES,
    lpr_table: Sequence[tuple[date, Decimal]] = LPR_1Y,
    field: str = "offer.apr",
) -> CapCheck:
    """As :func:`check_rate_cap`, raising ``ValidationError`` (``field``, rule
    ``pricing.legal_cap``) when the APR is above the cap; the message gives cap and basis."""
    check = check_rate_cap(
        apr, contract_date, institution, rules=rules, lpr_table=lpr_table, field=field
    )
    if not check.allowed:
        value = apr.nominal_annual if isinstance(apr, AprResult) else apr
        raise ValidationError.single(
            field,
            "pricing.legal_cap",
            f"APR {percent(value)}% is above the cap of {percent(check.cap)}%: {check.basis}",
        )
    return check
