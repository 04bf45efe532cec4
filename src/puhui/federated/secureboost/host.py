"""The host's side of SecureBoost: encrypted histograms in, opaque candidates and partitions out.

The host (the data partner, no labels) never decrypts anything: it holds only the guest's
public key. Per tree it receives one ciphertext per row — ``Enc(g_int · 2^B + h_int)`` — and per
level returns, for every open node, the encrypted left-child sums of all its candidate splits
(:mod:`.histogram`), **shuffled** by a fresh random permutation per node, shift-packed several
to a ciphertext and **re-randomised** (multiplied by a fresh ``Enc(0)``, so the randomness of
what the guest decrypts is unrelated to that of the rows it encrypted). The guest refers to a
candidate only by its position in that shuffled list; the host maps the position back to
(feature, bin, missing direction), stores the split under a new random ``split_id`` and returns
that id and the node's left/right bitmap. Thresholds never leave the host.

What the host learns: the parameters, the row count, every node's partition of the rows
(SecureBoost's known leakage — with ``guest_only_first_tree`` not the first tree's), which of
its own candidates won, and when a guest split won instead. What the guest learns from the host
is documented in :mod:`.guest`.
"""

from __future__ import annotations

import random
import secrets
from typing import Any

import numpy as np
import numpy.typing as npt

from puhui.federated.channel import Channel
from puhui.federated.errors import FederatedError, ProtocolMismatch
from puhui.federated.paillier import PublicKey
from puhui.federated.secureboost import binning, protocol
from puhui.federated.secureboost.encoding import Layout
from puhui.federated.secureboost.histogram import EncryptedHistograms
from puhui.federated.secureboost.model import HostModel, HostSplit, feature_names_or_default
from puhui.federated.secureboost.params import SecureBoostParams
from puhui.federated.secureboost.split import Candidates, candidate_specs, left_of_codes
from puhui.federated.timing import PhaseClock

IntArray = npt.NDArray[np.int64]
_HOST_PHASES = ("conversion", "histogram", "packing", "partition", "waiting")


def train_host(
    channel: Channel,
    X_host: npt.ArrayLike,
    feature_names: list[str] | None = None,
    *,
    workers: int = 1,
    insecure_for_tests: bool = False,
) -> HostModel:
    """Train with the guest on the other end of ``channel``; returns the host's half.

    ``X_host`` holds the host's features for the same rows, in the same order, as the guest's
    table (after alignment by PSI). ``workers`` > 1 forks that many processes for the encrypted
    histograms. ``insecure_for_tests`` lets a test use a Paillier key under 2048 bits.
    """
    X = binning.as_features(X_host, "X_host")
    names = feature_names_or_default(feature_names, X.shape[1], "X_host")
    setup = channel.recv(protocol.SETUP)
    try:
        params, public, model_id = _accept_setup(setup, X.shape[0], insecure_for_tests)
    except (FederatedError, ValueError) as exc:
        channel.send(protocol.READY, {"ok": False, "error": str(exc)})
        if isinstance(exc, FederatedError):
            raise
        raise ProtocolMismatch(f"the guest's setup was refused: {exc}") from exc
    channel.send(protocol.READY, {"ok": True, "model_id": model_id})
    trainer = _HostTrainer(channel, X, params, public, workers)
    for tree in range(params.n_trees):
        if params.guest_only_first_tree and tree == 0:
            continue
        trainer.tree(tree)
    done = channel.recv(protocol.DONE)
    protocol.expect(done, protocol.DONE, model_id=model_id, n_trees=params.n_trees)
    return HostModel(model_id, trainer.splits, names, trainer.timings)


def _accept_setup(
    setup: Any, n_rows: int, insecure_for_tests: bool
) -> tuple[SecureBoostParams, PublicKey, str]:
    """Check the guest's setup: format, parameters, key size and row count."""
    tag = protocol.SETUP
    fmt = protocol.field(setup, "format", str, tag)
    if fmt != protocol.FORMAT:
        raise ProtocolMismatch(f"the guest speaks {fmt!r}; this host speaks {protocol.FORMAT!r}")
    model_id = protocol.field(setup, "model_id", str, tag)
    if not 8 <= len(model_id) <= 64:
        raise FederatedError("the guest's model id must have 8 to 64 characters")
    params = SecureBoostParams.from_dict(protocol.field(setup, "params", dict, tag))
    if params.insecure_for_tests and not insecure_for_tests:
        raise FederatedError("the guest asks for test-only insecure keys; this host refuses them")
    public = PublicKey.from_message(
        protocol.field(setup, "public_key", dict, tag), insecure_for_tests=insecure_for_tests
    )
    if public.bits != params.key_bits:
        raise FederatedError(
            f"the guest's key has {public.bits} bits but its parameters say {params.key_bits}"
        )
    guest_rows = protocol.field(setup, "n_rows", int, tag)
    if guest_rows != n_rows:
        raise ProtocolMismatch(
            f"the guest has {guest_rows} rows and this host {n_rows}: align the samples first"
        )
    layout = Layout(params.fixed_point_bits, n_rows)
    layout.slots_per_ciphertext(public.bits)
    return params, public, model_id


class _HostTrainer:
    """The host's state across trees: its binned columns and the splits chosen so far."""

    def __init__(
        self,
        channel: Channel,
        X: npt.NDArray[np.float64],
        params: SecureBoostParams,
        public: PublicKey,
        workers: int,
    ) -> None:
        self.channel = channel
        self.params = params
        self.public = public
        self.workers = workers
        self.edges = binning.fit_edges(X, params.n_bins)
        self.codes = binning.apply_bins(X, self.edges, params.n_bins)
        self.n_rows = X.shape[0]
        self.layout = Layout(params.fixed_point_bits, self.n_rows)
        self.splits: dict[int, HostSplit] = {}
        self.timings: list[dict[str, float]] = []
        self._shuffle = random.SystemRandom()

    def tree(self, tree: int) -> None:
        clock = PhaseClock(*_HOST_PHASES)
        with clock.phase("waiting"):
            message = self.channel.recv(protocol.GRADIENTS)
        protocol.expect(message, protocol.GRADIENTS, tree=tree)
        blob = protocol.field(message, "ciphertexts", bytes, protocol.GRADIENTS)
        if len(blob) != self.n_rows * self.public.ciphertext_bytes:
            raise FederatedError("the guest sent a number of ciphertexts other than one per row")
        with clock.phase("conversion"):
            ciphertexts = self.public.ciphertexts(blob)
        engine = EncryptedHistograms(
            self.public, ciphertexts, self.codes, self.params.n_bins, self.workers
        )
        open_nodes: dict[int, IntArray] = {0: np.arange(self.n_rows)}
        offered: dict[int, tuple[Candidates, list[int]]] = {}
        histograms = self._histograms(engine, open_nodes, offered, clock)
        self.channel.send(
            protocol.LEVEL, {"tree": tree, "depth": 0, "partitions": [], "histograms": histograms}
        )
        for depth in range(self.params.max_depth):
            with clock.phase("waiting"):
                message = self.channel.recv(protocol.SPLITS)
            protocol.expect(message, protocol.SPLITS, tree=tree, depth=depth)
            with clock.phase("partition"):
                children, partitions = self._apply_splits(message, open_nodes, offered, engine)
            open_nodes = children if depth + 1 < self.params.max_depth else {}
            offered = {}
            histograms = self._histograms(engine, open_nodes, offered, clock)
            self.channel.send(
                protocol.LEVEL,
                {
                    "tree": tree,
                    "depth": depth + 1,
                    "partitions": partitions,
                    "histograms": histograms,
                },
            )
            if not open_nodes:
                break
        self.timings.append(clock.finish())

    def _histograms(
        self,
        engine: EncryptedHistograms,
        nodes: dict[int, IntArray],
        offered: dict[int, tuple[Candidates, list[int]]],
        clock: PhaseClock,
    ) -> list[dict[str, Any]]:
        """Packed, shuffled, re-randomised candidate sums of every node in ``nodes``."""
        if not nodes:
            return []
        with clock.phase("histogram"):
            engine.build(nodes)
        out = []
        for node_id, rows in sorted(nodes.items()):
            with clock.phase("histogram"):
                cands = candidate_specs(engine.counts(rows))
                sums = engine.candidate_sums(node_id, cands) if len(cands) else None
            order = list(range(len(cands)))
            self._shuffle.shuffle(order)  # position sent -> canonical candidate index
            offered[node_id] = (cands, order)
            blob = b""
            if sums is not None:
                with clock.phase("packing"):
                    packed = self.public.shift_pack(sums.take(order), self.layout.slot_bits)
                    blob = self.public.add(packed, self._fresh_zeros(len(packed))).to_bytes()
            out.append({"node": node_id, "count": len(cands), "ciphertexts": blob})
        return out

    def _fresh_zeros(self, count: int) -> Any:
        """``count`` fresh encryptions of 0 (``hs^s``), to re-randomise what is sent."""
        bits = self.public.exponent_bits
        base = self.public.modulus().vector([self.public.hs] * count)
        return base.pow([secrets.randbits(bits) for _ in range(count)])

    def _apply_splits(
        self,
        message: dict[str, Any],
        open_nodes: dict[int, IntArray],
        offered: dict[int, tuple[Candidates, list[int]]],
        engine: EncryptedHistograms,
    ) -> tuple[dict[int, IntArray], list[dict[str, Any]]]:
        """The guest's decision per open node -> children rows and the host splits' bitmaps."""
        tag = protocol.SPLITS
        decisions = protocol.field(message, "nodes", list, tag)
        seen = [protocol.field(d, "node", int, tag) for d in decisions]
        if sorted(seen) != sorted(open_nodes):
            raise ProtocolMismatch("the guest's decisions do not cover exactly the open nodes")
        children: dict[int, IntArray] = {}
        partitions = []
        n_bins = self.params.n_bins
        for decision, node_id in zip(decisions, seen, strict=True):
            rows = open_nodes[node_id]
            kind = protocol.field(decision, "split", str, tag)
            if kind == "leaf":
                engine.forget(node_id)
                continue
            if kind == "guest":
                left = protocol.unpack_mask(
                    protocol.field(decision, "left", bytes, tag), len(rows), tag
                )
            elif kind == "host":
                cands, order = offered[node_id]
                picked = protocol.field(decision, "candidates", list, tag)
                if not picked or not all(
                    isinstance(p, int) and not isinstance(p, bool) and 0 <= p < len(order)
                    for p in picked
                ):
                    raise FederatedError(f"the guest chose an unknown candidate at node {node_id}")
                k = min(order[p] for p in picked)  # canonical order breaks the guest's ties
                feature, bin_index = int(cands.feature[k]), int(cands.bin[k])
                missing_left = bool(cands.missing_left[k])
                left = left_of_codes(self.codes[rows, feature], bin_index, missing_left, n_bins)
                split_id = self._new_split_id()
                self.splits[split_id] = HostSplit(
                    feature,
                    bin_index,
                    binning.threshold(self.edges[feature], bin_index),
                    missing_left,
                )
                partitions.append(
                    {"node": node_id, "split_id": split_id, "left": protocol.pack_mask(left)}
                )
            else:
                raise FederatedError(f"the guest sent an unknown decision {kind!r}")
            if left.all() or not left.any():
                raise FederatedError(f"the split of node {node_id} leaves a child empty")
            children[2 * node_id + 1] = rows[left]
            children[2 * node_id + 2] = rows[~left]
        return children, partitions

    def _new_split_id(self) -> int:
        while True:
            split_id = secrets.randbits(62)
            if split_id not in self.splits:
                return split_id


def serve_host_predictions(channel: Channel, host_model: HostModel, X_host: npt.ArrayLike) -> int:
    """Answer one prediction batch: for each requested split id, which rows go left.

    ``X_host`` holds the host's features of the batch's rows in the guest's order. Returns the
    number of rows served. A request for another model, another row count or an unknown split
    id is answered with an error (so the guest fails fast) and raised here.
    """
    X = binning.as_features(X_host, "X_host")
    request = channel.recv(protocol.PREDICT)
    tag = protocol.PREDICT
    try:
        protocol.expect(request, tag, model_id=host_model.model_id, n_rows=X.shape[0])
        if X.shape[1] != len(host_model.feature_names):
            raise FederatedError(
                f"X_host has {X.shape[1]} features; the model was trained on "
                f"{len(host_model.feature_names)}"
            )
        split_ids = protocol.field(request, "split_ids", list, tag)
        unknown = [s for s in split_ids if not isinstance(s, int) or s not in host_model.splits]
        if unknown:
            raise FederatedError(f"the guest asked for {len(unknown)} unknown split id(s)")
    except FederatedError as exc:
        channel.send(protocol.DIRECTIONS, {"error": str(exc)})
        raise
    left = host_model.directions(X, split_ids)
    channel.send(
        protocol.DIRECTIONS,
        {
            "model_id": host_model.model_id,
            "n_rows": X.shape[0],
            "left": protocol.pack_mask(left.ravel()),
        },
    )
    return int(X.shape[0])
