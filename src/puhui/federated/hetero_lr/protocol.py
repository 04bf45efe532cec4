"""Message tags, shared checks and the per-phase stopwatch of the vertical LR protocol.

Both party modules import their tags from here, so a renamed tag cannot silently desynchronise
them, and the leak test can assert that nothing else crossed.
"""

from __future__ import annotations

from typing import Any

from puhui.federated.errors import FederatedError, ProtocolMismatch
from puhui.federated.paillier import MIN_KEY_BITS, PrivateKey, PublicKey, generate_keypair

FORMAT = "puhui.federated.hetero_lr/1"

SETUP = "hlr/setup"  # guest → host: format, model id, parameters, row and feature counts, key
SETUP_ACK = "hlr/setup-ack"  # host → guest: accepted (host key, feature count) or the refusal
HOST_SCORES = "hlr/host-scores"  # host → guest: [[U_h]]_H for the batch's rows
GUEST_RESIDUALS = "hlr/guest-residuals"  # guest → host: [[U_g + 2·2^s − 4y·2^s]]_G
HOST_GRADIENT_MASKED = "hlr/host-gradient-masked"  # host → guest: [[X̃_hᵀ·4d + r_h]]_G
GUEST_GRADIENT_MASKED = "hlr/guest-gradient-masked"  # guest → host: [[X̃_gᵀ·4d + r_g]]_H
GUEST_GRADIENT_OPENED = "hlr/guest-gradient-opened"  # host → guest: X̃_gᵀ·4d + r_g mod n_H
HOST_GRADIENT_OPENED = "hlr/host-gradient-opened"  # guest → host: X̃_hᵀ·4d + r_h mod n_G
HOST_EPOCH_DONE = "hlr/host-epoch-done"  # host → guest: did any host weight move by > tol?
GUEST_DECISION = "hlr/guest-decision"  # guest → host: another epoch, or stop
PREDICT_REQUEST = "hlr/predict-request"  # guest → host: model id, rows to score
PREDICT_SCORES = "hlr/predict-scores"  # host → guest: the host's partial scores u_h

TRAINING_TAGS = (
    SETUP,
    SETUP_ACK,
    HOST_SCORES,
    GUEST_RESIDUALS,
    HOST_GRADIENT_MASKED,
    GUEST_GRADIENT_MASKED,
    GUEST_GRADIENT_OPENED,
    HOST_GRADIENT_OPENED,
    HOST_EPOCH_DONE,
    GUEST_DECISION,
)
PREDICT_TAGS = (PREDICT_REQUEST, PREDICT_SCORES)

ROWS_PER_REVEALED_VALUE = 4
"""A party opens a peer's masked gradient only if the batch has at least this many rows per
gradient value: ``k`` values over ``m ≤ k`` rows would let the peer solve for the residuals."""


def own_keypair(bits: int, insecure_for_tests: bool) -> PrivateKey:
    """This party's fresh key pair for one run (never reused: masks and keys are per run)."""
    if bits < MIN_KEY_BITS and not insecure_for_tests:
        raise ValueError(
            f"key_bits={bits} is below the {MIN_KEY_BITS}-bit minimum; "
            "only tests may use smaller keys (insecure_for_tests=True)"
        )
    key = generate_keypair(bits, insecure_for_tests=insecure_for_tests)
    key.prepare()
    return key


def peer_public_key(message: Any, who: str, min_bits: int, insecure_for_tests: bool) -> PublicKey:
    """The peer's public key, refused if malformed or smaller than agreed (or than 2048 bits)."""
    try:
        key = PublicKey.from_message(message, insecure_for_tests=insecure_for_tests)
    except FederatedError as exc:
        raise ProtocolMismatch(f"the {who}'s public key is refused: {exc}") from exc
    if key.bits < min_bits:
        raise ProtocolMismatch(
            f"the {who}'s Paillier key has {key.bits} bits; the run agreed on {min_bits}"
        )
    return key


def check_rows_for_reveal(rows: int, values: int, who: str) -> None:
    """Refuse to open a gradient of ``values`` entries computed over only ``rows`` rows."""
    if rows < ROWS_PER_REVEALED_VALUE * values:
        raise ProtocolMismatch(
            f"the {who} asks to open {values} gradient values over a batch of {rows} rows; "
            f"at least {ROWS_PER_REVEALED_VALUE} rows per value are required "
            f"(raise batch_size to {ROWS_PER_REVEALED_VALUE * values} or more)"
        )


def expect_ciphertexts(payload: Any, key: PublicKey, count: int, what: str) -> bytes:
    """A blob of exactly ``count`` ciphertexts under ``key``, or a ProtocolMismatch naming it."""
    if not isinstance(payload, bytes):
        raise ProtocolMismatch(f"{what}: expected ciphertext bytes, got {type(payload).__name__}")
    if len(payload) != count * key.ciphertext_bytes:
        raise ProtocolMismatch(
            f"{what}: expected {count} ciphertexts of {key.ciphertext_bytes} bytes, "
            f"got {len(payload)} bytes"
        )
    return payload


def expect_residues(payload: Any, modulus: int, count: int, what: str) -> list[int]:
    """``count`` integers in ``[0, modulus)`` (opened masked values), or a ProtocolMismatch."""
    if (
        not isinstance(payload, list)
        or len(payload) != count
        or not all(isinstance(v, int) and not isinstance(v, bool) for v in payload)
        or not all(0 <= v < modulus for v in payload)
    ):
        raise ProtocolMismatch(f"{what}: expected {count} integers modulo the key")
    return list(payload)
