"""The gradient-boosted challenger: LightGBM with early stopping, optional monotone
constraints, per-feature contributions as reason codes, and a pandas-free scoring path.

Defaults are LightGBM's own (31 leaves, 20 rows a leaf, no L2) but a halved learning rate and
90 % of columns per tree, with the number of trees set by seeded, stratified 3-fold
cross-validation (early stopping on mean AUC) and the model then fitted on all the data with
that many trees.
Cross-validation rather than one hold-out because a hold-out of a small, rare-event sample
(German credit: 210 bads; Polish year 1: 190) stops after a handful of trees on noise.
Categorical columns are coded to integers with LightGBM's native categorical splits; a level
never seen in training is scored as missing (documented, tested).

Reason codes: LightGBM's exact TreeSHAP (``pred_contrib``) in log-odds, turned into points with
the same scaling as the scorecard, so ``base + Σ contributions == score`` holds here too.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import lightgbm as lgb
import numpy as np
import numpy.typing as npt
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin

from puhui.risk.explain import Contribution, ScoreResult, feature_text
from puhui.risk.frame import DataError, as_frame, as_target, is_missing, is_numeric
from puhui.risk.scaling import PointsScaling

FloatArray = npt.NDArray[np.float64]
FORMAT = "puhui.gbm/1"


@dataclass
class GBMModel:
    """A fitted booster with the column order and category codes it needs: what is served."""

    booster: lgb.Booster
    features: list[str]
    categories: dict[str, list[str]]
    scaling: PointsScaling
    texts: dict[str, tuple[str, str]] = field(default_factory=dict)
    name: str = "gbm"
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._codes = {f: {lvl: i for i, lvl in enumerate(v)} for f, v in self.categories.items()}

    # ----------------------------------------------------------------- encoding
    def _encode_value(self, feature: str, value: Any) -> float:
        if is_missing(value):
            return math.nan
        codes = self._codes.get(feature)
        if codes is not None:
            code = codes.get(str(value))
            return math.nan if code is None else float(code)
        try:
            return float(value)
        except (TypeError, ValueError):
            return math.nan

    def encode_one(self, features: Mapping[str, Any]) -> FloatArray:
        return np.array([[self._encode_value(f, features.get(f)) for f in self.features]])

    def encode(self, frame: pd.DataFrame) -> FloatArray:
        out = np.full((len(frame), len(self.features)), np.nan)
        for j, f in enumerate(self.features):
            if f not in frame:
                continue
            col = frame[f]
            if f in self._codes:
                codes = self._codes[f]
                out[:, j] = [
                    np.nan if pd.isna(v) else codes.get(str(v), np.nan) for v in col.to_numpy()
                ]
            else:
                out[:, j] = pd.to_numeric(col, errors="coerce").to_numpy(dtype=np.float64)
        return out

    # ----------------------------------------------------------------- scoring
    def raw(self, x: FloatArray) -> FloatArray:
        return np.asarray(self.booster.predict(x, raw_score=True, num_threads=1), dtype=np.float64)

    def predict_pd(self, frame: pd.DataFrame) -> FloatArray:
        out: FloatArray = 1.0 / (1.0 + np.exp(-self.raw(self.encode(frame))))
        return out

    def scores(self, frame: pd.DataFrame) -> FloatArray:
        raw = self.raw(self.encode(frame))
        out: FloatArray = np.round(self.scaling.offset - self.scaling.factor * raw, 2)
        return out

    def score_one(self, features: Mapping[str, Any], explain: bool = True) -> ScoreResult:
        x = self.encode_one(features)
        if not explain:
            z = float(self.raw(x)[0])
            score = round(self.scaling.score_of_logit(z), 2)
            return ScoreResult(1 / (1 + math.exp(-z)), score, score, (), self.name)
        contrib = self.booster.predict(x, pred_contrib=True, num_threads=1)[0]
        z = float(contrib.sum())
        factor = self.scaling.factor
        parts = []
        for f, c in zip(self.features, contrib[:-1], strict=True):
            pts = -factor * float(c)
            zh, en = feature_text(f, self.texts)
            shown = features.get(f)
            value = "missing" if is_missing(shown) else str(shown)
            parts.append(
                Contribution(
                    f,
                    value,
                    pts,
                    f"{zh}（{value}）影响{pts:+.1f}分",
                    f"{en} ({value}) moved the score {pts:+.1f} points",
                )
            )
        # the score is rounded to 0.01 as in scores(); the base absorbs the rounding so that
        # base + Σ contributions == score still holds exactly
        score = round(self.scaling.score_of_logit(z), 2)
        base = score - sum(p.points for p in parts)
        return ScoreResult(
            pd=1 / (1 + math.exp(-z)),
            score=score,
            base=base,
            contributions=tuple(parts),
            model=self.name,
        )

    # ----------------------------------------------------------------- export
    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "name": self.name,
            "features": self.features,
            "categories": self.categories,
            "scaling": self.scaling.to_dict(),
            "texts": {k: list(t) for k, t in self.texts.items()},
            "metadata": self.metadata,
            "booster": self.booster.model_to_string(),
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> GBMModel:
        if d.get("format") != FORMAT:
            raise ValueError(f"not a GBM export (format {d.get('format')!r}, want {FORMAT})")
        return cls(
            booster=lgb.Booster(model_str=d["booster"]),
            features=list(d["features"]),
            categories={k: list(v) for k, v in d["categories"].items()},
            scaling=PointsScaling(**d["scaling"]),
            texts={k: (t[0], t[1]) for k, t in d.get("texts", {}).items()},
            name=d.get("name", "gbm"),
            metadata=dict(d.get("metadata", {})),
        )

    @classmethod
    def from_json(cls, text: str) -> GBMModel:
        return cls.from_dict(json.loads(text))


class GBMScorer(ClassifierMixin, BaseEstimator):  # type: ignore[misc]
    """scikit-learn estimator around :class:`GBMModel`. ``monotone`` maps a column to +1
    (bad rate may only rise with it) or −1 (may only fall)."""

    def __init__(
        self,
        *,
        learning_rate: float = 0.05,
        num_leaves: int = 31,
        max_depth: int = -1,
        min_child_samples: int = 20,
        subsample: float = 1.0,
        colsample_bytree: float = 0.9,
        reg_lambda: float = 0.0,
        max_trees: int = 3000,
        early_stopping_rounds: int = 150,
        cv_folds: int = 3,
        monotone: Mapping[str, int] | None = None,
        random_state: int = 42,
        n_jobs: int = 1,
        base_score: float = 600.0,
        base_odds: float = 50.0,
        pdo: float = 20.0,
        texts: Mapping[str, tuple[str, str]] | None = None,
        name: str = "gbm",
    ) -> None:
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.max_depth = max_depth
        self.min_child_samples = min_child_samples
        self.subsample = subsample
        self.colsample_bytree = colsample_bytree
        self.reg_lambda = reg_lambda
        self.max_trees = max_trees
        self.early_stopping_rounds = early_stopping_rounds
        self.cv_folds = cv_folds
        self.monotone = monotone
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.base_score = base_score
        self.base_odds = base_odds
        self.pdo = pdo
        self.texts = texts
        self.name = name

    def _params(self, features: Sequence[str]) -> dict[str, Any]:
        mono = self.monotone or {}
        unknown = set(mono) - set(features)
        if unknown:
            raise DataError(f"monotone: no such column {sorted(unknown)[0]!r}")
        bad = {k: v for k, v in mono.items() if v not in (-1, 0, 1)}
        if bad:
            raise DataError(f"monotone: {next(iter(bad))!r} must be -1, 0 or +1")
        params: dict[str, Any] = {
            "objective": "binary",
            "learning_rate": self.learning_rate,
            "num_leaves": self.num_leaves,
            "max_depth": self.max_depth,
            "min_child_samples": self.min_child_samples,
            "bagging_fraction": self.subsample,
            "bagging_freq": 1 if self.subsample < 1 else 0,
            "feature_fraction": self.colsample_bytree,
            "lambda_l2": self.reg_lambda,
            "seed": self.random_state,
            "deterministic": True,
            "num_threads": self.n_jobs,
            "verbosity": -1,
        }
        if mono:
            params["monotone_constraints"] = [int(mono.get(f, 0)) for f in features]
            # "advanced" can break monotonicity next to missing values (LightGBM #5358, #6155)
            params["monotone_constraints_method"] = "intermediate"
        return params

    def fit(self, X: Any, y: Any) -> GBMScorer:
        frame = as_frame(X)
        if frame.empty or len(frame.columns) == 0:
            raise DataError("X: no rows or no columns to fit on")
        target = as_target(y, len(frame))
        features = [str(c) for c in frame.columns]
        categories = {
            str(c): sorted({str(v) for v in frame[c].dropna().to_numpy()})
            for c in frame.columns
            if not is_numeric(frame[c])
        }
        model = GBMModel(
            booster=None,  # type: ignore[arg-type]  # set below
            features=features,
            categories=categories,
            scaling=PointsScaling(self.base_score, self.base_odds, self.pdo),
            texts=dict(self.texts or {}),
            name=self.name,
        )
        x = model.encode(frame)
        params = self._params(features)
        cat_idx = [features.index(c) for c in categories]
        data = lgb.Dataset(x, target, categorical_feature=cat_idx, free_raw_data=False)
        history = lgb.cv(
            {**params, "metric": "auc"},
            data,
            num_boost_round=self.max_trees,
            nfold=self.cv_folds,
            stratified=True,
            seed=self.random_state,
            callbacks=[lgb.early_stopping(self.early_stopping_rounds, verbose=False)],
        )
        auc_by_round: list[float] = history["valid auc-mean"]  # type: ignore[assignment]
        trees = len(auc_by_round)
        full = lgb.Dataset(x, target, categorical_feature=cat_idx)
        model.booster = lgb.train(params, full, num_boost_round=trees)
        model.metadata = {"trees": trees, "params": params}
        self.model_ = model
        self.classes_ = np.array([0, 1])
        self.feature_names_in_ = np.array(features, dtype=object)
        self.n_features_in_ = len(features)
        return self

    def _model(self) -> GBMModel:
        model: GBMModel | None = getattr(self, "model_", None)
        if model is None:
            raise DataError("the model is not fitted yet: call fit first")
        return model

    def predict_proba(self, X: Any) -> FloatArray:
        names = [str(n) for n in getattr(self, "feature_names_in_", [])] or None
        pd_ = self._model().predict_pd(as_frame(X, names))
        out: FloatArray = np.column_stack([1 - pd_, pd_])
        return out

    def predict(self, X: Any) -> npt.NDArray[np.int64]:
        return (self.predict_proba(X)[:, 1] >= 0.5).astype(np.int64)

    def predict_score(self, X: Any) -> FloatArray:
        names = [str(n) for n in getattr(self, "feature_names_in_", [])] or None
        return self._model().scores(as_frame(X, names))

    def explain(self, features: Mapping[str, Any]) -> ScoreResult:
        return self._model().score_one(features)

    def to_json(self) -> str:
        return self._model().to_json()
