"""The same boosting algorithm in plaintext on the joined data: the losslessness reference.

This is what SecureBoost promises to equal. It bins each column with :mod:`.binning`,
quantises gradients with :mod:`.encoding` and chooses splits with :mod:`.split` — the very
functions the guest and the host use — so with the same parameters its trees must equal the
federated ones node for node (the tests check it, the benchmark reports it). It is also the
"central model" of the benchmark (what one party holding both halves would train) and, with no
host columns, the "guest-only" model.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from puhui.federated.secureboost import binning, loss
from puhui.federated.secureboost.encoding import Layout, quantise
from puhui.federated.secureboost.params import SecureBoostParams
from puhui.federated.secureboost.split import (
    best,
    candidate_specs,
    candidate_sums,
    gains,
    leaf_weight,
    left_of_codes,
    node_histograms,
)
from puhui.federated.secureboost.tree import Node, NodeKind, Tree

FloatArray = npt.NDArray[np.float64]


@dataclass
class CentralModel:
    """Trees with every split explicit; ``feature`` indexes the owning party's columns."""

    params: SecureBoostParams
    base_score: float
    trees: list[Tree]
    guest_edges: list[FloatArray] = field(repr=False)
    host_edges: list[FloatArray] = field(repr=False)

    def predict_raw(
        self, X_guest: npt.ArrayLike, X_host: npt.ArrayLike | None = None
    ) -> FloatArray:
        guest = binning.as_features(X_guest, "X_guest")
        host = (
            np.empty((guest.shape[0], 0))
            if X_host is None
            else binning.as_features(X_host, "X_host")
        )
        if host.shape[1] != len(self.host_edges) or guest.shape[1] != len(self.guest_edges):
            raise ValueError("the tables do not have the columns the model was trained on")
        columns = {"guest": guest, "host": host}
        raw = np.full(guest.shape[0], self.base_score)
        for tree in self.trees:
            raw += tree.route(
                guest.shape[0],
                lambda node: binning.goes_left(
                    columns[node.kind][:, node.feature], node.threshold, node.missing_left
                ),
            )
        return raw

    def predict_proba(
        self, X_guest: npt.ArrayLike, X_host: npt.ArrayLike | None = None
    ) -> FloatArray:
        """Probability of the label 1 (bad) for each row."""
        return loss.sigmoid(self.predict_raw(X_guest, X_host))


def train_central(
    X_guest: npt.ArrayLike,
    y: npt.ArrayLike,
    params: SecureBoostParams,
    X_host: npt.ArrayLike | None = None,
) -> CentralModel:
    """Boost on the joined table (guest columns first, then host columns)."""
    guest = binning.as_features(X_guest, "X_guest")
    n_rows = guest.shape[0]
    host = np.empty((n_rows, 0)) if X_host is None else binning.as_features(X_host, "X_host")
    if host.shape[0] != n_rows:
        raise ValueError("X_guest and X_host must have the same rows")
    labels = loss.as_labels(y, n_rows)
    guest_edges = binning.fit_edges(guest, params.n_bins)
    host_edges = binning.fit_edges(host, params.n_bins)
    codes = np.hstack(
        [
            binning.apply_bins(guest, guest_edges, params.n_bins),
            binning.apply_bins(host, host_edges, params.n_bins),
        ]
    )
    edges = guest_edges + host_edges
    n_guest = guest.shape[1]
    layout = Layout(params.fixed_point_bits, n_rows)
    start = loss.base_score(labels)
    raw = np.full(n_rows, start)
    trees = []
    for t in range(params.n_trees):
        g, h = loss.gradients(raw, labels)
        g_int, h_int = quantise(g, h, params.fixed_point_bits)
        usable = n_guest if (params.guest_only_first_tree and t == 0) else codes.shape[1]
        tree, leaf_of_row = _grow(codes[:, :usable], edges, n_guest, g_int, h_int, layout, params)
        trees.append(tree)
        raw += leaf_of_row
    return CentralModel(params, start, trees, guest_edges, host_edges)


def _grow(
    codes: npt.NDArray[np.int32],
    edges: list[FloatArray],
    n_guest: int,
    g_int: npt.NDArray[np.int64],
    h_int: npt.NDArray[np.int64],
    layout: Layout,
    params: SecureBoostParams,
) -> tuple[Tree, FloatArray]:
    """One tree, level by level; returns it and each training row's leaf weight."""
    nodes: list[Node] = []
    row_weight = np.zeros(codes.shape[0])
    active = {0: np.arange(codes.shape[0])}
    for depth in range(params.max_depth + 1):
        children: dict[int, npt.NDArray[np.int64]] = {}
        for node_id, rows in sorted(active.items()):
            g_total, h_total = int(g_int[rows].sum()), int(h_int[rows].sum())
            choice, gain = -1, 0.0
            if depth < params.max_depth:
                hist = node_histograms(codes[rows], g_int[rows], h_int[rows], params.n_bins)
                cands = candidate_specs(hist.counts)
                gl, hl = candidate_sums(hist, cands)
                choice, gain = best(gains(gl, hl, g_total, h_total, layout.scale, params), params)
            if choice < 0:
                weight = leaf_weight(g_total, h_total, layout.scale, params)
                nodes.append(Node(node_id, "leaf", weight=weight))
                row_weight[rows] = weight
                continue
            feature = int(cands.feature[choice])
            bin_index = int(cands.bin[choice])
            missing_left = bool(cands.missing_left[choice])
            party: NodeKind = "guest" if feature < n_guest else "host"
            local = feature if feature < n_guest else feature - n_guest
            nodes.append(
                Node(
                    node_id,
                    party,
                    weight=leaf_weight(g_total, h_total, layout.scale, params),
                    feature=local,
                    bin=bin_index,
                    threshold=binning.threshold(edges[feature], bin_index),
                    missing_left=missing_left,
                    gain=gain,
                )
            )
            left = left_of_codes(codes[rows, feature], bin_index, missing_left, params.n_bins)
            children[2 * node_id + 1] = rows[left]
            children[2 * node_id + 2] = rows[~left]
        active = children
    return Tree(tuple(sorted(nodes, key=lambda n: n.id))), row_weight
