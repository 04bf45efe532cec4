"""The logistic scorecard end to end: selection with reasons, scoring paths that agree, export,
explanations, points scaling, the scikit-learn contract and input errors."""

from __future__ import annotations

import math
import re
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import pytest
from sklearn.base import clone

from puhui.risk import Scorecard, ScorecardModel
from puhui.risk.frame import DataError
from puhui.risk.scaling import PointsScaling

REGION_EFFECT = {"north": -0.5, "south": 0.0, "east": 0.4, "west": 0.9}


def synthetic_frame(seed: int = 7, n: int = 3000) -> tuple[pd.DataFrame, npt.NDArray[np.int64]]:
    """Three informative numbers, one informative category, noise, an exact copy of ``a``,
    and a column with no values at all; ``c`` has 5 % missing values that are mostly bad."""
    rng = np.random.default_rng(seed)
    a = rng.normal(size=n)
    b = rng.uniform(0, 10, size=n)
    c = rng.exponential(2, size=n)
    region = rng.choice(list(REGION_EFFECT), size=n, p=[0.4, 0.3, 0.2, 0.1])
    z = -1.8 + 0.9 * a - 0.2 * (b - 5) + 0.35 * (c - 2) + np.vectorize(REGION_EFFECT.get)(region)
    y = (rng.random(n) < 1.0 / (1.0 + np.exp(-z))).astype(np.int64)
    miss = rng.random(n) < 0.05
    c = np.where(miss, np.nan, c)
    y[miss] = (rng.random(int(miss.sum())) < 0.6).astype(np.int64)
    frame = pd.DataFrame(
        {
            "a": a,
            "b": b,
            "c": c,
            "region": region,
            "noise": rng.normal(size=n),
            "a_copy": a.copy(),
            "empty": np.full(n, np.nan),
        }
    )
    return frame, y


@pytest.fixture(scope="module")
def data() -> tuple[pd.DataFrame, npt.NDArray[np.int64]]:
    return synthetic_frame()


@pytest.fixture(scope="module")
def card(data: tuple[pd.DataFrame, npt.NDArray[np.int64]]) -> Scorecard:
    frame, y = data
    return Scorecard().fit(frame.iloc[:2000], y[:2000])


@pytest.fixture(scope="module")
def test_frame(data: tuple[pd.DataFrame, npt.NDArray[np.int64]]) -> pd.DataFrame:
    return data[0].iloc[2000:].reset_index(drop=True)


# ----------------------------------------------------------------------------- selection
def test_selection_drops_duplicate_and_empty_with_reasons(card: Scorecard) -> None:
    report = card.selection_report().set_index("name")
    assert {"a", "b", "c", "region"} <= set(card.model_.features)
    assert set(card.model_.features) <= {"a", "b", "c", "region", "noise"}
    assert not report.loc["a_copy", "kept"]
    assert "correlated" in report.loc["a_copy", "reason"]
    assert report.loc["a_copy", "corr_with"] == "a"
    assert "with a," in report.loc["a_copy", "reason"]
    assert report.loc["a_copy", "max_corr"] == pytest.approx(1.0)
    assert not report.loc["empty", "kept"]
    assert report.loc["empty", "reason"] == "no values at all"
    for name in ("a", "b", "c", "region"):
        assert report.loc[name, "kept"]
        assert report.loc[name, "reason"] == "kept"
        assert report.loc[name, "p_value"] < 1e-6
        assert report.loc[name, "coef"] < 0  # more WOE (better) → less likely bad


def test_pure_noise_is_refused_by_iv_or_the_g_test_at_about_the_stated_rate() -> None:
    """Fine bins can give noise an IV over 0.02; the G-test (p > 0.2 is refused) catches
    most of it. Over 40 independent noise columns about 80 % must go, each with a reason."""
    rng = np.random.default_rng(11)
    n = 2000
    x = rng.normal(size=n)
    y = (rng.random(n) < 1 / (1 + np.exp(1.5 - 1.2 * x))).astype(np.int64)
    noise = {f"noise{i}": rng.normal(size=n) for i in range(40)}
    card = Scorecard(max_corr=1.0).fit(pd.DataFrame({"x": x, **noise}), y)
    report = card.selection_report().set_index("name")
    refused = [
        n
        for n in noise
        if report.loc[n, "reason"].startswith(("IV ", "bins separate no better than chance"))
    ]
    assert len(refused) >= 28, f"only {len(refused)} of 40 noise columns refused"
    assert report.loc["x", "kept"]


def test_selection_report_has_one_row_per_input_column(
    card: Scorecard, data: tuple[pd.DataFrame, npt.NDArray[np.int64]]
) -> None:
    report = card.selection_report()
    assert sorted(report["name"]) == sorted(data[0].columns)
    assert report["name"].is_unique
    assert (report["reason"] != "").all()


# ----------------------------------------------------------------------------- predicting
def test_predict_proba_is_a_distribution(card: Scorecard, test_frame: pd.DataFrame) -> None:
    proba = card.predict_proba(test_frame)
    assert proba.shape == (len(test_frame), 2)
    assert np.allclose(proba.sum(axis=1), 1.0)
    assert np.all((proba[:, 1] > 0) & (proba[:, 1] < 1))
    assert set(card.predict(test_frame).tolist()) <= {0, 1}
    assert list(card.classes_) == [0, 1]


def test_scorecard_ranks_risk_on_held_out_rows(
    card: Scorecard, data: tuple[pd.DataFrame, npt.NDArray[np.int64]], test_frame: pd.DataFrame
) -> None:
    from puhui.risk.metrics import auc

    y_test = data[1][2000:]
    assert auc(y_test, card.predict_proba(test_frame)[:, 1]) > 0.7
    # a higher score is a lower PD
    scores = card.predict_score(test_frame)
    pd_ = card.predict_proba(test_frame)[:, 1]
    order = np.argsort(scores)
    assert np.all(np.diff(pd_[order]) <= 1e-15)


def test_json_export_reproduces_scores_exactly(card: Scorecard, test_frame: pd.DataFrame) -> None:
    back = ScorecardModel.from_json(card.model_.to_json())
    assert np.array_equal(back.scores(test_frame), card.predict_score(test_frame))
    assert np.array_equal(back.predict_pd(test_frame), card.predict_proba(test_frame)[:, 1])
    assert back.to_dict() == card.model_.to_dict()
    assert card.to_json() == card.model_.to_json()


def test_explain_adds_up_and_matches_batch_scores(
    card: Scorecard, test_frame: pd.DataFrame
) -> None:
    batch = card.predict_score(test_frame)
    for i, row in enumerate(test_frame.iloc[:50].to_dict("records")):
        result = card.explain(row)
        total = result.base + sum(c.points for c in result.contributions)
        assert total == pytest.approx(result.score, abs=1e-6)
        assert result.score == batch[i]
        assert all(c.points <= 0 for c in result.contributions)
        assert {c.feature for c in result.contributions} == set(card.model_.features)
        assert result.pd == pytest.approx(card.model_.scaling.pd_of_score(result.score))
        # reasons are the costliest contributions, worst first
        reasons = result.reasons(2)
        assert all(r.points < 0 for r in reasons)
        assert [r.points for r in reasons] == sorted(r.points for r in reasons)
    assert card.explain(test_frame.iloc[0].to_dict()).base == card.model_.max_score


def test_key_order_and_extra_keys_do_not_matter(
    data: tuple[pd.DataFrame, npt.NDArray[np.int64]],
) -> None:
    frame, y = data
    cols = ["a", "b", "c", "region", "noise"]
    card = Scorecard().fit(frame[cols].iloc[:2000], y[:2000])
    reordered = Scorecard().fit(frame[cols[::-1]].iloc[:2000], y[:2000])
    rows = frame[cols].iloc[2000:2040]
    for row in rows.to_dict("records"):
        shuffled = {k: row[k] for k in ["region", "noise", "c", "a", "b"]}
        shuffled["unknown_extra"] = "whatever"
        shuffled["another"] = 12345
        assert card.explain(shuffled).score == card.explain(row).score
        assert reordered.explain(row).score == card.explain(row).score
    # batch scoring by column name, not position
    assert np.array_equal(card.predict_score(rows[cols[::-1]]), card.predict_score(rows))
    with_extra = rows.assign(unknown_extra=1.0)
    assert np.array_equal(card.predict_score(with_extra), card.predict_score(rows))


def test_missing_and_unseen_category_score_as_documented(
    card: Scorecard, test_frame: pd.DataFrame
) -> None:
    model = card.model_
    var = {v.name: v for v in model.variables}
    row = test_frame.iloc[0].to_dict()
    base = card.explain(row)

    # c had missing values in training: a missing c scores its Missing bin's points
    c = var["c"]
    miss_idx = c.binning.missing_index
    assert miss_idx is not None
    for missing in (None, float("nan")):
        r = card.explain({**row, "c": missing})
        c_contrib = next(x for x in r.contributions if x.feature == "c")
        assert c_contrib.value == "Missing"
        assert c_contrib.points == pytest.approx(c.points[miss_idx] - c.best_points, abs=1e-9)
        old = c.points_of_index(c.binning.index_one(row["c"]))
        assert r.score == pytest.approx(base.score - old + c.points[miss_idx], abs=1e-9)
    # an absent key counts as missing too
    absent = {k: v for k, v in row.items() if k != "c"}
    assert card.explain(absent).score == card.explain({**row, "c": None}).score
    # missing c is mostly bad: its points are below the average applicant's
    assert c.points[miss_idx] < 0

    # region had no rare levels: an unseen level gets the neutral (WOE 0) points
    region = var["region"]
    assert not any(b.kind == "rare" for b in region.binning.bins)
    assert region.unseen_points == 0.0
    r = card.explain({**row, "region": "atlantis"})
    contrib = next(x for x in r.contributions if x.feature == "region")
    assert contrib.value == "unseen"
    old = region.points_of_index(region.binning.index_one(row["region"]))
    assert r.score == pytest.approx(base.score - old + 0.0, abs=1e-9)
    batch = card.predict_score(pd.DataFrame([{**row, "region": "atlantis"}]))
    assert batch[0] == r.score


def test_unseen_category_goes_to_the_rare_bin() -> None:
    rng = np.random.default_rng(21)
    n = 3000
    rare = [f"r{i}" for i in range(8)]
    common = rng.choice(["A", "B", "C"], size=n - 8 * 25).tolist()
    k = common + [lvl for lvl in rare for _ in range(25)]
    x = rng.normal(size=n)
    rate = np.array([{"A": 0.1, "B": 0.2, "C": 0.3}.get(v, 0.6) for v in k])
    p = 1 / (1 + np.exp(-(np.log(rate / (1 - rate)) + 0.8 * x)))
    y = (rng.random(n) < p).astype(np.int64)
    frame = pd.DataFrame({"k": k, "x": x})
    card = Scorecard(min_bin_share=0.02).fit(frame, y)
    var = {v.name: v for v in card.model_.variables}["k"]
    rare_idx = [i for i, b in enumerate(var.binning.bins) if b.kind == "rare"]
    assert len(rare_idx) == 1
    r = card.explain({"k": "never-seen", "x": 0.0})
    contrib = next(c for c in r.contributions if c.feature == "k")
    assert contrib.points == pytest.approx(var.points[rare_idx[0]] - var.best_points, abs=1e-9)
    assert r.score == card.explain({"k": "r0", "x": 0.0}).score


def test_special_codes_and_unseen_worst_end_to_end() -> None:
    rng = np.random.default_rng(31)
    n = 3000
    months = rng.uniform(0, 60, size=n)
    z = -1.0 - 0.04 * months
    no_history = rng.random(n) < 0.08
    z = np.where(no_history, 0.8, z)
    months = np.where(no_history, -1.0, months)
    region = rng.choice(["n", "s", "e"], size=n)
    z = z + np.where(region == "e", 0.6, 0.0)
    y = (rng.random(n) < 1 / (1 + np.exp(-z))).astype(np.int64)
    frame = pd.DataFrame({"months": months, "region": region})
    card = Scorecard(special_codes={"months": [-1]}, unseen="worst").fit(frame, y)
    var = {v.name: v for v in card.model_.variables}
    months_var = var["months"]
    special = [i for i, b in enumerate(months_var.binning.bins) if b.kind == "special"]
    assert len(special) == 1
    sp = months_var.binning.bins[special[0]]
    assert sp.count == int(no_history.sum())
    r = card.explain({"months": -1, "region": "n"})
    c = next(x for x in r.contributions if x.feature == "months")
    assert c.value == sp.label
    assert c.points == pytest.approx(months_var.points[special[0]] - months_var.best_points)
    # no history is risky: among the worst bins
    assert months_var.points[special[0]] <= sorted(months_var.points)[1]
    # unseen="worst": an unseen region scores the worst region's points
    region_var = var["region"]
    assert region_var.unseen_points == min(region_var.points)
    unseen = card.explain({"months": 30.0, "region": "atlantis"})
    worst = card.explain({"months": 30.0, "region": "e"})
    assert unseen.score == worst.score
    assert all(x.points <= 0 for x in unseen.contributions)


def test_points_table_rows(card: Scorecard) -> None:
    table = card.points_table()
    model = card.model_
    assert table.iloc[0]["variable"] == "(base points)"
    assert table.iloc[0]["points"] == round(model.intercept_points, 2)
    expected_rows = 1 + sum(len(v.binning.bins) + 1 for v in model.variables)
    assert len(table) == expected_rows
    for v in model.variables:
        rows = table[table["variable"] == v.name]
        assert len(rows) == len(v.binning.bins) + 1
        assert list(rows["bin"]) == [b.label for b in v.binning.bins] + ["(unseen)"]
        assert list(rows["points"]) == [*v.points, v.unseen_points]
        assert rows["count"].iloc[:-1].sum() == sum(b.count for b in v.binning.bins)


def test_points_add_up_to_the_score_by_hand(card: Scorecard, test_frame: pd.DataFrame) -> None:
    model = card.model_
    row = test_frame.iloc[3].to_dict()
    by_hand = model.intercept_points + sum(
        v.points_of_index(v.binning.index_one(row.get(v.name))) for v in model.variables
    )
    assert card.explain(row).score == round(by_hand, 2)
    # and the points are the scaled WOE × coefficient
    for v in model.variables:
        for b, pts in zip(v.binning.bins, v.points, strict=True):
            assert pts == round(-model.scaling.factor * v.coef * b.woe, 2)


# ----------------------------------------------------------------------------- scaling
def test_points_scaling_base_odds_and_pdo() -> None:
    s = PointsScaling(base_score=600, base_odds=50, pdo=20)
    # odds of good 50:1 → log-odds of bad = −ln 50
    assert s.score_of_logit(-math.log(50)) == pytest.approx(600)
    assert s.score_of_logit(-math.log(100)) == pytest.approx(620)
    assert s.score_of_logit(-math.log(25)) == pytest.approx(580)
    assert s.pd_of_score(600) == pytest.approx(1 / 51)
    assert s.pd_of_score(620) == pytest.approx(1 / 101)
    for score in (450.0, 600.0, 733.3):
        assert s.score_of_logit(s.logit_of_score(score)) == pytest.approx(score)
    arr = s.pd_of_scores(np.array([580.0, 600.0, 620.0]))
    assert arr == pytest.approx([1 / 26, 1 / 51, 1 / 101])
    other = PointsScaling(base_score=500, base_odds=10, pdo=40)
    assert other.score_of_logit(-math.log(10)) == pytest.approx(500)
    assert other.score_of_logit(-math.log(20)) == pytest.approx(540)
    with pytest.raises(ValueError):
        PointsScaling(pdo=0)
    with pytest.raises(ValueError):
        PointsScaling(base_odds=-1)


def test_custom_scaling_reaches_the_model(
    data: tuple[pd.DataFrame, npt.NDArray[np.int64]],
) -> None:
    frame, y = data
    card = Scorecard(base_score=500, base_odds=20, pdo=50).fit(
        frame[["a", "b"]].iloc[:1500], y[:1500]
    )
    proba = card.predict_proba(frame[["a", "b"]].iloc[1500:1600])[:, 1]
    scores = card.predict_score(frame[["a", "b"]].iloc[1500:1600])
    logit = np.log(proba / (1 - proba))
    assert np.allclose(scores, card.model_.scaling.offset - 50 / math.log(2) * logit)


# ----------------------------------------------------------------------------- sklearn
def test_clone_and_get_params_round_trip() -> None:
    est = Scorecard(
        max_bins=5,
        special_codes={"a": [-1.0]},
        texts={"a": ("甲", "A")},
        unseen="worst",
        pdo=40.0,
    )
    params = est.get_params()
    assert params["max_bins"] == 5
    assert params["unseen"] == "worst"
    copy = clone(est)
    assert copy.get_params() == params
    assert copy is not est
    rebuilt = Scorecard(**params)
    assert rebuilt.get_params() == params
    rebuilt.set_params(max_bins=3)
    assert rebuilt.max_bins == 3


def test_clone_of_a_fitted_card_is_unfitted(card: Scorecard) -> None:
    copy = clone(card)
    assert not hasattr(copy, "model_")
    with pytest.raises(DataError, match="not fitted"):
        copy.predict_score(pd.DataFrame({"a": [0.0]}))


def test_numpy_input_uses_the_fitted_column_names(
    data: tuple[pd.DataFrame, npt.NDArray[np.int64]],
) -> None:
    frame, y = data
    x = frame[["a", "b"]]
    card = Scorecard().fit(x.iloc[:1500], y[:1500])
    rows = x.iloc[1500:1550]
    assert np.array_equal(card.predict_score(rows.to_numpy()), card.predict_score(rows))
    assert list(card.feature_names_in_) == ["a", "b"]
    assert card.n_features_in_ == 2


# ----------------------------------------------------------------------------- stability
def test_slices_drop_a_variable_that_shifts_between_slices() -> None:
    rng = np.random.default_rng(11)
    n = 3000
    month = np.repeat(["2024-01", "2024-02"], n // 2)
    shift = np.where(month == "2024-02", 1.5, 0.0)
    a = rng.normal(size=n)
    drift = rng.normal(size=n) + shift
    z = -1.5 + 0.8 * a + 0.6 * (drift - shift)
    y = (rng.random(n) < 1 / (1 + np.exp(-z))).astype(np.int64)
    frame = pd.DataFrame({"a": a, "drift": drift})
    card = Scorecard().fit(frame, y, slices=month)
    report = card.selection_report().set_index("name")
    assert not report.loc["drift", "kept"]
    assert "CSI" in report.loc["drift", "reason"]
    assert report.loc["drift", "csi"] > 0.25
    assert report.loc["a", "kept"]
    assert report.loc["a", "csi"] < 0.1
    # without slices the same variable is kept: the stability filter did it
    assert "drift" in Scorecard().fit(frame, y).model_.features
    with pytest.raises(DataError, match="slices"):
        Scorecard().fit(frame, y, slices=month[:-1])


# ----------------------------------------------------------------------------- errors
def small_xy() -> tuple[pd.DataFrame, npt.NDArray[np.int64]]:
    rng = np.random.default_rng(3)
    x = rng.normal(size=200)
    y = (rng.random(200) < 1 / (1 + np.exp(-(x - 1)))).astype(np.int64)
    return pd.DataFrame({"x": x}), y


@pytest.mark.parametrize(
    ("make", "field"),
    [
        (lambda f, y: (pd.DataFrame(index=range(len(f))), y), "X"),
        (lambda f, y: (f, y[:-1]), "target"),
        (lambda f, y: (f, y * 2), "target"),
        (lambda f, y: (f, np.zeros_like(y)), "target"),
        (lambda f, y: (f, np.ones_like(y)), "target"),
        (lambda f, y: (f, np.where(y == 1, np.nan, 0.0)), "target"),
        (lambda f, y: ([[1, 2], [3, 4]], y), "X"),
    ],
    ids=["no-columns", "y-length", "y-0-2", "one-class-0", "one-class-1", "y-nan", "list"],
)
def test_bad_input_raises_data_error_naming_the_field(make: Any, field: str) -> None:
    frame, y = small_xy()
    x_bad, y_bad = make(frame, y)
    with pytest.raises(DataError) as info:
        Scorecard().fit(x_bad, y_bad)
    # the message opens with the field it is about ("X: …", "target: …")
    assert re.match(rf"{field}\b", str(info.value)), str(info.value)


def test_target_error_messages_say_what_is_wrong() -> None:
    frame, y = small_xy()
    with pytest.raises(DataError, match=r"expected 200 values"):
        Scorecard().fit(frame, y[:-1])
    with pytest.raises(DataError, match=r"0/1.*'2'"):
        Scorecard().fit(frame, y * 2)
    with pytest.raises(DataError, match="one class"):
        Scorecard().fit(frame, np.zeros_like(y))


def test_no_variable_passing_selection_is_a_data_error() -> None:
    rng = np.random.default_rng(4)
    frame = pd.DataFrame({"noise": rng.normal(size=500)})
    y = (rng.random(500) < 0.2).astype(np.int64)
    with pytest.raises(DataError, match="no variable passed selection"):
        Scorecard(min_iv=0.5).fit(frame, y)


def test_nullable_dtypes_score_like_numpy_dtypes(card: Scorecard, test_frame: pd.DataFrame) -> None:
    frame = test_frame.copy()
    frame.loc[:9, "region"] = None
    frame.loc[:9, "c"] = np.nan
    nullable = frame.convert_dtypes()
    assert nullable["region"].isna().sum() == 10
    assert np.array_equal(card.predict_score(nullable), card.predict_score(frame))
