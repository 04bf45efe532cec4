"""The synthetic population: valid identifiers, determinism, planted rings and honest hubs."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from collections import Counter, defaultdict
from datetime import date, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest

from puhui.domain.identifiers import (
    validate_bank_card,
    validate_mobile,
    validate_resident_id,
    validate_uscc,
)
from puhui.synthetic import (
    FIELDNAMES,
    RING_SHAPES,
    Population,
    SyntheticApplication,
    business_days,
    generate,
    to_rows,
    write_csv,
)
from puhui.synthetic.reference import CARD_BINS, INDUSTRY_SECTIONS, PROVINCES

SHANGHAI = timezone(timedelta(hours=8))
START = date(2024, 3, 1)
INSTITUTIONS = ("BANK_A", "BANK_B", "LEASE_C", "MICRO_D", "RCB_E")


@pytest.fixture(scope="module")
def population() -> Population:
    return generate(
        6_000, seed=20240601, fraud_rate=0.03, institutions=INSTITUTIONS, start=START, days=60
    )


def identifiers(app: SyntheticApplication) -> dict[str, set[str]]:
    """Every linkable identifier of an application, by field name."""
    e, p = app.enterprise, app.legal_representative
    return {
        "uscc": {e.uscc},
        "rep_id_number": {p.id_number},
        "rep_mobile": {p.mobile},
        "contact_mobile": set(app.contact_mobiles),
        "rep_bank_card": {p.bank_card},
        "rep_address": {p.address},
        "enterprise_address": {e.address},
        "device_id": {app.device_id},
        "ip_address": {app.ip_address},
    }


def components(apps: list[SyntheticApplication]) -> int:
    """How many groups the applications fall into when linked by any shared identifier."""
    parent = list(range(len(apps)))

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    owner: dict[tuple[str, str], int] = {}
    for i, app in enumerate(apps):
        for kind, values in identifiers(app).items():
            for value in values:
                parent[find(i)] = find(owner.setdefault((kind, value), i))
    return len({find(i) for i in range(len(apps))})


# ----------------------------------------------------------------------------- validity


def test_every_identifier_validates(population: Population) -> None:
    districts = {d.code for p in PROVINCES for c in p.cities for d in c.districts}
    bins = {b.prefix: b.length for b in CARD_BINS}
    for app in population:
        e, p = app.enterprise, app.legal_representative
        uscc = validate_uscc(e.uscc)
        assert not uscc.needs_registry_verification
        assert uscc.province_code == e.province_code
        city = next(c for pr in PROVINCES for c in pr.cities if c.code == e.city_code)
        assert uscc.division in {city.code, *(d.code for d in city.districts)}

        local_day = app.submitted_at.astimezone(SHANGHAI).date()
        rid = validate_resident_id(p.id_number, today=local_day)
        assert rid.value == p.id_number
        assert rid.region_code in districts
        assert rid.birth_date == p.birth_date
        assert rid.sex == p.sex
        assert 20 <= rid.age_on(local_day) <= 70

        assert validate_mobile(p.mobile).value == p.mobile
        for mobile in app.contact_mobiles:
            assert validate_mobile(mobile).value == mobile
        card = validate_bank_card(p.bank_card)
        assert bins[card.bin] == len(card.value)


def test_enterprise_and_application_fields(population: Population) -> None:
    sections = {s.code: {d.code for d in s.divisions} for s in INDUSTRY_SECTIONS}
    days = set(business_days(START, 60))
    for app in population:
        e = app.enterprise
        assert e.industry_division in sections[e.industry_section]
        assert e.name.endswith(("有限公司", "经营部", "专业合作社"))
        assert e.tax_grade in {"A", "B", "M", "C", "D"}
        assert len(e.monthly_invoices) == 12
        assert all(m >= 0 and m.as_tuple().exponent == -2 for m in e.monthly_invoices)
        assert e.annual_revenue > 0 and e.employees >= 1
        assert e.registered_date <= app.submitted_at.astimezone(SHANGHAI).date()
        assert app.submitted_at.utcoffset() == timedelta(0)
        assert app.submitted_at.astimezone(SHANGHAI).date() in days
        assert app.requested_amount > 0 and app.requested_amount % 100 == 0
        assert isinstance(app.requested_amount, Decimal)
        assert app.term_months in {6, 12, 24, 36}
        assert app.repayment_method in {"equal_installment", "equal_principal", "interest_first"}
        assert app.institution_code in INSTITUTIONS
        assert 0.0 <= app.latent_risk <= 1.0
    ids = [a.application_id for a in population]
    assert len(set(ids)) == len(ids)
    times = [a.submitted_at for a in population]
    assert times == sorted(times)


def test_distinct_enterprises_have_distinct_identifiers(population: Population) -> None:
    enterprises = {id(a.enterprise): a.enterprise for a in population}.values()
    usccs = [e.uscc for e in enterprises]
    names = [e.name for e in enterprises]
    assert len(set(usccs)) == len(usccs)
    assert len(set(names)) == len(names)
    assert len({e.uscc[8:17] for e in enterprises}) == len(usccs)


# ----------------------------------------------------------------------------- determinism


def test_same_seed_same_output_and_different_seed_differs(tmp_path: Path) -> None:
    a = generate(1_500, seed=11, start=START, days=30)
    b = generate(1_500, seed=11, start=START, days=30)
    assert list(to_rows(a)) == list(to_rows(b))
    write_csv(a, tmp_path / "a.csv")
    write_csv(b, tmp_path / "b.csv")
    assert (tmp_path / "a.csv").read_bytes() == (tmp_path / "b.csv").read_bytes()
    c = generate(1_500, seed=12, start=START, days=30)
    assert list(to_rows(c)) != list(to_rows(a))


def test_output_does_not_depend_on_string_hashing(tmp_path: Path) -> None:
    script = (
        "import sys; from datetime import date; from puhui.synthetic import generate, write_csv;"
        "write_csv(generate(800, seed=5, start=date(2024, 1, 2), days=20), sys.argv[1])"
    )
    outputs = []
    for hash_seed in ("1", "2"):
        out = tmp_path / f"{hash_seed}.csv"
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        subprocess.run([sys.executable, "-c", script, str(out)], check=True, env=env)
        outputs.append(out.read_bytes())
    assert outputs[0] == outputs[1]


# ----------------------------------------------------------------------------- fraud


@pytest.mark.parametrize("rate", [0.0, 0.02, 0.05])
def test_fraud_rate_within_tolerance(rate: float) -> None:
    population = generate(10_000, seed=3, fraud_rate=rate, start=START, days=40)
    share = sum(a.is_fraud for a in population) / len(population)
    assert abs(share - rate) <= 0.001
    assert (len(population.rings) == 0) == (rate == 0.0)


def test_ring_bookkeeping(population: Population) -> None:
    by_ring: dict[str, list[str]] = defaultdict(list)
    for app in population:
        assert app.is_fraud == (app.fraud_ring_id is not None)
        if app.fraud_ring_id:
            by_ring[app.fraud_ring_id].append(app.application_id)
    assert {r.ring_id: sorted(r.application_ids) for r in population.rings} == {
        k: sorted(v) for k, v in by_ring.items()
    }
    assert all(len(r.application_ids) >= 2 for r in population.rings)
    assert {r.shape for r in population.rings} == set(RING_SHAPES)


def test_rings_share_identifiers(population: Population) -> None:
    apps = {a.application_id: a for a in population}
    for ring in population.rings:
        members = [apps[i] for i in ring.application_ids]
        for kind in ring.shared:
            fields = kind.split("=")  # "a=b": a value of field a reappears in field b
            values = Counter(v for m in members for f in fields for v in identifiers(m)[f])
            assert values.most_common(1)[0][1] >= 2, (ring.shape, kind)
        # The members are linked into one component through what they share.
        assert components(members) == 1, ring.shape


def test_ring_shapes_behave(population: Population) -> None:
    apps = {a.application_id: a for a in population}
    for ring in population.rings:
        members = [apps[i] for i in ring.application_ids]
        span = max(m.submitted_at for m in members) - min(m.submitted_at for m in members)
        if ring.shape == "repeat":
            assert len({m.enterprise.uscc for m in members}) == 1
            assert len({m.legal_representative.id_number for m in members}) == 1
            institutions = [m.institution_code for m in members]
            assert len(set(institutions)) == min(len(members), len(INSTITUTIONS))
            assert span <= timedelta(days=6)
        elif ring.shape == "sleeper":
            assert span >= timedelta(days=14)
        else:
            assert len({m.enterprise.uscc for m in members}) == len(members)
            assert span <= timedelta(days=6)


def test_fraud_outcomes_mostly_bad(population: Population) -> None:
    fraud = [a for a in population if a.is_fraud]
    honest = [a for a in population if not a.is_fraud]
    assert sum(a.defaulted for a in fraud) / len(fraud) > 0.7
    assert sum(a.defaulted for a in honest) / len(honest) < 0.1


# ----------------------------------------------------------------------------- honest hubs


def test_honest_applicants_share_hubs(population: Population) -> None:
    honest = [a for a in population if not a.is_fraud]
    ip = Counter(a.ip_address for a in honest)
    office = Counter(a.enterprise.address for a in honest)
    home = Counter(a.legal_representative.address for a in honest)
    assert set(population.hubs) == {"ip_address", "enterprise_address", "rep_address"}
    assert max(ip[h] for h in population.hubs["ip_address"]) >= 50
    assert all(ip[h] >= 2 for h in population.hubs["ip_address"])
    assert all(office[h] >= 5 for h in population.hubs["enterprise_address"])
    assert all(home[h] >= 5 for h in population.hubs["rep_address"])


def test_honest_households_and_repeat_applicants(population: Population) -> None:
    honest = [a for a in population if not a.is_fraud]
    rep_mobiles = {a.legal_representative.mobile for a in honest}
    listing_another = [
        a
        for a in honest
        if any(m in rep_mobiles and m != a.legal_representative.mobile for m in a.contact_mobiles)
    ]
    assert len(listing_another) >= 10
    per_enterprise = Counter(a.enterprise.uscc for a in honest)
    assert sum(1 for c in per_enterprise.values() if c > 1) >= 20


# ----------------------------------------------------------------------------- risk


def test_default_rate_higher_for_grade_d_than_a(population: Population) -> None:
    rate = {}
    for grade in ("A", "D"):
        group = [a for a in population if a.enterprise.tax_grade == grade]
        rate[grade] = sum(a.defaulted for a in group) / len(group)
    assert rate["D"] > 3 * rate["A"]


# ----------------------------------------------------------------------------- export


def test_csv_round_trip(population: Population, tmp_path: Path) -> None:
    path = tmp_path / "population.csv"
    assert write_csv(population, path) == len(population)
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        assert tuple(reader.fieldnames or ()) == FIELDNAMES
        rows = list(reader)
    assert rows == list(to_rows(population))
    assert rows[0]["contact_mobiles"].split(";")[0] == population.applications[0].contact_mobiles[0]


# ----------------------------------------------------------------------------- edges


def test_small_populations() -> None:
    assert len(generate(0, seed=1)) == 0
    one = generate(1, seed=1, fraud_rate=0.5)
    assert len(one) == 1 and not one.rings
    assert len(generate(7, seed=1, institutions=("ONLY",), days=1)) == 7


@pytest.mark.parametrize(
    "kwargs",
    [{"n": -1}, {"fraud_rate": 0.9}, {"fraud_rate": -0.1}, {"institutions": ()}, {"days": 0}],
)
def test_bad_arguments(kwargs: dict[str, object]) -> None:
    args: dict[str, object] = {"n": 10, "seed": 1, **kwargs}
    with pytest.raises(ValueError):
        generate(**args)  # type: ignore[arg-type]
