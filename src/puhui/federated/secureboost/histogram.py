"""The host's encrypted histograms: per node and feature, the homomorphic sum of each bin.

Work per tree is dominated by one multiplication modulo ``n²`` per row, feature and level
(:meth:`MontVector.group_products`, ≈ 4.3 µs each). Three savings keep it low, none of which
changes a single ciphertext (multiplication modulo ``n²`` is commutative and associative):

* all nodes of a level share one pass (a row's group is its node's slot and its bin);
* features with few distinct codes share one pass too: rows are grouped by the combination of
  their codes and the few combination products are then folded into each feature's bins
  (:meth:`EncryptedHistograms._plan` adds a feature to a bundle when its cost model says that
  is cheaper; default_credit's host root: 3 passes instead of 10);
* of two siblings only the one with fewer rows is summed; the other is the parent divided by
  it (homomorphic subtraction, with one modular inversion per node by Montgomery's trick in
  :meth:`MontVector.inverse`), so each level below the root costs at most half a pass.

Candidate sums. The guest needs, per candidate split, the encrypted sum of the rows it sends
left: a prefix product over the feature's value bins (a log-step scan), times the missing bin
when missing values go left. They are returned in the canonical order of :mod:`.split`; the
host shuffles them before anything leaves (see :mod:`.host`).

Two cores. With ``workers > 1`` the bundles are shared among forked children (longest first),
which inherit the ciphertexts and node rows (copy-on-write, nothing is re-sent) and return
their bins' ciphertexts as bytes; each child uses its inherited copy of this thread's
Montgomery context, which is safe because a forked child runs only the forking thread.
"""

from __future__ import annotations

import functools

import numpy as np
import numpy.typing as npt

from puhui.federated.bignum import MontVector
from puhui.federated.errors import FederatedError
from puhui.federated.forking import run_forked
from puhui.federated.paillier import PublicKey
from puhui.federated.secureboost.split import Candidates

IntArray = npt.NDArray[np.int64]
_MAX_COMBINATIONS = 1 << 18  # accumulators of one bundled pass (each a 512-byte number)


class EncryptedHistograms:
    """Histograms of one tree's encrypted rows, kept per node until its children are done."""

    def __init__(
        self,
        public: PublicKey,
        ciphertexts: MontVector,
        codes: npt.NDArray[np.int32],
        n_bins: int,
        workers: int = 1,
    ) -> None:
        if len(ciphertexts) != codes.shape[0]:
            raise ValueError("one ciphertext per row is needed")
        self.public = public
        self.ciphertexts = ciphertexts
        self.codes = codes
        self.n_bins = n_bins
        self.width = n_bins + 1
        self.workers = max(1, min(workers, codes.shape[1]))
        self._hist: dict[int, MontVector] = {}  # node -> features × (n_bins + 1), flattened
        # Per feature: each row's code renumbered 0..m-1 over the codes that occur, and back.
        self._compact: list[IntArray] = []
        self._code_of: list[IntArray] = []
        for feature in range(codes.shape[1]):
            present, compact = np.unique(codes[:, feature], return_inverse=True)
            self._code_of.append(present.astype(np.int64))
            self._compact.append(compact.astype(np.int64).ravel())
        self._one = public.modulus().ones(1)

    # -- building --------------------------------------------------------------------------
    def build(self, nodes: dict[int, IntArray]) -> None:
        """Histograms of ``nodes`` (all at one depth; every non-root node's sibling is there)."""
        direct: dict[int, IntArray] = {}
        derived: list[tuple[int, int, int]] = []  # (node, parent, summed sibling)
        for node_id, rows in sorted(nodes.items()):
            if node_id == 0:
                direct[0] = rows
                continue
            if node_id % 2 == 0:
                continue  # handled with its left sibling
            sibling = node_id + 1
            parent = (node_id - 1) // 2
            if sibling not in nodes or parent not in self._hist:
                raise ValueError(f"node {node_id} needs its sibling and its parent's histogram")
            small, large = (
                (node_id, sibling) if len(rows) <= len(nodes[sibling]) else (sibling, node_id)
            )
            direct[small] = nodes[small]
            derived.append((large, parent, small))
        self._hist.update(self._sum_directly(direct))
        for large, parent, small in derived:
            self._hist[large] = self._hist[parent].mul(self._hist[small].inverse())
        for _, parent, _ in derived:
            self._hist.pop(parent, None)

    def _sum_directly(self, nodes: dict[int, IntArray]) -> dict[int, MontVector]:
        """Each node's histograms, features shared among the workers as bundles."""
        if not nodes:
            return {}
        plan = self._plan(nodes)
        shares: list[list[list[int]]] = [[] for _ in range(self.workers)]
        load = [0.0] * self.workers
        for cost, bundle in sorted(plan, key=lambda item: -item[0]):  # longest job first
            worker = load.index(min(load))
            shares[worker].append(bundle)
            load[worker] += cost
        shares = [share for share in shares if share]
        if len(shares) == 1:
            parts = {0: self._sum_bundles(nodes, shares[0])}
        else:
            blobs = run_forked(
                [functools.partial(self._sum_bundle_bytes, nodes, share) for share in shares]
            )
            parts = {}
            for k, (blob, share) in enumerate(zip(blobs, shares, strict=True)):
                expected = len(nodes) * sum(map(len, share)) * self.width
                if len(blob) != expected * self.public.ciphertext_bytes:
                    raise FederatedError("a histogram worker process returned a short result")
                parts[k] = self.public.ciphertexts(blob)
        # Worker w returns, per feature of its bundles in order, slots × bins.
        place = {
            feature: (worker, k)
            for worker, share in enumerate(shares)
            for k, feature in enumerate(f for bundle in share for f in bundle)
        }
        n_slots, width = len(nodes), self.width
        out: dict[int, MontVector] = {}
        for slot, node_id in enumerate(sorted(nodes)):
            pieces = []
            for feature in range(self.codes.shape[1]):
                worker, k = place[feature]
                start = (k * n_slots + slot) * width
                pieces.append(parts[worker].take(range(start, start + width)))
            out[node_id] = MontVector.concat(pieces)
        return out

    def _sum_bundle_bytes(self, nodes: dict[int, IntArray], share: list[list[int]]) -> bytes:
        """One worker's histograms in wire form (workers are forked processes)."""
        return self._sum_bundles(nodes, share).to_bytes()

    # -- bundling (see the module docstring) ----------------------------------------------

    def _combos(self, nodes: dict[int, IntArray], bundle: list[int]) -> tuple[IntArray, int]:
        """Per row of ``nodes``: slot × W + combination of the bundle's compact codes; and W."""
        size = 1
        combo = np.zeros(self.codes.shape[0], dtype=np.int64)
        for feature in bundle:
            combo += self._compact[feature] * size
            size *= len(self._code_of[feature])
        groups = np.full(self.codes.shape[0], -1, dtype=np.int64)
        for slot, node_id in enumerate(sorted(nodes)):
            rows = nodes[node_id]
            groups[rows] = slot * size + combo[rows]
        return groups, size

    def _cost(self, nodes: dict[int, IntArray], bundle: list[int]) -> float:
        """Multiplications (and fresh accumulators) to sum ``bundle`` in one pass, then fold."""
        n_rows = sum(len(rows) for rows in nodes.values())
        n_slots = len(nodes)
        if len(bundle) == 1:
            return float(n_rows + n_slots * self.width)
        size = int(np.prod([len(self._code_of[f]) for f in bundle], dtype=np.float64))
        if n_slots * size > _MAX_COMBINATIONS:
            return np.inf
        groups, size = self._combos(nodes, bundle)
        occupied = np.count_nonzero(np.bincount(groups[groups >= 0], minlength=n_slots * size))
        k = len(bundle)
        return float(n_rows + n_slots * size + k * occupied + k * n_slots * self.width)

    def _plan(self, nodes: dict[int, IntArray]) -> list[tuple[float, list[int]]]:
        """Greedy bundles, fewest codes first; a feature joins when that is cheaper than alone."""
        order = sorted(range(self.codes.shape[1]), key=lambda f: len(self._code_of[f]))
        plan: list[tuple[float, list[int]]] = []
        current: list[int] = []
        current_cost = 0.0
        for feature in order:
            alone = self._cost(nodes, [feature])
            if current:
                joined = self._cost(nodes, [*current, feature])
                if joined < current_cost + alone:
                    current, current_cost = [*current, feature], joined
                    continue
                plan.append((current_cost, current))
            current, current_cost = [feature], alone
        plan.append((current_cost, current))
        return plan

    def _sum_bundles(self, nodes: dict[int, IntArray], bundles: list[list[int]]) -> MontVector:
        """Per feature of ``bundles`` (in order), per slot, per bin."""
        width, n_slots = self.width, len(nodes)
        pieces = []
        for bundle in bundles:
            if len(bundle) == 1:
                feature = bundle[0]
                groups = np.full(self.codes.shape[0], -1, dtype=np.int64)
                for slot, node_id in enumerate(sorted(nodes)):
                    rows = nodes[node_id]
                    groups[rows] = slot * width + self.codes[rows, feature]
                pieces.append(self.ciphertexts.group_products(groups, n_slots * width))
                continue
            groups, size = self._combos(nodes, bundle)
            products = self.ciphertexts.group_products(groups, n_slots * size)
            occupied = np.bincount(groups[groups >= 0], minlength=n_slots * size) > 0
            index = np.arange(n_slots * size, dtype=np.int64)
            slot_of, combo = index // size, index % size
            stride = 1
            for feature in bundle:
                codes_here = len(self._code_of[feature])
                original = self._code_of[feature][(combo // stride) % codes_here]
                fold = np.where(occupied, slot_of * width + original, -1)
                pieces.append(products.group_products(fold, n_slots * width))
                stride *= codes_here
        return MontVector.concat(pieces)

    # -- candidates --------------------------------------------------------------------------
    def candidate_sums(self, node_id: int, cands: Candidates) -> MontVector:
        """``Enc(GL · 2^B + HL)`` of each candidate of ``node_id``, in canonical order."""
        hist = self._hist[node_id]
        n_features = self.codes.shape[1]
        n_bins, width = self.n_bins, self.width
        size = n_features * n_bins
        cum = hist.take([f * width + j for f in range(n_features) for j in range(n_bins)])
        offset = 1
        while offset < n_bins:  # inclusive prefix products within each feature's value bins
            partner = [i - offset if i % n_bins >= offset else size for i in range(size)]
            cum = cum.mul(MontVector.concat([cum, self._one]).take(partner))
            offset *= 2
        features, bins = cands.feature.tolist(), cands.bin.tolist()
        left = cum.take([f * n_bins + j for f, j in zip(features, bins, strict=True)])
        with_missing = MontVector.concat([hist, self._one])
        missing = with_missing.take(
            [
                f * width + n_bins if ml else len(hist)
                for f, ml in zip(features, cands.missing_left.tolist(), strict=True)
            ]
        )
        return left.mul(missing)

    def counts(self, rows: IntArray) -> IntArray:
        """Plaintext row counts per feature and bin (the host knows its own rows)."""
        n_features = self.codes.shape[1]
        flat = (self.codes[rows].astype(np.int64) + np.arange(n_features) * self.width).ravel()
        counts = np.bincount(flat, minlength=n_features * self.width)
        return counts.reshape(n_features, self.width).astype(np.int64)

    def forget(self, node_id: int) -> None:
        self._hist.pop(node_id, None)
