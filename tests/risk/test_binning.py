"""Binning and WOE: monotone trends, size limits, missing/special/rare bins, hand-checked WOE."""

from __future__ import annotations

import itertools
import json
import math
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import pytest

from puhui.risk.binning import (
    RARE_LABEL,
    Bin,
    BinningOptions,
    Trend,
    Unseen,
    VariableBinning,
    fit_categorical,
    fit_numeric,
    information_value,
)

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]


def logistic_sample(seed: int, n: int = 4000, slope: float = 1.2) -> tuple[FloatArray, IntArray]:
    """x ~ N(0, 1) and y = 1 (bad) with log-odds −2 + slope·x."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    p = 1.0 / (1.0 + np.exp(-(-2.0 + slope * x)))
    y = (rng.random(n) < p).astype(np.int64)
    return x, y


def value_rates(b: VariableBinning) -> list[float]:
    """Bad rates of the value bins, lowest values first."""
    return [bin_.event_rate for bin_ in b.bins if bin_.kind == "value"]


def woe_by_hand(events: int, count: int, tot_events: int, tot_count: int) -> float:
    non = count - events
    tot_non = tot_count - tot_events
    e = (events if events > 0 else 0.5) / tot_events
    g = (non if non > 0 else 0.5) / tot_non
    return math.log(g / e)


# ----------------------------------------------------------------------------- trends
def test_ascending_trend_gives_non_decreasing_bad_rates() -> None:
    x, y = logistic_sample(1)
    b = fit_numeric("x", x, y, BinningOptions(trend=Trend.ASCENDING))
    rates = value_rates(b)
    assert len(rates) >= 3
    assert all(r1 <= r2 for r1, r2 in itertools.pairwise(rates)), rates
    assert b.trend == "ascending"


def test_descending_trend_gives_non_increasing_bad_rates() -> None:
    x, y = logistic_sample(2, slope=-1.2)
    b = fit_numeric("x", x, y, BinningOptions(trend=Trend.DESCENDING))
    rates = value_rates(b)
    assert len(rates) >= 3
    assert all(r1 >= r2 for r1, r2 in itertools.pairwise(rates)), rates
    assert b.trend == "descending"


def test_forced_trend_against_the_data_still_monotone() -> None:
    # bad rate rises with x, but descending is asked: the bins must still not rise
    x, y = logistic_sample(3)
    b = fit_numeric("x", x, y, BinningOptions(trend=Trend.DESCENDING))
    rates = value_rates(b)
    assert all(r1 >= r2 for r1, r2 in itertools.pairwise(rates)), rates


@pytest.mark.parametrize(("slope", "expected"), [(1.2, "ascending"), (-1.2, "descending")])
def test_auto_picks_the_direction_of_a_monotone_relationship(slope: float, expected: str) -> None:
    x, y = logistic_sample(4, slope=slope)
    b = fit_numeric("x", x, y, BinningOptions(trend=Trend.AUTO))
    assert b.trend == expected
    rates = value_rates(b)
    assert len(rates) >= 3
    pairs = list(itertools.pairwise(rates))
    if expected == "ascending":
        assert all(r1 <= r2 for r1, r2 in pairs)
    else:
        assert all(r1 >= r2 for r1, r2 in pairs)
    # a strongly informative variable keeps a strong IV
    assert b.iv > 0.5


def quadratic_sample(seed: int, curvature: float) -> tuple[FloatArray, IntArray]:
    """Bad rate peaked at x = 0 (curvature < 0) or lowest there (curvature > 0)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=4000)
    p = 1.0 / (1.0 + np.exp(-(-1.0 + curvature * x**2)))
    return x, (rng.random(len(x)) < p).astype(np.int64)


def is_unimodal(rates: list[float], peak: bool) -> bool:
    """Rises then falls (peak) or falls then rises (valley), ties allowed."""
    sign = 1 if peak else -1
    steps = [sign * (b - a) for a, b in itertools.pairwise(rates)]
    turned = False
    for step in steps:
        if step < 0:
            turned = True
        elif step > 0 and turned:
            return False
    return True


def test_peak_and_valley_trends_give_unimodal_bad_rates() -> None:
    x, y = quadratic_sample(20, curvature=-1.2)
    peak = fit_numeric("x", x, y, BinningOptions(trend=Trend.PEAK))
    rates = value_rates(peak)
    assert peak.trend == "peak"
    assert is_unimodal(rates, peak=True), rates
    assert max(rates) > rates[0] and max(rates) > rates[-1]  # a real peak in the middle
    x, y = quadratic_sample(21, curvature=0.8)
    valley = fit_numeric("x", x, y, BinningOptions(trend=Trend.VALLEY))
    rates = value_rates(valley)
    assert valley.trend == "valley"
    assert is_unimodal(rates, peak=False), rates
    assert min(rates) < rates[0] and min(rates) < rates[-1]


def test_auto_chooses_a_shape_only_when_allowed() -> None:
    x, y = quadratic_sample(22, curvature=-1.2)
    monotone = fit_numeric("x", x, y, BinningOptions(trend=Trend.AUTO))
    assert monotone.trend in ("ascending", "descending")
    shaped = fit_numeric("x", x, y, BinningOptions(trend=Trend.AUTO, allow_shapes=True))
    assert shaped.trend == "peak"
    assert shaped.iv > monotone.iv
    # a monotone relationship stays monotone even when shapes are allowed
    x, y = logistic_sample(23)
    assert fit_numeric("x", x, y, BinningOptions(allow_shapes=True)).trend == "ascending"


# ----------------------------------------------------------------------------- size limits
@pytest.mark.parametrize("share", [0.05, 0.12, 0.3])
def test_min_bin_share_is_respected(share: float) -> None:
    x, y = logistic_sample(5, n=3000)
    b = fit_numeric("x", x, y, BinningOptions(min_bin_share=share, trend=Trend.NONE))
    counts = [bin_.count for bin_ in b.bins if bin_.kind == "value"]
    assert sum(counts) == len(x)
    assert all(c >= share * len(x) for c in counts), counts


@pytest.mark.parametrize("max_bins", [2, 3, 5])
def test_max_bins_is_respected(max_bins: int) -> None:
    x, y = logistic_sample(6, n=3000)
    b = fit_numeric("x", x, y, BinningOptions(max_bins=max_bins, min_bin_share=0.01))
    assert 1 <= b.value_bins <= max_bins
    assert len(b.splits) == b.value_bins - 1
    assert b.splits == sorted(b.splits)


def test_categorical_max_bins_is_respected() -> None:
    rng = np.random.default_rng(7)
    levels = np.array([f"L{i}" for i in range(10)])
    k = rng.choice(levels, size=3000)
    rate = {f"L{i}": 0.05 + 0.04 * i for i in range(10)}
    y = (rng.random(3000) < np.vectorize(rate.get)(k)).astype(np.int64)
    b = fit_categorical("k", k, y, BinningOptions(max_bins=3))
    assert b.value_bins <= 3
    # every level still maps to a bin
    assert set(levels) <= set(b.categories)


# ----------------------------------------------------------------------------- missing
def missing_mostly_bad(seed: int) -> tuple[FloatArray, IntArray, npt.NDArray[np.bool_]]:
    x, y = logistic_sample(seed, n=4000)
    rng = np.random.default_rng(seed + 100)
    miss = rng.random(len(x)) < 0.1
    y = y.copy()
    y[miss] = (rng.random(int(miss.sum())) < 0.8).astype(np.int64)
    x = x.copy()
    x[miss] = np.nan
    return x, y, miss


def test_missing_gets_its_own_bin_with_the_empirical_woe() -> None:
    x, y, miss = missing_mostly_bad(8)
    b = fit_numeric("x", x, y)
    idx = b.missing_index
    assert idx is not None
    missing_bin = b.bins[idx]
    assert missing_bin.kind == "missing"
    assert missing_bin.count == int(miss.sum())
    assert missing_bin.events == int(y[miss].sum())
    expected = woe_by_hand(int(y[miss].sum()), int(miss.sum()), int(y.sum()), len(y))
    assert missing_bin.woe == pytest.approx(expected, abs=1e-12)
    # the optbinning trap: missing must not be scored as the neutral 0
    assert b.woe_one(np.nan) == pytest.approx(expected, abs=1e-12)
    assert b.woe_one(None) == pytest.approx(expected, abs=1e-12)
    assert b.woe_one(np.nan) < -1.5
    assert b.woe(np.array([np.nan]))[0] == pytest.approx(expected, abs=1e-12)
    # and the value bins cover exactly the non-missing rows
    assert sum(bin_.count for bin_ in b.bins if bin_.kind == "value") == int((~miss).sum())


def test_categorical_missing_gets_its_own_bin_with_the_empirical_woe() -> None:
    rng = np.random.default_rng(9)
    n = 2000
    k = rng.choice(["a", "b", "c"], size=n).astype(object)
    y = (rng.random(n) < 0.15).astype(np.int64)
    miss = rng.random(n) < 0.1
    k[miss] = None
    y[miss] = (rng.random(int(miss.sum())) < 0.85).astype(np.int64)
    b = fit_categorical("k", list(k), y)
    expected = woe_by_hand(int(y[miss].sum()), int(miss.sum()), int(y.sum()), n)
    assert b.woe_one(None) == pytest.approx(expected, abs=1e-12)
    assert b.woe_one(float("nan")) == pytest.approx(expected, abs=1e-12)
    assert b.woe_one("") == pytest.approx(expected, abs=1e-12)
    assert expected < -1.5


def test_missing_never_seen_in_training_is_neutral() -> None:
    x, y = logistic_sample(10)
    b = fit_numeric("x", x, y)
    assert b.missing_index is None
    assert b.index_one(np.nan) == -1
    assert b.woe_one(np.nan) == 0.0
    assert b.woe_one(None) == 0.0
    assert b.woe(np.array([np.nan, 0.0]))[0] == 0.0


def test_missing_never_seen_with_unseen_worst_gets_the_worst_woe() -> None:
    x, y = logistic_sample(10)
    b = fit_numeric("x", x, y, BinningOptions(unseen=Unseen.WORST))
    worst = min(bin_.woe for bin_ in b.bins)
    assert worst < 0
    assert b.woe_one(np.nan) == worst
    assert b.woe_one(None) == worst
    assert b.woe(np.array([np.nan]))[0] == worst


# ----------------------------------------------------------------------------- specials
def test_special_codes_get_their_own_bins() -> None:
    x, y = logistic_sample(11, n=3000)
    rng = np.random.default_rng(111)
    x = x.copy()
    y = y.copy()
    sp1 = rng.random(len(x)) < 0.06
    sp2 = ~sp1 & (rng.random(len(x)) < 0.04)
    x[sp1] = -1.0
    y[sp1] = (rng.random(int(sp1.sum())) < 0.7).astype(np.int64)
    x[sp2] = -2.0
    y[sp2] = (rng.random(int(sp2.sum())) < 0.02).astype(np.int64)
    b = fit_numeric("x", x, y, BinningOptions(special_codes=(-1.0, -2.0)))
    specials = {bin_.label: bin_ for bin_ in b.bins if bin_.kind == "special"}
    assert set(specials) == {"Special -1", "Special -2"}
    assert specials["Special -1"].count == int(sp1.sum())
    assert specials["Special -2"].count == int(sp2.sum())
    for code, mask in ((-1.0, sp1), (-2.0, sp2)):
        expected = woe_by_hand(int(y[mask].sum()), int(mask.sum()), int(y.sum()), len(y))
        assert b.woe_one(code) == pytest.approx(expected, abs=1e-12)
    assert b.woe_one(-1.0) < -1.0 < 1.0 < b.woe_one(-2.0)
    # special rows are kept out of the value bins
    clean = ~sp1 & ~sp2
    assert sum(bin_.count for bin_ in b.bins if bin_.kind == "value") == int(clean.sum())


def test_special_code_never_seen_is_unseen() -> None:
    x, y = logistic_sample(12)
    b = fit_numeric("x", x, y, BinningOptions(special_codes=(-999.0,)))
    assert not any(bin_.kind == "special" for bin_ in b.bins)
    assert b.index_one(-999.0) == -1
    assert b.woe_one(-999.0) == 0.0


# ----------------------------------------------------------------------------- categorical
def rare_levels_sample(seed: int) -> tuple[list[str], IntArray, list[str]]:
    """Three common levels and eight rare ones (0.75 % each, 6 % together, mostly bad)."""
    rng = np.random.default_rng(seed)
    n = 4000
    rare = [f"r{i}" for i in range(8)]
    common = rng.choice(["A", "B", "C"], size=n - 8 * 30, p=[0.5, 0.3, 0.2]).tolist()
    values = common + [lvl for lvl in rare for _ in range(30)]
    rate = {"A": 0.08, "B": 0.2, "C": 0.35, **{lvl: 0.7 for lvl in rare}}
    y = (rng.random(n) < np.array([rate[v] for v in values])).astype(np.int64)
    return values, y, rare


def test_categorical_rare_levels_are_pooled_into_the_rare_bin() -> None:
    values, y, rare = rare_levels_sample(13)
    b = fit_categorical("k", values, y, BinningOptions(rare_share=0.01))
    rare_bins = [i for i, bin_ in enumerate(b.bins) if bin_.kind == "rare"]
    assert len(rare_bins) == 1
    ri = rare_bins[0]
    for lvl in rare:
        assert b.categories[lvl] == ri
        assert b.index_one(lvl) == ri
    # the common levels are not in the rare bin
    assert all(b.categories[lvl] != ri for lvl in ("A", "B", "C"))
    assert b.bins[ri].count == 8 * 30
    assert "rare" in b.bins[ri].label
    # an unseen category goes to the rare bin
    assert b.index_one("never-seen") == ri
    assert b.woe_one("never-seen") == b.bins[ri].woe
    assert RARE_LABEL not in b.bins[ri].label


def test_categorical_unseen_level_without_rare_bin_is_neutral() -> None:
    rng = np.random.default_rng(14)
    k = rng.choice(["A", "B", "C"], size=2000)
    rate = {"A": 0.08, "B": 0.2, "C": 0.35}
    y = (rng.random(2000) < np.vectorize(rate.get)(k)).astype(np.int64)
    b = fit_categorical("k", k, y)
    assert not any(bin_.kind == "rare" for bin_ in b.bins)
    assert b.index_one("Z") == -1
    assert b.woe_one("Z") == 0.0
    assert b.woe(["Z", "A"])[0] == 0.0
    worst = fit_categorical("k", k, y, BinningOptions(unseen=Unseen.WORST))
    assert worst.woe_one("Z") == min(bin_.woe for bin_ in worst.bins)


def test_woe_and_iv_against_a_hand_computation() -> None:
    # a: 10 rows 1 bad, b: 10 rows 5 bad, c: 10 rows 9 bad, missing: 4 rows 0 bad
    values: list[Any] = ["a"] * 10 + ["b"] * 10 + ["c"] * 10 + [None] * 4
    y = [1] + [0] * 9 + [1] * 5 + [0] * 5 + [1] * 9 + [0] + [0] * 4
    b = fit_categorical("k", values, y)
    tot_bad, tot_good = 15, 19
    expected = {
        "a": math.log((9 / tot_good) / (1 / tot_bad)),
        "b": math.log((5 / tot_good) / (5 / tot_bad)),
        "c": math.log((1 / tot_good) / (9 / tot_bad)),
        # no bads: smoothed by 0.5
        "Missing": math.log((4 / tot_good) / (0.5 / tot_bad)),
    }
    got = {bin_.label: bin_.woe for bin_ in b.bins}
    assert set(got) == set(expected)
    for label, w in expected.items():
        assert got[label] == pytest.approx(w, abs=1e-12)
    # the bins are ordered by bad rate
    assert [bin_.label for bin_ in b.bins[:3]] == ["a", "b", "c"]
    share = {"a": (9, 1), "b": (5, 5), "c": (1, 9), "Missing": (4, 0)}
    iv = sum((g / tot_good - e / tot_bad) * expected[k] for k, (g, e) in share.items())
    assert b.iv == pytest.approx(iv, abs=1e-12)
    assert information_value(b.bins) == pytest.approx(iv, abs=1e-12)


def test_information_value_of_hand_made_bins() -> None:
    bins = [
        Bin("low", 100, 10, math.log((90 / 150) / (10 / 50))),
        Bin("high", 100, 40, math.log((60 / 150) / (40 / 50))),
    ]
    expected = (0.6 - 0.2) * math.log(0.6 / 0.2) + (0.4 - 0.8) * math.log(0.4 / 0.8)
    assert information_value(bins) == pytest.approx(expected, abs=1e-12)
    assert information_value([Bin("all", 10, 0, 0.0)]) == 0.0


# ----------------------------------------------------------------------------- export
def fitted_numeric_with_everything() -> VariableBinning:
    x, y, _ = missing_mostly_bad(15)
    x = x.copy()
    x[::37] = -1.0
    return fit_numeric("x", x, y, BinningOptions(special_codes=(-1.0, -7.0)))


def probe_values() -> list[Any]:
    return [
        -5.0,
        -1.0,
        -7.0,
        -0.3,
        0.0,
        0.5,
        2.5,
        10.0,
        float("inf"),
        float("-inf"),
        float("nan"),
        None,
    ]


def test_numeric_round_trip_gives_identical_outputs() -> None:
    b = fitted_numeric_with_everything()
    back = VariableBinning.from_dict(json.loads(json.dumps(b.to_dict())))
    values = probe_values()
    assert np.array_equal(back.index(values), b.index(values))
    assert np.array_equal(back.woe(values), b.woe(values))
    assert [back.index_one(v) for v in values] == [b.index_one(v) for v in values]
    assert back.to_dict() == b.to_dict()
    # the split points themselves, used in both paths
    for edge in b.splits:
        assert back.index_one(edge) == b.index_one(edge)


def test_categorical_round_trip_gives_identical_outputs() -> None:
    values, y, rare = rare_levels_sample(16)
    values = [None if i % 50 == 0 else v for i, v in enumerate(values)]
    b = fit_categorical("k", values, y, BinningOptions(unseen=Unseen.WORST))
    back = VariableBinning.from_dict(json.loads(json.dumps(b.to_dict())))
    probe = ["A", "B", "C", *rare, "zzz", None, float("nan"), ""]
    assert np.array_equal(back.index(probe), b.index(probe))
    assert np.array_equal(back.woe(probe), b.woe(probe))
    assert back.unseen is Unseen.WORST


def test_vectorised_index_equals_index_one_numeric() -> None:
    b = fitted_numeric_with_everything()
    values = [*probe_values(), *b.splits, *(s - 1e-09 for s in b.splits)]
    one = [b.index_one(v) for v in values]
    # as a list (object array with None), as a float array and as a pandas column
    assert b.index(values).tolist() == one
    floats = np.array([np.nan if v is None else v for v in values], dtype=np.float64)
    assert b.index(floats).tolist() == one
    assert b.index(pd.Series(values, dtype=object).to_numpy()).tolist() == one
    woe_one = [b.woe_one(v) for v in values]
    assert b.woe(values).tolist() == woe_one
    # the missing, special and unseen-special entries are what they should be
    assert one[values.index(-1.0)] == b._index_of_kind("special", "Special -1")
    assert one[values.index(-7.0)] == -1
    assert one[-len(b.splits) * 2 - 1] == b.missing_index  # None
    assert one[-len(b.splits) * 2 - 2] == b.missing_index  # nan


def test_vectorised_index_equals_index_one_categorical() -> None:
    values, y, rare = rare_levels_sample(17)
    values = [None if i % 40 == 0 else v for i, v in enumerate(values)]
    b = fit_categorical("k", values, y)
    probe: list[Any] = ["A", "B", "C", *rare, "new", None, float("nan"), "", np.nan]
    assert b.index(probe).tolist() == [b.index_one(v) for v in probe]
    assert b.woe(probe).tolist() == [b.woe_one(v) for v in probe]
    assert b.index_one(None) == b.missing_index


def test_vectorised_index_equals_index_one_on_junk_text() -> None:
    x, y = logistic_sample(18)
    b = fit_numeric("x", x, y)
    values = ["0.5", "abc"]
    assert b.index(values).tolist() == [b.index_one(v) for v in values]


def test_ordinary_value_is_unseen_when_training_had_only_missing_and_special() -> None:
    x = np.array([-1.0] * 50 + [np.nan] * 50)
    y = np.array([0] * 40 + [1] * 10 + [1] * 40 + [0] * 10)
    b = fit_numeric("m", x, y, BinningOptions(special_codes=(-1.0,)))
    assert b.value_bins == 0
    # 5.0 was never seen in training: it is neither missing nor the special code
    assert b.index_one(5.0) == -1
    assert b.index([5.0]).tolist() == [-1]
    assert b.woe_one(5.0) == 0.0


def test_pandas_na_is_missing_in_a_categorical() -> None:
    rng = np.random.default_rng(19)
    k: list[Any] = rng.choice(["a", "b"], size=400).tolist()
    k[::10] = [None] * len(k[::10])
    y = (rng.random(400) < 0.3).astype(np.int64)
    b = fit_categorical("k", k, y)
    assert b.index_one(pd.NA) == b.missing_index


# ----------------------------------------------------------------------------- errors
def test_one_class_target_raises_value_error() -> None:
    x = np.arange(100, dtype=np.float64)
    with pytest.raises(ValueError, match="one class"):
        fit_numeric("x", x, np.zeros(100, dtype=np.int64))
    with pytest.raises(ValueError, match="one class"):
        fit_numeric("x", x, np.ones(100, dtype=np.int64))
    with pytest.raises(ValueError, match="one class"):
        fit_categorical("k", ["a", "b"] * 50, np.zeros(100, dtype=np.int64))
