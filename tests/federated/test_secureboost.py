"""SecureBoost end to end: federated trees equal central trees, predictions, models, options.

Both parties run in this process (host in a thread) over :func:`local_pair`, so every message
still goes through the wire codec. Real data: FATE's breast split (569 rows, guest 10 features,
host 20) and a 2,000-row sample of default_credit with injected missing values.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from puhui.federated.channel import MessageLog, local_pair
from puhui.federated.errors import FederatedError, ProtocolMismatch
from puhui.federated.paillier import PrivateKey, generate_keypair
from puhui.federated.secureboost import (
    GuestModel,
    HostModel,
    SecureBoostParams,
    predict_guest,
    protocol,
    resolve_trees,
    serve_host_predictions,
    train_central,
    train_guest,
    train_host,
)

DATA = Path(__file__).resolve().parents[2] / "data" / "federated"


def load(name: str, rows: int | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    guest_file, host_file = {
        "breast": ("breast_hetero_guest.csv", "breast_hetero_host.csv"),
        "default_credit": ("default_credit_hetero_guest.csv", "default_credit_hetero_host.csv"),
    }[name]
    guest, host = pd.read_csv(DATA / guest_file), pd.read_csv(DATA / host_file)
    assert (guest["id"].to_numpy() == host["id"].to_numpy()).all()  # rows already aligned
    if rows is not None:
        picked = np.sort(np.random.default_rng(7).choice(len(guest), rows, replace=False))
        guest, host = guest.iloc[picked], host.iloc[picked]
    x_guest = guest.filter(regex=r"^x\d+$").to_numpy(dtype=float)
    x_host = host.filter(regex=r"^x\d+$").to_numpy(dtype=float)
    return x_guest, guest["y"].to_numpy(), x_host


@pytest.fixture(scope="module")
def key() -> PrivateKey:
    return generate_keypair(2048)


def train_pair(
    x_guest: np.ndarray,
    y: np.ndarray,
    x_host: np.ndarray,
    params: SecureBoostParams,
    key: PrivateKey | None,
    log: MessageLog | None = None,
    **host_options: Any,
) -> tuple[GuestModel, HostModel]:
    guest_channel, host_channel = local_pair(log, timeout=120)
    result: dict[str, Any] = {}

    def host() -> None:
        try:
            result["model"] = train_host(host_channel, x_host, **host_options)
        except BaseException as exc:  # surfaced in the test thread
            result["error"] = exc

    thread = threading.Thread(target=host, daemon=True)
    thread.start()
    guest_model = train_guest(guest_channel, x_guest, y, params, private_key=key)
    thread.join(timeout=120)
    if "error" in result:
        raise result["error"]
    return guest_model, result["model"]


def predict_pair(
    guest_model: GuestModel,
    host_model: HostModel,
    x_guest: np.ndarray,
    x_host: np.ndarray,
    log: MessageLog | None = None,
) -> np.ndarray:
    guest_channel, host_channel = local_pair(log, timeout=60)
    thread = threading.Thread(
        target=serve_host_predictions, args=(host_channel, host_model, x_host), daemon=True
    )
    thread.start()
    scores = predict_guest(guest_channel, guest_model, x_guest)
    thread.join(timeout=60)
    return scores


@pytest.fixture(scope="module")
def breast_run(key: PrivateKey) -> dict[str, Any]:
    x_guest, y, x_host = load("breast")
    params = SecureBoostParams(n_trees=2)
    guest_model, host_model = train_pair(x_guest, y, x_host, params, key)
    central = train_central(x_guest, y, params, x_host)
    return {
        "data": (x_guest, y, x_host),
        "params": params,
        "guest": guest_model,
        "host": host_model,
        "central": central,
    }


def test_federated_trees_equal_central_trees(breast_run: dict[str, Any]) -> None:
    guest_model, host_model, central = (
        breast_run["guest"],
        breast_run["host"],
        breast_run["central"],
    )
    resolved = resolve_trees(guest_model, host_model)
    assert resolved == central.trees  # structure, features, thresholds, gains, leaf weights
    kinds = {node.kind for tree in central.trees for node in tree.splits()}
    assert kinds == {"guest", "host"}
    assert guest_model.base_score == central.base_score
    # The guest's own half shows no host feature or threshold.
    for tree in guest_model.trees:
        for node in tree.splits():
            if node.kind == "host":
                assert node.feature == -1 and node.threshold is None and node.split_id is not None
    assert set(host_model.splits) == set(guest_model.host_split_ids())


def test_federated_predictions_equal_central(breast_run: dict[str, Any]) -> None:
    x_guest, _, x_host = breast_run["data"]
    scores = predict_pair(breast_run["guest"], breast_run["host"], x_guest, x_host)
    assert np.array_equal(scores, breast_run["central"].predict_proba(x_guest, x_host))


def test_one_application_is_one_round_trip(breast_run: dict[str, Any]) -> None:
    x_guest, _, x_host = breast_run["data"]
    log = MessageLog()
    score = predict_pair(breast_run["guest"], breast_run["host"], x_guest[5:6], x_host[5:6], log)
    assert [(m.sender, m.tag) for m in log.messages] == [
        ("guest", protocol.PREDICT),
        ("host", protocol.DIRECTIONS),
    ]
    expected = breast_run["central"].predict_proba(x_guest[5:6], x_host[5:6])
    assert np.array_equal(score, expected)


def test_models_round_trip_through_json(breast_run: dict[str, Any]) -> None:
    guest_json = json.dumps(breast_run["guest"].to_dict())
    host_json = json.dumps(breast_run["host"].to_dict())
    guest_model = GuestModel.from_dict(json.loads(guest_json))
    host_model = HostModel.from_dict(json.loads(host_json))
    assert guest_model == breast_run["guest"] and host_model == breast_run["host"]
    assert json.loads(guest_json)["format"] == "puhui.federated.secureboost.guest/1"
    x_guest, _, x_host = breast_run["data"]
    assert np.array_equal(
        predict_pair(guest_model, host_model, x_guest, x_host),
        breast_run["central"].predict_proba(x_guest, x_host),
    )
    with pytest.raises(ValueError, match=r"not a puhui\.federated\.secureboost\.host/1"):
        HostModel.from_dict(json.loads(guest_json))


def test_guest_only_first_tree(key: PrivateKey) -> None:
    x_guest, y, x_host = load("breast")
    params = SecureBoostParams(n_trees=2, max_depth=2, guest_only_first_tree=True)
    log = MessageLog()
    guest_model, host_model = train_pair(x_guest, y, x_host, params, key, log)
    first, second = guest_model.trees
    assert {node.kind for node in first.splits()} == {"guest"}
    assert "host" in {node.kind for node in second.splits()}
    gradient_messages = [m for m in log.messages if m.tag == protocol.GRADIENTS]
    assert len(gradient_messages) == 1  # the host saw nothing of tree 0
    assert all(m.payload()["tree"] == 1 for m in log.messages if m.tag == protocol.LEVEL)
    central = train_central(x_guest, y, params, x_host)
    assert resolve_trees(guest_model, host_model) == central.trees


def test_lossless_on_default_credit_with_missing_values(key: PrivateKey) -> None:
    """2,000 rows, NaN in guest and host columns, host histograms in 2 forked workers."""
    x_guest, y, x_host = load("default_credit", rows=2000)
    rng = np.random.default_rng(11)
    x_guest[rng.random(x_guest.shape[0]) < 0.1, 1] = np.nan
    x_host[rng.random(x_host.shape[0]) < 0.2, 0] = np.nan
    x_host[rng.random(x_host.shape[0]) < 0.05, 5] = np.nan
    params = SecureBoostParams(n_trees=2)
    guest_model, host_model = train_pair(x_guest, y, x_host, params, key, workers=2)
    central = train_central(x_guest, y, params, x_host)
    assert resolve_trees(guest_model, host_model) == central.trees
    kinds = {node.kind for tree in central.trees for node in tree.splits()}
    assert kinds == {"guest", "host"}
    assert any(node.missing_left for tree in central.trees for node in tree.splits())
    scores = predict_pair(guest_model, host_model, x_guest, x_host)
    assert np.array_equal(scores, central.predict_proba(x_guest, x_host))
    assert len(guest_model.timings) == 2 and guest_model.timings[0]["encryption"] > 0
    assert len(host_model.timings) == 2 and host_model.timings[0]["histogram"] > 0


# -- refusals --------------------------------------------------------------------------------


def test_host_refuses_a_key_under_2048_bits() -> None:
    x_guest, y, x_host = load("breast")
    small = generate_keypair(1024, insecure_for_tests=True)
    params = SecureBoostParams(n_trees=1, key_bits=1024, insecure_for_tests=True)
    with pytest.raises(FederatedError, match="insecure"):
        train_pair(x_guest, y, x_host, params, small)


def test_host_refuses_a_small_key_even_if_it_allows_test_keys() -> None:
    """A guest claiming 2048 bits in its parameters but sending a 1024-bit key is refused."""
    _, y, x_host = load("breast")
    small = generate_keypair(1024, insecure_for_tests=True)
    guest_channel, host_channel = local_pair(timeout=30)
    setup = {
        "format": protocol.FORMAT,
        "model_id": "0123456789abcdef",
        "params": SecureBoostParams(n_trees=1).to_dict(),
        "public_key": small.public.to_message(),
        "n_rows": len(y),
    }
    guest_channel.send(protocol.SETUP, setup)
    with pytest.raises(FederatedError, match="at least 2048"):
        train_host(host_channel, x_host)
    assert guest_channel.recv(protocol.READY)["ok"] is False


def test_host_refuses_another_row_count(key: PrivateKey) -> None:
    x_guest, y, x_host = load("breast")
    with pytest.raises(FederatedError, match="align the samples"):
        train_pair(x_guest, y, x_host[:-1], SecureBoostParams(n_trees=1), key)


def test_guest_refuses_a_malformed_histogram(key: PrivateKey) -> None:
    """A host answering with a truncated histogram is caught, not decoded into a model."""
    x_guest, y, _ = load("breast")
    guest_channel, host_channel = local_pair(timeout=60)

    def bad_host() -> None:
        setup = host_channel.recv(protocol.SETUP)
        host_channel.send(protocol.READY, {"ok": True, "model_id": setup["model_id"]})
        host_channel.recv(protocol.GRADIENTS)
        histograms = [{"node": 0, "count": 100, "ciphertexts": b"\x01" * 512}]
        host_channel.send(
            protocol.LEVEL, {"tree": 0, "depth": 0, "partitions": [], "histograms": histograms}
        )

    thread = threading.Thread(target=bad_host, daemon=True)
    thread.start()
    with pytest.raises(FederatedError, match="wrong size"):
        train_guest(guest_channel, x_guest, y, SecureBoostParams(n_trees=1), private_key=key)
    thread.join(timeout=30)


def test_prediction_for_another_model_is_refused(breast_run: dict[str, Any]) -> None:
    x_guest, _, x_host = breast_run["data"]
    other = GuestModel.from_dict({**breast_run["guest"].to_dict(), "model_id": "f" * 32})
    guest_channel, host_channel = local_pair(timeout=30)
    errors: list[BaseException] = []

    def host() -> None:
        try:
            serve_host_predictions(host_channel, breast_run["host"], x_host)
        except FederatedError as exc:
            errors.append(exc)

    thread = threading.Thread(target=host, daemon=True)
    thread.start()
    with pytest.raises(FederatedError, match="refused"):
        predict_guest(guest_channel, other, x_guest)
    thread.join(timeout=30)
    assert errors and isinstance(errors[0], ProtocolMismatch)
