"""Vertical (hetero) logistic regression between two parties, no third party (issue 6).

The guest (bank: labels ``y`` and features ``X_g``) and the host (data partner: features
``X_h`` of the same, PSI-aligned rows) fit ``P(y=1) = σ(X_g·w_g + b + X_h·w_h)`` by mini-batch
gradient descent on the logistic loss's second-order Taylor expansion at 0,
``log(1 + e^−z) ≈ log 2 − z/2 + z²/8``, whose per-row residual ``d = z/4 + 1/2 − y`` is linear
in the two partial scores and can therefore be computed under additively homomorphic
encryption. Each party has its own Paillier key pair (≥ 2048 bits) and keeps only its own
weights; the guest keeps the intercept.

Per mini-batch ``B`` (rows from a seeded shuffle both sides compute), ``U = round(u·2^s)``,
``X̃ = round(x·2^f)`` (see :mod:`.arithmetic`), ``[[·]]_G``/``[[·]]_H`` encryption under the
guest's/host's key::

    guest                                                   host
                                    ◀── host-scores ──────  [[U_h]]_H
    [[U_g + 2·2^s − 4y·2^s]]_G      ── guest-residuals ──▶
    [[4d]]_H = [[U_h]]_H ⊕ (U_g + 2·2^s − 4y·2^s)           [[4d]]_G = [[guest part]]_G ⊕ U_h
    [[X̃_gᵀ·4d]]_H (bucket products)                         [[X̃_hᵀ·4d]]_G (bucket products)
                                    ◀── host-gradient-masked ── [[X̃_hᵀ·4d + r_h]]_G, re-blinded
    [[X̃_gᵀ·4d + r_g]]_H, re-blinded ── guest-gradient-masked ──▶
    decrypt → X̃_hᵀ·4d + r_h mod n_G                         decrypt → X̃_gᵀ·4d + r_g mod n_H
                                    ◀── guest-gradient-opened ── X̃_gᵀ·4d + r_g
    X̃_hᵀ·4d + r_h                   ── host-gradient-opened ──▶
    unmask, step w_g, b                                     unmask, step w_h

Before the first batch: ``setup`` (guest → host: format, model id, parameters, row count,
number of guest gradient values, guest public key), ``setup-ack`` (host → guest: accepted
with the host public key and feature count, or the reason it refused), ``guest-decision``
(go, or stop with a reason). After each epoch: ``host-epoch-done`` (host → guest: one bit,
"some host weight moved by more than tol") and ``guest-decision`` (continue or stop). Messages
strictly alternate in direction, so the protocol cannot deadlock on a blocking transport.

**What crosses the wire**: ciphertexts under one of the two keys; values masked by a uniform
``r ∈ Z_n`` (one-time pad); run parameters, counts and the per-epoch bits. Never a feature
value, a label, a residual, a partial score or a gradient in the clear
(``tests/federated/test_hetero_lr_leak.py`` checks every message).

**What each party learns** (semi-honest model):

* The **guest** learns its own gradient per batch, ``X_gᵀd/m`` with its intercept entry
  ``Σd/m``. Knowing ``X_g``, ``y`` and its own ``u_g``, it can subtract its own part and
  obtain ``X_gᵀ·u_h`` and ``Σ_B u_h`` — ``p_g + 1`` linear combinations of the host's partial
  scores per batch, hence, across batches and epochs, information about ``X_h·w_h``.
* The **host** learns its own gradient per batch, ``X_hᵀd/m``: ``p_h`` linear combinations
  of the residuals ``d = z/4 + 1/2 − y``, which carry the labels. Over ``E`` epochs of
  ``⌈m/|B|⌉`` batches it accumulates ``E·⌈m/|B|⌉·p_h`` such combinations. Each party
  therefore refuses to open a gradient of ``k`` values over fewer than ``4k`` rows
  (:data:`.protocol.ROWS_PER_REVEALED_VALUE`); large batches and few epochs leak least. This
  is the known leakage of two-party Taylor LR (Hardy et al. 2017 avoid it with a coordinator
  that sees the gradients instead; SecureML-style secret sharing avoids it at higher cost).
* Both learn the row count, the batch composition (from the shared seed), each other's feature
  count, and per epoch whether the other's weights still moved by more than ``tol``. The final
  weights stay with their owner.

At inference (:func:`predict_guest` / :func:`serve_host_predictions`) the host returns its
partial score ``u_h`` per requested row in the clear: the guest, who must see the final score
``u_g + u_h``, could derive it anyway.

Threat model: semi-honest parties on an authenticated, confidential channel. A malicious guest
could send the host's own ``[[U_h]]`` back as its "gradient" and have it decrypted (the host
only limits how many values it opens per batch); a malicious party could also perturb the
other's weights. Neither is defended against here.
"""

from __future__ import annotations

from puhui.federated.hetero_lr.central import CentralFit, fit_central
from puhui.federated.hetero_lr.guest import predict_guest, train_guest
from puhui.federated.hetero_lr.host import serve_host_predictions, train_host
from puhui.federated.hetero_lr.model import GuestLRModel, HostLRModel
from puhui.federated.hetero_lr.params import HeteroLRParams
from puhui.federated.hetero_lr.protocol import FORMAT
from puhui.federated.timing import PhaseClock

__all__ = [
    "FORMAT",
    "CentralFit",
    "GuestLRModel",
    "HeteroLRParams",
    "HostLRModel",
    "PhaseClock",
    "fit_central",
    "predict_guest",
    "serve_host_predictions",
    "train_guest",
    "train_host",
]
