"""The logistic scorecard, as a scikit-learn estimator a risk analyst can use in a notebook.

``Scorecard().fit(X, y)`` bins every column (monotone where asked, missing and special values
in their own bins with empirical WOE), selects variables with a written reason for each
(:mod:`puhui.risk.selection`), fits a logistic regression on the WOE of the kept variables and
scales it into points. The result, ``model_``, is a :class:`ScorecardModel`: a readable points
table, portable JSON, sub-millisecond scoring of one application, and reason codes.

``y`` is 1 for bad. ``predict_proba`` follows scikit-learn (column 1 = P(bad));
``predict_score`` gives the points score (higher = better).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin

from puhui.risk.binning import (
    BinningOptions,
    Trend,
    Unseen,
    VariableBinning,
    fit_categorical,
    fit_numeric,
)
from puhui.risk.explain import ScoreResult
from puhui.risk.frame import DataError, as_frame, as_target, is_numeric
from puhui.risk.logit import fit_logit_grouped
from puhui.risk.scaling import PointsScaling
from puhui.risk.scorecard_model import ScorecardModel, ScorecardVariable
from puhui.risk.selection import SelectionRules, VariableReport, select

FloatArray = npt.NDArray[np.float64]


class Scorecard(ClassifierMixin, BaseEstimator):  # type: ignore[misc]
    """Binning → selection → logistic regression → points.

    Parameters are plain values (scikit-learn's contract: ``get_params``/``clone`` work).
    ``special_codes`` maps a column to values that mean "not a number" in that column
    (e.g. ``{"months_since_default": [-1]}``); ``texts`` maps a column to its Chinese and
    English names for reason codes.
    """

    def __init__(
        self,
        *,
        max_bins: int = 8,
        max_prebins: int = 40,
        min_bin_share: float = 0.025,
        trend: str = "auto",
        allow_shapes: bool = True,
        special_codes: Mapping[str, Sequence[float]] | None = None,
        unseen: str = "neutral",
        min_iv: float = 0.02,
        max_p_value: float = 0.2,
        max_missing: float = 0.95,
        max_corr: float = 0.7,
        max_vif: float = 10.0,
        max_csi: float = 0.25,
        stepwise: bool = False,
        sign_check: bool = True,
        max_features: int | None = None,
        base_score: float = 600.0,
        base_odds: float = 50.0,
        pdo: float = 20.0,
        texts: Mapping[str, tuple[str, str]] | None = None,
        name: str = "scorecard",
    ) -> None:
        self.max_bins = max_bins
        self.max_prebins = max_prebins
        self.min_bin_share = min_bin_share
        self.trend = trend
        self.allow_shapes = allow_shapes
        self.special_codes = special_codes
        self.unseen = unseen
        self.min_iv = min_iv
        self.max_p_value = max_p_value
        self.max_missing = max_missing
        self.max_corr = max_corr
        self.max_vif = max_vif
        self.max_csi = max_csi
        self.stepwise = stepwise
        self.sign_check = sign_check
        self.max_features = max_features
        self.base_score = base_score
        self.base_odds = base_odds
        self.pdo = pdo
        self.texts = texts
        self.name = name

    # ----------------------------------------------------------------- fitting
    def _options(self, column: str) -> BinningOptions:
        codes = tuple(float(c) for c in (self.special_codes or {}).get(column, ()))
        return BinningOptions(
            max_bins=self.max_bins,
            max_prebins=self.max_prebins,
            min_bin_share=self.min_bin_share,
            trend=Trend(self.trend),
            allow_shapes=self.allow_shapes,
            special_codes=codes,
            unseen=Unseen(self.unseen),
        )

    def bin_columns(
        self, frame: pd.DataFrame, y: npt.NDArray[np.int64]
    ) -> dict[str, VariableBinning]:
        out = {}
        for col in frame.columns:
            series = frame[col]
            if series.isna().all():
                continue  # reported by fit as wholly missing
            if is_numeric(series):
                out[col] = fit_numeric(col, series.to_numpy(), y, self._options(col))
            else:
                values = series.astype(object).where(series.notna(), None).to_numpy()
                out[col] = fit_categorical(col, values, y, self._options(col))
        return out

    def fit(self, X: Any, y: Any, slices: Any = None) -> Scorecard:
        """Fit on ``X`` (DataFrame) and ``y`` (1 = bad). ``slices``, one label per row (e.g. the
        application month), turns on the stability filter across those slices."""
        frame = as_frame(X)
        if frame.empty or len(frame.columns) == 0:
            raise DataError("X: no rows or no columns to fit on")
        target = as_target(y, len(frame))
        binnings = self.bin_columns(frame, target)
        missing = {c: float(frame[c].isna().mean()) for c in frame.columns}
        woe = {n: b.woe(frame[n].to_numpy()) for n, b in binnings.items()}
        slice_bins = None
        if slices is not None:
            labels = np.asarray(slices)
            if len(labels) != len(frame):
                raise DataError("slices: expected one label per row")
            order = sorted(set(labels.tolist()))
            slice_bins = {
                n: [b.index(frame[n].to_numpy()[labels == s]) for s in order]
                for n, b in binnings.items()
            }
        rules = SelectionRules(
            max_missing=self.max_missing,
            min_iv=self.min_iv,
            max_p_value=self.max_p_value,
            max_csi=self.max_csi,
            max_corr=self.max_corr,
            max_vif=self.max_vif,
            stepwise=self.stepwise,
            sign_check=self.sign_check,
            max_features=self.max_features,
        )
        yf = target.astype(np.float64)
        result = select(binnings, woe, yf, missing, rules, slice_bins)
        report = result.report + [
            VariableReport(c, "empty", 0.0, 1.0, 0, reason="no values at all")
            for c in frame.columns
            if c not in binnings
        ]
        if not result.kept:
            strongest = max((b.iv for b in binnings.values()), default=0.0)
            raise DataError(
                "no variable passed selection (every column is too weak, too sparse or "
                f"unstable; the strongest IV was {strongest:.4f})"
            )
        kept = result.kept
        fit = fit_logit_grouped(np.column_stack([woe[n] for n in kept]), yf)
        scaling = PointsScaling(self.base_score, self.base_odds, self.pdo)
        variables = []
        for n, coef in zip(kept, fit.coef, strict=True):
            b = binnings[n]
            points = [round(-scaling.factor * coef * bin_.woe, 2) for bin_ in b.bins]
            unseen = round(-scaling.factor * coef * b.unseen_woe, 2)
            variables.append(ScorecardVariable(b, float(coef), points, unseen))
        for r in report:
            if r.kept:
                r.coef = float(fit.coef[kept.index(r.name)])
        self.model_ = ScorecardModel(
            scaling=scaling,
            intercept_points=round(scaling.score_of_logit(fit.intercept), 2),
            variables=variables,
            texts=dict(self.texts or {}),
            name=self.name,
        )
        self.binnings_ = binnings
        self.selection_ = report
        self.classes_ = np.array([0, 1])
        self.feature_names_in_ = np.array(list(frame.columns), dtype=object)
        self.n_features_in_ = len(frame.columns)
        return self

    # ----------------------------------------------------------------- predicting
    def _model(self) -> ScorecardModel:
        model: ScorecardModel | None = getattr(self, "model_", None)
        if model is None:
            raise DataError("the scorecard is not fitted yet: call fit first")
        return model

    def predict_score(self, X: Any) -> FloatArray:
        return self._model().scores(as_frame(X, self._names()))

    def predict_proba(self, X: Any) -> FloatArray:
        pd_ = self._model().predict_pd(as_frame(X, self._names()))
        out: FloatArray = np.column_stack([1 - pd_, pd_])
        return out

    def predict(self, X: Any) -> npt.NDArray[np.int64]:
        return (self.predict_proba(X)[:, 1] >= 0.5).astype(np.int64)

    def explain(self, features: Mapping[str, Any]) -> ScoreResult:
        return self._model().score_one(features)

    def points_table(self) -> pd.DataFrame:
        return pd.DataFrame(self._model().points_table())

    def selection_report(self) -> pd.DataFrame:
        return pd.DataFrame([r.as_dict() for r in getattr(self, "selection_", [])])

    def to_json(self) -> str:
        return self._model().to_json()

    def _names(self) -> list[str] | None:
        names = getattr(self, "feature_names_in_", None)
        return None if names is None else [str(n) for n in names]
