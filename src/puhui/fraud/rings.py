"""Fraud rings over a whole history: find groups of linked applications and score them.

Two methods, applied in turn:

1. **Strong-link components.** Connected components of the record graph
   (:mod:`~puhui.fraud.graph`: strong links only by default, hubs removed). A ring whose
   members share a device, a phone or a bank card is one component, however it is shaped.
2. **CPM refinement of large components.** A component larger than ``split_above`` records
   (default 50, more than any ring we expect) is usually several rings, or a ring and honest
   neighbours, joined by a link or two. It is split by local moving under the constant Potts
   model: a partition maximises Σ_c (w_c − γ · n_c(n_c − 1)/2), where w_c is the weight of
   links inside group c (1 per shared strong key, 0.5 per weak one) and n_c its size. So a
   group holds together only where its link density exceeds γ, *whatever the size of the rest
   of the graph* — unlike modularity, whose penalty shrinks as the graph grows and which
   therefore merges small rings into big ones (its resolution limit). γ = 0.2 by default:
   two groups of sizes a and b joined by one link stay apart when 0.2·a·b > 1 (two triangles
   already do); a chain of more than about five records inside a large component is cut into
   pieces. Local moving starts from singletons, visits records in a seeded order, aggregates
   and repeats; every final group is then split into its connected parts (the Leiden
   guarantee that no group is disconnected).

Every record ends in exactly one group or in none (a singleton); each group gets a 0-100
score, each record its group's score (0 for none). The score formula is :func:`group_scores`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy import sparse

from puhui.fraud.cpm import DEFAULT_RESOLUTION, cpm_partition
from puhui.fraud.graph import DEFAULT_HUB_CAP, Hub, RecordGraph, build_graph
from puhui.fraud.links import (
    IDENTITY_CODE,
    KINDS,
    STRONG_CODE,
    IntArray,
    LinkKind,
    LinkTable,
    RecordMeta,
)

FloatArray = npt.NDArray[np.float64]

DEFAULT_SPLIT_ABOVE = 50
REVIEW_THRESHOLD = 30.0
"""Groups scoring at least this are worth a reviewer's time (the benchmark's flag)."""

WEIGHTS: dict[str, float] = {
    "size": 15.0,
    "identities": 15.0,
    "ties": 30.0,
    "burst": 20.0,
    "institutions": 5.0,
    "weak": 5.0,
    "density": 10.0,
}
"""Points per score term (each term is in [0, 1]); they sum to 100."""
BAD_WEIGHT = 40.0
"""Extra points at 100 % known-bad members; the total is capped at 100."""


@dataclass(frozen=True)
class SharedIdentifier:
    """A key held by at least two members of a group (its text is never known here)."""

    kind: LinkKind
    key: int
    members: int
    identities: int
    strong: bool
    """At least two members hold it as a strong kind."""


@dataclass(frozen=True)
class Evidence:
    """What a group's score was computed from, and each term's value in [0, 1]."""

    size: int
    identities: int
    strong_shared: dict[str, int]
    weak_shared: dict[str, int]
    tie_units: float
    density: float
    span_days: float | None
    institutions: int | None
    known_bad: int | None
    terms: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Ring:
    """One group: members (record indexes and ids), shared identifiers, score, evidence.

    ``split`` is true when the group came out of the CPM refinement of a larger component.
    """

    group: int
    members: tuple[int, ...]
    member_ids: tuple[str, ...]
    shared: tuple[SharedIdentifier, ...]
    score: float
    evidence: Evidence
    split: bool


# -- scoring -------------------------------------------------------------------------------


def group_scores(
    size: npt.ArrayLike,
    identities: npt.ArrayLike,
    tie_units: npt.ArrayLike,
    weak_keys: npt.ArrayLike,
    density: npt.ArrayLike,
    span_days: npt.ArrayLike | None = None,
    institutions: npt.ArrayLike | None = None,
    bad_share: npt.ArrayLike | None = None,
) -> tuple[FloatArray, dict[str, FloatArray]]:
    """Scores (0-100) of groups from their evidence, and each term (0-1) per group.

    Terms, each non-decreasing in its evidence:

    * ``size`` = 1 − 0.7^(n − 1) for n members;
    * ``identities`` = 1 − 0.5^(d − 1) for d distinct people (ID number / legal
      representative; a record with neither counts as its own person);
    * ``ties`` = 1 − 0.5^u, u = Σ over shared keys of 1 for a strong key held by two or more
      people, 0.5 for a weak key held by three or more (two people sharing an address or
      listing each other are a household, not a ring);
    * ``burst`` = 1 − 0.5^(2·(n − 2)·7/(7 + span)) for n ≥ 3 with a time span in days, else
      0 (many applications in few days: the n − 2 beyond a pair, per week of span, doubled);
    * ``institutions`` = 1 − 0.5^(m − 1) for m lenders applied to;
    * ``weak`` = 1 − 0.5^k for k weak keys shared by two or more members;
    * ``density`` = pairs of different people joined by a strong key / all pairs of different
      people (0 for one person's applications).

    score = min(100, Σ WEIGHTS[t] · term_t + BAD_WEIGHT · share of confirmed-fraud members).
    """
    n = np.asarray(size, dtype=np.float64)
    terms: dict[str, FloatArray] = {
        "size": 1.0 - 0.7 ** np.maximum(n - 1, 0),
        "identities": 1.0 - 0.5 ** np.maximum(np.asarray(identities, np.float64) - 1, 0),
        "ties": 1.0 - 0.5 ** np.asarray(tie_units, np.float64),
        "weak": 1.0 - 0.5 ** np.asarray(weak_keys, np.float64),
        "density": np.asarray(density, np.float64),
    }
    if span_days is None:
        terms["burst"] = np.zeros_like(n)
    else:
        span = np.asarray(span_days, np.float64)
        exponent = np.maximum(n - 2, 0) * 14.0 / (7.0 + np.nan_to_num(span, nan=np.inf))
        terms["burst"] = np.where((n >= 3) & ~np.isnan(span), 1.0 - 0.5**exponent, 0.0)
    m = np.ones_like(n) if institutions is None else np.asarray(institutions, np.float64)
    terms["institutions"] = 1.0 - 0.5 ** np.maximum(m - 1, 0)
    total = sum(WEIGHTS[t] * terms[t] for t in WEIGHTS)
    bad = np.zeros_like(n) if bad_share is None else np.asarray(bad_share, np.float64)
    score = np.minimum(100.0, np.asarray(total) + BAD_WEIGHT * bad)
    return np.round(score, 2).astype(np.float64), terms


# -- the finder ----------------------------------------------------------------------------


@dataclass(frozen=True)
class RingResult:
    """Groups ranked by score (then size); ``group[r]`` is record r's group (-1: none)."""

    rings: tuple[Ring, ...]
    group: IntArray
    score: FloatArray
    hubs: tuple[Hub, ...]
    graph: RecordGraph
    weights: sparse.csr_matrix


class RingFinder:
    """Find and score fraud rings in a :class:`LinkTable` (estimator-style: ``fit`` → self).

    Parameters: ``hub_cap`` (one cap or per kind), ``use_weak`` (weak links join records
    too), ``resolution`` (CPM γ), ``split_above`` (components larger than this are refined),
    ``seed`` (order of local moving). Learned: ``result_`` (:class:`RingResult`) and
    ``timings_`` (seconds per step: graph, projection, components, refinement, scoring).
    """

    def __init__(
        self,
        *,
        hub_cap: int | dict[LinkKind | str, int] = DEFAULT_HUB_CAP,
        use_weak: bool = False,
        resolution: float = DEFAULT_RESOLUTION,
        split_above: int = DEFAULT_SPLIT_ABOVE,
        seed: int = 0,
    ) -> None:
        self.hub_cap = hub_cap
        self.use_weak = use_weak
        self.resolution = resolution
        self.split_above = split_above
        self.seed = seed

    def fit(self, table: LinkTable, meta: RecordMeta | None = None) -> RingFinder:
        if meta is not None and tuple(meta.ids) != table.record_ids:
            raise ValueError("meta.ids must be the table's record_ids, in the same order")
        clock = time.perf_counter()
        timings: dict[str, float] = {}

        def lap(step: str) -> None:
            nonlocal clock
            now = time.perf_counter()
            timings[step] = now - clock
            clock = now

        graph = build_graph(table, hub_cap=self.hub_cap, use_weak=self.use_weak)
        lap("graph")
        weights = graph.projection()
        lap("projection")
        group, split = self._groups(graph, weights, lap)
        self.result_ = _rank(table, meta, graph, weights, group, split)
        lap("scoring")
        self.timings_ = timings
        return self

    def _groups(
        self, graph: RecordGraph, weights: sparse.csr_matrix, lap: Callable[[str], None]
    ) -> tuple[IntArray, npt.NDArray[np.bool_]]:
        _, comp = graph.components()
        lap("components")
        order = np.argsort(comp, kind="stable")
        bounds = np.flatnonzero(np.r_[True, comp[order][1:] != comp[order][:-1], True])
        group = comp.copy()
        split = np.zeros(len(comp), dtype=bool)
        next_label = int(comp.max()) + 1 if len(comp) else 0
        for a, b in zip(bounds[:-1].tolist(), bounds[1:].tolist(), strict=True):
            if b - a <= self.split_above:
                continue
            members = order[a:b]
            sub = weights[members][:, members]
            parts = cpm_partition(sub, self.resolution, seed=self.seed)
            if parts.max() > 0:
                group[members] = next_label + parts
                next_label += int(parts.max()) + 1
                split[members] = True
        lap("refinement")
        _, group = np.unique(group, return_inverse=True)
        sizes = np.bincount(group)
        group = np.where(sizes[group] >= 2, group, -1).astype(np.int64)
        kept = group >= 0
        group[kept] = np.unique(group[kept], return_inverse=True)[1]
        return group, split


def find_rings(
    table: LinkTable,
    meta: RecordMeta | None = None,
    *,
    hub_cap: int | dict[LinkKind | str, int] = DEFAULT_HUB_CAP,
    use_weak: bool = False,
    resolution: float = DEFAULT_RESOLUTION,
    split_above: int = DEFAULT_SPLIT_ABOVE,
    seed: int = 0,
) -> RingResult:
    """``RingFinder(...).fit(table, meta).result_`` in one call."""
    finder = RingFinder(
        hub_cap=hub_cap,
        use_weak=use_weak,
        resolution=resolution,
        split_above=split_above,
        seed=seed,
    )
    return finder.fit(table, meta).result_


def _identity(table: LinkTable) -> IntArray:
    """One id per person: the smallest identity key a record holds, else the record itself."""
    n = table.n_records
    ident = np.full(n, np.iinfo(np.int64).max, dtype=np.int64)
    m = IDENTITY_CODE[table.kind]
    np.minimum.at(ident, table.record[m], table.key[m])
    none = ident == np.iinfo(np.int64).max
    ident[none] = -1 - np.flatnonzero(none)
    return ident


def _shared(table: LinkTable, graph: RecordGraph, group: IntArray, ident: IntArray) -> pd.DataFrame:
    """Per (group, key) held by ≥ 2 members: members, people, strong holders, kind."""
    g = group[table.record]
    m = (g >= 0) & ~graph.hub_key[table.key]
    strong = STRONG_CODE[table.kind[m]]
    rec = table.record[m]
    df = pd.DataFrame(
        {
            "group": g[m],
            "key": table.key[m],
            "rec": rec,
            "ident": ident[rec],
            "srec": np.where(strong, rec, -1),
            "sident": np.where(strong, ident[rec], np.iinfo(np.int64).min),
            "kind": table.kind[m],
        }
    )
    agg = df.groupby(["group", "key"], sort=True).agg(
        members=("rec", "nunique"),
        identities=("ident", "nunique"),
        strong_members=("srec", "nunique"),
        strong_identities=("sident", "nunique"),
        kind=("kind", "min"),
        any_weak=("srec", "min"),
    )
    agg = agg[agg["members"] >= 2].reset_index()
    # nunique counted the -1 / min placeholders of weak holders: take them back out.
    has_weak = agg["any_weak"] < 0
    agg["strong_members"] -= has_weak.astype(np.int64)
    agg["strong_identities"] -= has_weak.astype(np.int64)
    agg["strong"] = agg["strong_members"] >= 2
    return agg.drop(columns="any_weak")


def _rank(
    table: LinkTable,
    meta: RecordMeta | None,
    graph: RecordGraph,
    weights: sparse.csr_matrix,
    group: IntArray,
    split: npt.NDArray[np.bool_],
) -> RingResult:
    n = table.n_records
    n_groups = int(group.max()) + 1 if (group >= 0).any() else 0
    grouped = group >= 0
    gi = group[grouped]
    size = np.bincount(gi, minlength=n_groups)
    ident = _identity(table)
    people = pd.DataFrame({"g": gi, "i": ident[grouped]}).drop_duplicates()["g"].to_numpy(np.int64)
    identities = np.bincount(people, minlength=n_groups)

    shared = _shared(table, graph, group, ident)
    sg = shared["group"].to_numpy(np.int64)
    units = np.where(
        shared["strong"] & (shared["strong_identities"] >= 2),
        1.0,
        np.where(shared["identities"] >= 3, 0.5, 0.0),
    )
    tie_units = np.bincount(sg, weights=units, minlength=n_groups).astype(np.float64)
    weak_keys = np.bincount(sg[~shared["strong"].to_numpy()], minlength=n_groups)

    density = _people_density(graph, weights, group, ident, size, n_groups)

    span = institutions = bad = bad_share = None
    if meta is not None and meta.timestamps is not None:
        ts = pd.Series(np.asarray(meta.timestamps, np.float64)[grouped])
        by = ts.groupby(gi)
        span = ((by.max() - by.min()) / 86_400.0).reindex(range(n_groups)).to_numpy(np.float64)
    if meta is not None and meta.institutions is not None:
        inst = pd.Series(np.asarray(meta.institutions, dtype=object)[grouped])
        institutions = inst.groupby(gi).nunique().reindex(range(n_groups)).to_numpy(np.int64)
    if meta is not None and meta.labels is not None:
        is_bad = np.asarray(meta.labels)[grouped] == 1
        bad = np.bincount(gi, weights=is_bad, minlength=n_groups).astype(np.float64)
        bad_share = bad / np.maximum(size, 1)
    scores, terms = group_scores(
        size, identities, tie_units, weak_keys, density, span, institutions, bad_share
    )

    rank = np.lexsort((np.arange(n_groups), -size, -scores))  # score, then size, then order
    new_id = np.empty(n_groups, dtype=np.int64)
    new_id[rank] = np.arange(1, n_groups + 1)
    record_group = np.where(grouped, new_id[np.maximum(group, 0)], -1).astype(np.int64)
    record_score = np.where(grouped, scores[np.maximum(group, 0)], 0.0)

    members_of = np.argsort(group, kind="stable")[n - int(grouped.sum()) :]
    bounds = np.r_[0, np.cumsum(size)]
    shared_by_group = _shared_lists(shared, n_groups)
    stats = _Stats(size, identities, tie_units, density, span, institutions, bad, terms)
    rings = []
    for g in rank.tolist():
        members = tuple(members_of[bounds[g] : bounds[g + 1]].tolist())
        rings.append(
            Ring(
                group=int(new_id[g]),
                members=members,
                member_ids=tuple(table.record_ids[i] for i in members),
                shared=shared_by_group[g],
                score=float(scores[g]),
                evidence=_evidence(g, shared_by_group[g], stats),
                split=bool(split[members[0]]),
            )
        )
    return RingResult(tuple(rings), record_group, record_score, graph.hubs, graph, weights)


def _people_density(
    graph: RecordGraph,
    weights: sparse.csr_matrix,
    group: IntArray,
    ident: IntArray,
    size: IntArray,
    n_groups: int,
) -> FloatArray:
    """Per group: pairs of *different people* joined by a strong key / all such pairs.

    Pairs of one person's applications are left out (a repeat applicant is trivially
    "dense"), and so are weak ties (a household shares an address by nature).
    """
    strong = graph.projection(weak_weight=0.0) if graph.use_weak else weights
    coo = sparse.triu(strong, k=1).tocoo()
    inside = (group[coo.row] >= 0) & (group[coo.row] == group[coo.col])
    inside &= ident[coo.row] != ident[coo.col]
    linked = np.bincount(group[coo.row[inside]], minlength=n_groups).astype(np.float64)
    grouped = group >= 0
    per_person = pd.DataFrame({"g": group[grouped], "i": ident[grouped]}).value_counts()
    k = per_person.to_numpy(np.float64)
    g = per_person.index.get_level_values("g").to_numpy(np.int64)
    same = np.bincount(g, weights=k * (k - 1) / 2, minlength=n_groups)
    cross = size * (size - 1) / 2 - same
    result: FloatArray = np.where(cross > 0, linked / np.maximum(cross, 1), 0.0)
    return result


def _shared_lists(shared: pd.DataFrame, n_groups: int) -> list[tuple[SharedIdentifier, ...]]:
    out: list[list[SharedIdentifier]] = [[] for _ in range(n_groups)]
    columns = ["group", "kind", "key", "members", "identities", "strong"]
    for g, kind, key, members, identities, strong in shared[columns].itertuples(index=False):
        out[g].append(SharedIdentifier(KINDS[kind], int(key), members, identities, bool(strong)))
    return [
        tuple(sorted(items, key=lambda s: (not s.strong, -s.members, KINDS.index(s.kind), s.key)))
        for items in out
    ]


@dataclass(frozen=True)
class _Stats:
    """Per-group evidence arrays, indexed by internal group number."""

    size: IntArray
    identities: IntArray
    tie_units: FloatArray
    density: FloatArray
    span: FloatArray | None
    institutions: IntArray | None
    bad: FloatArray | None
    terms: dict[str, FloatArray]


def _evidence(g: int, shared: tuple[SharedIdentifier, ...], v: _Stats) -> Evidence:
    strong: dict[str, int] = {}
    weak: dict[str, int] = {}
    for s in shared:
        counts = strong if s.strong else weak
        counts[s.kind.value] = counts.get(s.kind.value, 0) + 1
    span = None if v.span is None or np.isnan(v.span[g]) else round(float(v.span[g]), 2)
    return Evidence(
        size=int(v.size[g]),
        identities=int(v.identities[g]),
        strong_shared=strong,
        weak_shared=weak,
        tie_units=float(v.tie_units[g]),
        density=round(float(v.density[g]), 4),
        span_days=span,
        institutions=None if v.institutions is None else int(v.institutions[g]),
        known_bad=None if v.bad is None else int(v.bad[g]),
        terms={t: round(float(a[g]), 4) for t, a in v.terms.items()},
    )
