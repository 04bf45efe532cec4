"""The LightGBM challenger: fit, export, SHAP explanations, monotone constraints, odd inputs."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import pytest
from sklearn.base import clone

from puhui.risk import GBMModel, GBMScorer
from puhui.risk.frame import DataError
from puhui.risk.metrics import auc

SMALL: dict[str, Any] = {"max_trees": 60, "early_stopping_rounds": 20}


def gbm_frame(seed: int = 3, n: int = 1500) -> tuple[pd.DataFrame, npt.NDArray[np.int64]]:
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 10, size=n)
    w = rng.normal(size=n)
    kind = rng.choice(["a", "b", "c"], size=n)
    z = -2.0 + 0.3 * (x - 5) + 0.5 * w + np.where(kind == "c", 0.8, 0.0)
    y = (rng.random(n) < 1.0 / (1.0 + np.exp(-z))).astype(np.int64)
    frame = pd.DataFrame({"x": x, "w": w, "kind": kind})
    frame.loc[::17, "w"] = np.nan
    return frame, y


@pytest.fixture(scope="module")
def data() -> tuple[pd.DataFrame, npt.NDArray[np.int64]]:
    return gbm_frame()


@pytest.fixture(scope="module")
def gbm(data: tuple[pd.DataFrame, npt.NDArray[np.int64]]) -> GBMScorer:
    frame, y = data
    return GBMScorer(**SMALL).fit(frame.iloc[:1000], y[:1000])


@pytest.fixture(scope="module")
def held_out(data: tuple[pd.DataFrame, npt.NDArray[np.int64]]) -> pd.DataFrame:
    return data[0].iloc[1000:].reset_index(drop=True)


def test_fit_and_predict_proba(
    gbm: GBMScorer, held_out: pd.DataFrame, data: tuple[pd.DataFrame, npt.NDArray[np.int64]]
) -> None:
    proba = gbm.predict_proba(held_out)
    assert proba.shape == (len(held_out), 2)
    assert np.allclose(proba.sum(axis=1), 1.0)
    assert np.all((proba[:, 1] > 0) & (proba[:, 1] < 1))
    assert auc(data[1][1000:], proba[:, 1]) > 0.65
    trees = gbm.model_.metadata["trees"]
    assert 1 <= trees <= SMALL["max_trees"]
    assert gbm.model_.booster.num_trees() == trees
    assert gbm.model_.categories == {"kind": ["a", "b", "c"]}
    assert list(gbm.classes_) == [0, 1]
    assert set(gbm.predict(held_out).tolist()) <= {0, 1}


def test_scores_are_the_scaled_log_odds(gbm: GBMScorer, held_out: pd.DataFrame) -> None:
    pd_ = gbm.predict_proba(held_out)[:, 1]
    scores = gbm.predict_score(held_out)
    s = gbm.model_.scaling
    assert np.allclose(scores, s.offset - s.factor * np.log(pd_ / (1 - pd_)), atol=0.005 + 1e-9)
    # higher PD, lower (or, after rounding to 0.01, equal) score
    order = np.argsort(pd_)
    assert np.all(np.diff(scores[order]) <= 0)


def test_json_round_trip_reproduces_predictions_exactly(
    gbm: GBMScorer, held_out: pd.DataFrame
) -> None:
    back = GBMModel.from_json(gbm.to_json())
    assert np.array_equal(back.predict_pd(held_out), gbm.predict_proba(held_out)[:, 1])
    assert np.array_equal(back.scores(held_out), gbm.predict_score(held_out))
    assert back.features == gbm.model_.features
    assert back.categories == gbm.model_.categories
    row = held_out.iloc[0].to_dict()
    assert back.score_one(row).score == gbm.explain(row).score


def test_same_seed_gives_the_same_booster(data: tuple[pd.DataFrame, npt.NDArray[np.int64]]) -> None:
    frame, y = data
    one = GBMScorer(**SMALL, random_state=7).fit(frame.iloc[:600], y[:600])
    two = GBMScorer(**SMALL, random_state=7).fit(frame.iloc[:600], y[:600])
    assert one.model_.booster.model_to_string() == two.model_.booster.model_to_string()


def test_explain_adds_up(gbm: GBMScorer, held_out: pd.DataFrame) -> None:
    for row in held_out.iloc[:50].to_dict("records"):
        r = gbm.explain(row)
        assert r.base + sum(c.points for c in r.contributions) == pytest.approx(r.score, abs=1e-6)
        assert [c.feature for c in r.contributions] == ["x", "w", "kind"]
        # PD comes from the exact log-odds; the score is rounded to 0.01 points (≈ 3e-4 in
        # log-odds), so the two agree to that precision
        assert r.pd == pytest.approx(gbm.model_.scaling.pd_of_score(r.score), rel=1e-3)


def test_explain_matches_predict_score_to_rounding(gbm: GBMScorer, held_out: pd.DataFrame) -> None:
    batch = gbm.predict_score(held_out)
    proba = gbm.predict_proba(held_out)[:, 1]
    for i, row in enumerate(held_out.iloc[:50].to_dict("records")):
        r = gbm.explain(row)
        assert abs(r.score - batch[i]) <= 0.005 + 1e-9
        assert r.pd == pytest.approx(proba[i], rel=1e-9)


def test_explain_score_equals_predict_score(gbm: GBMScorer, held_out: pd.DataFrame) -> None:
    batch = gbm.predict_score(held_out)
    for i, row in enumerate(held_out.iloc[:50].to_dict("records")):
        explained = gbm.explain(row)
        plain = gbm.model_.score_one(row, explain=False)
        assert explained.score == pytest.approx(batch[i], abs=1e-6)
        assert plain.score == pytest.approx(explained.score, abs=1e-6)


def test_predict_score_on_numpy_uses_the_fitted_column_names(
    data: tuple[pd.DataFrame, npt.NDArray[np.int64]],
) -> None:
    frame, y = data
    numeric = frame[["x", "w"]]
    est = GBMScorer(**SMALL).fit(numeric.iloc[:800], y[:800])
    rows = numeric.iloc[800:850]
    # predict_proba already does it
    assert np.array_equal(est.predict_proba(rows.to_numpy()), est.predict_proba(rows))
    assert np.array_equal(est.predict_score(rows.to_numpy()), est.predict_score(rows))


def monotone_violation(
    est: GBMScorer, frame: pd.DataFrame, feature: str, direction: int = 1
) -> float:
    """The largest move of P(bad) against ``direction`` along a grid of ``feature``, with every
    other column held at the values of one of 25 seeded rows (0.0 when there is none)."""
    lo, hi = float(frame[feature].min()), float(frame[feature].max())
    grid = np.linspace(lo - 1, hi + 1, 121)
    rng = np.random.default_rng(0)
    worst = 0.0
    for i in rng.choice(len(frame), size=25, replace=False):
        probe = pd.DataFrame([frame.iloc[int(i)].to_dict()] * len(grid))
        probe[feature] = grid
        steps = direction * np.diff(est.predict_proba(probe)[:, 1])
        worst = min(worst, float(steps.min()))
    return -worst


def test_monotone_spec_reaches_lightgbm_in_column_order(
    data: tuple[pd.DataFrame, npt.NDArray[np.int64]],
) -> None:
    frame, y = data
    est = GBMScorer(**SMALL, monotone={"w": -1, "x": 1}).fit(frame.iloc[:600], y[:600])
    assert est.model_.metadata["params"]["monotone_constraints"] == [1, -1, 0]
    plain = GBMScorer(**SMALL).fit(frame.iloc[:600], y[:600])
    assert "monotone_constraints" not in plain.model_.metadata["params"]


def test_monotone_constraint_holds_on_complete_data(
    data: tuple[pd.DataFrame, npt.NDArray[np.int64]],
) -> None:
    frame, y = data
    complete = frame.assign(w=frame["w"].fillna(0.0))
    up = GBMScorer(**SMALL, monotone={"x": 1}).fit(complete, y)
    assert monotone_violation(up, complete, "x") <= 1e-12
    down = GBMScorer(**SMALL, monotone={"w": -1}).fit(complete, y)
    assert monotone_violation(down, complete, "w", direction=-1) <= 1e-12


def test_monotone_constraint_holds_on_a_grid(
    data: tuple[pd.DataFrame, npt.NDArray[np.int64]],
) -> None:
    frame, y = data
    assert frame["w"].isna().any()  # credit data has gaps
    est = GBMScorer(**SMALL, monotone={"x": 1}).fit(frame, y)
    assert monotone_violation(est, frame, "x") <= 1e-12


def test_unseen_category_and_missing_score_as_missing(
    gbm: GBMScorer, held_out: pd.DataFrame
) -> None:
    row = {"x": 5.0, "w": 0.1, "kind": "a"}
    unseen = gbm.explain({**row, "kind": "never-seen"})
    missing = gbm.explain({**row, "kind": None})
    absent = gbm.explain({"x": 5.0, "w": 0.1})
    assert unseen.score == missing.score == absent.score
    assert np.isfinite(unseen.score)
    assert next(c for c in missing.contributions if c.feature == "kind").value == "missing"
    # the batch path agrees with the one-row path
    batch = gbm.predict_proba(
        pd.DataFrame([{**row, "kind": "never-seen"}, {**row, "kind": None}, {**row, "w": None}])
    )[:, 1]
    assert batch[0] == batch[1]
    assert batch[0] == pytest.approx(missing.pd, rel=1e-12)
    assert batch[2] == pytest.approx(gbm.explain({**row, "w": None}).pd, rel=1e-12)
    # a column absent from the frame is missing for every row
    no_kind = gbm.predict_proba(held_out.drop(columns=["kind"]))[:, 1]
    as_none = gbm.predict_proba(held_out.assign(kind=None))[:, 1]
    assert np.array_equal(no_kind, as_none)


def test_pandas_na_in_a_row_scores_as_missing(gbm: GBMScorer) -> None:
    row = {"x": 5.0, "w": 0.1, "kind": "a"}
    assert gbm.explain({**row, "kind": pd.NA}).score == gbm.explain({**row, "kind": None}).score
    assert gbm.explain({**row, "w": pd.NA}).score == gbm.explain({**row, "w": None}).score


def test_nan_is_shown_as_missing_in_reasons(gbm: GBMScorer) -> None:
    r = gbm.explain({"x": 5.0, "w": float("nan"), "kind": "a"})
    w = next(c for c in r.contributions if c.feature == "w")
    assert w.value == "missing"
    assert "nan" not in w.text_en


@pytest.mark.parametrize(
    "monotone",
    [{"nope": 1}, {"x": 2}, {"x": "up"}, {"x": -2}],
    ids=["unknown-column", "two", "text", "minus-two"],
)
def test_bad_monotone_spec_is_a_data_error(
    monotone: dict[str, Any], data: tuple[pd.DataFrame, npt.NDArray[np.int64]]
) -> None:
    frame, y = data
    with pytest.raises(DataError, match="monotone"):
        GBMScorer(**SMALL, monotone=monotone).fit(frame.iloc[:300], y[:300])


def test_bad_input_is_a_data_error(data: tuple[pd.DataFrame, npt.NDArray[np.int64]]) -> None:
    frame, y = data
    with pytest.raises(DataError, match=r"^X"):
        GBMScorer(**SMALL).fit(pd.DataFrame(index=range(10)), y[:10])
    with pytest.raises(DataError, match=r"^target"):
        GBMScorer(**SMALL).fit(frame.iloc[:300], y[:299])
    with pytest.raises(DataError, match=r"^target"):
        GBMScorer(**SMALL).fit(frame.iloc[:300], np.zeros(300, dtype=np.int64))
    with pytest.raises(DataError, match="not fitted"):
        GBMScorer().predict_proba(frame)


def test_clone_and_get_params() -> None:
    est = GBMScorer(max_trees=10, monotone={"x": 1}, texts={"x": ("甲", "X")})
    copy = clone(est)
    assert copy.get_params() == est.get_params()
    assert copy.get_params()["monotone"] == {"x": 1}
