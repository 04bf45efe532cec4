"""Newton logistic regression against scikit-learn, and the metrics against hand computations."""

from __future__ import annotations

import itertools
import math
import warnings

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from puhui.risk import metrics
from puhui.risk.logit import fit_logit, fit_logit_grouped


# ----------------------------------------------------------------------------- logit
def test_fit_logit_agrees_with_sklearn_unpenalised() -> None:
    rng = np.random.default_rng(42)
    n = 2000
    x = rng.normal(size=(n, 3))
    z = -1.0 + x @ np.array([0.8, -0.5, 0.3])
    y = (rng.random(n) < 1.0 / (1.0 + np.exp(-z))).astype(np.float64)
    fit = fit_logit(x, y)
    # C = inf is scikit-learn's spelling of penalty=None since 1.8 (penalty is deprecated)
    sk = LogisticRegression(C=np.inf, tol=1e-12, max_iter=10_000).fit(x, y)
    assert np.allclose(fit.coef, sk.coef_[0], atol=1e-4)
    assert fit.intercept == pytest.approx(float(sk.intercept_[0]), abs=1e-4)
    assert fit.iterations < 50
    # the log-likelihood reported is the one of the returned coefficients
    p = 1.0 / (1.0 + np.exp(-fit.decision(x)))
    ll = float(np.sum(y * np.log(p) + (1 - y) * np.log(1 - p)))
    assert fit.log_likelihood == pytest.approx(ll, rel=1e-9)
    assert fit.aic == pytest.approx(2 * 4 - 2 * ll, rel=1e-9)


def test_fit_logit_with_no_columns_is_the_base_rate() -> None:
    y = np.array([1.0] * 30 + [0.0] * 70)
    fit = fit_logit(np.empty((100, 0)), y)
    assert fit.coef.shape == (0,)
    assert fit.intercept == pytest.approx(math.log(0.3 / 0.7), abs=1e-9)


@pytest.mark.parametrize("flipped", [3, 0])
def test_fit_logit_converges_on_a_nearly_separable_column(flipped: int) -> None:
    rng = np.random.default_rng(5)
    x = rng.normal(size=(500, 1))
    y = (x[:, 0] > 0).astype(np.float64)
    y[:flipped] = 1 - y[:flipped]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no overflow or divide warnings
        fit = fit_logit(x, y)
        p = 1.0 / (1.0 + np.exp(-np.clip(fit.decision(x), -700, 700)))
    assert np.all(np.isfinite(fit.coef))
    assert math.isfinite(fit.intercept)
    assert math.isfinite(fit.log_likelihood)
    assert fit.coef[0] > 5  # steep, pointing the right way
    assert fit.iterations <= 50
    # it separates what can be separated
    assert metrics.auc(y, p) > 0.98


def test_grouped_fit_is_the_row_fit_on_woe_like_columns() -> None:
    rng = np.random.default_rng(6)
    n = 5000
    x = np.column_stack(
        [
            rng.choice([-0.8, -0.1, 0.4, 1.2], size=n),
            rng.choice([-0.5, 0.3], size=n),
            rng.choice(np.linspace(-1, 1, 7), size=n),
        ]
    )
    z = -1.5 - 0.9 * x[:, 0] - 0.7 * x[:, 1] - 1.1 * x[:, 2]
    y = (rng.random(n) < 1.0 / (1.0 + np.exp(-z))).astype(np.float64)
    rows = fit_logit(x, y)
    grouped = fit_logit_grouped(x, y)
    assert np.allclose(grouped.coef, rows.coef, atol=1e-9)
    assert grouped.intercept == pytest.approx(rows.intercept, abs=1e-9)
    # same likelihood and AIC, so stepwise decisions do not change
    assert grouped.log_likelihood == pytest.approx(rows.log_likelihood, rel=1e-12)
    assert grouped.aic == pytest.approx(rows.aic, rel=1e-12)


def test_grouped_fit_with_continuous_columns_and_a_huge_key_space() -> None:
    # 20 000 distinct values in each of 5 columns: the mixed-radix key must be compacted
    rng = np.random.default_rng(7)
    n = 20_000
    x = rng.normal(size=(n, 5))
    y = (rng.random(n) < 1.0 / (1.0 + np.exp(-(x @ np.array([0.5, -0.4, 0.3, 0.0, 0.2]))))).astype(
        np.float64
    )
    rows = fit_logit(x, y)
    grouped = fit_logit_grouped(x, y)
    assert np.allclose(grouped.coef, rows.coef, atol=1e-9)
    assert grouped.log_likelihood == pytest.approx(rows.log_likelihood, rel=1e-12)


def test_weighted_fit_equals_repeated_rows() -> None:
    x = np.array([[0.0], [1.0], [2.0], [0.0], [1.0], [2.0]])
    y = np.array([0.0, 0.0, 1.0, 1.0, 0.0, 1.0])
    w = np.array([3.0, 2.0, 1.0, 1.0, 2.0, 4.0])
    weighted = fit_logit(x, y, weights=w)
    repeated = fit_logit(np.repeat(x, w.astype(int), axis=0), np.repeat(y, w.astype(int)))
    assert np.allclose(weighted.coef, repeated.coef, atol=1e-9)
    assert weighted.log_likelihood == pytest.approx(repeated.log_likelihood, rel=1e-12)


# ----------------------------------------------------------------------------- metrics
Y_TINY = [0, 0, 1, 1]
PD_TINY = [0.1, 0.4, 0.35, 0.8]


def test_auc_gini_ks_brier_on_a_tiny_example() -> None:
    # bad/good pairs ranked right: (0.35 > 0.1), (0.8 > 0.1), (0.8 > 0.4); wrong: (0.35 < 0.4)
    assert metrics.auc(Y_TINY, PD_TINY) == pytest.approx(0.75)
    assert metrics.gini(Y_TINY, PD_TINY) == pytest.approx(0.5)
    # cut at 0.8: 1/2 of bads, 0 goods; at 0.35: all bads, half the goods
    assert metrics.ks(Y_TINY, PD_TINY) == pytest.approx(0.5)
    expected_brier = (0.1**2 + 0.4**2 + 0.65**2 + 0.2**2) / 4
    assert metrics.brier(Y_TINY, PD_TINY) == pytest.approx(expected_brier)
    s = metrics.summary(Y_TINY, PD_TINY)
    assert s == pytest.approx({"auc": 0.75, "ks": 0.5, "gini": 0.5, "brier": expected_brier})


def test_perfect_and_reversed_ranking() -> None:
    y = [0, 0, 1, 1]
    assert metrics.auc(y, [0.1, 0.2, 0.8, 0.9]) == 1.0
    assert metrics.ks(y, [0.1, 0.2, 0.8, 0.9]) == 1.0
    assert metrics.gini(y, [0.9, 0.8, 0.2, 0.1]) == -1.0


def seeded_scores(seed: int, n: int = 2000) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    z = rng.normal(size=n)
    pd_ = 1.0 / (1.0 + np.exp(-(-1.5 + z)))
    y = (rng.random(n) < pd_).astype(np.int64)
    return y, pd_


def test_band_table_totals_and_ks() -> None:
    y, pd_ = seeded_scores(1)
    rows = metrics.band_table(y, pd_, bands=10)
    assert len(rows) == 10
    assert sum(r.count for r in rows) == len(y)
    assert sum(r.bads for r in rows) == int(y.sum())
    assert rows[-1].cum_bad_share == pytest.approx(1.0)
    assert rows[-1].cum_good_share == pytest.approx(1.0)
    # riskiest first: the first band's PDs are above the last band's
    assert rows[0].lower >= rows[-1].upper
    assert rows[0].bad_rate > rows[-1].bad_rate
    # cumulative shares only grow
    for a, b in itertools.pairwise(rows):
        assert b.cum_bad_share >= a.cum_bad_share
        assert b.cum_good_share >= a.cum_good_share
    ks = metrics.ks(y, pd_)
    band_ks = max(r.ks for r in rows)
    # the bands see the KS curve only at their edges: never above it, at most a band off
    assert band_ks <= ks + 1e-12
    assert ks - band_ks < 0.1
    # with one row per band (no ties) the KS column is the KS exactly
    fine = metrics.band_table(y, pd_, bands=len(y))
    assert max(r.ks for r in fine) == pytest.approx(ks, abs=1e-12)
    # lift of the whole sample is 1 on average
    assert sum(r.lift * r.count for r in rows) / len(y) == pytest.approx(1.0)


def test_band_table_mean_pd_and_bad_rate_by_hand() -> None:
    y = [1, 0, 1, 0, 0, 0]
    pd_ = [0.9, 0.8, 0.5, 0.4, 0.2, 0.1]
    rows = metrics.band_table(y, pd_, bands=3)
    assert [r.count for r in rows] == [2, 2, 2]
    assert [r.bads for r in rows] == [1, 1, 0]
    assert [r.mean_pd for r in rows] == pytest.approx([0.85, 0.45, 0.15])
    assert [r.ks for r in rows] == pytest.approx([0.5 - 0.25, 1.0 - 0.5, 0.0])
    assert [r.lift for r in rows] == pytest.approx([1.5, 1.5, 0.0])


def test_psi_of_identical_samples_is_zero_and_of_shifted_is_large() -> None:
    rng = np.random.default_rng(2)
    base = rng.normal(600, 40, size=5000)
    assert metrics.psi(base, base) == pytest.approx(0.0, abs=1e-12)
    same_shape = rng.normal(600, 40, size=5000)
    assert metrics.psi(base, same_shape) < 0.02
    shifted = rng.normal(640, 40, size=5000)
    assert metrics.psi(base, shifted) > 0.25
    assert metrics.stability_label(metrics.psi(base, shifted)) == "shifted"


def test_psi_from_counts_by_hand() -> None:
    e, a = [50, 30, 20], [30, 30, 40]
    expected = sum(
        (ai / 100 - ei / 100) * math.log((ai / 100) / (ei / 100))
        for ei, ai in zip(e, a, strict=True)
    )
    assert metrics.psi_from_counts(e, a) == pytest.approx(expected, abs=1e-12)
    assert metrics.psi_from_counts([0, 0], [1, 2]) == 0.0
    # an emptied bin counts heavily but finitely
    heavy = metrics.psi_from_counts([50, 50], [100, 0])
    assert math.isfinite(heavy) and heavy > 1


def test_csi_counts_index_minus_one_as_a_bin_of_its_own() -> None:
    expected = [0] * 50 + [1] * 50
    # half the actual rows were never seen in training (bin −1)
    actual = [-1] * 50 + [1] * 50
    shares_e = [1e-6, 0.5, 0.5]  # −1 slot floored at EPS
    shares_a = [0.5, 1e-6, 0.5]
    by_hand = sum((a - e) * math.log(a / e) for e, a in zip(shares_e, shares_a, strict=True))
    assert metrics.csi(expected, actual, n_bins=2) == pytest.approx(by_hand, rel=1e-9)
    assert metrics.csi(expected, expected, n_bins=2) == 0.0
    # moving rows into the −1 slot is drift, not ignored
    assert metrics.csi(expected, [-1] * 10 + expected[10:], n_bins=2) > 0.05


@pytest.mark.parametrize(
    ("value", "label"),
    [
        (0.0, "stable"),
        (0.0999, "stable"),
        (0.10, "watch"),
        (0.2499, "watch"),
        (0.25, "shifted"),
        (3.0, "shifted"),
    ],
)
def test_stability_label_boundaries(value: float, label: str) -> None:
    assert metrics.stability_label(value) == label
