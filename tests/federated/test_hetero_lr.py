"""Vertical LR: the federated run equals the central one, serving, model files, refusals.

Both parties run in threads of this process over ``local_pair`` (every message still goes
through the wire codec). Data: FATE's breast split (569 rows; guest 10 features + label, host
20). Keys are 1024 bits (``insecure_for_tests``) except where the size is the point.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from puhui.federated.channel import LocalChannel, MessageLog, local_pair
from puhui.federated.errors import ProtocolMismatch
from puhui.federated.hetero_lr import (
    FORMAT,
    GuestLRModel,
    HeteroLRParams,
    HostLRModel,
    fit_central,
    predict_guest,
    serve_host_predictions,
    train_guest,
    train_host,
)
from puhui.federated.hetero_lr import protocol as pr
from puhui.federated.paillier import generate_keypair
from puhui.risk.logit import fit_logit
from puhui.risk.metrics import auc

DATA = Path(__file__).resolve().parents[2] / "data" / "federated"
PARAMS = HeteroLRParams(
    learning_rate=0.3, l2=0.01, max_epochs=3, batch_size=256, seed=7, key_bits=1024
)
FLOAT_TOLERANCE = 1e-4  # federated (fixed point) vs float64 central: rounding only


@dataclass(frozen=True)
class Breast:
    x_guest: np.ndarray
    y: np.ndarray
    x_host: np.ndarray
    guest_names: list[str]
    host_names: list[str]


def load_breast() -> Breast:
    guest = pd.read_csv(DATA / "breast_hetero_guest.csv")
    host = pd.read_csv(DATA / "breast_hetero_host.csv")
    assert (guest["id"] == host["id"]).all()  # the files are aligned row by row
    xg, xh = guest.drop(columns=["id", "y"]), host.drop(columns=["id"])
    return Breast(
        xg.to_numpy(), guest["y"].to_numpy(), xh.to_numpy(), list(xg.columns), list(xh.columns)
    )


@pytest.fixture(scope="module")
def breast() -> Breast:
    return load_breast()


def run_pair(
    guest: Callable[[LocalChannel], Any],
    host: Callable[[LocalChannel], Any],
    log: MessageLog | None = None,
    timeout: float = 60.0,
) -> tuple[Any, Any]:
    """Run the two parties concurrently; re-raise the guest's error first, then the host's."""
    guest_end, host_end = local_pair(log, timeout=timeout)
    with ThreadPoolExecutor(1) as pool:
        host_future = pool.submit(host, host_end)
        try:
            guest_result = guest(guest_end)
        finally:
            host_error = host_future.exception()
        if host_error is not None:
            raise host_error
        return guest_result, host_future.result()


def train_both(
    data: Breast, params: HeteroLRParams, log: MessageLog | None = None
) -> tuple[GuestLRModel, HostLRModel]:
    guest, host = run_pair(
        lambda ch: train_guest(
            ch, data.x_guest, data.y, params, data.guest_names, insecure_for_tests=True
        ),
        lambda ch: train_host(ch, data.x_host, data.host_names, insecure_for_tests=True),
        log,
    )
    return guest, host


@pytest.fixture(scope="module")
def trained(breast: Breast) -> tuple[GuestLRModel, HostLRModel]:
    return train_both(breast, PARAMS)


def predict(
    guest_model: GuestLRModel,
    host_model: HostLRModel,
    x_guest: np.ndarray,
    x_host: np.ndarray,
    host_rows: list[int] | None = None,
) -> np.ndarray:
    probabilities, served = run_pair(
        lambda ch: predict_guest(ch, guest_model, x_guest, host_rows),
        lambda ch: serve_host_predictions(ch, host_model, x_host),
    )
    assert served == len(x_guest)
    return np.asarray(probabilities)


def test_federated_weights_equal_the_central_fit_exactly(
    breast: Breast, trained: tuple[GuestLRModel, HostLRModel]
) -> None:
    guest, host = trained
    central = fit_central(breast.x_guest, breast.y, breast.x_host, PARAMS)
    # same fixed point, exact integer sums on both paths: equal to the last bit
    np.testing.assert_array_equal(guest.coef, central.coef_guest)
    assert guest.intercept == central.intercept
    np.testing.assert_array_equal(host.coef, central.coef_host)
    assert guest.epochs_run == central.epochs_run == PARAMS.max_epochs
    assert guest.model_id == host.model_id and len(guest.model_id) == 32
    assert guest.host_feature_count == len(breast.host_names)
    # each party holds only its own weights
    assert len(guest.coef) == len(breast.guest_names) and len(host.coef) == len(breast.host_names)


def test_fixed_point_costs_less_than_the_stated_tolerance(
    breast: Breast, trained: tuple[GuestLRModel, HostLRModel]
) -> None:
    guest, host = trained
    exact = fit_central(breast.x_guest, breast.y, breast.x_host, PARAMS, quantised=False)
    federated = np.concatenate([guest.coef, [guest.intercept], host.coef])
    floating = np.concatenate([exact.coef_guest, [exact.intercept], exact.coef_host])
    assert np.max(np.abs(federated - floating)) <= FLOAT_TOLERANCE


def test_serving_matches_central_and_discriminates(
    breast: Breast, trained: tuple[GuestLRModel, HostLRModel]
) -> None:
    guest, host = trained
    probabilities = predict(guest, host, breast.x_guest, breast.x_host)
    central = fit_central(breast.x_guest, breast.y, breast.x_host, PARAMS)
    np.testing.assert_allclose(
        probabilities, central.predict_proba(breast.x_guest, breast.x_host), rtol=0, atol=1e-12
    )
    joined = np.hstack([breast.x_guest, breast.x_host])
    exact = fit_logit(joined, breast.y.astype(float), l2=1.0)
    assert auc(breast.y, probabilities) > 0.98
    assert auc(breast.y, probabilities) == pytest.approx(
        auc(breast.y, exact.decision(joined)), abs=0.02
    )


def test_serving_selected_host_rows(
    breast: Breast, trained: tuple[GuestLRModel, HostLRModel]
) -> None:
    guest, host = trained
    everything = predict(guest, host, breast.x_guest, breast.x_host)
    rows = [5, 0, 300, 5]
    chosen = predict(guest, host, breast.x_guest[rows], breast.x_host, host_rows=rows)
    np.testing.assert_array_equal(chosen, everything[rows])


def test_json_round_trip_predicts_the_same(
    breast: Breast, trained: tuple[GuestLRModel, HostLRModel]
) -> None:
    guest, host = trained
    guest_json = json.loads(json.dumps(guest.to_dict()))
    host_json = json.loads(json.dumps(host.to_dict()))
    assert guest_json["format"] == host_json["format"] == FORMAT == "puhui.federated.hetero_lr/1"
    assert "coef" in host_json and "intercept" not in host_json
    guest2, host2 = GuestLRModel.from_dict(guest_json), HostLRModel.from_dict(host_json)
    assert guest2.params == guest.params and guest2.history == guest.history
    np.testing.assert_array_equal(
        predict(guest2, host2, breast.x_guest, breast.x_host),
        predict(guest, host, breast.x_guest, breast.x_host),
    )
    with pytest.raises(ValueError, match="not the guest's"):
        GuestLRModel.from_dict(host_json)
    with pytest.raises(ValueError, match="format"):
        HostLRModel.from_dict({**host_json, "format": "puhui.federated.hetero_lr/0"})
    with pytest.raises(ValueError, match="coef"):
        HostLRModel.from_dict({**host_json, "coef": host_json["coef"][:-1]})


def test_serving_refuses_another_runs_model(
    breast: Breast, trained: tuple[GuestLRModel, HostLRModel]
) -> None:
    guest, host = trained
    other = replace(host, model_id="f" * 32)
    with pytest.raises(ProtocolMismatch, match="not this host's"):
        predict(guest, other, breast.x_guest, breast.x_host)


def test_tolerance_stops_both_parties_at_the_same_epoch(breast: Breast) -> None:
    params = replace(PARAMS, max_epochs=20, tol=0.05)
    central = fit_central(breast.x_guest, breast.y, breast.x_host, params)
    assert central.converged and central.epochs_run < params.max_epochs
    guest, host = train_both(breast, params)
    assert guest.converged and guest.epochs_run == central.epochs_run
    np.testing.assert_array_equal(host.coef, central.coef_host)
    np.testing.assert_array_equal(guest.coef, central.coef_guest)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("learning_rate", 0.0),
        ("learning_rate", float("nan")),
        ("l2", -1.0),
        ("max_epochs", 0),
        ("batch_size", 8),
        ("batch_size", 100.5),
        ("tol", -0.1),
        ("decay", -1.0),
        ("seed", -1),
        ("feature_frac_bits", 31),
        ("score_frac_bits", 4),
        ("key_bits", 2000),
        ("key_bits", 512),
        ("standardise", "yes"),
    ],
)
def test_bad_parameters_are_named(field: str, value: Any) -> None:
    with pytest.raises(ValueError, match=field):
        HeteroLRParams(**{field: value})


def test_peer_parameters_are_validated_too() -> None:
    message = PARAMS.to_message()
    assert HeteroLRParams.from_message(message) == PARAMS
    with pytest.raises(ProtocolMismatch, match="learning_rate"):
        HeteroLRParams.from_message({**message, "learning_rate": -1})
    with pytest.raises(ProtocolMismatch, match="unknown \\['momentum'\\]"):
        HeteroLRParams.from_message({**message, "momentum": 0.9})
    with pytest.raises(ProtocolMismatch, match="missing \\['seed'\\]"):
        HeteroLRParams.from_message({k: v for k, v in message.items() if k != "seed"})


def _refused(
    data: Breast, params: HeteroLRParams, x_host: np.ndarray, host_insecure: bool = True
) -> tuple[str, BaseException | None]:
    """Run a training that must be refused; the guest's error text and the host's error."""
    host_error: list[BaseException] = []

    def host(ch: LocalChannel) -> None:
        try:
            train_host(ch, x_host, data.host_names, insecure_for_tests=host_insecure)
        except ProtocolMismatch as exc:
            host_error.append(exc)

    with pytest.raises(ProtocolMismatch) as guest_error:
        run_pair(
            lambda ch: train_guest(
                ch, data.x_guest, data.y, params, data.guest_names, insecure_for_tests=True
            ),
            host,
            timeout=10,
        )
    return str(guest_error.value), host_error[0] if host_error else None


def test_host_refuses_a_key_under_2048_bits(breast: Breast) -> None:
    text, host_error = _refused(breast, PARAMS, breast.x_host, host_insecure=False)
    assert "key_bits=1024" in text and "2048" in text
    assert isinstance(host_error, ProtocolMismatch)


def test_host_refuses_misaligned_rows(breast: Breast) -> None:
    text, host_error = _refused(breast, PARAMS, breast.x_host[:-1])
    assert "569 rows, this host 568" in text and host_error is not None


def test_host_refuses_batches_too_small_for_the_guest_gradient(breast: Breast) -> None:
    text, _ = _refused(breast, replace(PARAMS, batch_size=32), breast.x_host)
    assert "11 gradient values over a batch of 25 rows" in text


def test_guest_refuses_batches_too_small_for_the_host_gradient(breast: Breast) -> None:
    # batches of 64 (and one of 57) rows suffice for the guest's 11 values, not the host's 20
    text, host_error = _refused(breast, replace(PARAMS, batch_size=64), breast.x_host)
    assert "20 gradient values over a batch of 57 rows" in text
    assert host_error is not None and "the guest stopped the run" in str(host_error)


def test_guest_refuses_a_host_key_smaller_than_agreed(breast: Breast) -> None:
    small = generate_keypair(1024, insecure_for_tests=True)

    def fake_host(ch: LocalChannel) -> Any:
        setup = ch.recv(pr.SETUP)
        assert setup["params"]["key_bits"] == 1280
        ch.send(
            pr.SETUP_ACK,
            {"accepted": True, "public_key": small.public.to_message(), "host_gradient_values": 3},
        )
        return ch.recv(pr.GUEST_DECISION)

    with pytest.raises(ProtocolMismatch, match="1024 bits; the run agreed on 1280"):
        run_pair(
            lambda ch: train_guest(
                ch,
                breast.x_guest,
                breast.y,
                replace(PARAMS, key_bits=1280),
                breast.guest_names,
                insecure_for_tests=True,
            ),
            fake_host,
        )


def test_peer_key_under_2048_bits_is_refused_outside_tests() -> None:
    small = generate_keypair(1024, insecure_for_tests=True).public.to_message()
    with pytest.raises(ProtocolMismatch, match="at least 2048"):
        pr.peer_public_key(small, "host", 1024, insecure_for_tests=False)
    with pytest.raises(ValueError, match="key_bits=1024 is below"):
        pr.own_keypair(1024, insecure_for_tests=False)


def test_guest_input_is_checked(breast: Breast) -> None:
    guest_end, _ = local_pair()
    with pytest.raises(ValueError, match="y must be 0"):
        train_guest(guest_end, breast.x_guest, breast.y * 2, PARAMS, breast.guest_names)
    with pytest.raises(ValueError, match="feature_names"):
        train_guest(guest_end, breast.x_guest, breast.y, PARAMS, breast.guest_names[:-1])
    with_nan = breast.x_guest.copy()
    with_nan[0, 0] = np.nan
    with pytest.raises(ValueError, match="missing or infinite"):
        train_guest(guest_end, with_nan, breast.y, PARAMS, breast.guest_names)
