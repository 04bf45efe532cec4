"""Indicator selection (风控指标维度优化): which variables a scorecard keeps, and why.

Filters run in the order an analyst would argue them, each dropping with a stated reason:
missing rate, information value, stability across slices of the sample (CSI), then forward
stepwise selection by AIC in which a candidate may not enter beside a chosen variable it is
too correlated with, and must leave every coefficient negative (in a WOE scorecard more WOE =
better = less likely bad; a flipped sign means collinearity is bending the model), and finally
the variance inflation factor. Without stepwise, correlation is checked greedily by IV.
The report keeps one row per candidate variable so a risk committee sees the whole argument.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
from scipy.special import expit
from scipy.stats import chi2

from puhui.risk.binning import VariableBinning
from puhui.risk.logit import fit_logit_grouped
from puhui.risk.metrics import csi

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class SelectionRules:
    max_missing: float = 0.95
    min_iv: float = 0.02
    max_p_value: float = 0.2
    """Bins must separate goods from bads significantly (G-test of independence)."""
    max_csi: float = 0.25
    max_corr: float = 0.7
    max_vif: float = 10.0
    stepwise: bool = True
    sign_check: bool = True
    max_features: int | None = None


@dataclass
class VariableReport:
    name: str
    kind: str
    iv: float
    missing_rate: float
    bins: int
    p_value: float | None = None
    csi: float | None = None
    max_corr: float | None = None
    corr_with: str | None = None
    vif: float | None = None
    coef: float | None = None
    kept: bool = False
    reason: str = ""

    def as_dict(self) -> dict[str, object]:
        return dict(self.__dict__)


@dataclass
class SelectionResult:
    kept: list[str]
    report: list[VariableReport] = field(default_factory=list)


def _vif(x: FloatArray) -> FloatArray:
    """VIF of each column, 1 / (1 − R²) of it regressed on the others: the diagonal of the
    inverse correlation matrix (the same quantity, without k regressions)."""
    k = x.shape[1]
    if k < 2:
        return np.ones(k)
    corr = np.corrcoef(x, rowvar=False)
    try:
        inv = np.linalg.inv(corr)
    except np.linalg.LinAlgError:
        inv = np.linalg.pinv(corr)
    out: FloatArray = np.maximum(np.diag(inv), 1.0)
    return out


def _score_statistics(
    base: FloatArray, p: FloatArray, y: FloatArray, candidates: FloatArray
) -> FloatArray:
    """Rao's score statistic of adding each candidate column to a fitted model: the expected
    likelihood gain, computed from the current fit alone (no refit per candidate)."""
    w = p * (1 - p)
    design = np.hstack([np.ones((len(y), 1)), base])
    hess = (design * w[:, None]).T @ design
    cross = (design * w[:, None]).T @ candidates  # (k + 1) × m
    info = np.einsum("ij,ij->j", candidates * w[:, None], candidates) - np.einsum(
        "ij,ij->j", cross, np.linalg.solve(hess, cross)
    )
    u = candidates.T @ (y - p)
    out: FloatArray = np.where(info > 1e-12, u * u / np.maximum(info, 1e-12), 0.0)
    return out


def g_test_p_value(binning: VariableBinning) -> float:
    """p-value of the G-test that the variable's bins and the target are independent.

    Fine bins fitted to the sample can show an IV above 0.02 on pure noise; the test asks
    whether the bins' bad rates differ by more than chance, with one degree of freedom per
    extra bin (optimistic, as the bins were chosen on the same data — hence a strict level)."""
    bins = [b for b in binning.bins if b.count]
    if len(bins) < 2:
        return 1.0
    events = sum(b.events for b in bins)
    total = sum(b.count for b in bins)
    rate = events / total
    g = 0.0
    for b in bins:
        for observed, expected in (
            (b.events, b.count * rate),
            (b.non_events, b.count * (1 - rate)),
        ):
            if observed > 0 and expected > 0:
                g += 2 * observed * math.log(observed / expected)
    return float(chi2.sf(g, len(bins) - 1))


def _abs_corr(a: FloatArray, b: FloatArray) -> float:
    if np.std(a) == 0 or np.std(b) == 0:
        return 0.0
    return abs(float(np.corrcoef(a, b)[0, 1]))


def _stepwise(
    woe: Mapping[str, FloatArray],
    y: FloatArray,
    candidates: Sequence[str],
    rules: SelectionRules,
    reports: Mapping[str, VariableReport],
) -> tuple[list[str], dict[str, str]]:
    """Forward selection. At each step the candidates not too correlated with a variable
    already chosen are ranked by their score statistic; the best enters if it lowers the AIC
    (a real refit) and leaves every coefficient negative — one that would flip a sign is passed
    over, and up to three that do not pay for themselves are tried before stopping.

    The correlation rule is checked against the *chosen* variables, not against every stronger
    candidate: when the strongest of a correlated group is refused (say, for a flipped sign),
    the next of the group can still enter. Returns the chosen names and why the rest were not."""
    chosen: list[str] = []
    why: dict[str, str] = {}
    remaining = list(candidates)
    base = np.empty((len(y), 0))
    fit = fit_logit_grouped(base, y)
    while remaining and (rules.max_features is None or len(chosen) < rules.max_features):
        eligible = []
        for name in remaining:
            corr, with_ = 0.0, None
            for c in chosen:
                r = _abs_corr(woe[name], woe[c])
                if r > corr:
                    corr, with_ = r, c
            reports[name].max_corr, reports[name].corr_with = corr, with_
            if corr > rules.max_corr:
                why[name] = f"correlated (|r| = {corr:.2f}) with {with_}, chosen before it"
            else:
                eligible.append(name)
        if not eligible:
            break
        p = expit(fit.decision(base))
        stats = _score_statistics(base, p, y, np.column_stack([woe[c] for c in eligible]))
        entered, misses = False, 0
        for i in np.argsort(-stats, kind="stable"):
            name = eligible[int(i)]
            trial_x = np.column_stack([base, woe[name]])
            trial = fit_logit_grouped(trial_x, y)
            if trial.aic >= fit.aic:
                why[name] = "does not lower AIC once the chosen variables are in"
                misses += 1
                if misses >= 3:
                    break
                continue
            if rules.sign_check and np.any(trial.coef > 0):
                why[name] = "coefficient sign flips beside the chosen variables"
                continue
            chosen.append(name)
            remaining.remove(name)
            why.pop(name, None)
            base, fit, entered = trial_x, trial, True
            break
        if not entered:
            break
    for name in remaining:
        why.setdefault(name, "does not lower AIC once the chosen variables are in")
    return chosen, why


def select(
    binnings: Mapping[str, VariableBinning],
    woe: Mapping[str, FloatArray],
    y: FloatArray,
    missing_rate: Mapping[str, float],
    rules: SelectionRules,
    slice_bins: Mapping[str, Sequence[npt.NDArray[np.int64]]] | None = None,
) -> SelectionResult:
    """Apply the rules in order; ``slice_bins`` (bin indices of each variable in each slice of
    the sample, e.g. by month) enables the stability filter."""
    reports = {
        n: VariableReport(n, b.kind, b.iv, missing_rate[n], len(b.bins))
        for n, b in binnings.items()
    }
    alive = [n for n in binnings]

    def drop(names: list[str], reason: str) -> None:
        for n in names:
            reports[n].reason = reason
            alive.remove(n)

    for n in list(alive):
        r = reports[n]
        if r.missing_rate > rules.max_missing:
            drop([n], f"missing rate {r.missing_rate:.1%} > {rules.max_missing:.0%}")
        elif r.iv < rules.min_iv:
            drop([n], f"IV {r.iv:.4f} < {rules.min_iv}")
        else:
            r.p_value = g_test_p_value(binnings[n])
            if r.p_value > rules.max_p_value:
                drop([n], f"bins separate no better than chance (G-test p = {r.p_value:.3f})")
    if slice_bins:
        for n in list(alive):
            parts = slice_bins[n]
            worst = max((csi(parts[0], p, len(binnings[n].bins)) for p in parts[1:]), default=0.0)
            reports[n].csi = worst
            if worst > rules.max_csi:
                drop([n], f"unstable: CSI {worst:.3f} > {rules.max_csi} between slices")
    alive.sort(key=lambda n: -reports[n].iv)
    if rules.stepwise:
        chosen, why = _stepwise(woe, y, alive, rules, reports)
        for n, reason in why.items():
            drop([n], f"stepwise: {reason}")
        alive = chosen
    else:
        kept: list[str] = []
        for n in list(alive):
            corr, with_ = max(((_abs_corr(woe[n], woe[k]), k) for k in kept), default=(0.0, None))
            reports[n].max_corr, reports[n].corr_with = corr, with_
            if corr > rules.max_corr:
                drop([n], f"correlated (|r| = {corr:.2f}) with {with_}, which has higher IV")
            else:
                kept.append(n)
        if rules.max_features is not None:
            drop(alive[rules.max_features :], "beyond max_features by IV")
        while rules.sign_check and alive:
            fit = fit_logit_grouped(np.column_stack([woe[n] for n in alive]), y)
            worst = int(np.argmax(fit.coef))
            if fit.coef[worst] <= 0:
                break
            drop([alive[worst]], "coefficient sign flips beside the other variables")
    while len(alive) > 1:
        vifs = _vif(np.column_stack([woe[n] for n in alive]))
        for n, v in zip(alive, vifs, strict=True):
            reports[n].vif = float(v)
        worst = int(np.argmax(vifs))
        if vifs[worst] <= rules.max_vif:
            break
        drop([alive[worst]], f"VIF {vifs[worst]:.1f} > {rules.max_vif}")
    for n in alive:
        reports[n].kept = True
        reports[n].reason = "kept"
    return SelectionResult(alive, list(reports.values()))
