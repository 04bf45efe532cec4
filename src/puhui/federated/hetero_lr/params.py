"""The training parameters both parties must agree on, validated on each side.

The guest chooses them and sends them in the setup message; the host re-validates them with
the same code (a peer's message is input like any other) and refuses the run, naming the
parameter, if one is out of range. The guest and the central reference use the very same
object, so "same optimiser" is a matter of passing it, not of keeping two configs in step.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any

from puhui.federated.errors import ProtocolMismatch

MIN_BATCH_SIZE = 16


@dataclass(frozen=True)
class HeteroLRParams:
    """Mini-batch gradient descent on the logistic loss's second-order Taylor expansion.

    * ``learning_rate`` — step size; epoch ``e`` (from 0) uses ``learning_rate / (1 + decay·e)``.
    * ``l2`` — ridge penalty ``l2/2·‖w‖²`` on the slopes (never on the intercept).
    * ``max_epochs`` — passes over the data at most; ``tol`` > 0 stops earlier once no weight
      of either party moved by more than ``tol`` during an epoch (0 runs every epoch).
    * ``batch_size`` — rows per mini-batch; a short last batch (< half) joins the one before.
      Each party also refuses a batch with fewer than 4 rows per gradient value it must reveal
      (see the package docs: a gradient over too few rows gives the residuals away).
    * ``seed`` — shuffles rows into batches, per epoch, identically on both sides.
    * ``feature_frac_bits`` — features are rounded to multiples of ``2^-feature_frac_bits``
      before the encrypted products (they are the exponents: fewer bits, faster epochs).
    * ``score_frac_bits`` — partial scores are rounded to multiples of ``2^-score_frac_bits``
      before encryption (free: plaintext space is 2048 bits).
    * ``standardise`` — each party z-scores its own features with its own training means and
      standard deviations (kept in its model); gradient descent needs comparable scales.
    * ``key_bits`` — size of each party's Paillier modulus (≥ 2048 outside tests).
    """

    learning_rate: float = 0.15
    l2: float = 0.0
    max_epochs: int = 10
    tol: float = 0.0
    batch_size: int = 4096
    seed: int = 0
    decay: float = 0.0
    feature_frac_bits: int = 16
    score_frac_bits: int = 32
    standardise: bool = True
    key_bits: int = 2048

    def __post_init__(self) -> None:
        _check_real("learning_rate", self.learning_rate, low=0.0, inclusive=False, high=100.0)
        _check_real("l2", self.l2, low=0.0, inclusive=True, high=1e6)
        _check_real("tol", self.tol, low=0.0, inclusive=True, high=1e6)
        _check_real("decay", self.decay, low=0.0, inclusive=True, high=1e6)
        _check_int("max_epochs", self.max_epochs, 1, 100_000)
        _check_int("batch_size", self.batch_size, MIN_BATCH_SIZE, 10_000_000)
        _check_int("seed", self.seed, 0, 2**63 - 1)
        _check_int("feature_frac_bits", self.feature_frac_bits, 4, 30)
        _check_int("score_frac_bits", self.score_frac_bits, 8, 40)
        _check_int("key_bits", self.key_bits, 1024, 8192)
        if self.key_bits % 256:
            raise ValueError(f"key_bits must be a multiple of 256 (got {self.key_bits})")
        if not isinstance(self.standardise, bool):
            raise ValueError(f"standardise must be true or false (got {self.standardise!r})")

    def learning_rate_at(self, epoch: int) -> float:
        """The step size of epoch ``epoch`` (0-based)."""
        return self.learning_rate / (1.0 + self.decay * epoch)

    def to_message(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_message(cls, message: Any) -> HeteroLRParams:
        """Parameters sent by the peer; unknown, missing or out-of-range ones are refused."""
        if not isinstance(message, dict):
            raise ProtocolMismatch("the guest's parameters are not a mapping")
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(message) - names)
        missing = sorted(names - set(message))
        if unknown or missing:
            raise ProtocolMismatch(
                f"the guest's parameters do not match this version: unknown {unknown}, "
                f"missing {missing}"
            )
        try:
            return cls(**message)
        except (TypeError, ValueError) as exc:
            raise ProtocolMismatch(f"the guest's parameters are refused: {exc}") from exc


def _check_real(name: str, value: object, *, low: float, inclusive: bool, high: float) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number (got {value!r})")
    too_low = value < low if inclusive else value <= low
    if too_low or value > high:
        bound = "at least" if inclusive else "greater than"
        raise ValueError(f"{name} must be {bound} {low:g} and at most {high:g} (got {value!r})")


def _check_int(name: str, value: object, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be an integer (got {value!r})")
    if not low <= value <= high:
        raise ValueError(f"{name} must be between {low} and {high} (got {value})")
