"""Groups of a weighted graph under the constant Potts model (CPM), by local moving.

A partition maximises Σ_c (w_c − γ · n_c(n_c − 1)/2): w_c is the link weight inside group c,
n_c its size. A group holds together only where its link density exceeds γ, whatever the size
of the rest of the graph — unlike modularity, whose penalty shrinks as the graph grows and so
merges small rings into big ones (its resolution limit). Louvain-style levels of local moving
and aggregation, then every group split into its connected parts (the Leiden guarantee that
no group is disconnected). igraph and leidenalg, which implement this, are GPL; this is a small
NumPy/SciPy implementation of the published method.
"""

from __future__ import annotations

from collections import deque

import numpy as np
import numpy.typing as npt
from scipy import sparse
from scipy.sparse.csgraph import connected_components

from puhui.fraud.links import IntArray

FloatArray = npt.NDArray[np.float64]

DEFAULT_RESOLUTION = 0.2


def _local_moving(
    w: sparse.csr_matrix, size: FloatArray, gamma: float, rng: np.random.Generator
) -> tuple[IntArray, bool]:
    """Move nodes between groups while the CPM quality improves; (group per node, moved?)."""
    n = w.shape[0]
    indptr, indices, data = w.indptr.tolist(), w.indices.tolist(), w.data.tolist()
    s = size.tolist()
    comm = list(range(n))
    comm_size = list(s)
    empty: list[int] = []
    queue = deque(rng.permutation(n).tolist())
    queued = [True] * n
    moved = False
    while queue:
        v = queue.popleft()
        queued[v] = False
        acc: dict[int, float] = {}
        for p in range(indptr[v], indptr[v + 1]):
            c = comm[indices[p]]
            acc[c] = acc.get(c, 0.0) + data[p]
        cur, sv = comm[v], s[v]
        best, best_gain = cur, acc.get(cur, 0.0) - gamma * sv * (comm_size[cur] - sv)
        for c, wc in acc.items():
            gain = wc - gamma * sv * comm_size[c]
            if c != cur and gain > best_gain + 1e-12:
                best, best_gain = c, gain
        if best_gain < -1e-12 and comm_size[cur] > sv:  # better alone than anywhere
            best = empty.pop()
        if best == cur:
            continue
        comm_size[cur] -= sv
        if comm_size[cur] <= 1e-12:
            empty.append(cur)
        comm[v] = best
        comm_size[best] += sv
        moved = True
        for p in range(indptr[v], indptr[v + 1]):
            u = indices[p]
            if not queued[u] and comm[u] != best:
                queued[u] = True
                queue.append(u)
    _, labels = np.unique(np.array(comm, dtype=np.int64), return_inverse=True)
    return labels.astype(np.int64), moved


def _connected_parts(w: sparse.csr_matrix, labels: IntArray) -> IntArray:
    """Split every group into its connected parts (links inside the group only)."""
    coo = w.tocoo()
    inside = labels[coo.row] == labels[coo.col]
    n = w.shape[0]
    kept = sparse.csr_matrix((coo.data[inside], (coo.row[inside], coo.col[inside])), shape=(n, n))
    _, parts = connected_components(kept, directed=False)
    result: IntArray = np.asarray(parts, dtype=np.int64)
    return result


def cpm_partition(
    weights: sparse.csr_matrix,
    resolution: float = DEFAULT_RESOLUTION,
    *,
    seed: int = 0,
    max_levels: int = 20,
) -> IntArray:
    """Groups of a weighted graph (symmetric, zero diagonal) under the constant Potts model.

    Louvain-style levels of local moving and aggregation with the CPM quality function,
    then each group split into its connected parts. Deterministic for a given ``seed``.
    """
    w = sparse.csr_matrix(weights, dtype=np.float64)
    n = w.shape[0]
    rng = np.random.default_rng(seed)
    membership = np.arange(n, dtype=np.int64)
    size = np.ones(n)
    for _ in range(max_levels):
        labels, moved = _local_moving(w, size, resolution, rng)
        if not moved:
            break
        membership = labels[membership]
        k = int(labels.max()) + 1
        if k == w.shape[0]:
            break
        agg = sparse.csr_matrix((np.ones(len(labels)), (np.arange(len(labels)), labels)))
        w = sparse.csr_matrix(agg.T @ w @ agg)
        w.setdiag(0.0)
        w.eliminate_zeros()
        size = np.bincount(labels, weights=size, minlength=k)
    return _connected_parts(sparse.csr_matrix(weights), membership)
