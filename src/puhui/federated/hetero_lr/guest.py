"""The guest's side of vertical LR: it holds the labels, drives the run and keeps the intercept.

See the package docstring for the message sequence and what each side learns. The guest
generates its own Paillier key pair for the run; the host's public key arrives in the setup
acknowledgement. Everything the guest sends is a ciphertext under one of the two keys, a
masked value, or a parameter of the run.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.special import expit

from puhui.federated import he_linear
from puhui.federated.channel import Channel
from puhui.federated.errors import ProtocolMismatch
from puhui.federated.hetero_lr import arithmetic as ar
from puhui.federated.hetero_lr import protocol as pr
from puhui.federated.hetero_lr.model import GuestLRModel
from puhui.federated.hetero_lr.params import HeteroLRParams
from puhui.federated.paillier import PrivateKey, PublicKey
from puhui.federated.timing import PhaseClock


def _count(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ProtocolMismatch(f"the host sent an invalid {what}: {value!r}")
    return value


def train_guest(
    channel: Channel,
    X_guest: ar.FloatArray,
    y: ar.FloatArray | ar.IntArray,
    params: HeteroLRParams,
    feature_names: list[str] | tuple[str, ...],
    *,
    insecure_for_tests: bool = False,
    workers: int = 1,
    timer: PhaseClock | None = None,
) -> GuestLRModel:
    """Train with the host on ``channel``; returns the guest's half of the model.

    ``X_guest`` rows must be aligned with the host's (same businesses, same order: the PSI's
    output). ``workers`` > 1 forks processes to encrypt; ``timer`` collects seconds per phase.
    Raises :class:`~puhui.federated.errors.ProtocolMismatch` if the host refuses the run or
    sends something the protocol does not allow.
    """
    clock = timer or PhaseClock()
    x = ar.check_features(X_guest, "guest")
    rows, width = x.shape
    labels = ar.check_labels(y, rows)
    names = ar.check_names(feature_names, width, "guest")
    if rows == 0:
        raise ValueError("there are no rows to train on")
    shift, scale = ar.standardisation(x, params.standardise)
    x_std = ar.standardise(x, shift, scale)
    x_int = ar.quantise_features(x_std, params.feature_frac_bits, with_intercept=True)
    with clock.phase("key generation"):
        key = pr.own_keypair(params.key_bits, insecure_for_tests)
    model_id = secrets.token_hex(16)
    channel.send(
        pr.SETUP,
        {
            "format": pr.FORMAT,
            "model_id": model_id,
            "params": params.to_message(),
            "rows": rows,
            "guest_gradient_values": width + 1,
            "public_key": key.public.to_message(),
        },
    )
    with clock.phase("waiting for the peer"):
        ack = channel.recv(pr.SETUP_ACK)
    if not isinstance(ack, dict) or ack.get("accepted") is not True:
        reason = ack.get("reason") if isinstance(ack, dict) else "malformed acknowledgement"
        raise ProtocolMismatch(f"the host refused the run: {reason}")
    try:
        host_key = pr.peer_public_key(
            ack.get("public_key"), "host", params.key_bits, insecure_for_tests
        )
        host_values = _count(ack.get("host_gradient_values"), "host feature count")
        pr.check_rows_for_reveal(ar.smallest_batch(rows, params), host_values, "host")
    except ProtocolMismatch as exc:
        channel.send(pr.GUEST_DECISION, {"continue": False, "reason": str(exc)})
        raise
    channel.send(pr.GUEST_DECISION, {"continue": True})

    run = _GuestRun(
        channel, clock, params, key, host_key, host_values, x_std, x_int, labels, workers
    )
    weights = np.zeros(width + 1)
    history: list[float] = []
    converged = False
    epoch = 0
    for epoch in range(params.max_epochs):
        start = weights.copy()
        for batch in ar.batches(rows, params, epoch):
            weights = run.batch(batch, weights, epoch)
        history.append(ar.moved(start, weights))
        with clock.phase("waiting for the peer"):
            done = channel.recv(pr.HOST_EPOCH_DONE)
        if not isinstance(done, dict) or not isinstance(done.get("moved"), bool):
            raise ProtocolMismatch("the host's end-of-epoch message is malformed")
        converged = params.tol > 0 and history[-1] <= params.tol and not done["moved"]
        last = converged or epoch + 1 == params.max_epochs
        channel.send(pr.GUEST_DECISION, {"continue": not last, "converged": converged})
        if last:
            break
    return GuestLRModel(
        model_id=model_id,
        feature_names=names,
        coef=weights[:-1].copy(),
        intercept=float(weights[-1]),
        shift=shift,
        scale=scale,
        params=params,
        host_feature_count=host_values,
        epochs_run=epoch + 1,
        converged=converged,
        history=tuple(history),
    )


@dataclass
class _GuestRun:
    """What every mini-batch of one run needs on the guest's side."""

    channel: Channel
    clock: PhaseClock
    params: HeteroLRParams
    key: PrivateKey
    host_key: PublicKey
    host_values: int
    x_std: ar.FloatArray
    x_int: ar.IntArray
    labels: ar.IntArray
    workers: int

    def batch(self, batch: ar.IntArray, weights: ar.FloatArray, epoch: int) -> ar.FloatArray:
        """One mini-batch: residuals, our gradient opened by the host, the host's by us."""
        channel, clock, params = self.channel, self.clock, self.params
        key, host_key = self.key, self.host_key
        m = len(batch)
        with clock.phase("plaintext"):
            u_guest = ar.guest_scores(self.x_std[batch], weights)
            part = ar.guest_residual_part(u_guest, self.labels[batch], params.score_frac_bits)
            own_part = [int(v) for v in part]
        with clock.phase("encrypt"):
            blob = key.encrypt_to_bytes(own_part, workers=self.workers)
        with clock.phase("waiting for the peer"):
            host_blob = channel.recv(pr.HOST_SCORES)
        channel.send(pr.GUEST_RESIDUALS, blob)
        with clock.phase("homomorphic other"):
            host_scores = host_key.ciphertexts(
                pr.expect_ciphertexts(host_blob, host_key, m, "the host's encrypted scores")
            )
            residuals = he_linear.add_plaintext(host_key, host_scores, own_part)  # [[4d·2^s]]_H
        with clock.phase("homomorphic products"):
            gradient = he_linear.encrypted_matvec(residuals, self.x_int[batch])
        with clock.phase("homomorphic other"):
            masked, masks = he_linear.mask_and_blind(host_key, gradient)
        with clock.phase("waiting for the peer"):
            host_masked = channel.recv(pr.HOST_GRADIENT_MASKED)
        pr.expect_ciphertexts(host_masked, key.public, self.host_values, "the host's gradient")
        pr.check_rows_for_reveal(m, self.host_values, "host")
        channel.send(pr.GUEST_GRADIENT_MASKED, masked.to_bytes())
        with clock.phase("decrypt"):
            opened_for_host = key.decrypt(host_masked)
        with clock.phase("waiting for the peer"):
            opened = channel.recv(pr.GUEST_GRADIENT_OPENED)
        channel.send(pr.HOST_GRADIENT_OPENED, opened_for_host)
        values = pr.expect_residues(opened, host_key.n, len(masks), "the opened guest gradient")
        with clock.phase("plaintext"):
            sums = he_linear.unmask(host_key, values, masks)
            ar.check_sums(sums, m, "host")
            step = ar.gradient_from_sums(sums, m, params)
            return ar.descend(weights, step, params, epoch, penalised=len(weights) - 1)


def predict_guest(
    channel: Channel,
    model: GuestLRModel,
    X_guest: ar.FloatArray,
    host_rows: list[int] | None = None,
) -> ar.FloatArray:
    """Probabilities of ``y = 1`` for the rows of ``X_guest``, with the host's partial scores.

    The host scores its rows ``host_rows`` (indexes into its own matrix, one per guest row) or,
    if None, its whole matrix, which must then be aligned with ``X_guest``. The guest learns
    the host's partial score ``u_h`` of each row — inherent in vertical LR serving: whoever
    sees the final score and its own part sees the rest.
    """
    u_guest = model.partial_score(X_guest)
    rows = len(u_guest)
    if host_rows is not None and len(host_rows) != rows:
        raise ValueError("host_rows must name one host row per guest row")
    channel.send(
        pr.PREDICT_REQUEST,
        {
            "model_id": model.model_id,
            "n_rows": rows,
            "rows": None if host_rows is None else [int(r) for r in host_rows],
        },
    )
    reply = channel.recv(pr.PREDICT_SCORES)
    if not isinstance(reply, dict) or "scores" not in reply:
        reason = reply.get("reason") if isinstance(reply, dict) else "malformed reply"
        raise ProtocolMismatch(f"the host did not score the rows: {reason}")
    scores = reply["scores"]
    if not isinstance(scores, np.ndarray) or scores.shape != (rows,) or scores.dtype != np.float64:
        raise ProtocolMismatch(f"the host sent scores of the wrong shape (expected {rows} floats)")
    if not np.isfinite(scores).all():
        raise ProtocolMismatch("the host sent non-finite scores")
    return np.asarray(expit(u_guest + scores), dtype=np.float64)
