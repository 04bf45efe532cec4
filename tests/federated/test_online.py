"""Online federated scoring: a real host scoring server over mutual TLS, the guest's live model
and its fallback — the path a lending decision takes with a federated champion."""

from __future__ import annotations

import math
import socket
import time
from collections.abc import Iterator

import numpy as np
import pytest

from puhui.federated.artifact import FederatedArtifact, parse_artifact
from puhui.federated.errors import FederatedError
from puhui.federated.live_model import PARTNER, FederatedCreditModel
from puhui.federated.online import PartnerUnavailable, ScoringClient, ScoringServer, ServedModels
from puhui.federated.scoring import HostTable, secureboost_answerer, secureboost_ask
from puhui.federated.secureboost.model import GuestModel
from puhui.federated.sme_data import guest_vector
from puhui.risk import bundled
from puhui.risk.features import features_of_synthetic

from .conftest import Federation, Trained


@pytest.fixture
def server(trained: Trained, federation: Federation) -> Iterator[ScoringServer]:
    served = ServedModels()
    table = HostTable.from_csv(trained.host_csv, "uscc", trained.host.feature_names)
    served.add(trained.host.model_id, secureboost_answerer(trained.host, table))
    with ScoringServer(federation.host, served) as running:
        yield running


def _client(server: ScoringServer, federation: Federation) -> ScoringClient:
    return ScoringClient(f"https://localhost:{server.port}", federation.guest, timeout=2.0)


def test_live_score_equals_the_model_with_both_halves(
    trained: Trained, server: ScoringServer, federation: Federation
) -> None:
    assert trained.guest.host_split_ids(), "the fixture model should use the partner's data"
    live = FederatedCreditModel("secureboost", trained.guest)
    client = _client(server, federation)
    table = HostTable.from_csv(trained.host_csv, "uscc", trained.host.feature_names)
    for uscc in list(trained.applications)[:25]:
        features = features_of_synthetic(trained.applications[uscc])
        [answer] = client.ask(live.model_id, [uscc], live.ask())
        result = live.score_with_answer(features, answer)
        # The same row scored with the host's half in hand (what a central audit would do).
        split_ids = trained.guest.host_split_ids()
        _, rows = table.lookup([uscc])
        left = trained.host.directions(rows, split_ids)
        raw = trained.guest.predict_raw(
            np.asarray([guest_vector(features)]), {s: left[k] for k, s in enumerate(split_ids)}
        )[0]
        assert result.pd == pytest.approx(1 / (1 + math.exp(-raw)), rel=1e-12)
        assert result.base + sum(c.points for c in result.contributions) == pytest.approx(
            result.score
        )
    assert server.requests_answered == 25


def test_partner_contribution_is_one_block(
    trained: Trained, server: ScoringServer, federation: Federation
) -> None:
    live = FederatedCreditModel("secureboost", trained.guest)
    client = _client(server, federation)
    names: set[str] = set()
    for uscc in list(trained.applications)[:40]:
        [answer] = client.ask(live.model_id, [uscc], live.ask())
        result = live.score_with_answer(features_of_synthetic(trained.applications[uscc]), answer)
        names |= {c.feature for c in result.contributions}
    assert PARTNER in names
    assert not names & set(trained.host.feature_names)  # the bank never names host features


def test_score_live_falls_back_and_says_why(
    trained: Trained, server: ScoringServer, federation: Federation
) -> None:
    artifact = FederatedArtifact(
        FederatedCreditModel("secureboost", trained.guest), bundled.load(), {"name": "t"}
    )
    uscc = next(iter(trained.applications))
    features = features_of_synthetic(trained.applications[uscc])
    client = _client(server, federation)

    result, how = artifact.score_live(features, key=uscc, client=client)
    assert how["scored_by"] == "federated" and result.model == "federated-secureboost"

    _, how = artifact.score_live(features, key="91000000000000000X", client=client)
    assert how["scored_by"] == "fallback"
    assert how["fallback_reason"] == "the partner holds no data for this business"

    _, how = artifact.score_live(features, key=uscc, client=client, refusal="no consent")
    assert how == {
        "scored_by": "fallback",
        "model_id": trained.guest.model_id,
        "fallback_reason": "no consent",
        "fallback_model": bundled.load().metadata.get("name", "scorecard"),
    }
    _, how = artifact.score_live(features, key=uscc, client=None)
    assert "no partner is configured" in how["fallback_reason"]

    fallback_result = bundled.load().score_one(features)
    server.close()
    result, how = artifact.score_live(features, key=uscc, client=client)
    assert how["scored_by"] == "fallback" and "did not answer" in how["fallback_reason"]
    assert result.score == fallback_result.score


def test_partner_refuses_a_client_from_another_ca(
    trained: Trained, server: ScoringServer, federation: Federation
) -> None:
    intruder = ScoringClient(f"https://localhost:{server.port}", federation.foreign_guest)
    with pytest.raises(PartnerUnavailable):
        intruder.ask(trained.guest.model_id, ["x"], {"splits": []})
    assert server.requests_answered == 0


def test_partner_refuses_unknown_models_and_splits(
    trained: Trained, server: ScoringServer, federation: Federation
) -> None:
    client = _client(server, federation)
    with pytest.raises(PartnerUnavailable, match="does not serve model nope"):
        client.ask("nope", ["x"], {"splits": []})
    with pytest.raises(PartnerUnavailable, match="no split id"):
        client.ask(trained.guest.model_id, ["x"], {"splits": [10**9]})
    with pytest.raises(PartnerUnavailable, match="between 1 and"):
        client.ask(trained.guest.model_id, [], {"splits": []})


def test_artifact_round_trip_keeps_scores(trained: Trained) -> None:
    artifact = FederatedArtifact(
        FederatedCreditModel("secureboost", trained.guest), bundled.load(), {"name": "t"}
    )
    again = parse_artifact(artifact.to_json())
    assert isinstance(again, FederatedArtifact)
    assert again.sha256 == artifact.sha256
    uscc = next(iter(trained.applications))
    features = features_of_synthetic(trained.applications[uscc])
    answer = np.packbits(np.ones(len(trained.guest.host_split_ids()), dtype=bool)).tobytes()
    assert again.model.score_with_answer(features, answer) == artifact.model.score_with_answer(
        features, answer
    )
    with pytest.raises(Exception, match="only with its partner"):
        artifact.score_one(features)


def test_a_model_on_other_columns_cannot_serve_the_journey(trained: Trained) -> None:
    other = GuestModel(
        trained.guest.model_id,
        trained.guest.params,
        trained.guest.base_score,
        trained.guest.trees,
        [f"x{k}" for k in range(len(trained.guest.feature_names))],
    )
    with pytest.raises(Exception, match="platform's guest features"):
        FederatedCreditModel("secureboost", other)


def test_reason_codes_follow_the_path_through_node_values(trained: Trained) -> None:
    splits = [node for tree in trained.guest.trees for node in tree.splits()]
    assert splits and any(node.weight != 0.0 for node in splits)  # split nodes carry values
    live = FederatedCreditModel("secureboost", trained.guest)
    answer = np.packbits(np.zeros(len(trained.guest.host_split_ids()), dtype=bool)).tobytes()
    signs: set[bool] = set()
    for app in list(trained.applications.values())[:60]:
        result = live.score_with_answer(features_of_synthetic(app), answer)
        signs |= {c.points > 0 for c in result.contributions if c.points}
    assert signs == {True, False}  # some features push the score up, others down


def test_a_silent_partner_is_left_alone_for_the_cooldown(
    trained: Trained, federation: Federation
) -> None:
    """A partner that accepts connections but never answers costs one timeout, then the calls
    fail at once until the cooldown has passed; one that answers again is asked again."""
    silent = socket.create_server(("127.0.0.1", 0))  # listens, never accepts: TLS hangs
    port = silent.getsockname()[1]
    client = ScoringClient(f"https://localhost:{port}", federation.guest, timeout=0.3, cooldown=1.0)
    try:
        started = time.monotonic()
        with pytest.raises(PartnerUnavailable, match=r"did not answer within 0\.3 s"):
            client.ask("m", ["k"], {})
        assert time.monotonic() - started >= 0.3
        started = time.monotonic()
        with pytest.raises(PartnerUnavailable, match="not asked again for 1 s"):
            client.ask("m", ["k"], {})
        assert time.monotonic() - started < 0.1  # no waiting while it rests
    finally:
        silent.close()

    served = ServedModels()
    table = HostTable.from_csv(trained.host_csv, "uscc", trained.host.feature_names)
    served.add(trained.host.model_id, secureboost_answerer(trained.host, table))
    uscc = next(iter(trained.applications))
    with ScoringServer(federation.host, served, port=port) as partner:
        assert partner.port == port
        ask = secureboost_ask(trained.guest)
        with pytest.raises(PartnerUnavailable, match="not asked again"):
            client.ask(trained.host.model_id, [uscc], ask)
        time.sleep(1.0)
        answers = client.ask(trained.host.model_id, [uscc], ask)
    assert len(answers) == 1


def test_cooldown_must_not_be_negative(federation: Federation) -> None:
    with pytest.raises(FederatedError, match="cooldown"):
        ScoringClient("https://localhost:1", federation.guest, cooldown=-1)
