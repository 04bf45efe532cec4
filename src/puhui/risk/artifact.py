"""A model artifact: the fitted model plus everything needed to trust it later.

One JSON document (``puhui.model/1``) holds the model (a scorecard table or a LightGBM booster
as text), its metadata — training-data SHA-256, rows, target, features, parameters, library
versions, metrics, split seed, whether the data was synthetic — and the training profile used
for drift monitoring. Its SHA-256 is the artifact's identity in the registry.
"""

from __future__ import annotations

import hashlib
import json
import platform as _platform
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

import pandas as pd

from puhui.risk.calibration import Calibration
from puhui.risk.explain import ScoreResult
from puhui.risk.gbm import GBMModel
from puhui.risk.profile import profile_bins
from puhui.risk.scorecard_model import ScorecardModel

FORMAT = "puhui.model/1"
KINDS = ("scorecard", "gbm")


def library_versions() -> dict[str, str]:
    out = {"python": _platform.python_version()}
    for name in ("puhui", "numpy", "pandas", "scikit-learn", "scipy", "lightgbm"):
        try:
            out[name] = importlib_metadata.version(name)
        except importlib_metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def sha256_of_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def sha256_of_frame(frame: pd.DataFrame) -> str:
    """Digest of a DataFrame's content (values and column names), for data built in memory."""
    h = hashlib.sha256()
    h.update("\x1f".join(map(str, frame.columns)).encode())
    h.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return h.hexdigest()


@dataclass
class ModelArtifact:
    kind: str
    model: ScorecardModel | GBMModel
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, not {self.kind!r}")

    @property
    def features(self) -> list[str]:
        return list(self.model.features)

    @property
    def profile(self) -> Mapping[str, Any] | None:
        p = self.metadata.get("profile")
        return p if isinstance(p, Mapping) else None

    @property
    def calibration(self) -> Calibration | None:
        c = self.metadata.get("calibration")
        return Calibration.from_dict(c) if isinstance(c, Mapping) else None

    def score_one(self, features: Mapping[str, Any]) -> ScoreResult:
        """Score, reasons and PD — the calibrated PD when the model carries a calibration."""
        result = self.model.score_one(features)
        calibration = self.calibration
        if calibration is None:
            return result
        return replace(result, pd=calibration.pd(result.score))

    def monitoring_bins(self, features: Mapping[str, Any]) -> dict[str, int]:
        return profile_bins(self.profile, features) if self.profile else {}

    def predict_pd(self, frame: pd.DataFrame) -> Any:
        calibration = self.calibration
        if calibration is None:
            return self.model.predict_pd(frame)
        return calibration.pds(self.model.scores(frame))

    def scores(self, frame: pd.DataFrame) -> Any:
        return self.model.scores(frame)

    # ----------------------------------------------------------------- export
    def to_json(self) -> str:
        doc = {
            "format": FORMAT,
            "kind": self.kind,
            "metadata": self.metadata,
            "model": self.model.to_dict(),
        }
        return json.dumps(doc, ensure_ascii=False, sort_keys=True, allow_nan=False)

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.to_json().encode()).hexdigest()

    @classmethod
    def from_json(cls, text: str) -> ModelArtifact:
        doc = json.loads(text)
        if doc.get("format") != FORMAT:
            if str(doc.get("format", "")).startswith("puhui.federated"):
                raise ValueError(
                    "a federated model scores only with its data partner online; "
                    "batch scoring, calibration and monitoring are not available for it"
                )
            raise ValueError(f"not a Puhui model artifact (format {doc.get('format')!r})")
        kind = doc["kind"]
        model: ScorecardModel | GBMModel = (
            ScorecardModel.from_dict(doc["model"])
            if kind == "scorecard"
            else GBMModel.from_dict(doc["model"])
        )
        return cls(kind, model, dict(doc.get("metadata", {})))

    def recalibrated(self, calibration: Calibration, *, source: str) -> ModelArtifact:
        """The same model with a new score → PD map (a new artifact, so a new version)."""
        metadata = {**self.metadata, "calibration": calibration.to_dict()}
        metadata["calibration"]["source"] = source
        return ModelArtifact(self.kind, self.model, metadata)

    def save(self, path: Path) -> Path:
        path.write_text(self.to_json(), encoding="utf-8")
        return path

    @classmethod
    def load(cls, path: Path) -> ModelArtifact:
        return cls.from_json(path.read_text(encoding="utf-8"))
