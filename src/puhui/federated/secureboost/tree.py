"""Trees as a flat list of nodes, their routing of rows, and their JSON form.

Nodes are numbered as in a binary heap (root 0, children ``2i + 1`` left and ``2i + 2`` right),
which both parties and the central run derive the same way, so a node id means the same node
everywhere without an extra message. A split node is either a **guest** split (the guest's
feature, bin and threshold) or a **host** split, which in the guest's model is only an opaque
``split_id``; the host's model maps that id to its feature and threshold
(:class:`.model.HostModel`). A tree whose host splits have been filled in from the host's model
(:func:`.model.resolve_trees`, for tests and audits only) looks exactly like a central tree.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

NodeKind = Literal["leaf", "guest", "host"]
BoolArray = npt.NDArray[np.bool_]
FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Node:
    """One node. ``weight`` is a leaf's output; for a split node it is the weight the node
    would have as a leaf (its value), which reason codes use to credit each split with the
    change from node to child. ``x < threshold`` goes left (``threshold`` None: every value
    goes left); missing values go left iff ``missing_left``. ``feature`` indexes the owning
    party's columns (-1 for a host split the guest cannot see); ``bin`` is the threshold's bin
    index."""

    id: int
    kind: NodeKind
    weight: float = 0.0
    feature: int = -1
    bin: int = -1
    threshold: float | None = None
    missing_left: bool = False
    split_id: int | None = None
    gain: float = 0.0

    @property
    def left(self) -> int:
        return 2 * self.id + 1

    @property
    def right(self) -> int:
        return 2 * self.id + 2

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Node:
        kind = data.get("kind")
        if kind not in ("leaf", "guest", "host"):
            raise ValueError(f"node kind must be leaf, guest or host (got {kind!r})")
        threshold = data.get("threshold")
        split_id = data.get("split_id")
        return cls(
            id=int(data["id"]),
            kind=kind,
            weight=float(data.get("weight", 0.0)),
            feature=int(data.get("feature", -1)),
            bin=int(data.get("bin", -1)),
            threshold=None if threshold is None else float(threshold),
            missing_left=bool(data.get("missing_left", False)),
            split_id=None if split_id is None else int(split_id),
            gain=float(data.get("gain", 0.0)),
        )


@dataclass(frozen=True)
class Tree:
    """Nodes sorted by id; every split node's two children are present."""

    nodes: tuple[Node, ...]

    def __post_init__(self) -> None:
        ids = {node.id for node in self.nodes}
        if len(ids) != len(self.nodes) or 0 not in ids:
            raise ValueError("a tree needs a root (node 0) and distinct node ids")
        for node in self.nodes:
            if node.kind != "leaf" and (node.left not in ids or node.right not in ids):
                raise ValueError(f"split node {node.id} lacks a child")

    def splits(self) -> list[Node]:
        return [node for node in self.nodes if node.kind != "leaf"]

    def route(self, n_rows: int, goes_left: Callable[[Node], BoolArray]) -> FloatArray:
        """Each row's leaf weight; ``goes_left(node)`` says, for all rows, who goes left."""
        by_id = {node.id: node for node in self.nodes}
        position = np.zeros(n_rows, dtype=np.int64)
        for node in sorted(self.splits(), key=lambda n: n.id):  # parents before children
            here = position == node.id
            if not here.any():
                continue
            left = goes_left(node)
            position[here] = np.where(left[here], node.left, node.right)
        weights = np.zeros(max(by_id) + 1, dtype=np.float64)
        for node in self.nodes:
            weights[node.id] = node.weight
        return weights[position]

    def to_dict(self) -> dict[str, Any]:
        return {"nodes": [node.to_dict() for node in self.nodes]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Tree:
        return cls(tuple(sorted((Node.from_dict(n) for n in data["nodes"]), key=lambda n: n.id)))
