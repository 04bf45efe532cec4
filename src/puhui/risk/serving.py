"""Which models are live: the registry's champion and challenger, loaded once per process.

A decision asks :meth:`LiveModels.current` for the pair; the registry is read at most every
``ttl`` seconds (a promotion takes effect within that), and an artifact is parsed once per
version. With no champion promoted, the bundled default model serves. The cache holds parsed
models only, nothing another worker would need — any worker can serve any request.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from puhui.federated.artifact import FederatedArtifact, parse_artifact
from puhui.risk import bundled
from puhui.risk.artifact import ModelArtifact
from puhui.risk.registry import DEFAULT_NAME
from puhui.store import models as m

BUNDLED_ID = "bundled-default"


@dataclass(frozen=True)
class LiveModel:
    id: str
    version: str
    artifact: ModelArtifact | FederatedArtifact


@dataclass(frozen=True)
class LivePair:
    champion: LiveModel
    challenger: LiveModel | None


class LiveModels:
    def __init__(self, name: str = DEFAULT_NAME, ttl: float = 5.0) -> None:
        self.name = name
        self.ttl = ttl
        self._lock = threading.Lock()
        self._parsed: dict[str, LiveModel] = {}
        self._pair: LivePair | None = None
        self._checked = 0.0

    def _bundled(self) -> LiveModel:
        if BUNDLED_ID not in self._parsed:
            self._parsed[BUNDLED_ID] = LiveModel(BUNDLED_ID, f"{self.name}/bundled", bundled.load())
        return self._parsed[BUNDLED_ID]

    def _model(self, session: Session, model_id: str) -> LiveModel:
        if model_id not in self._parsed:
            row = session.get(m.ModelVersion, model_id)
            assert row is not None
            self._parsed[model_id] = LiveModel(
                row.id, f"{row.name}/v{row.version}", parse_artifact(row.artifact)
            )
        return self._parsed[model_id]

    def current(self, session: Session) -> LivePair:
        now = time.monotonic()
        with self._lock:
            if self._pair is not None and now - self._checked < self.ttl:
                return self._pair
            rows = session.execute(
                select(m.ModelVersion.id, m.ModelVersion.status).where(
                    m.ModelVersion.name == self.name,
                    m.ModelVersion.status.in_(("champion", "challenger")),
                )
            ).all()
            roles = {status: model_id for model_id, status in rows}
            champion = (
                self._model(session, roles["champion"]) if "champion" in roles else self._bundled()
            )
            challenger = (
                self._model(session, roles["challenger"]) if "challenger" in roles else None
            )
            self._pair = LivePair(champion, challenger)
            self._checked = now
            return self._pair

    def invalidate(self) -> None:
        with self._lock:
            self._pair = None


_BY_DATABASE: dict[str, LiveModels] = {}


def live_models(session: Session) -> LiveModels:
    """The process's cache for the database this session is bound to."""
    key = str(session.get_bind().engine.url)
    if key not in _BY_DATABASE:
        _BY_DATABASE[key] = LiveModels()
    return _BY_DATABASE[key]


def forget_live_models() -> None:
    """Drop every cached pair (tests that recreate a database under the same URL need this)."""
    _BY_DATABASE.clear()
