"""Nothing secret crosses in the clear during vertical LR training.

Every message of a full run is captured (``MessageLog`` on ``local_pair``: the exact bytes that
would cross a network), decoded and walked recursively. The secrets are computed by the central
reference on the same data and parameters (which the federated run equals to the bit), per
batch: the host's features (raw, standardised and their fixed-point integers), the labels, the
partial scores ``u_g``, ``u_h`` and their fixed-point integers, the residuals ``4d·2^s``, the
exact gradient sums and the gradients. The test asserts that

* only the protocol's tags were used;
* every number on the wire is a public run parameter or count, or is crypto-sized (a
  ciphertext or a value masked modulo ``n``) and equals no secret integer;
* no float on the wire is a secret (the only floats are the run's parameters);
* no numpy array crosses at all during training;
* no secret, encoded as float64 or int64 in either byte order, and not the label vector as
  bytes, occurs anywhere inside the ciphertext blobs.

A planted leak is detected by the same walker, so the test is not vacuous.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

from puhui.federated.channel import MessageLog, encode
from puhui.federated.hetero_lr import (
    GuestLRModel,
    HostLRModel,
    fit_central,
    predict_guest,
    serve_host_predictions,
)
from puhui.federated.hetero_lr import arithmetic as ar
from puhui.federated.hetero_lr import protocol as pr

from .test_hetero_lr import PARAMS, Breast, load_breast, run_pair, train_both

CRYPTO_SIZED = 2**64


def _leaves(payload: Any, out: dict[str, list[Any]]) -> None:
    """Sort every leaf of a decoded message by kind, recursing through maps and lists."""
    if isinstance(payload, dict):
        for key, value in payload.items():
            _leaves(key, out)
            _leaves(value, out)
    elif isinstance(payload, list | tuple):
        for value in payload:
            _leaves(value, out)
    elif isinstance(payload, np.ndarray):
        out["arrays"].append(payload)
    elif isinstance(payload, bool) or payload is None:
        out["flags"].append(payload)
    elif isinstance(payload, int):
        out["ints"].append(payload)
    elif isinstance(payload, float):
        out["floats"].append(payload)
    elif isinstance(payload, bytes):
        out["blobs"].append(payload)
    elif isinstance(payload, str):
        out["strings"].append(payload)
    else:
        raise AssertionError(f"unexpected type on the wire: {type(payload).__name__}")


def _secrets(data: Breast) -> tuple[set[float], set[int], list[np.ndarray]]:
    """Secret floats, secret integers, and arrays whose bytes must not appear."""
    trace: list[dict[str, Any]] = []
    fit_central(data.x_guest, data.y, data.x_host, PARAMS, trace=trace)
    shift, scale = ar.standardisation(data.x_host, PARAMS.standardise)
    host_std = ar.standardise(data.x_host, shift, scale)
    host_int = ar.quantise_features(host_std, PARAMS.feature_frac_bits)
    s = PARAMS.score_frac_bits
    floats: list[np.ndarray] = [data.x_host.ravel(), host_std.ravel()]
    ints: list[np.ndarray] = [host_int.ravel()]
    for step in trace:
        floats += [step["u_guest"], step["u_host"], step["grad_guest"], step["grad_host"]]
        floats.append((step["residual4"] / 4.0) * 2.0**-s)  # the residual d itself
        ints += [ar.encode_scores(step["u_host"], s), ar.encode_scores(step["u_guest"], s)]
        ints.append(step["residual4"])
    secret_ints = {int(v) for a in ints for v in a.tolist() if abs(int(v)) > 1}
    secret_ints |= {int(v) for step in trace for v in step["sums"]}
    secret_floats = {float(v) for a in floats for v in a.tolist() if v not in (0.0, 1.0, -1.0)}
    raw = [np.concatenate([a.astype(np.float64) for a in floats]), np.concatenate(ints)]
    return secret_floats, secret_ints, raw


def _embedded(blobs: list[bytes], values: np.ndarray) -> bool:
    """Whether any 8-byte encoding of ``values`` (either byte order) occurs in the blobs."""
    data = np.frombuffer(b"".join(blobs), dtype=np.uint8)
    for dtype in (values.dtype.newbyteorder("<"), values.dtype.newbyteorder(">")):
        wanted = values.astype(dtype)
        wanted = wanted[wanted.view(np.uint64) != 0]  # zero bytes are everywhere
        for offset in range(8):
            usable = (len(data) - offset) // 8 * 8
            window = data[offset : offset + usable].view(dtype)
            if np.isin(window, wanted).any():
                return True
    return False


def _public_numbers(data: Breast) -> set[int | float]:
    params = PARAMS.to_message()
    counts = {len(data.y), len(data.guest_names) + 1, len(data.host_names), 448}
    return {v for v in params.values() if not isinstance(v, bool)} | counts


@dataclass(frozen=True)
class Run:
    data: Breast
    log: MessageLog
    guest: GuestLRModel
    host: HostLRModel


@pytest.fixture(scope="module")
def run() -> Run:
    data = load_breast()
    log = MessageLog()
    guest, host = train_both(data, PARAMS, log)
    return Run(data, log, guest, host)


def _walk(log: MessageLog) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {
        k: [] for k in ("arrays", "flags", "ints", "floats", "blobs", "strings")
    }
    for message in log.messages:
        _leaves(message.payload(), out)
    return out


def test_only_protocol_tags_cross(run: Run) -> None:
    log = run.log
    tags = {m.tag for m in log.messages}
    assert tags == set(pr.TRAINING_TAGS)
    by_sender = {(m.sender, m.tag) for m in log.messages}
    assert ("host", pr.HOST_SCORES) in by_sender and ("guest", pr.HOST_SCORES) not in by_sender


def test_no_secret_number_crosses_in_the_clear(run: Run) -> None:
    data, log = run.data, run.log
    secret_floats, secret_ints, _ = _secrets(data)
    public = _public_numbers(data)
    leaves = _walk(log)
    assert leaves["arrays"] == []  # training sends ciphertext bytes, never arrays
    small = [v for v in leaves["ints"] if abs(v) < CRYPTO_SIZED and v not in public]
    assert small == [], "an integer that is neither a run parameter nor crypto-sized crossed"
    assert not secret_ints & set(leaves["ints"]), "a secret integer crossed in the clear"
    assert set(leaves["floats"]) <= public, "a float that is not a run parameter crossed"
    assert not secret_floats & set(leaves["floats"])
    # the opened values are masked modulo n: crypto-sized, never a gradient sum
    assert sum(1 for v in leaves["ints"] if v >= CRYPTO_SIZED) > 0


def test_no_secret_hides_inside_the_ciphertext_blobs(run: Run) -> None:
    data, log = run.data, run.log
    _, _, raw = _secrets(data)
    blobs = _walk(log)["blobs"]
    assert blobs and all(len(b) % 256 == 0 for b in blobs)  # whole 1024-bit-key ciphertexts
    for values in raw:
        assert not _embedded(blobs, values)
    joined = b"".join(blobs)
    assert data.y.astype(np.uint8).tobytes() not in joined
    assert data.y.astype(np.int64).tobytes() not in joined


def test_the_walker_finds_a_planted_leak() -> None:
    data = load_breast()
    secret_floats, secret_ints, raw = _secrets(data)
    planted = MessageLog()
    leak = {
        "x": float(data.x_host[3, 4]),
        "n": max(secret_ints),
        "blob": b"\x01" + raw[0][:3].tobytes(),  # misaligned on purpose
    }
    planted.record("host", "hlr/oops", encode(leak))
    leaves = _walk(planted)
    assert secret_floats & set(leaves["floats"])
    assert secret_ints & set(leaves["ints"])
    assert _embedded(leaves["blobs"], raw[0])


def test_serving_reveals_the_host_partial_score_and_nothing_else(run: Run) -> None:
    data, guest, host = run.data, run.guest, run.host
    log = MessageLog()
    run_pair(
        lambda ch: predict_guest(ch, guest, data.x_guest),
        lambda ch: serve_host_predictions(ch, host, data.x_host),
        log,
    )
    assert [m.tag for m in log.messages] == list(pr.PREDICT_TAGS)
    leaves = _walk(log)
    (scores,) = leaves["arrays"]  # the documented disclosure: u_h per row
    np.testing.assert_array_equal(scores, host.partial_score(data.x_host))
    assert not np.isin(data.x_host, scores).any()
    assert leaves["floats"] == [] and leaves["blobs"] == []
