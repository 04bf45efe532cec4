"""The two halves of a SecureBoost model: what the guest keeps and what the host keeps.

Neither half predicts alone. The guest's :class:`GuestModel` holds the tree shapes, its own
splits (feature, threshold), every leaf weight and the base score; a host split is only an
opaque ``split_id``. The host's :class:`HostModel` maps each ``split_id`` to its feature and
threshold and is never sent anywhere: at prediction time the host answers "left or right" per
row and split id (:func:`.host.serve_host_predictions`). Both are plain JSON dicts with a
``format`` key, and both carry the ``model_id`` the guest drew at training, so a guest cannot be
served by the host half of a different model.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import numpy.typing as npt

from puhui.federated.secureboost import binning
from puhui.federated.secureboost.params import SecureBoostParams
from puhui.federated.secureboost.tree import Tree

GUEST_FORMAT = "puhui.federated.secureboost.guest/1"
HOST_FORMAT = "puhui.federated.secureboost.host/1"


def feature_names_or_default(names: list[str] | None, count: int, label: str) -> list[str]:
    """The given names (one per column) or ``x0, x1, …``."""
    if names is None:
        return [f"x{k}" for k in range(count)]
    if len(names) != count:
        raise ValueError(f"{label} has {count} features but {len(names)} names were given")
    return [str(n) for n in names]


def _check_format(data: Any, expected: str) -> dict[str, Any]:
    if not isinstance(data, dict) or data.get("format") != expected:
        found = data.get("format") if isinstance(data, dict) else type(data).__name__
        raise ValueError(f"not a {expected} model (format: {found!r})")
    return data


@dataclass
class GuestModel:
    """The guest's half: trees (host splits opaque), leaf weights, base score, parameters.

    ``timings`` (not saved) holds, per tree, the guest's seconds per phase while training:
    ``encryption``, ``decryption``, ``split_finding`` (own histograms, gains, partitions),
    ``waiting`` (for the host: its computation plus transfer) and ``total``.
    """

    model_id: str
    params: SecureBoostParams
    base_score: float
    trees: list[Tree]
    feature_names: list[str]
    timings: list[dict[str, float]] = field(default_factory=list, compare=False, repr=False)

    def host_split_ids(self) -> list[int]:
        """Every host split id the trees use, in order of first use."""
        seen: dict[int, None] = {}
        for tree in self.trees:
            for node in tree.splits():
                if node.kind == "host" and node.split_id is not None:
                    seen.setdefault(node.split_id, None)
        return list(seen)

    def predict_raw(
        self, X_guest: npt.NDArray[np.float64], host_left: dict[int, npt.NDArray[np.bool_]]
    ) -> npt.NDArray[np.float64]:
        """Raw scores given the host's answers (split id -> which rows go left)."""
        n_rows = X_guest.shape[0]
        raw = np.full(n_rows, self.base_score)
        for tree in self.trees:
            raw += tree.route(
                n_rows,
                lambda node: (
                    host_left[node.split_id]
                    if node.kind == "host" and node.split_id is not None
                    else binning.goes_left(
                        X_guest[:, node.feature], node.threshold, node.missing_left
                    )
                ),
            )
        return raw

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": GUEST_FORMAT,
            "model_id": self.model_id,
            "params": self.params.to_dict(),
            "base_score": self.base_score,
            "feature_names": list(self.feature_names),
            "trees": [tree.to_dict() for tree in self.trees],
        }

    @classmethod
    def from_dict(cls, data: Any) -> GuestModel:
        d = _check_format(data, GUEST_FORMAT)
        return cls(
            model_id=str(d["model_id"]),
            params=SecureBoostParams.from_dict(d["params"]),
            base_score=float(d["base_score"]),
            trees=[Tree.from_dict(t) for t in d["trees"]],
            feature_names=[str(n) for n in d["feature_names"]],
        )


@dataclass(frozen=True)
class HostSplit:
    """What a host split id stands for: ``x[feature] < threshold`` goes left."""

    feature: int
    bin: int
    threshold: float | None
    missing_left: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "feature": self.feature,
            "bin": self.bin,
            "threshold": self.threshold,
            "missing_left": self.missing_left,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> HostSplit:
        threshold = data.get("threshold")
        return cls(
            int(data["feature"]),
            int(data["bin"]),
            None if threshold is None else float(threshold),
            bool(data["missing_left"]),
        )


@dataclass
class HostModel:
    """The host's half: opaque split id -> (feature, threshold). Never leaves the host.

    ``timings`` (not saved) holds, per tree, the host's seconds per phase: ``conversion``
    (ciphertexts into Montgomery form), ``histogram`` (encrypted sums, sibling subtraction,
    cumulative sums), ``packing`` (shift-packing and re-randomising what is sent),
    ``partition``, ``waiting`` (for the guest) and ``total``.
    """

    model_id: str
    splits: dict[int, HostSplit]
    feature_names: list[str]
    timings: list[dict[str, float]] = field(default_factory=list, compare=False, repr=False)

    def directions(
        self, X_host: npt.NDArray[np.float64], split_ids: list[int]
    ) -> npt.NDArray[np.bool_]:
        """Rows × ids: True where the row goes left at that split."""
        out = np.empty((len(split_ids), X_host.shape[0]), dtype=bool)
        for k, split_id in enumerate(split_ids):
            split = self.splits[split_id]
            out[k] = binning.goes_left(
                X_host[:, split.feature], split.threshold, split.missing_left
            )
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": HOST_FORMAT,
            "model_id": self.model_id,
            "feature_names": list(self.feature_names),
            "splits": {str(k): v.to_dict() for k, v in self.splits.items()},
        }

    @classmethod
    def from_dict(cls, data: Any) -> HostModel:
        d = _check_format(data, HOST_FORMAT)
        return cls(
            model_id=str(d["model_id"]),
            splits={int(k): HostSplit.from_dict(v) for k, v in d["splits"].items()},
            feature_names=[str(n) for n in d["feature_names"]],
        )


def resolve_trees(guest: GuestModel, host: HostModel) -> list[Tree]:
    """The trees with host splits filled in — only for tests and audits that hold both halves."""
    if guest.model_id != host.model_id:
        raise ValueError("the guest and host models come from different training runs")
    out = []
    for tree in guest.trees:
        nodes = []
        for node in tree.nodes:
            if node.kind == "host" and node.split_id is not None:
                split = host.splits[node.split_id]
                node = replace(
                    node,
                    feature=split.feature,
                    bin=split.bin,
                    threshold=split.threshold,
                    missing_left=split.missing_left,
                    split_id=None,
                )
            nodes.append(node)
        out.append(Tree(tuple(nodes)))
    return out
