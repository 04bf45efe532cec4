"""The registry's form of a federated credit model: the guest's half plus its fallback.

One JSON document (``puhui.federated.artifact/1``) holds the :class:`FederatedCreditModel`,
the fallback model artifact (a complete ``puhui.model/1`` document, so the fallback is
versioned with the model and cannot change under it) and metadata (data digests, row counts,
parameters, test metrics, who trained it). It is stored in ``model_versions`` with kind
``federated`` and promoted like any other model; ``risk.serving`` loads it by its format.

Scoring needs the partner: :meth:`FederatedArtifact.score_live` asks it and falls back with a
stated reason when it cannot answer. The batch methods of an ordinary artifact (scoring a
data frame, calibration, drift by bins) do not apply — the partner's half answers one
business at a time — and raise a clear error instead of silently using the fallback.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from puhui.federated.errors import FederatedError
from puhui.federated.live_model import FederatedCreditModel
from puhui.federated.online import ScoringClient
from puhui.risk.artifact import ModelArtifact
from puhui.risk.explain import ScoreResult

FORMAT = "puhui.federated.artifact/1"
KIND = "federated"


def parse_artifact(text: str) -> ModelArtifact | FederatedArtifact:
    """A stored artifact of either form, told apart by its ``format``."""
    if json.loads(text).get("format") == FORMAT:
        return FederatedArtifact.from_json(text)
    return ModelArtifact.from_json(text)


@dataclass
class FederatedArtifact:
    model: FederatedCreditModel
    fallback: ModelArtifact
    metadata: dict[str, Any] = field(default_factory=dict)
    kind: str = KIND

    @property
    def features(self) -> list[str]:
        return list(self.model.features)

    @property
    def profile(self) -> Mapping[str, Any] | None:
        return None

    def monitoring_bins(self, features: Mapping[str, Any]) -> dict[str, int]:
        """Drift bins are the fallback's (the guest half has no binned profile of its own)."""
        return self.fallback.monitoring_bins(features)

    def score_one(self, features: Mapping[str, Any]) -> ScoreResult:
        raise FederatedError(
            "a federated model scores only with its partner online (score_live); "
            "offline batch scoring is not available"
        )

    def score_live(
        self,
        features: Mapping[str, Any],
        *,
        key: str | None,
        client: ScoringClient | None,
        refusal: str | None = None,
    ) -> tuple[ScoreResult, dict[str, Any]]:
        """Score with the partner's answer, or with the fallback and the reason why.

        ``refusal`` is a reason the caller already knows the partner must not be asked (for
        example, no joint-modelling consent); ``key`` is the business key the partner knows."""
        reason = refusal
        if reason is None and client is None:
            reason = "no partner is configured (PUHUI_FEDERATED_CONFIG)"
        if reason is None and not key:
            reason = "the application has no business key for the partner"
        if reason is None:
            assert client is not None and key is not None
            try:
                answer = client.ask(self.model.model_id, [key], self.model.ask())[0]
                if answer is None:
                    reason = "the partner holds no data for this business"
                else:
                    result = self.model.score_with_answer(features, answer)
                    return result, {"scored_by": "federated", "model_id": self.model.model_id}
            except FederatedError as exc:  # unreachable, refused, or an answer that does not fit
                reason = str(exc)
        fallback = self.fallback.score_one(features)
        return fallback, {
            "scored_by": "fallback",
            "model_id": self.model.model_id,
            "fallback_reason": reason,
            "fallback_model": self.fallback.metadata.get("name", self.fallback.kind),
        }

    def to_json(self) -> str:
        doc = {
            "format": FORMAT,
            "kind": KIND,
            "metadata": self.metadata,
            "model": self.model.to_dict(),
            "fallback": json.loads(self.fallback.to_json()),
        }
        return json.dumps(doc, ensure_ascii=False, sort_keys=True, allow_nan=False)

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.to_json().encode()).hexdigest()

    @classmethod
    def from_json(cls, text: str) -> FederatedArtifact:
        doc = json.loads(text)
        if doc.get("format") != FORMAT:
            raise ValueError(f"not a federated model artifact (format {doc.get('format')!r})")
        return cls(
            FederatedCreditModel.from_dict(doc["model"]),
            ModelArtifact.from_json(json.dumps(doc["fallback"])),
            dict(doc.get("metadata", {})),
        )
