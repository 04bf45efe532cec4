"""The platform's joint-modelling split: one definition for training files and live vectors."""

from __future__ import annotations

import csv
import math
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from puhui.federated.sme_data import (
    GUEST_FEATURES,
    HOST_FEATURES,
    guest_vector,
    partner_features,
    write_training_files,
)
from puhui.risk.features import features_of_synthetic
from puhui.synthetic import generate


def test_partner_features_of_a_growing_business() -> None:
    invoices = [Decimal(100_000) * Decimal("1.05") ** m for m in range(12)]
    log_total, trend, zero_months, variation = partner_features(invoices)
    assert log_total == pytest.approx(math.log1p(float(sum(invoices))))
    assert trend == pytest.approx(math.log(1.05))
    assert zero_months == 0
    assert 0 < variation < 0.25


def test_partner_features_need_three_invoiced_months_for_a_trend() -> None:
    invoices = [0.0] * 10 + [5.0, 6.0]
    _, trend, zero_months, _ = partner_features(invoices)
    assert math.isnan(trend)
    assert zero_months == 10
    with pytest.raises(ValueError, match="twelve"):
        partner_features([1.0] * 11)


def test_guest_vector_orders_tax_grades_and_marks_missing() -> None:
    base = {
        "applicant_age": 40,
        "years_in_business": 3.5,
        "annual_revenue": 1_000_000.0,
        "amount_to_revenue": 0.2,
        "tax_grade": "A",
        "industry_section": "C",
        "employees": None,
        "term_months": 12,
        "repayment_method": "equal_principal",
    }
    vector = guest_vector(base)
    assert len(vector) == len(GUEST_FEATURES)
    assert vector[2] == pytest.approx(math.log(1_000_000))
    assert vector[4] == 0.0 and guest_vector({**base, "tax_grade": "D"})[4] == 4.0
    assert vector[5] == 2.0
    assert math.isnan(vector[6])
    assert vector[8] == 1.0
    assert math.isnan(guest_vector({**base, "tax_grade": "Z", "annual_revenue": 0})[4])


def test_training_files_are_keyed_by_uscc_one_row_per_business(tmp_path: Path) -> None:
    population = generate(600, seed=7, fraud_rate=0.05, start=date(2024, 1, 2), days=60)
    guest, host = tmp_path / "guest.csv", tmp_path / "host.csv"
    written = write_training_files(population.applications, guest, host)
    guest_rows = list(csv.DictReader(guest.open()))
    host_rows = list(csv.DictReader(host.open()))
    assert written == (len(guest_rows), len(host_rows))
    assert [r["uscc"] for r in guest_rows] == [r["uscc"] for r in host_rows]
    assert len({r["uscc"] for r in guest_rows}) == len(guest_rows)
    assert list(host_rows[0]) == ["uscc", *HOST_FEATURES]
    assert "defaulted" not in host_rows[0]
    first = next(a for a in population.applications if a.enterprise.uscc == guest_rows[0]["uscc"])
    expected = guest_vector(features_of_synthetic(first))
    got = [float(v) if v else math.nan for v in list(guest_rows[0].values())[2:]]
    for e, g in zip(expected, got, strict=True):
        assert (math.isnan(e) and math.isnan(g)) or g == pytest.approx(e, abs=1e-6)
    fraud_only = {a.enterprise.uscc for a in population.applications if a.is_fraud} - {
        a.enterprise.uscc for a in population.applications if not a.is_fraud
    }
    assert fraud_only and not fraud_only & {r["uscc"] for r in guest_rows}
