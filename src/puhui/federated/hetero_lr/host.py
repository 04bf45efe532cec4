"""The host's side of vertical LR: it holds features only, follows the guest, keeps its weights.

The host checks everything the guest asks of it before acting: the parameters (same
validation as the guest's), the row count against its own data, the guest's key size, and —
each time it is asked to open the guest's masked gradient — that the batch has enough rows per
opened value. A refused setup is answered with the reason, so the guest's operator sees it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from puhui.federated import he_linear
from puhui.federated.channel import Channel
from puhui.federated.errors import ProtocolMismatch
from puhui.federated.hetero_lr import arithmetic as ar
from puhui.federated.hetero_lr import protocol as pr
from puhui.federated.hetero_lr.model import HostLRModel
from puhui.federated.hetero_lr.params import HeteroLRParams
from puhui.federated.paillier import MIN_KEY_BITS, PrivateKey, PublicKey
from puhui.federated.timing import PhaseClock


@dataclass(frozen=True)
class _Setup:
    model_id: str
    params: HeteroLRParams
    guest_key: PublicKey
    guest_values: int


def _read_setup(message: Any, rows: int, insecure_for_tests: bool) -> _Setup:
    """The guest's setup message, checked; ProtocolMismatch says what is wrong."""
    if not isinstance(message, dict) or message.get("format") != pr.FORMAT:
        found = message.get("format") if isinstance(message, dict) else None
        raise ProtocolMismatch(f"the guest speaks {found!r}, this host {pr.FORMAT!r}")
    params = HeteroLRParams.from_message(message.get("params"))
    model_id = message.get("model_id")
    if not isinstance(model_id, str) or not 16 <= len(model_id) <= 64:
        raise ProtocolMismatch("the guest's model_id must be a string of 16 to 64 characters")
    if message.get("rows") != rows:
        raise ProtocolMismatch(
            f"the guest has {message.get('rows')} rows, this host {rows}: align the samples "
            "(PSI) and pass the same rows in the same order"
        )
    values = message.get("guest_gradient_values")
    if isinstance(values, bool) or not isinstance(values, int) or values < 1:
        raise ProtocolMismatch(f"the guest sent an invalid feature count: {values!r}")
    pr.check_rows_for_reveal(ar.smallest_batch(rows, params), values, "guest")
    if params.key_bits < MIN_KEY_BITS and not insecure_for_tests:
        raise ProtocolMismatch(
            f"the guest asks for key_bits={params.key_bits}; at least {MIN_KEY_BITS} required"
        )
    guest_key = pr.peer_public_key(
        message.get("public_key"), "guest", params.key_bits, insecure_for_tests
    )
    return _Setup(model_id, params, guest_key, values)


def train_host(
    channel: Channel,
    X_host: ar.FloatArray,
    feature_names: list[str] | tuple[str, ...],
    *,
    insecure_for_tests: bool = False,
    workers: int = 1,
    timer: PhaseClock | None = None,
) -> HostLRModel:
    """Take part in the guest's training run on ``channel``; returns the host's half of the model.

    The parameters come from the guest and are validated here; ``X_host`` rows must be aligned
    with the guest's. ``insecure_for_tests`` lets a test use keys under 2048 bits (the host
    refuses them otherwise, whatever the guest asks).
    """
    clock = timer or PhaseClock()
    x = ar.check_features(X_host, "host")
    rows, width = x.shape
    names = ar.check_names(feature_names, width, "host")
    with clock.phase("waiting for the peer"):
        message = channel.recv(pr.SETUP)
    try:
        setup = _read_setup(message, rows, insecure_for_tests)
    except ProtocolMismatch as exc:
        channel.send(pr.SETUP_ACK, {"accepted": False, "reason": str(exc)})
        raise
    params = setup.params
    shift, scale = ar.standardisation(x, params.standardise)
    x_std = ar.standardise(x, shift, scale)
    try:
        x_int = ar.quantise_features(x_std, params.feature_frac_bits)
    except ValueError as exc:
        channel.send(pr.SETUP_ACK, {"accepted": False, "reason": f"host data: {exc}"})
        raise
    with clock.phase("key generation"):
        key = pr.own_keypair(params.key_bits, insecure_for_tests)
    channel.send(
        pr.SETUP_ACK,
        {"accepted": True, "public_key": key.public.to_message(), "host_gradient_values": width},
    )
    run = _HostRun(
        channel, clock, params, key, setup.guest_key, setup.guest_values, x_std, x_int, workers
    )
    weights = np.zeros(width)
    epoch = 0
    while _guest_continues(channel, clock):
        start = weights.copy()
        for batch in ar.batches(rows, params, epoch):
            weights = run.batch(batch, weights, epoch)
        channel.send(pr.HOST_EPOCH_DONE, {"moved": ar.moved(start, weights) > params.tol})
        epoch += 1
    return HostLRModel(
        model_id=setup.model_id, feature_names=names, coef=weights, shift=shift, scale=scale
    )


def _guest_continues(channel: Channel, clock: PhaseClock) -> bool:
    with clock.phase("waiting for the peer"):
        decision = channel.recv(pr.GUEST_DECISION)
    if not isinstance(decision, dict) or not isinstance(decision.get("continue"), bool):
        raise ProtocolMismatch("the guest's decision message is malformed")
    if decision.get("reason"):
        raise ProtocolMismatch(f"the guest stopped the run: {decision['reason']}")
    return bool(decision["continue"])


@dataclass
class _HostRun:
    """What every mini-batch of one run needs on the host's side."""

    channel: Channel
    clock: PhaseClock
    params: HeteroLRParams
    key: PrivateKey
    guest_key: PublicKey
    guest_values: int
    x_std: ar.FloatArray
    x_int: ar.IntArray
    workers: int

    def batch(self, batch: ar.IntArray, weights: ar.FloatArray, epoch: int) -> ar.FloatArray:
        """One mini-batch: our scores to the guest, our gradient opened by it, its by us."""
        channel, clock, params = self.channel, self.clock, self.params
        key, guest_key = self.key, self.guest_key
        m = len(batch)
        with clock.phase("plaintext"):
            scores = ar.encode_scores(
                ar.host_scores(self.x_std[batch], weights), params.score_frac_bits
            )
            own_part = [int(v) for v in scores]
        with clock.phase("encrypt"):
            blob = key.encrypt_to_bytes(own_part, workers=self.workers)
        channel.send(pr.HOST_SCORES, blob)
        with clock.phase("waiting for the peer"):
            guest_blob = channel.recv(pr.GUEST_RESIDUALS)
        with clock.phase("homomorphic other"):
            guest_part = guest_key.ciphertexts(
                pr.expect_ciphertexts(guest_blob, guest_key, m, "the guest's encrypted residuals")
            )
            residuals = he_linear.add_plaintext(guest_key, guest_part, own_part)  # [[4d·2^s]]_G
        with clock.phase("homomorphic products"):
            gradient = he_linear.encrypted_matvec(residuals, self.x_int[batch])
        with clock.phase("homomorphic other"):
            masked, masks = he_linear.mask_and_blind(guest_key, gradient)
        channel.send(pr.HOST_GRADIENT_MASKED, masked.to_bytes())
        with clock.phase("waiting for the peer"):
            guest_masked = channel.recv(pr.GUEST_GRADIENT_MASKED)
        pr.expect_ciphertexts(guest_masked, key.public, self.guest_values, "the guest's gradient")
        pr.check_rows_for_reveal(m, self.guest_values, "guest")
        with clock.phase("decrypt"):
            opened_for_guest = key.decrypt(guest_masked)
        channel.send(pr.GUEST_GRADIENT_OPENED, opened_for_guest)
        with clock.phase("waiting for the peer"):
            opened = channel.recv(pr.HOST_GRADIENT_OPENED)
        values = pr.expect_residues(opened, guest_key.n, len(masks), "the opened host gradient")
        with clock.phase("plaintext"):
            sums = he_linear.unmask(guest_key, values, masks)
            ar.check_sums(sums, m, "guest")
            step = ar.gradient_from_sums(sums, m, params)
            return ar.descend(weights, step, params, epoch, penalised=len(weights))


def serve_host_predictions(
    channel: Channel,
    host_model: HostLRModel,
    X_host: ar.FloatArray,
) -> int:
    """Answer one scoring request from the guest with the host's partial scores; rows served.

    The guest names the run's ``model_id`` (a mismatch is refused: a guest model must be
    paired with the host model of the same run) and either the host rows to score or none, in
    which case ``X_host`` is scored whole and must have as many rows as the guest asked for.
    The reply reveals ``u_h`` per row to the guest — inherent in vertical LR serving.
    """
    request = channel.recv(pr.PREDICT_REQUEST)
    try:
        scores = _score_request(request, host_model, X_host)
    except (ProtocolMismatch, ValueError) as exc:
        channel.send(pr.PREDICT_SCORES, {"reason": str(exc)})
        raise
    channel.send(pr.PREDICT_SCORES, {"scores": scores})
    return len(scores)


def _score_request(request: Any, host_model: HostLRModel, x_host: ar.FloatArray) -> ar.FloatArray:
    if not isinstance(request, dict):
        raise ProtocolMismatch("the scoring request is malformed")
    if request.get("model_id") != host_model.model_id:
        raise ProtocolMismatch(
            f"the guest's model {request.get('model_id')!r} is not this host's "
            f"{host_model.model_id!r}: load the host model of the same training run"
        )
    wanted, rows = request.get("n_rows"), request.get("rows")
    x = ar.check_features(x_host, "host")
    if rows is None:
        if wanted != x.shape[0]:
            raise ProtocolMismatch(
                f"the guest asks for {wanted} rows; the host data has {x.shape[0]}"
            )
        return host_model.partial_score(x)
    if (
        not isinstance(rows, list)
        or len(rows) != wanted
        or not all(isinstance(r, int) and not isinstance(r, bool) for r in rows)
        or not all(0 <= r < x.shape[0] for r in rows)
    ):
        raise ProtocolMismatch(
            f"the guest asks for rows outside the host data (0–{x.shape[0] - 1})"
        )
    return host_model.partial_score(x[np.asarray(rows, dtype=np.int64)])
