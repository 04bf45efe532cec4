"""A federated model as the journey's credit model: the guest's half, its partner, its fallback.

Registered like any other model (``risk.registry``, kind ``federated``), a
:class:`FederatedCreditModel` holds the guest's half of a SecureBoost or vertical-LR model
trained on the platform's guest features (:data:`puhui.federated.sme_data.GUEST_FEATURES`),
the points scaling, and a **fallback**: an ordinary model artifact (by default the bundled
scorecard) that decides when the partner cannot answer — unreachable, too slow, no data for
the business, or no joint-modelling consent from the applicant. The decision records which
one scored and why, so a fallback is never silent.

Reason codes. A SecureBoost score is explained by following the row's path (Saabas): at
each split the row moves from the node's value to the child's, and that change is credited
to the split's feature — a guest feature by name, or, for a host split, "the data partner's
figures" as one block, since the bank does not know which of the partner's features it was.
``base + Σ contributions = score`` holds exactly, as for the other models. For vertical LR
each guest feature contributes ``w·x`` against its training mean (zero after
standardisation) and the partner its partial score.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from puhui.federated import scoring
from puhui.federated.errors import FederatedError
from puhui.federated.hetero_lr.model import GuestLRModel
from puhui.federated.secureboost import binning
from puhui.federated.secureboost.model import GuestModel
from puhui.federated.sme_data import FEATURE_TEXTS, GUEST_FEATURES, guest_vector
from puhui.risk.explain import Contribution, ScoreResult, feature_text
from puhui.risk.features import FEATURES
from puhui.risk.scaling import PointsScaling

FORMAT = "puhui.federated.credit/1"
Protocol = Literal["secureboost", "hetero_lr"]
FloatArray = npt.NDArray[np.float64]
PARTNER = "partner"


@dataclass
class FederatedCreditModel:
    """The guest's half of a federated model, usable as a credit model with a partner online."""

    protocol: Protocol
    guest: GuestModel | GuestLRModel
    scaling: PointsScaling = field(default_factory=PointsScaling)

    def __post_init__(self) -> None:
        names = tuple(self.guest.feature_names)
        if names != GUEST_FEATURES:
            raise FederatedError(
                "a federated credit model must be trained on the platform's guest features "
                f"{', '.join(GUEST_FEATURES)} (this one has {', '.join(names)}); "
                "see `puhui federated sample-data`"
            )

    @property
    def model_id(self) -> str:
        return self.guest.model_id

    @property
    def features(self) -> tuple[str, ...]:
        """The platform features the guest half reads (``risk.features`` names)."""
        return FEATURES

    def ask(self) -> dict[str, Any]:
        """What to ask the partner (the same for every application)."""
        if isinstance(self.guest, GuestModel):
            return scoring.secureboost_ask(self.guest)
        return {}

    def score_with_answer(self, features: Mapping[str, Any], answer: Any) -> ScoreResult:
        """Score, PD and reasons from the application's features and the partner's answer."""
        x = np.asarray(guest_vector(features), dtype=np.float64)
        if isinstance(self.guest, GuestModel):
            margin = scoring.secureboost_margin(self.guest, x, answer)
            base_logit, parts = _saabas(self.guest, x, answer)
        else:
            margin = scoring.lr_margin(self.guest, x, answer)
            base_logit, parts = _lr_parts(self.guest, x, float(answer))
        score = self.scaling.score_of_logit(margin)
        contributions = tuple(
            _contribution(name, x, -self.scaling.factor * delta) for name, delta in parts.items()
        )
        base = score - sum(c.points for c in contributions)
        if not math.isclose(base, self.scaling.score_of_logit(base_logit), abs_tol=1e-6):
            raise FederatedError("reason codes do not add up to the score (corrupt model?)")
        return ScoreResult(
            pd=1.0 / (1.0 + math.exp(-margin)),
            score=score,
            base=base,
            contributions=contributions,
            model=f"federated-{self.protocol}",
        )

    def to_dict(self) -> dict[str, Any]:
        guest = self.guest.to_dict()
        return {
            "format": FORMAT,
            "protocol": self.protocol,
            "guest": guest,
            "scaling": {
                "base_score": self.scaling.base_score,
                "base_odds": self.scaling.base_odds,
                "pdo": self.scaling.pdo,
            },
        }

    @classmethod
    def from_dict(cls, data: Any) -> FederatedCreditModel:
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise ValueError(f"not a {FORMAT} document")
        protocol = data.get("protocol")
        guest: GuestModel | GuestLRModel
        if protocol == "secureboost":
            guest = GuestModel.from_dict(data["guest"])
        elif protocol == "hetero_lr":
            guest = GuestLRModel.from_dict(data["guest"])
        else:
            raise ValueError(f"unknown federated protocol {protocol!r}")
        return cls(protocol, guest, PointsScaling(**data.get("scaling", {})))


def _contribution(name: str, x: FloatArray, points: float) -> Contribution:
    if name == PARTNER:
        zh, en = FEATURE_TEXTS[PARTNER]
        return Contribution(PARTNER, "", points, zh, en)
    k = GUEST_FEATURES.index(name)
    zh, en = feature_text(name, FEATURE_TEXTS)
    value = "" if math.isnan(x[k]) else f"{x[k]:g}"
    return Contribution(name, value, points, zh, en)


def _saabas(model: GuestModel, x: FloatArray, answer: bytes) -> tuple[float, dict[str, float]]:
    """Path attribution in log-odds: (base logit, change credited to each feature)."""
    split_ids = model.host_split_ids()
    bits = np.unpackbits(np.frombuffer(answer, dtype=np.uint8))[: len(split_ids)].astype(bool)
    host_left = dict(zip(split_ids, bits.tolist(), strict=True))
    base = model.base_score
    parts: dict[str, float] = {}
    for tree in model.trees:
        nodes = {node.id: node for node in tree.nodes}
        node = nodes[0]
        base += node.weight
        while node.kind != "leaf":
            if node.kind == "host":
                assert node.split_id is not None
                left = host_left[node.split_id]
                name = PARTNER
            else:
                left = bool(
                    binning.goes_left(
                        x[node.feature : node.feature + 1], node.threshold, node.missing_left
                    )[0]
                )
                name = GUEST_FEATURES[node.feature]
            child = nodes[node.left if left else node.right]
            parts[name] = parts.get(name, 0.0) + child.weight - node.weight
            node = child
    return base, parts


def _lr_parts(model: GuestLRModel, x: FloatArray, partner: float) -> tuple[float, dict[str, float]]:
    standardised = (x - model.shift) / model.scale
    parts = {
        name: float(w * v)
        for name, w, v in zip(model.feature_names, model.coef, standardised, strict=True)
    }
    parts[PARTNER] = partner
    return model.intercept, parts
