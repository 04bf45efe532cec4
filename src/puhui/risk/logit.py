"""Unpenalised (or lightly ridged) logistic regression by Newton's method.

Why not scikit-learn's ``LogisticRegression`` here: stepwise selection refits the model once
per candidate per step, on WOE columns that are few (≤ 30) and well scaled; a Newton step on
the k×k Hessian converges in a handful of iterations and costs a fraction of lbfgs's general
machinery, which keeps the scorecard's whole fit fast. The optimum is the same maximum-likelihood
estimate: a test checks the coefficients against scikit-learn's ``penalty=None`` fit.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy.special import expit

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class LogitFit:
    intercept: float
    coef: FloatArray
    log_likelihood: float
    iterations: int

    @property
    def aic(self) -> float:
        return 2 * (len(self.coef) + 1) - 2 * self.log_likelihood

    def decision(self, x: FloatArray) -> FloatArray:
        return self.intercept + x @ self.coef


def _loglik(z: FloatArray, y: FloatArray, w: FloatArray) -> float:
    # Σ w · [y log σ(z) + (1 − y) log(1 − σ(z))], stably; y may be a share of events
    return float(np.sum(w * (y * z - np.logaddexp(0.0, z))))


def fit_logit(
    x: FloatArray,
    y: FloatArray,
    *,
    weights: FloatArray | None = None,
    l2: float = 1e-8,
    max_iter: int = 50,
    tol: float = 1e-8,
) -> LogitFit:
    """Maximum-likelihood logistic regression of ``y`` (0/1, or a share of events when rows
    carry ``weights`` = their counts) on the columns of ``x``.

    ``l2`` is a tiny ridge on the slopes (not the intercept) so perfectly separated or
    collinear columns cannot make the Hessian singular; at its default it moves no coefficient
    by more than rounding."""
    n, k = x.shape
    w = np.ones(n) if weights is None else weights
    design = np.hstack([np.ones((n, 1)), x])
    beta = np.zeros(k + 1)
    p0 = min(max(float(np.sum(w * y) / np.sum(w)), 1e-9), 1 - 1e-9)
    beta[0] = np.log(p0 / (1 - p0))
    ridge = np.full(k + 1, l2)
    ridge[0] = 0.0

    def penalised(b: FloatArray) -> float:
        return _loglik(design @ b, y, w) - 0.5 * float(np.sum(ridge * b * b))

    current = penalised(beta)
    it = 0
    for it in range(1, max_iter + 1):  # noqa: B007 - the count is reported
        p = expit(design @ beta)
        grad = design.T @ (w * (y - p)) - ridge * beta
        hess = (design * (w * p * (1 - p))[:, None]).T @ design + np.diag(ridge)
        try:
            step = np.linalg.solve(hess, grad)
        except np.linalg.LinAlgError:
            step = np.linalg.lstsq(hess, grad, rcond=None)[0]
        # step halving: a full Newton step can overshoot far from the optimum
        for _ in range(30):
            trial = penalised(beta + step)
            if trial >= current - 1e-12:
                break
            step = step / 2
        beta = beta + step
        current = trial
        if float(np.max(np.abs(step))) < tol:
            break
    z = design @ beta
    return LogitFit(float(beta[0]), beta[1:].copy(), _loglik(z, y, w), it)


def fit_logit_grouped(x: FloatArray, y: FloatArray, **options: float) -> LogitFit:
    """:func:`fit_logit` on the distinct rows of ``x`` with their event shares and counts.

    WOE columns take a handful of values each, so a scorecard's design has far fewer distinct
    rows than the sample: the binomial likelihood of the groups is the same function as the
    rows' likelihood (same optimum, same log-likelihood, same AIC), at a fraction of the cost."""
    if x.shape[1] == 0:
        return fit_logit(x, y, **options)  # type: ignore[arg-type]
    # a mixed-radix key per row from each column's value codes (1-D sorts only: row-wise
    # np.unique sorts void records and is two orders of magnitude slower)
    key = np.zeros(len(y), dtype=np.int64)
    radix = 1
    for j in range(x.shape[1]):
        values, codes = np.unique(x[:, j], return_inverse=True)
        if radix * len(values) >= 2**62:
            _, key = np.unique(key, return_inverse=True)
            radix = int(key.max()) + 1
        key = key * len(values) + codes.reshape(-1)
        radix *= len(values)
    _, first, inverse = np.unique(key, return_index=True, return_inverse=True)
    inverse = inverse.reshape(-1)
    rows = x[first]
    counts = np.bincount(inverse).astype(np.float64)
    events = np.bincount(inverse, weights=y)
    return fit_logit(rows, events / counts, weights=counts, **options)  # type: ignore[arg-type]
