"""What a live scoring request asks the host, and how each model's two halves combine.

:mod:`puhui.federated.online` moves requests; this module knows the models. For each
protocol there are two functions, one per party:

* **SecureBoost** — the guest asks for its host split ids (the same for every application of
  a model, so the request is tiny); the host answers one bit per split id (1: the row goes
  left), packed into bytes; the guest routes the row through every tree with those bits.
* **Vertical LR** — the guest asks for the host's partial score ``u_h = w_h · x_h``; the model's
  score is the guest's ``w_g · x_g + b`` plus it. The host's partial score is the one figure
  vertical-LR inference must reveal to the guest.

The host's data is a :class:`HostTable`: its own feature file, keyed by the business id, read
once at start (the same file it trained on, or a newer extract with the same columns).
"""

from __future__ import annotations

import csv
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from puhui.federated.errors import FederatedError
from puhui.federated.hetero_lr.model import GuestLRModel, HostLRModel
from puhui.federated.online import Answerer
from puhui.federated.secureboost.model import GuestModel, HostModel

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class HostTable:
    """The host's feature rows by business key; NaN where a value is missing."""

    index: dict[str, int]
    rows: FloatArray
    columns: tuple[str, ...]

    @classmethod
    def from_csv(cls, path: Path, key_column: str, columns: Sequence[str]) -> HostTable:
        """Read ``columns`` (in that order) for each key; names the line of a bad value."""
        index: dict[str, int] = {}
        values: list[list[float]] = []
        with path.open(newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            header = reader.fieldnames or []
            missing = [c for c in [key_column, *columns] if c not in header]
            if missing:
                raise FederatedError(f"{path}: missing column(s) {', '.join(missing)}")
            for line, row in enumerate(reader, start=2):
                key = row[key_column]
                if key in index:
                    raise FederatedError(f"{path}:{line}: key {key!r} appears twice")
                try:
                    values.append([float(row[c]) if row[c] != "" else math.nan for c in columns])
                except ValueError as exc:
                    raise FederatedError(f"{path}:{line}: not a number ({exc})") from None
                index[key] = len(index)
        rows = np.asarray(values, dtype=np.float64).reshape(len(values), len(columns))
        return cls(index, rows, tuple(columns))

    def lookup(self, keys: Sequence[str]) -> tuple[list[int | None], FloatArray]:
        """Positions (None: unknown key) and the known rows, in key order."""
        positions = [self.index.get(k) for k in keys]
        known = [p for p in positions if p is not None]
        return positions, self.rows[known]


def _per_key(positions: list[int | None], answers: list[Any]) -> list[Any]:
    it = iter(answers)
    return [None if p is None else next(it) for p in positions]


# --------------------------------------------------------------------------- SecureBoost
def secureboost_answerer(model: HostModel, table: HostTable) -> Answerer:
    """The host's answer: for each key, one bit per asked split id (1 = goes left)."""

    def answer(keys: Sequence[str], ask: Mapping[str, Any]) -> list[Any]:
        split_ids = ask.get("splits")
        if not isinstance(split_ids, list) or not all(isinstance(s, int) for s in split_ids):
            raise FederatedError("ask.splits must be a list of split ids")
        unknown = [s for s in split_ids if s not in model.splits]
        if unknown:
            raise FederatedError(f"this model has no split id(s) {unknown[:5]}")
        positions, rows = table.lookup(keys)
        if not len(rows):
            return [None] * len(keys)
        left = model.directions(rows, split_ids)  # splits × rows
        packed = [np.packbits(left[:, j]).tobytes() for j in range(rows.shape[0])]
        return _per_key(positions, packed)

    return answer


def secureboost_ask(model: GuestModel) -> dict[str, Any]:
    return {"splits": model.host_split_ids()}


def secureboost_margin(model: GuestModel, x_guest: FloatArray, answer: Any) -> float:
    """The log-odds of one row from the guest's features and the host's bits."""
    split_ids = model.host_split_ids()
    if not isinstance(answer, bytes) or len(answer) != (len(split_ids) + 7) // 8:
        raise FederatedError("the partner's answer does not match this model's host splits")
    bits = np.unpackbits(np.frombuffer(answer, dtype=np.uint8))[: len(split_ids)].astype(bool)
    host_left = {s: np.array([bits[k]]) for k, s in enumerate(split_ids)}
    return float(model.predict_raw(x_guest.reshape(1, -1), host_left)[0])


# --------------------------------------------------------------------------- vertical LR
def lr_answerer(model: HostLRModel, table: HostTable) -> Answerer:
    """The host's answer: for each key, its partial score ``w_h · x_h``."""

    def answer(keys: Sequence[str], ask: Mapping[str, Any]) -> list[Any]:
        positions, rows = table.lookup(keys)
        if not len(rows):
            return [None] * len(keys)
        return _per_key(positions, [float(v) for v in model.partial_score(rows)])

    return answer


def lr_margin(model: GuestLRModel, x_guest: FloatArray, answer: Any) -> float:
    if not isinstance(answer, float) or not math.isfinite(answer):
        raise FederatedError("the partner's partial score is not a finite number")
    return float(model.partial_score(x_guest.reshape(1, -1))[0]) + answer
