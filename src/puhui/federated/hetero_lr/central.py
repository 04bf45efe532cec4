"""The central reference: the same optimiser on the joined data, in one process, in the clear.

This is what the federated run must reproduce. With ``quantised=True`` (the default) it goes
through the very same fixed-point steps as the parties (:mod:`.arithmetic`) and sums the
integers exactly, as Paillier does, so the federated weights must equal these **exactly** —
any difference is a protocol bug, not rounding. With ``quantised=False`` it runs the textbook
float64 Taylor-loss mini-batch descent; the gap to that is the cost of fixed point
(features rounded to ``2^-feature_frac_bits``, scores to ``2^-score_frac_bits``).

It also serves as the "guest only" baseline: pass a host block with no columns.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.special import expit

from puhui.federated.hetero_lr import arithmetic as ar
from puhui.federated.hetero_lr.params import HeteroLRParams


@dataclass(frozen=True)
class CentralFit:
    """Weights of both blocks (in each block's standardised space) and how the run went."""

    coef_guest: ar.FloatArray
    intercept: float
    coef_host: ar.FloatArray
    shift_guest: ar.FloatArray
    scale_guest: ar.FloatArray
    shift_host: ar.FloatArray
    scale_host: ar.FloatArray
    epochs_run: int
    converged: bool

    def predict_proba(self, x_guest: ar.FloatArray, x_host: ar.FloatArray) -> ar.FloatArray:
        """Probability of ``y = 1`` (same formula as the federated prediction)."""
        weights = np.append(self.coef_guest, self.intercept)
        u_g = ar.guest_scores(ar.standardise(x_guest, self.shift_guest, self.scale_guest), weights)
        u_h = ar.host_scores(
            ar.standardise(x_host, self.shift_host, self.scale_host), self.coef_host
        )
        return np.asarray(expit(u_g + u_h), dtype=np.float64)


def fit_central(
    x_guest: ar.FloatArray,
    y: ar.FloatArray | ar.IntArray,
    x_host: ar.FloatArray,
    params: HeteroLRParams,
    *,
    quantised: bool = True,
    trace: list[dict[str, Any]] | None = None,
) -> CentralFit:
    """Mini-batch Taylor-loss gradient descent on ``[x_guest | x_host]`` with ``params``.

    ``trace``, if given, receives per batch the values the protocol keeps secret (partial
    scores, residuals, gradient sums and gradients) — what the leak test looks for on the wire.
    """
    xg = ar.check_features(x_guest, "guest")
    xh = ar.check_features(x_host, "host")
    rows = xg.shape[0]
    if xh.shape[0] != rows:
        raise ValueError("the guest and host blocks must have the same rows")
    labels = ar.check_labels(y, rows)
    shift_g, scale_g = ar.standardisation(xg, params.standardise)
    shift_h, scale_h = ar.standardisation(xh, params.standardise)
    sg, sh = ar.standardise(xg, shift_g, scale_g), ar.standardise(xh, shift_h, scale_h)
    ig = ar.quantise_features(sg, params.feature_frac_bits, with_intercept=True)
    ih = ar.quantise_features(sh, params.feature_frac_bits)
    wg, wh = np.zeros(sg.shape[1] + 1), np.zeros(sh.shape[1])
    converged = False
    epoch = 0
    for epoch in range(params.max_epochs):
        start_g, start_h = wg.copy(), wh.copy()
        for batch in ar.batches(rows, params, epoch):
            u_g = ar.guest_scores(sg[batch], wg)
            u_h = ar.host_scores(sh[batch], wh)
            if quantised:
                s = params.score_frac_bits
                residual4 = ar.guest_residual_part(u_g, labels[batch], s) + ar.encode_scores(u_h, s)
                sums_g = ar.exact_gradient_sums(ig[batch], residual4)
                sums_h = ar.exact_gradient_sums(ih[batch], residual4)
                grad_g = ar.gradient_from_sums(sums_g, len(batch), params)
                grad_h = ar.gradient_from_sums(sums_h, len(batch), params)
            else:
                d = 0.25 * (u_g + u_h) + 0.5 - labels[batch]
                grad_g = np.append(sg[batch].T @ d, d.sum()) / len(batch)
                grad_h = sh[batch].T @ d / len(batch)
            if trace is not None:
                trace.append(
                    {"u_guest": u_g, "u_host": u_h, "grad_guest": grad_g, "grad_host": grad_h}
                    | ({"residual4": residual4, "sums": sums_g + sums_h} if quantised else {})
                )
            wg = ar.descend(wg, grad_g, params, epoch, penalised=len(wg) - 1)
            wh = ar.descend(wh, grad_h, params, epoch, penalised=len(wh))
        converged = (
            params.tol > 0
            and ar.moved(start_g, wg) <= params.tol
            and ar.moved(start_h, wh) <= params.tol
        )
        if converged:
            break
    return CentralFit(
        coef_guest=wg[:-1].copy(),
        intercept=float(wg[-1]),
        coef_host=wh,
        shift_guest=shift_g,
        scale_guest=scale_g,
        shift_host=shift_h,
        scale_host=scale_h,
        epochs_run=epoch + 1,
        converged=converged,
    )
