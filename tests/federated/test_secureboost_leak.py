"""Nothing the host must not see, and nothing the guest must not see, crosses in the clear.

Every message of a training run and of a prediction batch is captured by a :class:`MessageLog`
on :func:`local_pair` (the exact bytes a network would carry), decoded, and walked value by
value. Asserted absent:

* every host feature value — as a float, as its float64 bytes anywhere in any message, and as
  a fixed-point integer at the run's precision or FATE's 2^52;
* the labels — as numbers, as an array, as a bitmap or as raw bytes;
* every gradient and hessian of every tree — as floats, as their quantised integers and as the
  packed per-row plaintext the guest encrypts (large ints only: small protocol numbers such as
  node ids cannot be told from a tiny gradient);
* and, positively, that what does cross has the expected kinds: ciphertexts only as byte blobs
  of 512-byte records below n², host answers without any float, guest decisions as bitmaps
  and candidate positions.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from puhui.federated.channel import LoggedMessage, MessageLog, encode
from puhui.federated.paillier import generate_keypair
from puhui.federated.secureboost import SecureBoostParams, loss, protocol, train_central
from puhui.federated.secureboost.encoding import Layout, pack_rows, quantise
from tests.federated.test_secureboost import load, predict_pair, train_pair

SMALL_INT = 1 << 12


def walk(value: Any) -> Iterator[Any]:
    """Every scalar, bytes object, array and list inside a decoded message."""
    if isinstance(value, dict):
        for k, v in value.items():
            yield from walk(k)
            yield from walk(v)
    elif isinstance(value, list | tuple):
        yield list(value)
        for item in value:
            yield from walk(item)
    else:
        yield value


def windows(data: bytes, width: int = 8) -> set[bytes]:
    return {data[i : i + width] for i in range(len(data) - width + 1)}


@pytest.fixture(scope="module")
def captured() -> dict[str, Any]:
    x_guest, y, x_host = load("breast")
    params = SecureBoostParams(n_trees=2)
    key = generate_keypair(2048)
    log = MessageLog()
    guest_model, host_model = train_pair(x_guest, y, x_host, params, key, log)
    predict_pair(guest_model, host_model, x_guest, x_host, log)
    # Replay the guest's gradients of every tree from the (equal) central run.
    central = train_central(x_guest, y, params, x_host)
    layout = Layout(params.fixed_point_bits, len(y))
    floats: set[float] = set()
    ints: set[int] = set()
    for t in range(params.n_trees):
        raw = dataclasses.replace(central, trees=central.trees[:t]).predict_raw(x_guest, x_host)
        g, h = loss.gradients(raw, y)
        g_int, h_int = quantise(g, h, params.fixed_point_bits)
        floats |= set(g.tolist()) | set(h.tolist())
        ints |= set(g_int.tolist()) | set(h_int.tolist())
        ints |= set(pack_rows(g_int, h_int, layout))
    return {
        "log": log,
        "key": key,
        "y": y,
        "x_host": x_host,
        "params": params,
        "secret_floats": floats,
        "secret_ints": {v for v in ints if abs(v) >= SMALL_INT},
        "host_model": host_model,
    }


def host_value_leaks(messages: list[LoggedMessage], captured: dict[str, Any]) -> list[str]:
    """Tags of messages that carry a host feature value in any form checked."""
    values = captured["x_host"].ravel()
    host_floats = set(values.tolist())
    host_bytes = {v.tobytes() for v in values.astype("<f8")} | {
        v.tobytes() for v in values.astype(">f8")
    }
    fixed = {round(v * 2**bits) for v in values.tolist() for bits in (24, 52)}
    fixed = {v for v in fixed if abs(v) >= SMALL_INT}
    thresholds = {s.threshold for s in captured["host_model"].splits.values()}

    def leaks(item: Any) -> bool:
        if isinstance(item, float):
            return item in host_floats or item in thresholds
        if isinstance(item, int) and not isinstance(item, bool):
            return item in fixed
        if isinstance(item, np.ndarray):
            return bool(set(item.ravel().tolist()) & host_floats)
        return False

    return [
        message.tag
        for message in messages
        if windows(message.data) & host_bytes or any(map(leaks, walk(message.payload())))
    ]


def guest_secret_leaks(messages: list[LoggedMessage], captured: dict[str, Any]) -> list[str]:
    """Tags of messages that carry a label, gradient or hessian in any form checked."""
    y = captured["y"]
    label_forms = [
        np.packbits(y.astype(bool)).tobytes(),
        y.astype(np.int8).tobytes(),
        y.astype("<i8").tobytes(),
    ]
    secret_floats, secret_ints = captured["secret_floats"], captured["secret_ints"]

    def leaks(item: Any) -> bool:
        if isinstance(item, float):
            return item in secret_floats
        if isinstance(item, int) and not isinstance(item, bool):
            return item in secret_ints
        if isinstance(item, np.ndarray):
            same = item.shape == y.shape and np.array_equal(item, y)
            return same or bool(set(item.ravel().tolist()) & secret_floats)
        return isinstance(item, list) and item == y.tolist()

    return [
        message.tag
        for message in messages
        if any(form in message.data for form in label_forms)
        or any(map(leaks, walk(message.payload())))
    ]


def test_no_host_feature_value_crosses(captured: dict[str, Any]) -> None:
    assert host_value_leaks(captured["log"].messages, captured) == []


def test_no_label_or_gradient_crosses(captured: dict[str, Any]) -> None:
    assert guest_secret_leaks(captured["log"].messages, captured) == []


def test_the_detectors_catch_planted_leaks(captured: dict[str, Any]) -> None:
    """The checks above would fail on a leak, in each form they look for."""
    x_host, y = captured["x_host"], captured["y"]
    value = float(x_host[3, 2])
    g_int = next(v for v in captured["secret_ints"])
    planted = [
        {"blob": b"\x00" * 100 + np.float64(value).tobytes() + b"\x01" * 50},
        {"value": value},
        {"fixed": round(value * 2**24)},
        {"fixed": round(value * 2**52)},
        {"column": x_host[:, 4].copy()},
    ]
    for payload in planted:
        message = LoggedMessage("host", "planted", encode(payload))
        assert host_value_leaks([message], captured), payload
    for payload in [
        {"labels": np.packbits(y.astype(bool)).tobytes()},
        {"labels": y.copy()},
        {"labels": y.tolist()},
        {"g": g_int},
        {"g": sorted(captured["secret_floats"])[:3]},
    ]:
        message = LoggedMessage("guest", "planted", encode(payload))
        assert guest_secret_leaks([message], captured), payload


def test_messages_have_the_expected_kinds(captured: dict[str, Any]) -> None:
    log, key, y = captured["log"], captured["key"], captured["y"]
    width = key.public.ciphertext_bytes
    tags = {(m.sender, m.tag) for m in log.messages}
    assert tags == {
        ("guest", protocol.SETUP),
        ("host", protocol.READY),
        ("guest", protocol.GRADIENTS),
        ("host", protocol.LEVEL),
        ("guest", protocol.SPLITS),
        ("guest", protocol.DONE),
        ("guest", protocol.PREDICT),
        ("host", protocol.DIRECTIONS),
    }
    for message in log.messages:
        payload = message.payload()
        if message.sender == "host":  # the host sends ints, strings, bools and bytes, no float
            assert not any(isinstance(v, float | np.ndarray) for v in walk(payload))
        if message.tag == protocol.GRADIENTS:
            blob = payload["ciphertexts"]
            assert isinstance(blob, bytes) and len(blob) == len(y) * width
            assert len(key.public.ciphertexts(blob)) == len(y)  # each record a number below n²
            assert set(payload) == {"tree", "ciphertexts"}
        elif message.tag == protocol.LEVEL:
            for entry in payload["histograms"]:
                assert set(entry) == {"node", "count", "ciphertexts"}
                assert isinstance(entry["ciphertexts"], bytes)
                assert len(entry["ciphertexts"]) % width == 0
            for entry in payload["partitions"]:
                assert set(entry) == {"node", "split_id", "left"}
                assert isinstance(entry["left"], bytes)
        elif message.tag == protocol.SPLITS:
            for decision in payload["nodes"]:
                assert decision["split"] in {"leaf", "guest", "host"}
                assert set(decision) <= {"node", "split", "left", "candidates"}
                if "candidates" in decision:
                    assert all(
                        isinstance(k, int) and 0 <= k < 10_000 for k in decision["candidates"]
                    )
        elif message.tag == protocol.SETUP:
            assert set(payload) == {"format", "model_id", "params", "public_key", "n_rows"}
            assert set(payload["public_key"]) == {"n", "hs", "exponent_bits"}
