"""The guest's side of SecureBoost: it holds the labels and the key, and grows the trees.

Per tree the guest computes logistic gradients and hessians, quantises and packs them one
plaintext per row (:mod:`.encoding`), encrypts them with its Paillier key (2048 bits by
default; ``workers`` forked processes) and sends them to the host once. Level by level it then
sums its own features' histograms in plaintext, decrypts the host's packed candidate sums,
computes every gain with the shared rule of :mod:`.split` and decides each open node: a leaf, a
guest split (it sends the host the node's left/right bitmap) or a host split (it sends only the
chosen opaque candidate position — all positions tied for the best gain, which the host breaks
by the canonical order, keeping the result equal to the central run's). Leaf weights never
leave the guest. A host's partition is checked against the sums the host's own histogram
claimed for that candidate, so a host that answers with another partition is caught.

What the guest learns from the host (SecureBoost's known leakage, semi-honest model): for every
open node and every host candidate, the gradient and hessian sums of the rows the candidate
sends left — so, per node, the sums per host bin up to the order of features and bins — and
the left/right partition of every host split chosen. It does not learn host feature values,
which feature or threshold a candidate or split is, or how many features the host has beyond
what the candidate count implies.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from puhui.federated.channel import Channel
from puhui.federated.errors import FederatedError
from puhui.federated.paillier import PrivateKey, generate_keypair
from puhui.federated.secureboost import binning, loss, protocol
from puhui.federated.secureboost.encoding import (
    Layout,
    pack_rows,
    quantise,
    split_slots,
    unpack_sum,
)
from puhui.federated.secureboost.model import GuestModel, feature_names_or_default
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
from puhui.federated.secureboost.tree import Node, Tree
from puhui.federated.timing import PhaseClock

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
_GUEST_PHASES = ("encryption", "decryption", "split_finding", "waiting")


def train_guest(
    channel: Channel,
    X_guest: npt.ArrayLike,
    y: npt.ArrayLike,
    params: SecureBoostParams,
    feature_names: list[str] | None = None,
    *,
    private_key: PrivateKey | None = None,
) -> GuestModel:
    """Train with the host on the other end of ``channel``; returns the guest's half.

    ``X_guest`` and ``y`` are the guest's features and 0/1 labels (1 = bad) for the aligned
    rows. A fresh Paillier key of ``params.key_bits`` is generated unless ``private_key`` is
    given (tests reuse one to save its set-up time).
    """
    X = binning.as_features(X_guest, "X_guest")
    n_rows = X.shape[0]
    labels = loss.as_labels(y, n_rows)
    names = feature_names_or_default(feature_names, X.shape[1], "X_guest")
    layout = Layout(params.fixed_point_bits, n_rows)
    key = private_key or generate_keypair(
        params.key_bits, insecure_for_tests=params.insecure_for_tests
    )
    if key.public.bits != params.key_bits:
        raise ValueError(
            f"the private key has {key.public.bits} bits; key_bits is {params.key_bits}"
        )
    layout.slots_per_ciphertext(key.public.bits)
    key.prepare()
    model_id = secrets.token_hex(16)
    channel.send(
        protocol.SETUP,
        {
            "format": protocol.FORMAT,
            "model_id": model_id,
            "params": params.to_dict(),
            "public_key": key.public.to_message(),
            "n_rows": n_rows,
        },
    )
    ready = channel.recv(protocol.READY)
    protocol.check_ok(ready, protocol.READY)
    protocol.expect(ready, protocol.READY, model_id=model_id, ok=True)
    edges = binning.fit_edges(X, params.n_bins)
    trainer = _GuestTrainer(
        channel, binning.apply_bins(X, edges, params.n_bins), edges, labels, params, layout, key
    )
    start = loss.base_score(labels)
    raw = np.full(n_rows, start)
    trees, timings = [], []
    for t in range(params.n_trees):
        tree, row_weight, seconds = trainer.tree(t, raw)
        trees.append(tree)
        timings.append(seconds)
        raw += row_weight
    channel.send(protocol.DONE, {"model_id": model_id, "n_trees": params.n_trees})
    return GuestModel(model_id, params, start, trees, names, timings)


def predict_guest(
    channel: Channel, guest_model: GuestModel, X_guest: npt.ArrayLike, *, raw: bool = False
) -> FloatArray:
    """Score a batch with the host: one request, one answer, whatever the number of trees.

    Sends the host the ids of every host split the trees use and the batch size; the host
    answers with one left/right bit per split and row (:func:`.host.serve_host_predictions`
    on the same batch, same row order). Returns the probability of label 1 for each row (the
    raw score if ``raw``). The guest learns those bits for every host split, also for nodes a
    row never reaches — the price of a single round trip.
    """
    X = binning.as_features(X_guest, "X_guest")
    if X.shape[1] != len(guest_model.feature_names):
        raise ValueError(
            f"X_guest has {X.shape[1]} features; the model was trained on "
            f"{len(guest_model.feature_names)}"
        )
    split_ids = guest_model.host_split_ids()
    n_rows = X.shape[0]
    channel.send(
        protocol.PREDICT,
        {"model_id": guest_model.model_id, "n_rows": n_rows, "split_ids": split_ids},
    )
    reply = channel.recv(protocol.DIRECTIONS)
    protocol.check_ok(reply, protocol.DIRECTIONS)
    protocol.expect(reply, protocol.DIRECTIONS, model_id=guest_model.model_id, n_rows=n_rows)
    bits = protocol.unpack_mask(
        protocol.field(reply, "left", bytes, protocol.DIRECTIONS),
        len(split_ids) * n_rows,
        protocol.DIRECTIONS,
    ).reshape(len(split_ids), n_rows)
    scores = guest_model.predict_raw(X, dict(zip(split_ids, bits, strict=True)))
    return scores if raw else loss.sigmoid(scores)


@dataclass
class _HostOffer:
    """One node's decrypted host candidates: left-child sums, in the order the host sent them."""

    gl: IntArray
    hl: IntArray


@dataclass
class _Pending:
    """A node the guest gave to a host candidate, waiting for the host's partition."""

    gain: float
    tied_sums: set[tuple[int, int]]


@dataclass
class _Level:
    """The guest's decisions at one depth."""

    decisions: list[dict[str, Any]] = field(default_factory=list)
    pending: dict[int, _Pending] = field(default_factory=dict)
    children: dict[int, IntArray] = field(default_factory=dict)


class _GuestTrainer:
    """The guest's state across trees: binned columns, labels, key and layout."""

    def __init__(
        self,
        channel: Channel,
        codes: npt.NDArray[np.int32],
        edges: list[FloatArray],
        labels: npt.NDArray[np.int64],
        params: SecureBoostParams,
        layout: Layout,
        key: PrivateKey,
    ) -> None:
        self.channel = channel
        self.codes = codes
        self.edges = edges
        self.labels = labels
        self.params = params
        self.layout = layout
        self.key = key
        self.n_rows = codes.shape[0]
        self.nodes: list[Node] = []
        self.row_weight = np.zeros(self.n_rows)
        self.g_int = np.zeros(self.n_rows, dtype=np.int64)
        self.h_int = np.zeros(self.n_rows, dtype=np.int64)

    def tree(self, t: int, raw: FloatArray) -> tuple[Tree, FloatArray, dict[str, float]]:
        """Grow tree ``t`` from the current raw scores; returns it, row weights and timings."""
        clock = PhaseClock(*_GUEST_PHASES)
        params = self.params
        g, h = loss.gradients(raw, self.labels)
        self.g_int, self.h_int = quantise(g, h, params.fixed_point_bits)
        self.nodes = []
        self.row_weight = np.zeros(self.n_rows)
        with_host = not (params.guest_only_first_tree and t == 0)
        open_nodes: dict[int, IntArray] = {0: np.arange(self.n_rows)}
        offers: dict[int, _HostOffer] = {}
        if with_host:
            with clock.phase("encryption"):
                packed = pack_rows(self.g_int, self.h_int, self.layout)
                blob = self.key.encrypt_to_bytes(packed, workers=params.workers)
            self.channel.send(protocol.GRADIENTS, {"tree": t, "ciphertexts": blob})
            with clock.phase("waiting"):
                reply = self.channel.recv(protocol.LEVEL)
            protocol.expect(reply, protocol.LEVEL, tree=t, depth=0)
            with clock.phase("decryption"):
                offers = self._offers(reply, open_nodes)
        for depth in range(params.max_depth + 1):
            level = _Level()
            with clock.phase("split_finding"):
                for node_id, rows in sorted(open_nodes.items()):
                    self._decide(node_id, rows, depth, offers.get(node_id), level)
            if with_host and depth < params.max_depth:
                self.channel.send(
                    protocol.SPLITS, {"tree": t, "depth": depth, "nodes": level.decisions}
                )
                with clock.phase("waiting"):
                    reply = self.channel.recv(protocol.LEVEL)
                protocol.expect(reply, protocol.LEVEL, tree=t, depth=depth + 1)
                with clock.phase("split_finding"):
                    self._host_partitions(reply, open_nodes, level)
                expected = level.children if depth + 1 < params.max_depth else {}
                with clock.phase("decryption"):
                    offers = self._offers(reply, expected)
            open_nodes = level.children
            if not open_nodes:
                break
        tree = Tree(tuple(sorted(self.nodes, key=lambda n: n.id)))
        return tree, self.row_weight, clock.finish()

    # -- one node -----------------------------------------------------------------------------
    def _decide(
        self, node_id: int, rows: IntArray, depth: int, offer: _HostOffer | None, level: _Level
    ) -> None:
        """Leaf, guest split or host split for one open node, by the shared rule of split.py."""
        params, scale = self.params, self.layout.scale
        g_total, h_total = int(self.g_int[rows].sum()), int(self.h_int[rows].sum())
        own_index, own_gain, host_gain = -1, -np.inf, -np.inf
        host_gains = np.empty(0)
        if depth < params.max_depth:
            hist = node_histograms(
                self.codes[rows], self.g_int[rows], self.h_int[rows], params.n_bins
            )
            cands = candidate_specs(hist.counts)
            gl, hl = candidate_sums(hist, cands)
            own_index, own_gain = best(gains(gl, hl, g_total, h_total, scale, params), params)
            if offer is not None:
                self._check_offer(node_id, offer, g_total, h_total)
                host_gains = gains(offer.gl, offer.hl, g_total, h_total, scale, params)
                if host_gains.size:
                    host_gain = float(host_gains.max())
        # Guest features come first in the canonical order: the host wins only when strictly better.
        if host_gain > params.min_split_gain and host_gain > own_gain:
            tied = np.flatnonzero(host_gains == host_gain)
            assert offer is not None
            level.pending[node_id] = _Pending(
                host_gain, {(int(offer.gl[k]), int(offer.hl[k])) for k in tied}
            )
            level.decisions.append(
                {"node": node_id, "split": "host", "candidates": [int(k) for k in tied]}
            )
        elif own_index >= 0:
            feature = int(cands.feature[own_index])
            bin_index = int(cands.bin[own_index])
            missing_left = bool(cands.missing_left[own_index])
            left = left_of_codes(self.codes[rows, feature], bin_index, missing_left, params.n_bins)
            self.nodes.append(
                Node(
                    node_id,
                    "guest",
                    weight=leaf_weight(g_total, h_total, scale, params),
                    feature=feature,
                    bin=bin_index,
                    threshold=binning.threshold(self.edges[feature], bin_index),
                    missing_left=missing_left,
                    gain=own_gain,
                )
            )
            level.decisions.append(
                {"node": node_id, "split": "guest", "left": protocol.pack_mask(left)}
            )
            level.children[2 * node_id + 1] = rows[left]
            level.children[2 * node_id + 2] = rows[~left]
        else:
            weight = leaf_weight(g_total, h_total, scale, params)
            self.nodes.append(Node(node_id, "leaf", weight=weight))
            self.row_weight[rows] = weight
            level.decisions.append({"node": node_id, "split": "leaf"})

    def _check_offer(self, node_id: int, offer: _HostOffer, g_total: int, h_total: int) -> None:
        """Left sums must be possible for this node (catches corrupt or forged histograms)."""
        bound = self.n_rows << self.params.fixed_point_bits
        if offer.hl.size and (
            offer.hl.min() < 0 or offer.hl.max() > h_total or np.abs(offer.gl).max() > bound
        ):
            raise FederatedError(f"the host's histograms for node {node_id} are inconsistent")

    # -- the host's messages -----------------------------------------------------------------
    def _host_partitions(
        self, reply: dict[str, Any], open_nodes: dict[int, IntArray], level: _Level
    ) -> None:
        """Children of the nodes given to host candidates, from the host's bitmaps."""
        tag = protocol.LEVEL
        entries = protocol.field(reply, "partitions", list, tag)
        got = {protocol.field(e, "node", int, tag): e for e in entries}
        if sorted(got) != sorted(level.pending) or len(got) != len(entries):
            raise FederatedError("the host's partitions do not match the host splits chosen")
        for node_id, entry in got.items():
            rows = open_nodes[node_id]
            left = protocol.unpack_mask(protocol.field(entry, "left", bytes, tag), len(rows), tag)
            split_id = protocol.field(entry, "split_id", int, tag)
            sums = (int(self.g_int[rows[left]].sum()), int(self.h_int[rows[left]].sum()))
            if sums not in level.pending[node_id].tied_sums:
                raise FederatedError(
                    f"the host's partition of node {node_id} does not match its histogram"
                )
            value = leaf_weight(
                int(self.g_int[rows].sum()),
                int(self.h_int[rows].sum()),
                self.layout.scale,
                self.params,
            )
            self.nodes.append(
                Node(
                    node_id,
                    "host",
                    weight=value,
                    split_id=split_id,
                    gain=level.pending[node_id].gain,
                )
            )
            level.children[2 * node_id + 1] = rows[left]
            level.children[2 * node_id + 2] = rows[~left]

    def _offers(
        self, reply: dict[str, Any], expected: dict[int, IntArray]
    ) -> dict[int, _HostOffer]:
        """Decrypt every node's packed candidate sums in one batch."""
        tag = protocol.LEVEL
        entries = protocol.field(reply, "histograms", list, tag)
        nodes = [protocol.field(e, "node", int, tag) for e in entries]
        if sorted(nodes) != sorted(expected) or len(set(nodes)) != len(nodes):
            raise FederatedError("the host sent histograms for other nodes than the open ones")
        width = self.key.public.ciphertext_bytes
        per = self.layout.slots_per_ciphertext(self.key.public.bits)
        slot_bits = self.layout.slot_bits
        counts, blobs = [], []
        for entry in entries:
            count = protocol.field(entry, "count", int, tag)
            blob = protocol.field(entry, "ciphertexts", bytes, tag)
            if count < 0 or len(blob) != -(-count // per) * width:
                raise FederatedError("the host's packed histogram has the wrong size")
            counts.append(count)
            blobs.append(blob)
        values = iter(self.key.decrypt_signed(b"".join(blobs)) if any(blobs) else [])
        out = {}
        for node_id, count in zip(nodes, counts, strict=True):
            sums: list[int] = []
            while len(sums) < count:
                take = min(per, count - len(sums))
                try:
                    sums.extend(split_slots(next(values), slot_bits, take))
                except ValueError as exc:
                    raise FederatedError(f"the host's histogram for node {node_id}: {exc}") from exc
            pairs = [unpack_sum(v, self.layout) for v in sums]
            out[node_id] = _HostOffer(
                np.array([p[0] for p in pairs], dtype=np.int64),
                np.array([p[1] for p in pairs], dtype=np.int64),
            )
        return out
