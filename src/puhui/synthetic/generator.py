"""Seeded generator of realistic small-business loan applications: the drawing itself.

Tests, the demo and the benchmarks all need applicants that look like real ones to the code
under test: identifiers that pass their standards' checks and carry real division codes,
financials whose risk shows up in outcomes, and fraud rings hidden among honest applicants who
*also* share identifiers (office-building IPs, co-working addresses, an employer's dormitory,
spouses listing each other), so that ring detection has to be good rather than merely present.

Everything is drawn from one ``numpy.random.default_rng(seed)`` in a fixed order and no
output depends on set or dict iteration order, so a seed gives byte-identical output. Numeric
attributes are drawn as whole arrays; only string assembly loops in Python.

Simplifications worth knowing: business days skip weekends but not Chinese public holidays;
an enterprise's invoice history and years in business are as of its first application; an
ID number's address code is a current GB/T 2260 code even for people born before a reform.

This module holds only the generation run: the records it produces are in
:mod:`puhui.synthetic.model`, ring planning in :mod:`puhui.synthetic.rings`, the shared random
source in :mod:`puhui.synthetic.draw` and CSV output in :mod:`puhui.synthetic.export`.
"""

from __future__ import annotations

import gc
import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import numpy as np

from puhui.domain.identifiers import (
    USCC_CHARSET,
    id_check_char,
    luhn_check_digit,
    org_code_check_char,
    uscc_check_char,
)
from puhui.synthetic.draw import _MOBILE_P, IntArray, _Draw, _p
from puhui.synthetic.model import (
    FraudRing,
    Population,
    SyntheticApplication,
    SyntheticEnterprise,
    SyntheticPerson,
)
from puhui.synthetic.reference import (
    CARD_BINS,
    CHINA_IPV4_FIRST_OCTETS,
    GIVEN_NAME_CHARS_FEMALE,
    GIVEN_NAME_CHARS_MALE,
    GIVEN_NAME_CHARS_NEUTRAL,
    INDUSTRY_DIVISIONS,
    MOBILE_PREFIXES,
    PROVINCES,
    PURPOSES,
    REPAYMENT_METHODS,
    RESIDENTIAL_WORDS,
    STREET_NAMES,
    SURNAMES,
    TAX_GRADE_RISK,
    TAX_GRADE_SHARES_ESTABLISHED,
    TAX_GRADES,
    TERM_MONTHS,
    TRADE_NAME_CHARS,
    VIRTUAL_OPERATOR_PREFIXES,
    City,
    District,
    Province,
)
from puhui.synthetic.rings import _plan_rings, _Ring

DEFAULT_INSTITUTIONS: tuple[str, ...] = ("BANK_A", "BANK_B", "LEASE_C", "MICRO_D")
"""Partner institution codes used when the caller names none."""

_SHANGHAI_OFFSET = timedelta(hours=8)
_MA_CODES_FROM = date(2015, 10, 1).toordinal()  # new codes' org part starts "MA" from then
_FEN = Decimal("0.01")
_HONEST_REPEAT_SHARE = 0.02
_HOUSEHOLD_SHARE = 0.01
_SEASON = np.array([0.80, 0.70, 1.00, 1.00, 1.00, 1.00, 0.95, 0.95, 1.00, 1.05, 1.15, 1.40])

_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()


def _yyyymmdd(ordinals: IntArray) -> IntArray:
    """Proleptic Gregorian ordinals as integers ``YYYYMMDD``, for a whole array at once."""
    days = (ordinals - _EPOCH_ORDINAL).astype("datetime64[D]")
    months = days.astype("datetime64[M]")
    year = months.astype("datetime64[Y]").astype(np.int64) + 1970
    month = months.astype(np.int64) % 12 + 1
    day = (days - months).astype(np.int64) + 1
    result: IntArray = year * 10_000 + month * 100 + day
    return result


def business_days(start: date, days: int) -> list[date]:
    """The first ``days`` Monday-to-Friday dates from ``start`` on."""
    out: list[date] = []
    day = start
    while len(out) < days:
        if day.weekday() < 5:
            out.append(day)
        day += timedelta(days=1)
    return out


@dataclass(frozen=True, slots=True)
class _Place:
    province: Province
    city: City
    district: District


_PLACES: tuple[_Place, ...] = tuple(
    _Place(p, c, d) for p in PROVINCES for c in p.cities for d in c.districts
)
_PLACE_P = _p(
    [pl.province.weight / len(pl.province.cities) / len(pl.city.districts) for pl in _PLACES]
)
_PLACES_BY_PROVINCE: dict[str, tuple[int, ...]] = {
    p.code: tuple(i for i, pl in enumerate(_PLACES) if pl.province is p) for p in PROVINCES
}
_PLACES_BY_CITY: dict[str, tuple[int, ...]] = {
    c.code: tuple(i for i, pl in enumerate(_PLACES) if pl.city is c)
    for p in PROVINCES
    for c in p.cities
}
_PLACE_CITY = np.array([pl.city.code for pl in _PLACES])
_INDUSTRY_P = _p([d.weight for d in INDUSTRY_DIVISIONS])
_AGRICULTURE = np.array([d.section == "A" for d in INDUSTRY_DIVISIONS], dtype=bool)
_SURNAME_P = _p([w for _, w in SURNAMES])
_BIN_P = _p([b.weight for b in CARD_BINS])
_BANK_BY_PREFIX = {b.prefix: b.bank for b in CARD_BINS}


def _place_text(place: _Place) -> str:
    """``广东省深圳市南山区``; a municipality is named once (``北京市朝阳区``)."""
    if place.province.is_municipality:
        return place.city.name + place.district.name
    return place.province.name + place.city.name + place.district.name


def _address(place: _Place, home: bool, v: Sequence[int]) -> str:
    """A street address in ``place`` built from eight random integers ``v``."""
    street = STREET_NAMES[v[0] % len(STREET_NAMES)]
    number = 1 + v[1] % 899
    if home:
        estate = RESIDENTIAL_WORDS[v[2] % len(RESIDENTIAL_WORDS)]
        return (
            f"{_place_text(place)}{street}{number}号{estate}{1 + v[3] % 39}栋"
            f"{1 + v[4] % 5}单元{1 + v[5] % 32}{1 + v[6] % 8:02d}室"
        )
    return f"{_place_text(place)}{street}{number}号{1 + v[3] % 29}{1 + v[4] % 39:02d}室"


# --------------------------------------------------------------------------------------
# Generation
# --------------------------------------------------------------------------------------


def generate(
    n: int,
    *,
    seed: int,
    fraud_rate: float = 0.02,
    institutions: Sequence[str] = DEFAULT_INSTITUTIONS,
    start: date = date(2024, 1, 2),
    days: int = 60,
) -> Population:
    """Generate ``n`` applications submitted over ``days`` business days from ``start``.

    ``fraud_rate`` is the share of applications that belong to planted fraud rings (rings
    have at least two members, so a population too small for one ring gets none). The same
    arguments always give the same population.
    """
    if n < 0:
        raise ValueError("n must be zero or more")
    if not 0.0 <= fraud_rate <= 0.5:
        raise ValueError("fraud_rate must be between 0 and 0.5")
    if not institutions:
        raise ValueError("at least one institution is needed")
    if days < 1:
        raise ValueError("days must be at least 1")
    # Millions of small acyclic objects: the cyclic collector would only rescan them.
    collecting = gc.isenabled()
    gc.disable()
    try:
        return _Generator(n, seed, fraud_rate, tuple(institutions), start, days).run()
    finally:
        if collecting:
            gc.enable()


class _Generator:
    """One generation run; methods are steps called in a fixed order by :meth:`run`."""

    def __init__(
        self,
        n: int,
        seed: int,
        fraud_rate: float,
        institutions: tuple[str, ...],
        start: date,
        days: int,
    ) -> None:
        self.n, self.seed, self.institutions = n, seed, institutions
        self.fraud_total = round(n * fraud_rate)
        self.days = business_days(start, days)
        self.d = _Draw(seed)

    def run(self) -> Population:
        self._plan()
        self._schedule()
        self._enterprises()
        self._people()
        self._applications()
        self._record_strings()
        self._slot_strings()
        self._honest_sharing()
        self._rings()
        self._outcomes()
        return self._assemble()

    # -- who applies, and which applications share an applicant ---------------------------

    def _plan(self) -> None:
        d, n = self.d, self.n
        self.rings = _plan_rings(d, self.fraud_total)
        fraud = sum(len(r.slots) for r in self.rings)
        self.slot_ring: list[_Ring | None] = [None] * n
        record = np.empty(n, dtype=np.int64)
        records = 0
        for ring in self.rings:
            for s in ring.slots:
                self.slot_ring[s] = ring
            if ring.shape == "repeat":
                record[ring.slots] = records
                records += 1
            else:
                record[ring.slots] = np.arange(records, records + len(ring.slots))
                records += len(ring.slots)
        self.fraud_records = records
        honest = n - fraud
        repeats = int(honest * _HONEST_REPEAT_SHARE) if honest >= 10 else 0
        order = fraud + d.rng.permutation(honest).astype(np.int64)
        firsts, again = np.sort(order[repeats:]), np.sort(order[:repeats])
        record[firsts] = np.arange(records, records + len(firsts))
        records += len(firsts)
        self.original = np.full(n, -1, dtype=np.int64)
        if repeats:
            self.original[again] = firsts[d.ints(0, len(firsts), repeats)]
            record[again] = record[self.original[again]]
        self.record = record
        self.records = records
        self.fraud_slot = np.zeros(n, dtype=bool)
        self.fraud_slot[:fraud] = True
        self.sleeper_record = np.zeros(records, dtype=bool)
        for ring in self.rings:
            if ring.shape == "sleeper":
                self.sleeper_record[record[ring.slots]] = True

    # -- when ---------------------------------------------------------------------------

    def _schedule(self) -> None:
        d, n, last = self.d, self.n, len(self.days) - 1
        day = d.ints(0, last + 1, n)
        for ring in self.rings:
            k = len(ring.slots)
            if ring.shape == "sleeper":
                step = max(1, min(d.int1(5, 11), last // max(1, k - 1)))
                first = d.int1(0, max(1, last - step * (k - 1) + 1))
                offsets = np.arange(k) * step + d.ints(0, 2, k)
            else:
                first = d.int1(0, last + 1)
                offsets = np.sort(d.ints(0, 4, k))
            day[ring.slots] = np.minimum(first + offsets, last)
        again = np.flatnonzero(self.original >= 0)
        day[again] = np.minimum(day[self.original[again]] + d.ints(0, 20, len(again)), last)
        # Time of day in Shanghai: morning, afternoon and evening peaks; fraud often at night.
        peak = d.pick(_p([0.4, 0.4, 0.2]), n)
        centre = np.array([10.5, 15.0, 20.5])[peak]
        hours = np.clip(centre + d.rng.normal(0.0, 1.3, n), 7.0, 23.99)
        night = self.fraud_slot & (d.u(n) < 0.35)
        hours[night] = d.u(int(night.sum())) * 5.0
        self.day = day
        self.seconds = (hours * 3600).astype(np.int64)
        first_day = np.full(self.records, last + 1, dtype=np.int64)
        np.minimum.at(first_day, self.record, day)
        self.record_day = first_day

    # -- enterprises ----------------------------------------------------------------------

    def _enterprises(self) -> None:
        d, r = self.d, self.records
        fraud = np.arange(r) < self.fraud_records
        plain_fraud = fraud & ~self.sleeper_record
        place = d.pick(_PLACE_P, r)
        for ring in self.rings:  # ring members mostly come from one city
            members = np.unique(self.record[ring.slots])
            home = place[members[0]]
            place[members[d.u(len(members)) < 0.8]] = home
        self.place = place
        industry = d.pick(_INDUSTRY_P, r)
        years = np.clip(d.rng.gamma(1.6, 4.0, r), 0.05, 30.0)
        years[plain_fraud] = d.rng.uniform(0.1, 1.8, int(plain_fraud.sum()))
        years[self.sleeper_record] = d.rng.uniform(1.5, 6.0, int(self.sleeper_record.sum()))
        as_of = np.array([day.toordinal() for day in self.days], dtype=np.int64)[self.record_day]
        registered = as_of - (years * 365.25).astype(np.int64)
        self.as_of, self.registered = as_of, registered
        self.years = (as_of - registered) / 365.25

        grade = d.pick(_p(TAX_GRADE_SHARES_ESTABLISHED), r)
        young = self.years < 1.0
        grade[young & (d.u(r) < 0.9)] = TAX_GRADES.index("M")
        fraud_grade = d.pick(_p([0.02, 0.55, 0.2, 0.18, 0.05]), r)
        grade[plain_fraud] = fraud_grade[plain_fraud]
        grade[self.sleeper_record] = d.pick(_p([0.15, 0.8, 0.05, 0.0, 0.0]), r)[self.sleeper_record]
        self.grade = grade

        revenue = np.exp(d.rng.normal(math.log(1.8e6), 1.0, r)) * (
            1 + 0.06 * np.minimum(self.years, 10)
        )
        revenue[plain_fraud] = np.exp(d.rng.normal(math.log(1.5e6), 0.6, int(plain_fraud.sum())))
        self.revenue = np.clip(np.round(revenue), 60_000, 80_000_000)
        trend = d.rng.normal(0.0, 0.02, r)
        trend[np.isin(grade, [TAX_GRADES.index("C"), TAX_GRADES.index("D")])] -= 0.012
        trend[plain_fraud] += 0.06  # invoices inflated just before applying
        self.trend = trend
        self._invoices()
        self.employees = np.clip(
            np.round(self.revenue / 350_000 * np.exp(d.rng.normal(0.0, 0.5, r))), 1, 500
        ).astype(np.int64)
        kind_u = d.u(r)
        self.word_u = d.u(r)
        self.city_level, self.ma_chars = d.u(r) < 0.35, d.ints(0, 31, r * 6).reshape(r, 6)
        self.old_org = d.ints(0, 100_000_000, r)
        agri = _AGRICULTURE[industry]
        self.org_kind = np.where(agri & (kind_u < 0.3), 3, np.where(kind_u < 0.12, 2, 1))
        self.industry = industry

    def _invoices(self) -> None:
        d, r = self.d, self.records
        months = np.arange(12)  # 0 = 12 months before the first application
        base = self.revenue[:, None] / 12.0 * np.exp(self.trend[:, None] * (months - 11))
        first_month = np.array([day.month for day in self.days], dtype=np.int64)[self.record_day]
        calendar = (first_month[:, None] - 13 + months) % 12  # month-of-year index, 0 = Jan
        noise = np.exp(d.rng.normal(0.0, 0.25, (r, 12)))
        amount = base * _SEASON[calendar] * noise
        months_open = (self.years * 12).astype(np.int64)
        amount[(12 - months)[None, :] > months_open[:, None]] = 0.0
        amount[d.u(r * 12).reshape(r, 12) < 0.03] = 0.0
        self.invoice_fen = np.round(amount * 100).astype(np.int64)

    # -- people -----------------------------------------------------------------------------

    def _people(self) -> None:
        d, r = self.d, self.records
        fraud = np.arange(r) < self.fraud_records
        male = d.u(r) < np.where(fraud, 0.6, 0.7)
        age = np.clip(d.rng.normal(42.0, 9.0, r), 22.0, 68.0)
        fraud_age = np.where(
            d.u(r) < 0.5, d.rng.uniform(20.3, 30.0, r), d.rng.uniform(30.0, 69.4, r)
        )
        age[fraud] = fraud_age[fraud]
        self.male, self.age = male, np.clip(age, 20.3, 69.4)
        self.birth = self.as_of - (self.age * 365.25).astype(np.int64)
        self.birth_place = np.where(d.u(r) < 0.65, -1, d.pick(_PLACE_P, r))
        self.birth_u = d.u(r)
        self.id_seq = d.ints(0, 500, r) * 2 + male
        self.surname = d.pick(_SURNAME_P, r)
        self.given = d.ints(0, 1 << 30, r)
        self.virtual = fraud & (d.u(r) < 0.35)
        self.card_bin = d.pick(_BIN_P, r)
        self.live_elsewhere = d.u(r) < 0.15

    # -- applications ----------------------------------------------------------------------

    def _applications(self) -> None:
        d, n = self.d, self.n
        k = len(self.institutions)
        self.institution = d.pick(_p([1.0 / (i + 1) for i in range(k)]), n)
        again = np.flatnonzero(self.original >= 0)
        if k > 1:
            shift = d.ints(1, k, len(again))
            self.institution[again] = (self.institution[self.original[again]] + shift) % k
        for ring in self.rings:
            if ring.shape == "repeat":
                chosen = d.rng.permutation(k)
                self.institution[ring.slots] = chosen[np.arange(len(ring.slots)) % k]
        revenue = self.revenue[self.record]
        ratio = d.rng.uniform(0.05, 0.3, n)
        ratio[self.fraud_slot] = d.rng.uniform(0.2, 0.8, int(self.fraud_slot.sum()))
        self.ratio = ratio
        amount = np.clip(revenue * ratio, 10_000, 3_000_000)
        self.amount = (np.round(amount / 100) * 100).astype(np.int64)
        self.term = d.pick(_p([w for _, w in TERM_MONTHS]), n)
        self.method = d.pick(_p([w for _, w in REPAYMENT_METHODS]), n)
        self.purpose = d.ints(0, len(PURPOSES), n)
        self.two_contacts = d.u(n) < 0.4
        self.same_device = d.u(n) < 0.7

    # -- identifiers and names (the one Python loop over records) ---------------------------

    def _record_strings(self) -> None:
        d, r = self.d, self.records
        seen_org: set[str] = set()
        seen_id: set[str] = set()
        seen_mobile: set[str] = set()
        seen_card: set[str] = set()
        seen_name: set[str] = set()
        self.uscc: list[str] = []
        self.ent_name: list[str] = []
        self.ent_address: list[str] = []
        self.person_name: list[str] = []
        self.id_number: list[str] = []
        self.mobile: list[str] = []
        self.card: list[str] = []
        self.home: list[str] = []
        # Bulk draws first, in a fixed order; the loop below only formats.
        trade_chars = d.ints(0, len(TRADE_NAME_CHARS), r * 3).reshape(r, 3).tolist()
        three_chars = (d.u(r) < 0.2).tolist()
        office_v = d.ints(0, 1 << 30, r * 8).reshape(r, 8).tolist()
        home_v = d.ints(0, 1 << 30, r * 8).reshape(r, 8).tolist()
        given_v = d.ints(0, 1 << 30, r * 3).reshape(r, 3).tolist()
        mobile_prefix = d.pick(_MOBILE_P, r).tolist()
        virtual_prefix = d.ints(0, len(VIRTUAL_OPERATOR_PREFIXES), r).tolist()
        mobile_digits = d.ints(0, 100_000_000, r).tolist()
        card_digits = d.ints(0, 10**12, r).tolist()
        place_l, industry_l = self.place.tolist(), self.industry.tolist()
        kind_l, city_level = self.org_kind.tolist(), self.city_level.tolist()
        registered_l, old_org = self.registered.tolist(), self.old_org.tolist()
        ma_chars, word_u = self.ma_chars.tolist(), self.word_u.tolist()
        birth_l, birth_place = _yyyymmdd(self.birth).tolist(), self.birth_place.tolist()
        birth_u, seq_l, male_l = self.birth_u.tolist(), self.id_seq.tolist(), self.male.tolist()
        surname_l, virtual_l = self.surname.tolist(), self.virtual.tolist()
        bin_l, elsewhere = self.card_bin.tolist(), self.live_elsewhere.tolist()
        for i in range(r):
            pl = _PLACES[place_l[i]]
            division = INDUSTRY_DIVISIONS[industry_l[i]]

            # USCC: 9 + organisation type, registry division, GB 11714 code, check character.
            registry = pl.city.code if city_level[i] else pl.district.code
            while True:
                if registered_l[i] >= _MA_CODES_FROM:
                    org8 = "MA" + "".join(USCC_CHARSET[c] for c in ma_chars[i])
                else:
                    org8 = f"{old_org[i]:08d}"
                org9 = org8 + org_code_check_char(org8)
                if org9 not in seen_org:
                    break
                ma_chars[i] = d.ints(0, 31, 6).tolist()
                old_org[i] = d.int1(0, 100_000_000)
            seen_org.add(org9)
            body = f"9{kind_l[i]}{registry}{org9}"
            self.uscc.append(body + uscc_check_char(body))

            # Name: <city><字号><industry word>有限公司, unique across the population.
            word = division.name_words[int(word_u[i] * len(division.name_words))]
            chars = trade_chars[i][: 3 if three_chars[i] else 2]
            while True:
                trade = "".join(TRADE_NAME_CHARS[c] for c in chars)
                if kind_l[i] == 2:
                    name = f"{pl.city.name}{pl.district.name}{trade}{word}经营部"
                elif kind_l[i] == 3:
                    name = f"{pl.city.short_name}{trade}{word}专业合作社"
                else:
                    name = f"{pl.city.short_name}{trade}{word}有限公司"
                if name not in seen_name:
                    break
                chars = d.ints(0, len(TRADE_NAME_CHARS), 3).tolist()
            seen_name.add(name)
            self.ent_name.append(name)
            self.ent_address.append(_address(pl, False, office_v[i]))

            # Legal representative: ID number (address code of birthplace), name, phone, card.
            if birth_place[i] < 0:
                choices = _PLACES_BY_PROVINCE[pl.province.code]
                born = _PLACES[choices[int(birth_u[i] * len(choices))]]
            else:
                born = _PLACES[birth_place[i]]
            birthday = birth_l[i]
            seq = seq_l[i]
            while True:
                body = f"{born.district.code}{birthday}{seq:03d}"
                number = body + id_check_char(body)
                if number not in seen_id:
                    break
                seq = (seq + 2) % 1000  # keeps the parity, so the sex stays right
            seen_id.add(number)
            self.id_number.append(number)

            g = given_v[i]
            pool = GIVEN_NAME_CHARS_MALE if male_l[i] else GIVEN_NAME_CHARS_FEMALE
            given = pool[g[0] % len(pool)]
            if g[1] % 4:  # three in four given names have two characters
                other = (pool + GIVEN_NAME_CHARS_NEUTRAL)[g[2] % (len(pool) + 7)]
                given = other + given if g[1] % 2 else given + other
            self.person_name.append(SURNAMES[surname_l[i]][0] + given)

            if virtual_l[i]:
                prefix = VIRTUAL_OPERATOR_PREFIXES[virtual_prefix[i]]
            else:
                prefix = MOBILE_PREFIXES[mobile_prefix[i]][0]
            mobile = f"{prefix}{mobile_digits[i]:08d}"
            while mobile in seen_mobile:
                mobile = d.mobile()
            seen_mobile.add(mobile)
            self.mobile.append(mobile)

            card_bin = CARD_BINS[bin_l[i]]
            middle = card_bin.length - 7
            tail = card_digits[i] % 10**middle
            while True:
                partial = f"{card_bin.prefix}{tail:0{middle}d}"
                card = partial + luhn_check_digit(partial)
                if card not in seen_card:
                    break
                tail = d.int1(0, 10**middle)
            seen_card.add(card)
            self.card.append(card)

            home = pl
            if elsewhere[i]:
                same_city = _PLACES_BY_CITY[pl.city.code]
                home = _PLACES[same_city[home_v[i][7] % len(same_city)]]
            self.home.append(_address(home, True, home_v[i]))

    def _slot_strings(self) -> None:
        d, n = self.d, self.n
        prefix = d.pick(_MOBILE_P, 2 * n).tolist()
        digits = d.ints(0, 100_000_000, 2 * n).tolist()
        two = self.two_contacts.tolist()
        contacts: list[tuple[str, ...]] = []
        for s in range(n):
            first = f"{MOBILE_PREFIXES[prefix[2 * s]][0]}{digits[2 * s]:08d}"
            if two[s]:
                contacts.append(
                    (first, f"{MOBILE_PREFIXES[prefix[2 * s + 1]][0]}{digits[2 * s + 1]:08d}")
                )
            else:
                contacts.append((first,))
        self.contacts = contacts
        self.device = [f"{x:016x}" for x in d.ints(0, 2**63 - 1, n).tolist()]
        octets = d.ints(0, 256, 4 * n).reshape(n, 4).tolist()
        firsts = CHINA_IPV4_FIRST_OCTETS
        self.ip = [f"{firsts[o[0] % len(firsts)]}.{o[1]}.{o[2]}.{1 + o[3] % 254}" for o in octets]

    # -- honest applicants who share identifiers -----------------------------------------------

    def _honest_sharing(self) -> None:
        d, n, r = self.d, self.n, self.records
        honest_slot = ~self.fraud_slot
        honest_record = np.arange(r) >= self.fraud_records
        city_of_record = _PLACE_CITY[self.place]
        hubs: dict[str, list[str]] = {"ip_address": [], "enterprise_address": [], "rep_address": []}

        # Office buildings: one public IP for every tenant; carrier NAT: one IP for many phones.
        for city_code in ("440300", "310000", "110000", "330100", "440100", "510100"):
            ip = d.ip()
            hubs["ip_address"].append(ip)
            in_city = (city_of_record == city_code)[self.record]
            for s in np.flatnonzero(in_city & honest_slot & (d.u(n) < 0.3)).tolist():
                self.ip[s] = ip
        nat = [d.ip() for _ in range(3)]
        hubs["ip_address"].extend(nat)
        which = d.ints(0, 3, n).tolist()
        for s in np.flatnonzero(d.u(n) < 0.05).tolist():
            self.ip[s] = nat[which[s]]

        # Co-working spaces as registered address; a big employer's dormitory as home address.
        for city_code, district_code, label in (
            ("110000", "110108", "创业大厦"),
            ("310000", "310115", "联合办公中心"),
            ("440300", "440305", "众创空间"),
        ):
            place = next(p for p in _PLACES if p.district.code == district_code)
            address = _address(place, False, d.ints(0, 1 << 30, 8).tolist()).rsplit("号", 1)[0]
            address += f"号{label}"
            hubs["enterprise_address"].append(address)
            chosen = (city_of_record == city_code) & honest_record
            for i in np.flatnonzero(chosen & (d.u(r) < 0.2)).tolist():
                self.ent_address[i] = address
        for city_code, district_code, label in (
            ("440300", "440307", "工业园员工宿舍"),
            ("410100", "410102", "科技园员工公寓"),
        ):
            place = next(p for p in _PLACES if p.district.code == district_code)
            address = _address(place, False, d.ints(0, 1 << 30, 8).tolist()).rsplit("号", 1)[0]
            address += f"号{label}"
            hubs["rep_address"].append(address)
            chosen = (city_of_record == city_code) & honest_record
            for i in np.flatnonzero(chosen & (d.u(r) < 0.15)).tolist():
                self.home[i] = address

        # Households: spouses who both run a business share a home and list each other.
        first_slot = np.full(r, n, dtype=np.int64)
        np.minimum.at(first_slot, self.record, np.arange(n, dtype=np.int64))
        candidates = np.flatnonzero(honest_record)
        pairs = int(len(candidates) * _HOUSEHOLD_SHARE / 2)
        chosen_pairs = d.rng.permutation(candidates)[: 2 * pairs].reshape(pairs, 2).tolist()
        for a, b in chosen_pairs:
            self.home[b] = self.home[a]
            sa, sb = int(first_slot[a]), int(first_slot[b])
            self.contacts[sa] = (self.mobile[b], *self.contacts[sa][1:])
            self.contacts[sb] = (self.mobile[a], *self.contacts[sb][1:])

        # An honest repeat application keeps the applicant's contacts and usually the phone.
        same_device = self.same_device.tolist()
        for s in np.flatnonzero(self.original >= 0).tolist():
            o = int(self.original[s])
            self.contacts[s] = self.contacts[o]
            if same_device[s]:
                self.device[s] = self.device[o]
        self.hubs = {kind: tuple(values) for kind, values in hubs.items()}

    # -- fraud rings ------------------------------------------------------------------------

    def _rings(self) -> None:
        for ring in self.rings:
            getattr(self, f"_ring_{ring.shape}")(ring)

    def _copy(self, kind: str, src: int, dst: int) -> None:
        """Make application slot ``dst`` share identifier ``kind`` with slot ``src``."""
        a, b = int(self.record[src]), int(self.record[dst])
        if kind == "device_id":
            self.device[dst] = self.device[src]
        elif kind == "contact_mobile":
            self.contacts[dst] = (self.contacts[src][0], *self.contacts[dst][1:])
        elif kind == "rep_mobile":
            self.mobile[b] = self.mobile[a]
        elif kind == "rep_address":
            self.home[b] = self.home[a]
        elif kind == "enterprise_address":
            self.ent_address[b] = self.ent_address[a]
        elif kind == "rep_bank_card":
            self.card[b] = self.card[a]
        elif kind == "ip_address":
            self.ip[dst] = self.ip[src]
        else:  # pragma: no cover - a programming error
            raise ValueError(kind)

    def _share(self, ring: _Ring, *kinds: str) -> None:
        head = ring.slots[0]
        for s in ring.slots[1:]:
            for kind in kinds:
                self._copy(kind, head, s)
        ring.shared = ring.shared + kinds

    def _ring_shared_device(self, ring: _Ring) -> None:
        self._share(ring, "device_id")
        subnet = self.ip[ring.slots[0]].rsplit(".", 1)[0]
        last = self.d.ints(1, 255, len(ring.slots)).tolist()
        for s, octet in zip(ring.slots, last, strict=True):
            self.ip[s] = f"{subnet}.{octet}"
        if self.d.u(1)[0] < 0.5:
            self._share(ring, "ip_address")

    def _ring_shared_mobile(self, ring: _Ring) -> None:
        hub = self.d.mobile(virtual_share=0.6)
        head = ring.slots[0]
        self.contacts[head] = (hub, *self.contacts[head][1:])
        self._share(ring, "contact_mobile")
        if self.d.u(1)[0] < 0.5:  # one phone registers a member and is everyone's contact
            self.mobile[int(self.record[ring.slots[-1]])] = hub
            ring.shared += ("rep_mobile=contact_mobile",)

    def _ring_shared_address(self, ring: _Ring) -> None:
        self._share(ring, "rep_address")
        takers = [s for s in ring.slots[1:] if self.d.u(1)[0] < 0.5]
        for s in takers:
            self._copy("enterprise_address", ring.slots[0], s)
        if takers:
            ring.shared += ("enterprise_address",)

    def _ring_shared_bank_card(self, ring: _Ring) -> None:
        self._share(ring, "rep_bank_card")

    def _ring_chain(self, ring: _Ring) -> None:
        kinds = ("device_id", "rep_mobile", "contact_mobile", "rep_address", "rep_bank_card")
        offset = self.d.int1(0, len(kinds))
        used: list[str] = []
        for i, (src, dst) in enumerate(itertools.pairwise(ring.slots)):
            kind = kinds[(offset + i) % len(kinds)]
            self._copy(kind, src, dst)
            if kind not in used:
                used.append(kind)
        ring.shared = tuple(used)

    def _ring_repeat(self, ring: _Ring) -> None:
        ring.shared = ("uscc", "rep_id_number", "rep_mobile", "rep_bank_card", "rep_address")
        self._share(ring, "contact_mobile")
        if self.d.u(1)[0] < 0.6:
            self._share(ring, "device_id")

    def _ring_sleeper(self, ring: _Ring) -> None:
        self._share(ring, "rep_address", "contact_mobile")

    # -- risk and outcomes --------------------------------------------------------------------

    def _outcomes(self) -> None:
        d, n, rec = self.d, self.n, self.record
        grade_risk = np.array([TAX_GRADE_RISK[g] for g in TAX_GRADES])
        industry_risk = np.array([i.base_risk for i in INDUSTRY_DIVISIONS])
        age = self.age[rec]
        logit = (
            -3.4
            + grade_risk[self.grade[rec]]
            + industry_risk[self.industry[rec]]
            - 0.3 * np.log1p(self.years[rec])
            - 10.0 * self.trend[rec]
            + 1.5 * (self.ratio - 0.175)
            - 0.15 * (np.log(self.revenue[rec]) - math.log(1.8e6))
            + 0.03 * np.maximum(0.0, 28.0 - age)
            + d.rng.normal(0.0, 0.5, n)
        )
        risk = 1.0 / (1.0 + np.exp(-logit))
        sleeper = self.sleeper_record[rec] & self.fraud_slot
        plain = self.fraud_slot & ~sleeper
        risk[plain] = d.rng.uniform(0.75, 0.97, int(plain.sum()))
        risk[sleeper] = d.rng.uniform(0.55, 0.9, int(sleeper.sum()))
        self.risk = np.round(risk, 6)
        self.defaulted = d.u(n) < self.risk

    # -- objects --------------------------------------------------------------------------

    def _assemble(self) -> Population:
        enterprises: list[SyntheticEnterprise] = []
        persons: list[SyntheticPerson] = []
        invoices = self.invoice_fen.tolist()
        revenue = self.revenue.astype(np.int64).tolist()
        years = np.round(self.years, 2).tolist()
        place_l, industry_l = self.place.tolist(), self.industry.tolist()
        registered_l, birth_l = self.registered.tolist(), self.birth.tolist()
        grade_l, employees_l, male_l = (
            self.grade.tolist(),
            self.employees.tolist(),
            self.male.tolist(),
        )
        fen, fromordinal = _FEN, date.fromordinal
        for i in range(self.records):
            pl = _PLACES[place_l[i]]
            division = INDUSTRY_DIVISIONS[industry_l[i]]
            enterprises.append(
                SyntheticEnterprise(
                    self.uscc[i],
                    self.ent_name[i],
                    division.section,
                    division.code,
                    pl.province.code,
                    pl.city.code,
                    self.ent_address[i],
                    fromordinal(registered_l[i]),
                    years[i],
                    Decimal(revenue[i]).quantize(fen),
                    TAX_GRADES[grade_l[i]],
                    tuple([Decimal(f) * fen for f in invoices[i]]),
                    employees_l[i],
                )
            )
            card = self.card[i]
            persons.append(
                SyntheticPerson(
                    self.person_name[i],
                    self.id_number[i],
                    "M" if male_l[i] else "F",
                    fromordinal(birth_l[i]),
                    self.mobile[i],
                    card,
                    _BANK_BY_PREFIX[card[:6]],
                    self.home[i],
                )
            )

        midnight = [
            datetime(day.year, day.month, day.day, tzinfo=UTC) - _SHANGHAI_OFFSET
            for day in self.days
        ]
        moment = self.day * 86_400 + self.seconds
        order = np.lexsort((np.arange(self.n), moment)).tolist()
        app_id = [""] * self.n
        for position, s in enumerate(order):
            app_id[s] = f"APP{position + 1:08d}"
        day_l, seconds_l, record_l = self.day.tolist(), self.seconds.tolist(), self.record.tolist()
        amount_l, term_l = self.amount.tolist(), self.term.tolist()
        method_l, purpose_l = self.method.tolist(), self.purpose.tolist()
        institution_l, risk_l = self.institution.tolist(), self.risk.tolist()
        defaulted_l, fraud_l = self.defaulted.tolist(), self.fraud_slot.tolist()
        applications = []
        for s in order:
            ring = self.slot_ring[s]
            applications.append(
                SyntheticApplication(
                    application_id=app_id[s],
                    institution_code=self.institutions[institution_l[s]],
                    submitted_at=midnight[day_l[s]] + timedelta(seconds=seconds_l[s]),
                    requested_amount=Decimal(amount_l[s]).quantize(_FEN),
                    term_months=TERM_MONTHS[term_l[s]][0],
                    repayment_method=REPAYMENT_METHODS[method_l[s]][0],
                    purpose=PURPOSES[purpose_l[s]],
                    enterprise=enterprises[record_l[s]],
                    legal_representative=persons[record_l[s]],
                    contact_mobiles=self.contacts[s],
                    device_id=self.device[s],
                    ip_address=self.ip[s],
                    latent_risk=risk_l[s],
                    defaulted=defaulted_l[s],
                    fraud_ring_id=ring.ring_id if ring else None,
                    is_fraud=fraud_l[s],
                )
            )
        rings = tuple(
            FraudRing(
                ring.ring_id,
                ring.shape,
                tuple(sorted(app_id[s] for s in ring.slots)),
                ring.shared,
            )
            for ring in self.rings
        )
        return Population(self.seed, tuple(applications), rings, self.hubs)
