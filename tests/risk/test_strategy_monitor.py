"""The decision strategy, champion/challenger assignment, the training profile and monitoring."""

from __future__ import annotations

import itertools
from datetime import date
from decimal import ROUND_CEILING, Decimal
from typing import Any

import numpy as np
import pandas as pd
import pytest

from puhui.domain.pricing import lpr_on
from puhui.risk.champion import BUCKETS, bucket, in_challenger_arm
from puhui.risk.monitor import GradeOutcome, Thresholds, monitor
from puhui.risk.profile import build_profile, n_bins, profile_bin, profile_bins, score_bin
from puhui.risk.strategy import DEFAULT_STRATEGY, DecisionStrategy

# ----------------------------------------------------------------------------- strategy
CUTS = [("A", 0.02), ("B", 0.04), ("C", 0.07), ("D", 0.10)]


@pytest.mark.parametrize(("grade", "cut"), CUTS)
def test_grade_at_and_around_each_cut_off(grade: str, cut: float) -> None:
    s = DEFAULT_STRATEGY
    assert s.grade(cut) == grade  # the cut-off belongs to its grade
    assert s.grade(cut - 1e-9) == grade
    following = {g: n for (g, _), (n, _) in itertools.pairwise(CUTS)}.get(grade)
    assert s.grade(cut + 1e-9) == following  # None past D
    assert not s.refer(cut)


def test_grade_of_the_extremes() -> None:
    assert DEFAULT_STRATEGY.grade(0.0) == "A"
    assert DEFAULT_STRATEGY.grade(1.0) is None


@pytest.mark.parametrize(
    ("pd_", "refer", "declined"),
    [
        (0.10, False, False),  # grade D
        (0.1000001, True, False),
        (0.12, True, False),
        (0.14, True, False),  # the refer band's top is referred
        (0.1400001, False, True),
        (0.5, False, True),
    ],
)
def test_refer_band_and_decline_beyond(pd_: float, refer: bool, declined: bool) -> None:
    s = DEFAULT_STRATEGY
    assert s.refer(pd_) is refer
    assert (s.grade(pd_) is None and not s.refer(pd_)) is declined


def rate_by_hand(pd_: str, on: date) -> Decimal:
    raw = lpr_on(on) + Decimal("0.025") + Decimal(pd_) * Decimal("0.45")
    steps = (raw / Decimal("0.0005")).to_integral_value(rounding=ROUND_CEILING)
    return steps * Decimal("0.0005")


@pytest.mark.parametrize("pd_", ["0", "0.0001", "0.01", "0.0337", "0.05", "0.0999", "0.14"])
@pytest.mark.parametrize("on", [date(2025, 6, 1), date(2024, 8, 1), date(2023, 1, 15)])
def test_annual_rate_is_lpr_plus_cost_margin_and_expected_loss_rounded_up(
    pd_: str, on: date
) -> None:
    rate = DEFAULT_STRATEGY.annual_rate(float(pd_), on)
    assert rate == rate_by_hand(pd_, on)
    # a multiple of 5 bp, at or above the unrounded price, by less than 5 bp
    exact = lpr_on(on) + Decimal("0.025") + Decimal(pd_) * Decimal("0.45")
    assert rate % Decimal("0.0005") == 0
    assert exact <= rate < exact + Decimal("0.0005")


def test_annual_rate_worked_example() -> None:
    # LPR 3.00 % on 2025-06-01; 3.00 + 2.50 + 3.37 × 0.45 = 7.0165 % → 7.05 %
    assert lpr_on(date(2025, 6, 1)) == Decimal("0.0300")
    assert DEFAULT_STRATEGY.annual_rate(0.0337, date(2025, 6, 1)) == Decimal("0.0705")
    # exactly on a step stays there: 3.00 + 2.50 + 1.00 × 0.45 = 5.95 %
    assert DEFAULT_STRATEGY.annual_rate(0.01, date(2025, 6, 1)) == Decimal("0.0595")


@pytest.mark.parametrize(
    ("cuts", "refer_max"),
    [
        ((("A", 0.04), ("B", 0.02)), 0.14),  # falling
        ((), 0.14),  # none
        ((("A", 0.02), ("B", 0.2)), 0.14),  # past the refer band
    ],
    ids=["falling", "empty", "beyond-refer"],
)
def test_invalid_cut_offs_raise(cuts: tuple[tuple[str, float], ...], refer_max: float) -> None:
    with pytest.raises(ValueError, match="cut-offs"):
        DecisionStrategy(grade_max_pd=cuts, refer_max_pd=refer_max)


def test_equal_cut_offs_raise() -> None:
    with pytest.raises(ValueError, match="cut-offs"):
        DecisionStrategy(grade_max_pd=(("A", 0.02), ("B", 0.02), ("C", 0.07)))


def test_custom_strategy_grades_with_its_own_cut_offs() -> None:
    s = DecisionStrategy(grade_max_pd=(("X", 0.05), ("Y", 0.08)), refer_max_pd=0.08)
    assert s.grade(0.05) == "X"
    assert s.grade(0.06) == "Y"
    assert s.grade(0.081) is None
    assert not s.refer(0.081)  # no refer band at all


# ----------------------------------------------------------------------------- champion
def test_bucket_is_deterministic_and_in_range() -> None:
    ids = [f"APP-{i:05d}" for i in range(2000)]
    first = [bucket(i) for i in ids]
    assert first == [bucket(i) for i in ids]
    assert all(0 <= b < BUCKETS for b in first)
    assert len(set(first)) > 1500  # spread out, not clumped
    # the salt changes the assignment
    assert [bucket(i, salt="other") for i in ids[:50]] != first[:50]


@pytest.mark.parametrize("share", [0.05, 0.1, 0.3, 0.5])
def test_challenger_share_is_close_to_the_asked_share(share: float) -> None:
    ids = [f"app-{i}" for i in range(10_000)]
    picked = sum(in_challenger_arm(i, share) for i in ids)
    assert abs(picked / len(ids) - share) <= 0.02
    # the arm is the bucket rule
    assert all(in_challenger_arm(i, share) == (bucket(i) < share * BUCKETS) for i in ids[:500])


def test_share_edge_cases() -> None:
    ids = [f"edge-{i}" for i in range(3000)]
    assert not any(in_challenger_arm(i, 0.0) for i in ids)
    assert all(in_challenger_arm(i, 1.0) for i in ids)
    # growing the share only adds applications to the challenger arm
    small = {i for i in ids if in_challenger_arm(i, 0.1)}
    large = {i for i in ids if in_challenger_arm(i, 0.2)}
    assert small <= large


@pytest.mark.parametrize("share", [-0.01, 1.01, 2.0, float("nan")])
def test_bad_share_raises(share: float) -> None:
    with pytest.raises(ValueError, match="share"):
        in_challenger_arm("app-1", share)


# ----------------------------------------------------------------------------- profile
def training_sample(seed: int = 0, n: int = 2000) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "revenue": rng.lognormal(13, 1, size=n),
            "years": rng.integers(0, 25, size=n).astype(float),
            "industry": rng.choice(["C", "F", "G", "I"], size=n, p=[0.4, 0.3, 0.2, 0.1]),
        }
    )
    frame.loc[frame.index % 20 == 0, "years"] = np.nan
    frame.loc[frame.index % 25 == 0, "industry"] = None
    scores = rng.normal(600, 40, size=n)
    return frame, scores


@pytest.fixture(scope="module")
def profile() -> dict[str, Any]:
    frame, scores = training_sample()
    return build_profile(frame, scores)


def test_profile_counts_sum_to_rows(profile: dict[str, Any]) -> None:
    rows = 2000
    for name, entry in profile["features"].items():
        assert sum(entry["counts"]) == rows, name
        assert len(entry["counts"]) == n_bins(entry) + 1
    assert sum(profile["score"]["counts"]) == rows
    assert len(profile["score"]["counts"]) == len(profile["score"]["edges"]) + 1
    # missing values are counted in slot 0 (index −1)
    assert profile["features"]["years"]["counts"][0] == 100
    assert profile["features"]["industry"]["counts"][0] == 80
    assert profile["features"]["revenue"]["counts"][0] == 0
    assert profile["features"]["industry"]["levels"] == ["C", "F", "G", "I"]
    # deciles: ten score bins of about a tenth each
    assert len(profile["score"]["counts"]) == 10
    assert all(190 <= c <= 210 for c in profile["score"]["counts"])


def test_profile_bin_missing_and_unknown_level(profile: dict[str, Any]) -> None:
    years = profile["features"]["years"]
    industry = profile["features"]["industry"]
    for missing in (None, float("nan"), ""):
        assert profile_bin(years, missing) == -1
        assert profile_bin(industry, missing) == -1
    assert profile_bin(years, "not a number") == -1
    assert profile_bin(industry, "Z") == -1
    assert profile_bin(industry, "G") == industry["levels"].index("G")
    assert profile_bin(years, -100) == 0
    assert profile_bin(years, 1e9) == n_bins(years) - 1
    edges = years["edges"]
    assert profile_bin(years, edges[0]) == 1  # bins are [lo, hi)
    bins = profile_bins(profile, {"years": 3.0, "industry": "Q", "unknown": 1})
    assert set(bins) == {"revenue", "years", "industry"}
    assert bins["revenue"] == -1  # absent → missing
    assert bins["industry"] == -1


def test_profile_bin_of_pandas_na_is_missing(profile: dict[str, Any]) -> None:
    assert profile_bin(profile["features"]["years"], pd.NA) == -1
    assert profile_bin(profile["features"]["industry"], pd.NA) == -1


def test_score_bin(profile: dict[str, Any]) -> None:
    edges = profile["score"]["edges"]
    assert score_bin(profile, -1e9) == 0
    assert score_bin(profile, 1e9) == len(edges)
    assert score_bin(profile, edges[3]) == 4
    assert score_bin(profile, edges[3] - 1e-9) == 3


def test_rare_level_is_left_out_of_the_profile() -> None:
    frame = pd.DataFrame({"k": ["a"] * 500 + ["b"] * 495 + ["rare"] * 5})
    prof = build_profile(frame, np.linspace(500, 700, 1000))
    entry = prof["features"]["k"]
    assert entry["levels"] == ["a", "b"]
    assert entry["counts"] == [5, 500, 495]


# ----------------------------------------------------------------------------- monitor
def bins_of(
    prof: dict[str, Any], frame: pd.DataFrame, scores: np.ndarray
) -> tuple[list[int], dict[str, list[int]]]:
    feature_bins: dict[str, list[int]] = {name: [] for name in prof["features"]}
    for rec in frame.to_dict("records"):
        for name, idx in profile_bins(prof, rec).items():
            feature_bins[name].append(idx)
    return [score_bin(prof, float(s)) for s in scores], feature_bins


def test_no_alert_for_a_sample_like_training(profile: dict[str, Any]) -> None:
    frame, scores = training_sample(seed=1, n=1000)
    score_bins, feature_bins = bins_of(profile, frame, scores)
    report = monitor("m1", profile, score_bins, feature_bins, [])
    assert report.alerts == []
    assert report.applications == 1000
    assert report.score_psi < 0.1
    assert all(v < 0.1 for v in report.feature_csi.values())
    assert set(report.feature_csi) == {"revenue", "years", "industry"}
    assert report.as_dict()["score_stability"] == "stable"


def test_alert_for_a_shifted_score(profile: dict[str, Any]) -> None:
    frame, scores = training_sample(seed=2, n=1000)
    score_bins, feature_bins = bins_of(profile, frame, scores + 45)
    report = monitor("m1", profile, score_bins, feature_bins, [])
    assert report.score_psi >= 0.25
    assert len(report.alerts) == 1
    assert report.alerts[0].startswith("score PSI")


def test_alert_for_a_shifted_feature_names_it(profile: dict[str, Any]) -> None:
    frame, scores = training_sample(seed=3, n=1000)
    frame["revenue"] = frame["revenue"] * 4
    score_bins, feature_bins = bins_of(profile, frame, scores)
    report = monitor("m1", profile, score_bins, feature_bins, [])
    assert report.feature_csi["revenue"] >= 0.25
    assert len(report.alerts) == 1
    assert report.alerts[0].startswith("revenue:")
    assert "CSI" in report.alerts[0]


def test_alert_when_a_feature_goes_missing(profile: dict[str, Any]) -> None:
    frame, scores = training_sample(seed=4, n=1000)
    frame["industry"] = None
    score_bins, feature_bins = bins_of(profile, frame, scores)
    report = monitor("m1", profile, score_bins, feature_bins, [])
    assert any(a.startswith("industry:") for a in report.alerts)


def test_no_stability_alert_below_min_applications(profile: dict[str, Any]) -> None:
    frame, scores = training_sample(seed=5, n=99)
    frame["revenue"] = frame["revenue"] * 4
    score_bins, feature_bins = bins_of(profile, frame, scores + 80)
    report = monitor("m1", profile, score_bins, feature_bins, [])
    # the figures are there, the alerts are not
    assert report.score_psi >= 0.25
    assert report.feature_csi["revenue"] >= 0.25
    assert report.alerts == []
    # one more application and they alert
    frame, scores = training_sample(seed=5, n=100)
    frame["revenue"] = frame["revenue"] * 4
    score_bins, feature_bins = bins_of(profile, frame, scores + 80)
    assert len(monitor("m1", profile, score_bins, feature_bins, []).alerts) == 2
    custom = monitor("m1", profile, score_bins, feature_bins, [], Thresholds(min_applications=1000))
    assert custom.alerts == []


def test_no_applications_no_alert(profile: dict[str, Any]) -> None:
    report = monitor("m1", profile, [], {}, [])
    assert report.applications == 0
    assert report.score_psi == 0.0
    assert report.alerts == []


def test_grade_ranking_alert(profile: dict[str, Any]) -> None:
    grades = [
        GradeOutcome("A", 200, 2),
        GradeOutcome("B", 150, 12),  # 8 %
        GradeOutcome("C", 100, 5),  # 5 %: B is worse than C
        GradeOutcome("D", 50, 6),
    ]
    report = monitor("m1", profile, [], {}, grades)
    assert len(report.alerts) == 1
    alert = report.alerts[0]
    assert "grades no longer rank risk" in alert
    assert "B bad rate 8.0%" in alert and "C bad rate 5.0%" in alert
    # ranking grades raise nothing
    ranked = [GradeOutcome("A", 200, 2), GradeOutcome("B", 150, 5), GradeOutcome("C", 100, 8)]
    assert monitor("m1", profile, [], {}, ranked).alerts == []
    # a grade with too few loans to read is left out of the comparison
    thin = [GradeOutcome("A", 200, 2), GradeOutcome("B", 20, 5), GradeOutcome("C", 100, 8)]
    assert monitor("m1", profile, [], {}, thin).alerts == []
    assert GradeOutcome("E", 0, 0).bad_rate is None
    assert report.as_dict()["grades"][1] == {
        "grade": "B",
        "loans": 150,
        "bads": 12,
        "bad_rate": pytest.approx(0.08),
    }
