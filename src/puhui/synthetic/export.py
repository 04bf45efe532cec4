"""Flattening a population into rows of strings and writing it as CSV.

The CSV is what the demo, the CLI and outside tools consume, so its columns are a contract of
their own, separate from how the population is generated.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path

from puhui.synthetic.model import Population

FIELDNAMES: tuple[str, ...] = (
    "application_id",
    "institution_code",
    "submitted_at",
    "requested_amount",
    "term_months",
    "repayment_method",
    "purpose",
    "uscc",
    "enterprise_name",
    "industry_section",
    "industry_division",
    "province_code",
    "city_code",
    "enterprise_address",
    "registered_date",
    "years_in_business",
    "annual_revenue",
    "tax_grade",
    "employees",
    *(f"invoice_m{m:02d}" for m in range(1, 13)),
    "rep_name",
    "rep_id_number",
    "rep_sex",
    "rep_birth_date",
    "rep_mobile",
    "rep_bank_card",
    "rep_bank_name",
    "rep_address",
    "contact_mobiles",
    "device_id",
    "ip_address",
    "latent_risk",
    "defaulted",
    "is_fraud",
    "fraud_ring_id",
)
"""CSV columns, in order. ``invoice_m01`` is the oldest month; contacts are ``;``-joined."""


def to_rows(population: Population) -> Iterator[dict[str, str]]:
    """One flat record of strings per application, keys in :data:`FIELDNAMES` order."""
    for app in population.applications:
        e, p = app.enterprise, app.legal_representative
        row = {
            "application_id": app.application_id,
            "institution_code": app.institution_code,
            "submitted_at": app.submitted_at.isoformat(),
            "requested_amount": str(app.requested_amount),
            "term_months": str(app.term_months),
            "repayment_method": app.repayment_method,
            "purpose": app.purpose,
            "uscc": e.uscc,
            "enterprise_name": e.name,
            "industry_section": e.industry_section,
            "industry_division": e.industry_division,
            "province_code": e.province_code,
            "city_code": e.city_code,
            "enterprise_address": e.address,
            "registered_date": e.registered_date.isoformat(),
            "years_in_business": f"{e.years_in_business:.2f}",
            "annual_revenue": str(e.annual_revenue),
            "tax_grade": e.tax_grade,
            "employees": str(e.employees),
        }
        for m, amount in enumerate(e.monthly_invoices, start=1):
            row[f"invoice_m{m:02d}"] = str(amount)
        row.update(
            {
                "rep_name": p.name,
                "rep_id_number": p.id_number,
                "rep_sex": p.sex,
                "rep_birth_date": p.birth_date.isoformat(),
                "rep_mobile": p.mobile,
                "rep_bank_card": p.bank_card,
                "rep_bank_name": p.bank_name,
                "rep_address": p.address,
                "contact_mobiles": ";".join(app.contact_mobiles),
                "device_id": app.device_id,
                "ip_address": app.ip_address,
                "latent_risk": f"{app.latent_risk:.6f}",
                "defaulted": "1" if app.defaulted else "0",
                "is_fraud": "1" if app.is_fraud else "0",
                "fraud_ring_id": app.fraud_ring_id or "",
            }
        )
        yield row


def write_csv(population: Population, path: str | Path) -> int:
    """Write the population as UTF-8 CSV with a header; returns the number of rows."""
    count = 0
    with Path(path).open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(FIELDNAMES)
        for row in to_rows(population):
            writer.writerow([row[name] for name in FIELDNAMES])
            count += 1
    return count
