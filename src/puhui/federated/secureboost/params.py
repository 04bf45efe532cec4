"""The parameters both parties train with, checked once and sent verbatim to the host.

A SecureBoost run is only lossless (federated trees equal to the central ones) if both sides
bin, quantise and stop with the same numbers, so the guest sends this object to the host in the
setup message and the host rebuilds it with :meth:`SecureBoostParams.from_dict`, which applies
the same checks: a peer cannot make the host train with a value the guest could not have used.
Every error names the parameter, so an operator can fix the configuration without reading code.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any

MIN_KEY_BITS = 2048


@dataclass(frozen=True)
class SecureBoostParams:
    """Gradient-boosting parameters, named and defaulted as XGBoost's ``hist`` method.

    * ``n_trees``, ``max_depth``, ``learning_rate`` (XGBoost ``eta``), ``reg_lambda``
      (``lambda``), ``min_child_weight`` (minimum hessian sum in each child) and
      ``min_split_gain`` (XGBoost ``gamma``, compared with the loss reduction
      ``GL²/(HL+λ) + GR²/(HR+λ) − G²/(H+λ)``) mean what they mean there.
    * ``n_bins``: at most this many value bins per feature (quantile edges, see
      :mod:`.binning`), plus one bin for missing values.
    * ``fixed_point_bits``: gradients and hessians are integers ``round(x · 2^bits)`` in both
      the federated and the central algorithm, so histogram sums are exact (see :mod:`.encoding`).
    * ``key_bits``: size of the guest's Paillier modulus; at least 2048 unless a test opts out.
    * ``workers``: processes the guest encrypts with (the host chooses its own).
    * ``guest_only_first_tree``: the first tree uses guest features only, so the host does not
      learn the instance partitions that carry the most label information (SecureBoost's
      "reduced leakage" option).
    * ``insecure_for_tests``: allows keys under 2048 bits; a host refuses such a run unless it
      was itself started with ``insecure_for_tests=True``, so a guest cannot talk a production
      host into a weak key.
    """

    n_trees: int = 10
    max_depth: int = 3
    n_bins: int = 32
    learning_rate: float = 0.3
    reg_lambda: float = 1.0
    min_child_weight: float = 1.0
    min_split_gain: float = 0.0
    fixed_point_bits: int = 24
    key_bits: int = 2048
    workers: int = 2
    guest_only_first_tree: bool = False
    insecure_for_tests: bool = False

    def __post_init__(self) -> None:
        _int("n_trees", self.n_trees, 1, 10_000)
        _int("max_depth", self.max_depth, 1, 12)
        _int("n_bins", self.n_bins, 2, 255)
        _float("learning_rate", self.learning_rate, 0.0, 1.0, low_open=True)
        _float("reg_lambda", self.reg_lambda, 0.0, 1e6)
        _float("min_child_weight", self.min_child_weight, 0.0, 1e12)
        _float("min_split_gain", self.min_split_gain, 0.0, 1e12)
        _int("fixed_point_bits", self.fixed_point_bits, 8, 40)
        _int("key_bits", self.key_bits, 512, 8192)
        _int("workers", self.workers, 1, 256)
        _bool("guest_only_first_tree", self.guest_only_first_tree)
        _bool("insecure_for_tests", self.insecure_for_tests)
        if self.key_bits < MIN_KEY_BITS and not self.insecure_for_tests:
            raise ValueError(
                f"key_bits must be at least {MIN_KEY_BITS} (got {self.key_bits}); smaller keys "
                f"are for tests only (insecure_for_tests=True)"
            )
        if self.reg_lambda == 0 and self.min_child_weight == 0:
            raise ValueError(
                "reg_lambda and min_child_weight cannot both be 0: a child with a zero hessian "
                "sum would have an undefined weight"
            )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Any) -> SecureBoostParams:
        """Parameters from a dict (a model file or the guest's setup message), fully checked."""
        if not isinstance(data, dict):
            raise ValueError("parameters must be a mapping of names to values")
        known = {f.name for f in fields(cls)}
        unknown = sorted(str(k) for k in data if k not in known)
        if unknown:
            raise ValueError(f"unknown SecureBoost parameter(s): {', '.join(unknown)}")
        return cls(**data)


def _int(name: str, value: Any, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be an integer (got {value!r})")
    if not low <= value <= high:
        raise ValueError(f"{name} must be between {low} and {high} (got {value})")


def _float(name: str, value: Any, low: float, high: float, *, low_open: bool = False) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{name} must be a number (got {value!r})")
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite (got {value!r})")
    if (value <= low if low_open else value < low) or value > high:
        bracket = "(" if low_open else "["
        raise ValueError(f"{name} must be in {bracket}{low:g}, {high:g}] (got {value})")


def _bool(name: str, value: Any) -> None:
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be true or false (got {value!r})")
