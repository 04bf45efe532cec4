"""Schedules and APR: Puhui's exact Decimal rules side by side with numpy-financial's floats.

Run: ``.venv/bin/python benchmarks/bench_schedule_apr.py`` (about 15-20 s). Nothing is random.

What is compared, in one process:

* **Level payment** — ``puhui.domain.schedule.level_payment`` (exact, rounded half up to the
  fen) against ``npf.pmt``; both measured against an exact ``Fraction`` reference, so the
  difference shows fen rounding on our side and float error on theirs.
* **Whole schedule** — ``build_schedule`` for each method at 12, 36 and 360 months against the
  float equivalent: ``npf.pmt`` + ``npf.ipmt`` + ``npf.ppmt`` for 等额本息, and vectorised
  numpy for 等额本金 and 先息后本 (numpy-financial has no function for them). The accuracy
  column is the difference in total interest: fen rounding per row, not float error.
* **APR** — ``apr_by_irr`` against ``npf.irr`` on the same cash flows (an annuity at 6% with a
  2% up-front fee). Accuracy is the NPV left over at each side's rate, evaluated exactly.

Results go to benchmarks/results/schedule_apr.json with machine information.
"""

from __future__ import annotations

import json
import timeit
import warnings
from collections.abc import Callable
from datetime import date
from decimal import Decimal, localcontext
from fractions import Fraction
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import numpy_financial as npf

import hostinfo
from puhui.domain.pricing import (
    apr_by_irr,
    apr_by_xirr,
    schedule_cash_flows,
    schedule_dated_cash_flows,
)
from puhui.domain.schedule import LoanTerms, RepaymentMethod, build_schedule, level_payment

RESULTS = Path(__file__).parent / "results" / "schedule_apr.json"
PRINCIPAL = Decimal(100000)
RATE = Decimal("0.06")
UPFRONT_FEE = Decimal(2000)
TERMS = (12, 36, 360)
START = date(2025, 1, 15)
TARGET_SECONDS = 0.1  # per timing repeat


def per_call_us(fn: Callable[[], object]) -> float:
    """Best-of-3 time per call in microseconds, with enough calls for ~TARGET_SECONDS."""
    timer = timeit.Timer(fn)
    number, elapsed = 1, timer.timeit(1)
    while elapsed < TARGET_SECONDS / 5 and number < 100_000:
        number *= 10
        elapsed = timer.timeit(number)
    number = max(1, int(number * TARGET_SECONDS / max(elapsed, 1e-9)))
    return min(timer.repeat(repeat=3, number=number)) / number * 1e6


def exact_payment(principal: Decimal, rate: Decimal, months: int) -> Fraction:
    r = Fraction(rate) / 12
    growth = (1 + r) ** months
    return Fraction(principal) * r * growth / (growth - 1)


def exact_npv(flows: list[Decimal], rate: float | Decimal) -> Decimal:
    """NPV at ``rate`` (taken exactly, even when it is a float) to 60 digits."""
    with localcontext() as ctx:
        ctx.prec = 60
        v = 1 / (1 + Decimal(rate))
        return sum((c * v**t for t, c in enumerate(flows)), Decimal(0))


def float_schedule(method: RepaymentMethod, months: int) -> float:
    """Total interest of the float schedule, the numpy / numpy-financial way."""
    p, r = float(PRINCIPAL), float(RATE) / 12
    periods = np.arange(1, months + 1)
    if method is RepaymentMethod.EQUAL_INSTALLMENT:
        npf.pmt(r, months, -p)
        interest = npf.ipmt(r, periods, months, -p)
        npf.ppmt(r, periods, months, -p)
        return float(interest.sum())
    if method is RepaymentMethod.EQUAL_PRINCIPAL:
        opening = p - p / months * (periods - 1)
        return float((opening * r).sum())
    return float(np.full(months, p * r).sum())


def bench_payments() -> list[dict[str, Any]]:
    rows = []
    for months in TERMS:
        exact = exact_payment(PRINCIPAL, RATE, months)
        ours = level_payment(PRINCIPAL, RATE, months)
        theirs = float(npf.pmt(float(RATE) / 12, months, -float(PRINCIPAL)))
        rows.append(
            {
                "case": f"level payment, {months} months",
                "ours_us": per_call_us(partial(level_payment, PRINCIPAL, RATE, months)),
                "numpy_financial_us": per_call_us(partial(npf.pmt, 0.005, months, -100000.0)),
                "ours_value": str(ours),
                "numpy_financial_value": repr(theirs),
                "ours_error_vs_exact": float(abs(Fraction(ours) - exact)),
                "numpy_financial_error_vs_exact": float(abs(Fraction(theirs) - exact)),
                "baseline": "npf.pmt",
                "note": "ours is rounded half up to the fen by design",
            }
        )
    return rows


def bench_schedules() -> list[dict[str, Any]]:
    rows = []
    for method in RepaymentMethod:
        for months in TERMS:
            terms = LoanTerms(PRINCIPAL, RATE, months, method, START)
            schedule = build_schedule(terms)
            float_interest = float_schedule(method, months)
            rows.append(
                {
                    "case": f"schedule {method.value}, {months} months",
                    "ours_us": per_call_us(partial(build_schedule, terms)),
                    "numpy_financial_us": per_call_us(partial(float_schedule, method, months)),
                    "ours_value": str(schedule.total_interest),
                    "numpy_financial_value": repr(float_interest),
                    "abs_difference": abs(float(schedule.total_interest) - float_interest),
                    "baseline": "npf.pmt + npf.ipmt + npf.ppmt"
                    if method is RepaymentMethod.EQUAL_INSTALLMENT
                    else "vectorised numpy (numpy-financial has no such function)",
                    "note": "total interest; ours rounds each row to the fen",
                }
            )
    return rows


def bench_apr() -> list[dict[str, Any]]:
    rows = []
    for months in TERMS:
        schedule = build_schedule(
            LoanTerms(PRINCIPAL, RATE, months, RepaymentMethod.EQUAL_INSTALLMENT, START)
        )
        flows = list(schedule_cash_flows(schedule, upfront_fee=UPFRONT_FEE))
        floats = [float(c) for c in flows]
        ours = apr_by_irr(flows)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            theirs = float(npf.irr(floats))
        rows.append(
            {
                "case": f"APR by IRR, {months} months",
                "ours_us": per_call_us(partial(apr_by_irr, flows)),
                "numpy_financial_us": per_call_us(partial(npf.irr, floats)),
                "ours_value": str(ours.periodic_rate),
                "numpy_financial_value": repr(theirs),
                "abs_difference": abs(float(ours.periodic_rate) - theirs)
                if theirs == theirs
                else None,
                "ours_npv_residual": float(abs(exact_npv(flows, ours.periodic_rate))),
                "numpy_financial_npv_residual": float(abs(exact_npv(flows, theirs)))
                if theirs == theirs
                else None,
                "ours_apr_percent": str(ours.nominal_percent),
                "baseline": "npf.irr",
                "note": "periodic (monthly) IRR; residual = |NPV| in yuan at that rate",
            }
        )
        dated = list(schedule_dated_cash_flows(schedule, upfront_fee=UPFRONT_FEE))
        xirr = apr_by_xirr(dated)
        rows.append(
            {
                "case": f"APR by XIRR (dated), {months} months",
                "ours_us": per_call_us(partial(apr_by_xirr, dated)),
                "numpy_financial_us": None,
                "ours_value": str(xirr.effective_annual),
                "numpy_financial_value": None,
                "ours_apr_percent": str(xirr.nominal_percent),
                "note": "numpy-financial has no XIRR",
            }
        )
    return rows


def print_table(rows: list[dict[str, Any]]) -> None:
    def fmt(value: float | None) -> str:
        return "—" if value is None else f"{value:,.1f}"

    header = ("case", "ours µs", "npf/numpy µs", "ours/npf", "abs diff / error")
    lines = []
    for row in rows:
        theirs = row.get("numpy_financial_us")
        ratio = f"{row['ours_us'] / theirs:.3g}×" if theirs else "—"
        if "numpy_financial_error_vs_exact" in row:
            accuracy = (
                f"ours {row['ours_error_vs_exact']:.2g} / npf "
                f"{row['numpy_financial_error_vs_exact']:.2g} vs exact"
            )
        elif row.get("numpy_financial_npv_residual") is not None:
            accuracy = (
                f"Δ{row['abs_difference']:.2g}; |NPV| ours {row['ours_npv_residual']:.1g}"
                f" npf {row['numpy_financial_npv_residual']:.1g}"
            )
        elif row.get("abs_difference") is not None:
            accuracy = f"{row['abs_difference']:.2g}"
        else:
            accuracy = "—"
        lines.append((row["case"], fmt(row["ours_us"]), fmt(theirs), ratio, accuracy))
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:  # plain text when Rich is missing
        widths = [max(len(str(x)) for x in col) for col in zip(header, *lines, strict=True)]
        for line in (header, *lines):
            print("  ".join(str(x).ljust(w) for x, w in zip(line, widths, strict=True)))
        return
    table = Table(title="Schedules and APR: Puhui (exact Decimal) vs numpy-financial (float)")
    for name in header:
        table.add_column(name, justify="left" if name in ("case", "abs diff / error") else "right")
    for line in lines:
        table.add_row(*line)
    Console(width=140).print(table)


def main() -> None:
    rows = bench_payments() + bench_schedules() + bench_apr()
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "benchmark": "schedule_apr",
        "machine": hostinfo.describe(
            numpy=np.__version__, numpy_financial=getattr(npf, "__version__", "unknown")
        ),
        "parameters": {
            "principal": str(PRINCIPAL),
            "annual_rate": str(RATE),
            "upfront_fee_for_apr": str(UPFRONT_FEE),
            "terms_months": list(TERMS),
            "timing": "best of 3 repeats, per call, microseconds",
        },
        "results": rows,
    }
    RESULTS.write_text(json.dumps(payload, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print_table(rows)
    print(f"written {RESULTS}")


if __name__ == "__main__":
    main()
