"""What each party keeps after training: its own weights only, as a JSON-able object.

The guest's model holds the guest's slopes, the intercept and the training parameters; the
host's holds the host's slopes. Neither can score alone: a prediction adds the host's partial
score (:func:`puhui.federated.hetero_lr.serve_host_predictions`) to the guest's. Both carry
the run's ``model_id`` so that a guest model is never paired with another run's host model.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from puhui.federated.hetero_lr.arithmetic import FloatArray, check_features, standardise
from puhui.federated.hetero_lr.params import HeteroLRParams
from puhui.federated.hetero_lr.protocol import FORMAT


def _floats(values: Any, name: str, size: int) -> FloatArray:
    array = np.asarray(values, dtype=np.float64)
    if array.shape != (size,) or not np.isfinite(array).all():
        raise ValueError(f"model field {name!r} must hold {size} finite numbers")
    return array


def _names(values: Any) -> tuple[str, ...]:
    if not isinstance(values, list | tuple) or not all(isinstance(v, str) for v in values):
        raise ValueError("model field 'feature_names' must be a list of strings")
    return tuple(values)


def _params(values: Any) -> HeteroLRParams:
    if not isinstance(values, dict):
        raise ValueError("model field 'params' must be a mapping")
    try:
        return HeteroLRParams(**values)
    except TypeError as exc:
        raise ValueError(f"model field 'params' is not understood: {exc}") from exc


def _check_format(data: Any, role: str) -> None:
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        found = data.get("format") if isinstance(data, dict) else type(data).__name__
        raise ValueError(f"not a vertical LR model (format {found!r}, expected {FORMAT!r})")
    if data.get("role") != role:
        raise ValueError(f"this is the {data.get('role')!r} party's model, not the {role}'s")


@dataclass(frozen=True)
class HostLRModel:
    """The host's half: its slopes on its own (standardised) features."""

    model_id: str
    feature_names: tuple[str, ...]
    coef: FloatArray
    shift: FloatArray
    scale: FloatArray

    def __post_init__(self) -> None:
        k = len(self.feature_names)
        for name in ("coef", "shift", "scale"):
            _floats(getattr(self, name), name, k)

    def partial_score(self, x_host: FloatArray) -> FloatArray:
        """``u_h = standardised(X_h) · w_h`` for each row."""
        x = check_features(x_host, "host")
        if x.shape[1] != len(self.feature_names):
            raise ValueError(
                f"the host model has {len(self.feature_names)} features, the data {x.shape[1]}"
            )
        return np.asarray(standardise(x, self.shift, self.scale) @ self.coef, dtype=np.float64)

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "role": "host",
            "model_id": self.model_id,
            "feature_names": list(self.feature_names),
            "coef": self.coef.tolist(),
            "shift": self.shift.tolist(),
            "scale": self.scale.tolist(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> HostLRModel:
        _check_format(data, "host")
        names = _names(data.get("feature_names"))
        return cls(
            model_id=str(data["model_id"]),
            feature_names=names,
            coef=_floats(data.get("coef"), "coef", len(names)),
            shift=_floats(data.get("shift"), "shift", len(names)),
            scale=_floats(data.get("scale"), "scale", len(names)),
        )


@dataclass(frozen=True)
class GuestLRModel:
    """The guest's half: its slopes, the intercept, and how the run went."""

    model_id: str
    feature_names: tuple[str, ...]
    coef: FloatArray
    intercept: float
    shift: FloatArray
    scale: FloatArray
    params: HeteroLRParams
    host_feature_count: int
    epochs_run: int
    converged: bool
    history: tuple[float, ...] = field(default=())  # guest's largest weight change per epoch

    def __post_init__(self) -> None:
        k = len(self.feature_names)
        for name in ("coef", "shift", "scale"):
            _floats(getattr(self, name), name, k)
        if not math.isfinite(self.intercept):
            raise ValueError("model field 'intercept' must be a finite number")

    def partial_score(self, x_guest: FloatArray) -> FloatArray:
        """``u_g = standardised(X_g) · w_g + b`` for each row (the intercept is the guest's)."""
        x = check_features(x_guest, "guest")
        if x.shape[1] != len(self.feature_names):
            raise ValueError(
                f"the guest model has {len(self.feature_names)} features, the data {x.shape[1]}"
            )
        scores = standardise(x, self.shift, self.scale) @ self.coef + self.intercept
        return np.asarray(scores, dtype=np.float64)

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "role": "guest",
            "model_id": self.model_id,
            "feature_names": list(self.feature_names),
            "coef": self.coef.tolist(),
            "intercept": self.intercept,
            "shift": self.shift.tolist(),
            "scale": self.scale.tolist(),
            "params": self.params.to_message(),
            "host_feature_count": self.host_feature_count,
            "epochs_run": self.epochs_run,
            "converged": self.converged,
            "history": list(self.history),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GuestLRModel:
        _check_format(data, "guest")
        names = _names(data.get("feature_names"))
        return cls(
            model_id=str(data["model_id"]),
            feature_names=names,
            coef=_floats(data.get("coef"), "coef", len(names)),
            intercept=float(data["intercept"]),
            shift=_floats(data.get("shift"), "shift", len(names)),
            scale=_floats(data.get("scale"), "scale", len(names)),
            params=_params(data.get("params")),
            host_feature_count=int(data["host_feature_count"]),
            epochs_run=int(data["epochs_run"]),
            converged=bool(data["converged"]),
            history=tuple(float(v) for v in data.get("history", [])),
        )
