"""The platform's joint-modelling split: the bank's application features, the partner's invoices.

The FATE data sets (``data/federated/``) prove the protocols on real data, but their columns are
not what the lending journey knows about an applicant. For the journey the split is:

* **guest (the bank)**: the features of the platform's credit model (``risk.features``), made
  numeric for trees — the tax credit grade by its official order (A, B, M, C, D: best to
  worst), industry section and repayment method as codes, missing values as NaN;
* **host (an invoice data provider, e.g. a tax-invoice platform)**: four figures it derives from
  a business's last twelve months of VAT invoices, keyed by the USCC — the log of the 12-month
  total, the trend (log of the last quarter over the first), the months without invoices and
  the month-to-month variation. The bank never sees the invoices.

On synthetic data the partner's columns carry real signal: the generator's default risk
depends on the invoice trend, which none of the bank's features measures. The same two
functions build the training files (:func:`write_training_files`) and the live feature vectors
(:func:`guest_vector`, :func:`partner_features`), so a feature means the same in both.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

from puhui.domain.schedule import RepaymentMethod
from puhui.risk.features import features_of_synthetic
from puhui.synthetic.model import SyntheticApplication

GUEST_FEATURES: tuple[str, ...] = (
    "applicant_age",
    "years_in_business",
    "log_annual_revenue",
    "amount_to_revenue",
    "tax_grade_rank",
    "industry_section_code",
    "employees",
    "term_months",
    "repayment_method_code",
)
HOST_FEATURES: tuple[str, ...] = (
    "invoice_log_total_12m",
    "invoice_trend",
    "invoice_zero_months",
    "invoice_variation",
)
FEATURE_TEXTS: dict[str, tuple[str, str]] = {
    "log_annual_revenue": ("年营业收入", "annual revenue"),
    "tax_grade_rank": ("纳税信用等级", "tax credit grade"),
    "industry_section_code": ("所属行业门类", "industry section"),
    "repayment_method_code": ("还款方式", "repayment method"),
    "partner": ("合作机构数据（发票）", "the data partner's figures (invoices)"),
}

TAX_GRADE_ORDER = ("A", "B", "M", "C", "D")
REPAYMENT_METHODS = tuple(method.value for method in RepaymentMethod)
KEY_COLUMN = "uscc"
LABEL_COLUMN = "defaulted"


def _number(value: Any) -> float:
    if value is None:
        return math.nan
    return float(value)


def guest_vector(features: Mapping[str, Any]) -> list[float]:
    """The bank's numeric features, in :data:`GUEST_FEATURES` order, from the credit features.

    ``features`` is what ``origination.credit_model.features_of_facts`` (live) or
    ``risk.features.features_of_synthetic`` (training) returns."""
    revenue = _number(features.get("annual_revenue"))
    grade = features.get("tax_grade")
    section = features.get("industry_section")
    method = features.get("repayment_method")
    return [
        _number(features.get("applicant_age")),
        _number(features.get("years_in_business")),
        math.log(revenue) if revenue > 0 else math.nan,
        _number(features.get("amount_to_revenue")),
        float(TAX_GRADE_ORDER.index(grade)) if grade in TAX_GRADE_ORDER else math.nan,
        float(ord(section) - ord("A"))
        if isinstance(section, str) and len(section) == 1
        else math.nan,
        _number(features.get("employees")),
        _number(features.get("term_months")),
        float(REPAYMENT_METHODS.index(method)) if method in REPAYMENT_METHODS else math.nan,
    ]


def partner_features(monthly_invoices: Sequence[Decimal | float]) -> list[float]:
    """The partner's four figures from twelve monthly invoice totals (oldest first), in yuan.

    The trend is the least-squares slope of the log amounts over the months with invoices
    (per month; NaN with fewer than three such months)."""
    amounts = [float(a) for a in monthly_invoices]
    if len(amounts) != 12:
        raise ValueError("twelve monthly invoice totals are needed")
    total = sum(amounts)
    mean = total / 12
    variation = (
        math.sqrt(sum((a - mean) ** 2 for a in amounts) / 12) / mean if mean > 0 else math.nan
    )
    points = [(m, math.log(a)) for m, a in enumerate(amounts) if a > 0]
    trend = math.nan
    if len(points) >= 3:
        m_mean = sum(m for m, _ in points) / len(points)
        v_mean = sum(v for _, v in points) / len(points)
        spread = sum((m - m_mean) ** 2 for m, _ in points)
        trend = sum((m - m_mean) * (v - v_mean) for m, v in points) / spread
    return [math.log1p(total), trend, float(sum(1 for a in amounts if a == 0)), variation]


def write_training_files(
    applications: Iterable[SyntheticApplication], guest_path: Path, host_path: Path
) -> tuple[int, int]:
    """Write the guest's file (uscc, defaulted, its features) and the host's (uscc, invoices).

    One row per business (its first application); planted fraud is left out as in
    ``risk.features.training_frame``. Returns the row counts written."""
    seen: set[str] = set()
    guest_rows: list[list[Any]] = []
    host_rows: list[list[Any]] = []
    for app in applications:
        uscc = app.enterprise.uscc
        if app.is_fraud or uscc in seen:
            continue
        seen.add(uscc)
        guest_rows.append(
            [uscc, int(app.defaulted), *_fmt(guest_vector(features_of_synthetic(app)))]
        )
        host_rows.append([uscc, *_fmt(partner_features(app.enterprise.monthly_invoices))])
    _write(guest_path, [KEY_COLUMN, LABEL_COLUMN, *GUEST_FEATURES], guest_rows)
    _write(host_path, [KEY_COLUMN, *HOST_FEATURES], host_rows)
    return len(guest_rows), len(host_rows)


def _fmt(values: Iterable[float]) -> list[str]:
    return ["" if math.isnan(v) else repr(round(v, 6)) for v in values]


def _write(path: Path, header: list[str], rows: list[list[Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)
