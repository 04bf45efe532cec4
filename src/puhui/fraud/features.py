"""Application-time fraud features, from the link table: counts and sums, never identifiers.

For one application at its submission instant ``t`` (only earlier applications count):

* **Velocity** per identifier kind over 1 h, 24 h, 7 d and 30 d: ``{kind}.apps_{window}``, and
  distinct *other* identities sharing the identifier, ``{kind}.identities_{7d,30d}``.
* **Identity consistency**: how many other mobiles, bank accounts and businesses the same
  legal representative used in 30 days (``identity.mobiles_30d`` …).
* **Lists**: hits on the blacklist and the confirmed-fraud list (``list.blacklist``,
  ``list.confirmed_fraud``), matched by blind index.
* **Neighbourhood** (the identity graph, two hops over strong identifiers): applications
  linked within one and two hops, distinct identities among them, confirmed-fraud and declined
  applications among them. A key shared by more than ``HUB_CAP`` applications in 90 days
  (a shared office device, a big employer's account) is a hub: counted in ``graph.hub_keys``,
  never followed — so one hub cannot join everyone to everyone.
* Counts read at most ``RECENT_CAP`` (200) recent rows per identifier, so a carrier-NAT IP
  with a million rows costs what a fresh one does; a count of 200 means "200 or more".
* **Multi-lending (多头借贷, 共债)**: applications for the same business (USCC) and the same legal
  representative at *other* institutions over 7/30/90 days, their active loans, and total debt
  outstanding on the platform against annual revenue. Counts and sums only: a partner never
  learns which institution.

Seven bounded, indexed queries, four of them sent together; see
``benchmarks/bench_fraud_apptime.py`` for the cost at 1,000,000 historical applications.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import lru_cache
from typing import Any

from sqlalchemy import BindParameter, TextClause, bindparam, text
from sqlalchemy.orm import Session

from puhui.domain.lifecycle import ApplicationState, LoanState
from puhui.fraud.link_store import STRONG
from puhui.store import direct
from puhui.store.types import UTCDateTime

WINDOWS: dict[str, timedelta] = {
    "1h": timedelta(hours=1),
    "24h": timedelta(hours=24),
    "7d": timedelta(days=7),
    "30d": timedelta(days=30),
}
ML_WINDOWS: dict[str, timedelta] = {
    "7d": timedelta(days=7),
    "30d": timedelta(days=30),
    "90d": timedelta(days=90),
}
HUB_CAP = 20
RECENT_CAP = 200
NEIGHBOUR_LIMIT = 500


@dataclass(frozen=True)
class OwnLinks:
    application_id: str
    institution_id: str
    identity: str
    at: datetime
    pairs: tuple[tuple[str, str], ...]


def _pairs_sql(n: int, prefix: str = "") -> str:
    """``(kind = :k0 AND key = :v0) OR …`` for ``n`` pairs. Not a row-value ``IN``: SQLite
    answers that with a table scan, an OR of equalities with one index search per term."""
    return " OR ".join(f"(kind = :{prefix}k{i} AND key = :{prefix}v{i})" for i in range(n))


def _pairs_params(pairs: Sequence[tuple[str, str]], prefix: str = "") -> dict[str, str]:
    out: dict[str, str] = {}
    for i, (kind, key) in enumerate(pairs):
        out[f"{prefix}k{i}"], out[f"{prefix}v{i}"] = kind, key
    return out


_TIME = UTCDateTime()

Read = tuple[TextClause, dict[str, Any]]
"""A statement of this module and its parameters, to run with others."""


@lru_cache(maxsize=256)
def _sql(name: str, n: int = 0) -> TextClause:
    """The statements of this module, as plain SQL written once per shape.

    Building these through the ORM expression layer on every decision cost more than running
    them (≈ 1 ms each against ≈ 0.1 ms); they are simple enough to read as SQL."""
    pairs = _pairs_sql(n)
    statements = {
        "own": "SELECT kind, key, identity, institution_id, occurred_at FROM fraud_links "
        "WHERE application_id = :app",
        "identity": "SELECT kind, count(DISTINCT key) FROM fraud_links WHERE identity = :me "
        "AND kind IN ('mobile', 'bank_account', 'uscc') AND occurred_at > :since "
        "AND occurred_at <= :t AND application_id != :app "
        f"AND key NOT IN ({', '.join(f':m{i}' for i in range(n))}) GROUP BY kind",
        "lists": f"SELECT list_name, kind FROM fraud_list_entries WHERE {pairs}",
        "hop1": f"SELECT DISTINCT application_id FROM fraud_links WHERE ({pairs}) "
        f"AND occurred_at <= :t LIMIT {NEIGHBOUR_LIMIT}",
        "ring_keys": "SELECT DISTINCT kind, key FROM fraud_links WHERE application_id IN :ids "
        "AND kind IN :strong AND occurred_at <= :t",
        "hop2": f"SELECT application_id, kind, key FROM fraud_links WHERE ({pairs}) "
        f"AND occurred_at <= :t LIMIT {NEIGHBOUR_LIMIT * 2}",
        "around": "SELECT "
        "(SELECT count(DISTINCT identity) FROM fraud_links WHERE application_id IN :ids "
        "AND identity != :me), "
        "(SELECT count(DISTINCT application_id) FROM fraud_reviews WHERE application_id IN :ids "
        "AND outcome = 'confirmed'), "
        "(SELECT count(*) FROM applications WHERE id IN :ids AND state = :declined)",
        "debt": "SELECT count(CASE WHEN institution_id != :inst THEN 1 END), "
        "coalesce(sum(outstanding_principal_fen), 0) FROM loans "
        f"WHERE state IN ('{LoanState.ACTIVE.value}', '{LoanState.OVERDUE.value}') AND "
        "application_id IN (SELECT DISTINCT application_id FROM fraud_links "
        f"WHERE ({pairs}) AND application_id != :app)",
    }
    stmt = text(statements[name])
    expanding = [b for b in ("ids", "strong") if f":{b}" in statements[name]]
    binds: list[BindParameter[Any]] = [bindparam(b, expanding=True) for b in expanding]
    binds += [bindparam(t, type_=_TIME) for t in ("t", "since") if f":{t}" in statements[name]]
    return stmt.bindparams(*binds)


def own_links(session: Session, application_id: str) -> OwnLinks | None:
    rows = direct.execute(session.connection(), _sql("own"), {"app": application_id}).rows
    if not rows:
        return None
    _, _, identity, institution_id, occurred_at = rows[0]
    return OwnLinks(
        application_id,
        institution_id,
        identity,
        _utc(occurred_at),
        tuple((kind, key) for kind, key, *_ in rows),
    )


def _utc(value: Any) -> datetime:
    """A stored instant as aware UTC: SQLite hands a text() query naive UTC text back,
    PostgreSQL an aware datetime."""
    at = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


@lru_cache(maxsize=16)
def _velocity_sql(pairs: int) -> TextClause:
    """The velocity statement for ``pairs`` identifiers, written once per shape.

    Plain SQL (valid on SQLite and PostgreSQL) rather than an expression tree: building 7 × 12
    aggregate columns through the ORM costs more than running them."""
    win = ", ".join(
        f"coalesce(sum(CASE WHEN occurred_at > :w{w} THEN 1 ELSE 0 END), 0) AS a{w}"
        for w in WINDOWS
    )
    ids = ", ".join(
        f"count(DISTINCT CASE WHEN occurred_at > :w{w} AND identity != :me THEN identity END)"
        f" AS i{w}"
        for w in ("7d", "30d")
    )
    ml = ", ".join(
        f"coalesce(sum(CASE WHEN occurred_at > :m{w} AND institution_id != :inst THEN 1 ELSE 0"
        f" END), 0) AS o{w}"
        for w in ML_WINDOWS
    )
    parts = [
        f"SELECT CAST(:k{i} AS VARCHAR(16)) AS kind, count(*) AS n, {win}, {ids}, {ml} FROM "
        f"(SELECT identity, institution_id, occurred_at FROM fraud_links "
        f"WHERE kind = :k{i} AND key = :v{i} AND occurred_at > :horizon AND occurred_at <= :t "
        f"AND application_id != :app ORDER BY occurred_at DESC LIMIT {RECENT_CAP}) AS r{i}"
        for i in range(pairs)
    ]
    times = ["t", "horizon", *(f"w{w}" for w in WINDOWS), *(f"m{w}" for w in ML_WINDOWS)]
    return text(" UNION ALL ".join(parts)).bindparams(
        *(bindparam(name, type_=UTCDateTime()) for name in times)
    )


def _velocity_read(own: OwnLinks) -> Read:
    """Windowed counts per identifier, in one statement.

    Each identifier reads at most ``RECENT_CAP`` of its latest earlier rows within 90 days
    (an index range scan, newest first) and is aggregated in the database, so a carrier-NAT
    IP with a million rows costs what a fresh one does; a count at the cap means "at least"."""
    t = own.at
    params: dict[str, Any] = {
        "t": t,
        "horizon": t - max(ML_WINDOWS.values()),
        "me": own.identity,
        "inst": own.institution_id,
        "app": own.application_id,
    }
    params.update({f"w{w}": t - span for w, span in WINDOWS.items()})
    params.update({f"m{w}": t - span for w, span in ML_WINDOWS.items()})
    for i, (kind, key) in enumerate(own.pairs):
        params[f"k{i}"], params[f"v{i}"] = kind, key
    return _velocity_sql(len(own.pairs)), params


def _velocity(
    found: direct.Result, own: OwnLinks, out: dict[str, float]
) -> dict[tuple[str, str], int]:
    """The velocity features; returns each identifier's 90-day count (capped), which decides
    whether the neighbourhood follows it or calls it a hub."""
    counts: dict[tuple[str, str], int] = {}
    keys = dict(own.pairs)
    for r in found.mappings():
        kind = r["kind"]
        counts[(kind, keys[kind])] = int(r["n"])
        for w in WINDOWS:
            out[f"{kind}.apps_{w}"] = float(r[f"a{w}"])
        for w in ("7d", "30d"):
            out[f"{kind}.identities_{w}"] = float(r[f"i{w}"])
        if kind in ("uscc", "id_number"):
            who = "enterprise" if kind == "uscc" else "rep"
            for w in ML_WINDOWS:
                out[f"ml.{who}_apps_{w}"] = float(r[f"o{w}"])
    return counts


def _identity_read(own: OwnLinks) -> Read:
    return _sql("identity", len(own.pairs)), {
        "me": own.identity,
        "since": own.at - WINDOWS["30d"],
        "t": own.at,
        "app": own.application_id,
        **{f"m{i}": key for i, (_, key) in enumerate(own.pairs)},
    }


def _identity(found: direct.Result, out: dict[str, float]) -> None:
    got = {k: float(n) for k, n in found.rows}
    out["identity.mobiles_30d"] = got.get("mobile", 0.0)
    out["identity.bank_accounts_30d"] = got.get("bank_account", 0.0)
    out["identity.businesses_30d"] = got.get("uscc", 0.0)


def _lists_read(own: OwnLinks) -> Read:
    return _sql("lists", len(own.pairs)), _pairs_params(own.pairs)


def _lists(found: direct.Result, out: dict[str, float]) -> list[str]:
    rows = found.rows
    out["list.blacklist"] = float(sum(1 for name, _ in rows if name == "blacklist"))
    out["list.confirmed_fraud"] = float(sum(1 for name, _ in rows if name == "confirmed_fraud"))
    return sorted({f"{name}:{kind}" for name, kind in rows})


def _graph(
    session: Session, own: OwnLinks, totals: dict[tuple[str, str], int], out: dict[str, float]
) -> None:
    strong = [p for p in own.pairs if p[0] in STRONG]
    hubs = [p for p in strong if totals.get(p, 0) > HUB_CAP]
    usable = [p for p in strong if p not in hubs]
    out["graph.hub_keys"] = float(len(hubs))
    hop1: set[str] = set()
    if usable:
        ids = direct.execute(
            session.connection(), _sql("hop1", len(usable)), {**_pairs_params(usable), "t": own.at}
        ).rows
        hop1 = {app for (app,) in ids} - {own.application_id}
    hop2: set[str] = set()
    if hop1:
        rows = session.execute(
            _sql("ring_keys"), {"ids": sorted(hop1), "strong": sorted(STRONG), "t": own.at}
        ).all()
        new_pairs = sorted({(r.kind, r.key) for r in rows} - set(own.pairs))
        if new_pairs:
            # one bounded read of the second ring; a key seen more than HUB_CAP times in it is
            # a hub and is not followed (the bound keeps a hub from flooding the read)
            found = session.execute(
                _sql("hop2", len(new_pairs)), {**_pairs_params(new_pairs), "t": own.at}
            ).all()
            per_key = Counter((r.kind, r.key) for r in found)
            hubs2 = {k for k, n in per_key.items() if n > HUB_CAP}
            out["graph.hub_keys"] += float(len(hubs2))
            hop2 = (
                {r.application_id for r in found if (r.kind, r.key) not in hubs2}
                - hop1
                - {own.application_id}
            )
    around = hop1 | hop2
    out["graph.linked_1hop"] = float(len(hop1))
    out["graph.linked_2hop"] = float(len(around))
    identities = confirmed = declined = 0
    if around:
        identities, confirmed, declined = session.execute(
            _sql("around"),
            {
                "ids": sorted(around),
                "me": own.identity,
                "declined": ApplicationState.DECLINED.value,
            },
        ).one()
    out["graph.identities_2hop"] = float(identities or 0)
    out["graph.confirmed_fraud_2hop"] = float(confirmed or 0)
    out["graph.declined_2hop"] = float(declined or 0)


def _debt_read(own: OwnLinks) -> Read | None:
    """Other institutions' live loans of the same business or representative, and the debt
    outstanding on them; None when the application names neither."""
    keys = [p for p in own.pairs if p[0] in ("uscc", "id_number")]
    if not keys:
        return None
    return _sql("debt", len(keys)), {
        **_pairs_params(keys),
        "inst": own.institution_id,
        "app": own.application_id,
    }


def _debt(found: direct.Result | None, revenue: Decimal, out: dict[str, float]) -> None:
    others, fen = 0, 0
    if found is not None:
        row = found.first()
        assert row is not None  # an aggregate without GROUP BY answers one row
        others, fen = row
    outstanding = Decimal(int(fen or 0)) / 100
    out["ml.other_active_loans"] = float(others or 0)
    out["ml.debt_outstanding"] = float(outstanding)
    out["ml.debt_to_revenue"] = float(outstanding / revenue) if revenue > 0 else 0.0


def fraud_features(
    session: Session, application_id: str, annual_revenue: Decimal
) -> tuple[dict[str, float], list[str]]:
    """All features of one application (counts and sums), and the list hits by kind.

    The velocity, identity, list and debt reads depend only on the application's own links,
    so they go to the database together (one round trip on PostgreSQL); the neighbourhood
    needs the velocity counts first, to tell hubs apart."""
    own = own_links(session, application_id)
    out: dict[str, float] = {}
    if own is None:
        return out, []
    debt_read = _debt_read(own)
    reads = [_velocity_read(own), _identity_read(own), _lists_read(own)]
    if debt_read is not None:
        reads.append(debt_read)
    found = direct.execute_together(session.connection(), reads)
    totals = _velocity(found[0], own, out)
    _identity(found[1], out)
    hits = _lists(found[2], out)
    _graph(session, own, totals, out)
    _debt(found[3] if debt_read is not None else None, annual_revenue, out)
    return out, hits
