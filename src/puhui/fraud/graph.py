"""The record graph: which applications are linked, with hubs taken out.

Records sharing a key are linked, but never by building every pair: a key held by k records
becomes a *star* (its first record joined to each of the others), k − 1 edges instead of
k(k − 1)/2, so a key shared by 5,000 records costs 5,000 edges and connected components stay
linear in the number of links.

Hubs. A key shared by more records than its kind's ``hub_cap`` (default 20) is an office
building's IP, a co-working address, a big employer's switchboard — honest people share it by
nature, and linking through it would glue thousands of strangers into one "ring". Such a key
links nobody; it is reported as a hub instead. The cap counts distinct records over every
kind in the key's namespace (a mobile listed as 30 people's contact is a hub for the mobile
kind too).

Strength. By default only strong links (:data:`~puhui.fraud.links.STRONG_KINDS`) join
records; weak ones are left for :mod:`~puhui.fraud.rings` to count as evidence. With
``use_weak=True`` weak links join records too. A pair linked through a key is strong only if
both hold it as a strong kind (an applicant's mobile that is another's contact is weak).

The weighted record–record graph (:meth:`RecordGraph.projection`) that group refinement and
density need *is* built pairwise, but only over non-hub keys, so its size is bounded by
``hub_cap²`` per key.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import sparse
from scipy.sparse.csgraph import connected_components

from puhui.fraud.links import KINDS, STRONG_CODE, IntArray, LinkKind, LinkTable

DEFAULT_HUB_CAP = 20
WEAK_WEIGHT = 0.5
"""Weight of a weak shared key in the projected graph, against 1 for a strong one."""

BoolArray = npt.NDArray[np.bool_]


@dataclass(frozen=True)
class Hub:
    """A key too widely shared to link: its kind (the first in :data:`KINDS` it is held as)
    and how many distinct records hold it."""

    kind: LinkKind
    key: int
    records: int


@dataclass(frozen=True)
class RecordGraph:
    """Links of a :class:`LinkTable` sorted into linking, hub and annotation roles.

    ``hub_key[k]`` — key ``k`` is a hub; ``key_records[k]`` — distinct records holding it;
    ``linking[i]`` — link row ``i`` joins records (non-hub, and strong unless ``use_weak``).
    """

    table: LinkTable
    use_weak: bool
    hub_key: BoolArray
    key_records: IntArray
    linking: BoolArray
    hubs: tuple[Hub, ...]

    @property
    def n_records(self) -> int:
        return self.table.n_records

    def star_edges(self) -> tuple[IntArray, IntArray]:
        """One edge from each linking key's first record to each of its other records."""
        t = self.table
        rec, key = t.record[self.linking], t.key[self.linking]  # still sorted by key, record
        if len(rec) == 0:
            return np.empty(0, np.int64), np.empty(0, np.int64)
        starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
        head = np.repeat(rec[starts], np.diff(np.r_[starts, len(rec)]))
        other = head != rec
        return head[other], rec[other]

    def adjacency(self) -> sparse.csr_matrix:
        """The star graph as a sparse matrix (edges one way; treat as undirected)."""
        a, b = self.star_edges()
        n = self.n_records
        data = np.ones(len(a), dtype=np.int32)
        return sparse.csr_matrix((data, (a, b)), shape=(n, n))

    def components(self) -> tuple[int, IntArray]:
        """Connected components of the linking graph: (count, label per record)."""
        count, labels = connected_components(self.adjacency(), directed=False)
        return int(count), labels.astype(np.int64)

    def projection(self, weak_weight: float = WEAK_WEIGHT) -> sparse.csr_matrix:
        """Record × record weights: Σ over shared linking keys of 1 (strong pair) or
        ``weak_weight`` (weak pair). Symmetric, zero diagonal."""
        t = self.table
        m = self.linking & (self.key_records[t.key] > 1)
        rec, key, strong = t.record[m], t.key[m], STRONG_CODE[t.kind[m]]
        n = self.n_records
        # One incidence per (record, key), strong if any of its kinds is strong.
        both = sparse.csr_matrix(
            (np.ones(len(rec)), (rec, key)), shape=(n, t.n_keys), dtype=np.float64
        )
        both.data[:] = 1.0
        w = both @ both.T
        if weak_weight != 1.0:
            s = sparse.csr_matrix(
                (np.ones(int(strong.sum())), (rec[strong], key[strong])),
                shape=(n, t.n_keys),
                dtype=np.float64,
            )
            s.data[:] = 1.0
            w = weak_weight * w + (1.0 - weak_weight) * (s @ s.T)
        w = sparse.csr_matrix(w)
        w.setdiag(0.0)
        w.eliminate_zeros()
        return w


def _caps(hub_cap: int | Mapping[LinkKind | str, int]) -> IntArray:
    if isinstance(hub_cap, int):
        return np.full(len(KINDS), hub_cap, dtype=np.int64)
    caps = np.full(len(KINDS), DEFAULT_HUB_CAP, dtype=np.int64)
    for kind, cap in hub_cap.items():
        caps[KINDS.index(LinkKind(kind))] = cap
    return caps


def build_graph(
    table: LinkTable,
    *,
    hub_cap: int | Mapping[LinkKind | str, int] = DEFAULT_HUB_CAP,
    use_weak: bool = False,
) -> RecordGraph:
    """Classify every link of ``table`` as linking, hub or annotation.

    ``hub_cap`` is one cap for every kind, or a mapping of kind → cap (kinds not named keep
    :data:`DEFAULT_HUB_CAP`). A key held by more distinct records than the smallest cap of
    the kinds it is held as is a hub.
    """
    caps = _caps(hub_cap)
    n_keys = table.n_keys
    rec, key, kind = table.record, table.key, table.kind
    if len(rec):
        # Table is sorted by (key, record): a new (key, record) pair starts a distinct holder.
        new_pair = np.r_[True, (key[1:] != key[:-1]) | (rec[1:] != rec[:-1])]
        key_records = np.bincount(key[new_pair], minlength=n_keys).astype(np.int64)
        starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
        key_cap = np.minimum.reduceat(caps[kind], starts)
        first_kind = np.minimum.reduceat(kind, starts)
        keys_present = key[starts]
        hub_key = np.zeros(n_keys, dtype=bool)
        hub_key[keys_present] = key_records[keys_present] > key_cap
    else:
        key_records = np.zeros(n_keys, dtype=np.int64)
        hub_key = np.zeros(n_keys, dtype=bool)
        first_kind, keys_present = np.empty(0, np.int8), np.empty(0, np.int64)
    linking = ~hub_key[key] & (STRONG_CODE[kind] | use_weak)
    hub_rows = np.flatnonzero(hub_key[keys_present])
    hubs = tuple(
        Hub(KINDS[int(first_kind[i])], int(keys_present[i]), int(key_records[keys_present[i]]))
        for i in hub_rows.tolist()
    )
    hubs = tuple(sorted(hubs, key=lambda h: (-h.records, h.key)))
    return RecordGraph(table, use_weak, hub_key, key_records, linking, hubs)
