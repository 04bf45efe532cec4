"""The dispatcher against real HTTP receivers on 127.0.0.1, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select, update

from puhui.bootstrap import Platform
from puhui.origination.submit import submit_application
from puhui.privacy.blind_index import BlindIndexer
from puhui.privacy.vault import Vault
from puhui.store import models as m
from puhui.store.unit_of_work import UnitOfWork
from puhui.webhooks.dispatcher import (
    MAX_ATTEMPTS,
    RETRY_SCHEDULE,
    DispatchSummary,
    dispatch_once,
    fan_out,
    retry_delay,
    run,
)
from puhui.webhooks.endpoints import (
    DeliveryInfo,
    delivery_log,
    list_endpoints,
    register_endpoint,
    rotate_endpoint_secret,
)
from tests import factories
from tests.conftest import Database
from tests.webhooks.conftest import Receiver, at, record, subscribe

T0 = datetime.now(UTC).replace(microsecond=0)
"""Where the injected clock starts; the dispatcher and the receivers share it."""


def _log(platform: Platform, institution: str) -> list[DeliveryInfo]:
    return delivery_log(platform.uow(), institution_id=institution)


def _only(platform: Platform, institution: str) -> DeliveryInfo:
    (delivery,) = _log(platform, institution)
    return delivery


def _wait_for(condition: Callable[[], bool], seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


# -- delivery and its shape ------------------------------------------------------------------


def test_an_event_is_delivered_signed_with_the_documented_body(
    platform: Platform, database: Database, bank_a: str, receiver: Receiver
) -> None:
    endpoint_id = subscribe(platform, bank_a, receiver, ["application.submitted"])
    event_id = record(database, bank_a, payload={"amount": "300000.00", "mobile": "138****5678"})
    summary = dispatch_once(platform, now=at(receiver, T0))
    # Published: the event, and the institution's and the endpoint's registrations.
    assert summary == DispatchSummary(
        events_published=3, deliveries_created=1, attempted=1, delivered=1
    )
    (got,) = receiver.received
    assert got.error is None
    assert got.headers["webhook-id"] == event_id
    assert got.headers["webhook-timestamp"] == str(int(T0.timestamp()))
    assert got.headers["content-type"] == "application/json"
    message = got.message
    assert list(message) == ["id", "type", "timestamp", "institution", "resource", "data"]
    assert message["resource"]["type"] == "application"
    assert message["resource"]["id"].startswith("app_")
    assert message["id"] == event_id and message["type"] == "application.submitted"
    assert message["institution"] == "DEMO_BANK"
    assert message["data"] == {"amount": "300000.00", "mobile": "138****5678"}
    with database.sessions() as s:
        occurred = s.scalar(select(m.Event.occurred_at).where(m.Event.event_id == event_id))
    assert message["timestamp"].endswith("Z")
    assert datetime.fromisoformat(message["timestamp"]) == occurred  # the change, not the attempt
    assert got.body == json.dumps(message, ensure_ascii=False, separators=(",", ":")).encode()

    d = _only(platform, bank_a)
    assert (d.endpoint_id, d.event_id, d.event_type) == (endpoint_id, event_id, got.message["type"])
    assert (d.status, d.attempts, d.last_status_code, d.last_error) == ("delivered", 1, 204, None)
    assert d.delivered_at == T0 and d.next_attempt_at is None
    assert dispatch_once(platform, now=at(receiver, T0 + timedelta(hours=1))).idle


def test_an_unsubscribed_type_and_internal_events_are_not_sent(
    platform: Platform, database: Database, bank_a: str, receiver: Receiver
) -> None:
    subscribe(platform, bank_a, receiver, ["loan.disbursed"])
    record(database, bank_a, "application.submitted")
    record(database, bank_a, "subject.erased")
    summary = dispatch_once(platform, now=at(receiver, T0))
    assert summary.deliveries_created == 0 and receiver.received == []
    with database.sessions() as s:
        unpublished = s.scalar(
            select(func.count()).where(
                m.Event.published_at.is_(None), m.Event.institution_id.is_not(None)
            )
        )
        assert unpublished == 0  # looked at once, never again


def test_events_before_an_endpoint_existed_are_not_sent_to_it(
    platform: Platform, database: Database, bank_a: str, receiver: Receiver
) -> None:
    record(database, bank_a)  # nobody dispatched yet
    subscribe(platform, bank_a, receiver)
    later = record(database, bank_a)
    dispatch_once(platform, now=at(receiver, T0))
    assert receiver.event_ids == [later]


def test_events_without_an_institution_are_left_alone(
    platform: Platform, database: Database, bank_a: str, receiver: Receiver
) -> None:
    subscribe(platform, bank_a, receiver)
    event_id = record(database, None, "application.submitted")
    assert dispatch_once(platform, now=at(receiver, T0)).deliveries_created == 0
    assert receiver.received == []
    with database.sessions() as s:
        event = s.scalar(select(m.Event).where(m.Event.event_id == event_id))
        assert event is not None and event.published_at is None  # not ours to publish


# -- retries ---------------------------------------------------------------------------------


def test_failures_are_retried_on_the_back_off_schedule_then_succeed(
    platform: Platform, database: Database, bank_a: str, receiver: Receiver
) -> None:
    endpoint_id = subscribe(platform, bank_a, receiver)
    event_id = record(database, bank_a)
    receiver.fail_first, receiver.fail_status = 2, 503
    key = f"{event_id}:{endpoint_id}"

    first = dispatch_once(platform, now=at(receiver, T0))
    assert (first.attempted, first.retrying) == (1, 1)
    d = _only(platform, bank_a)
    wait1 = retry_delay(1, key)
    assert wait1 is not None and timedelta(seconds=4.5) <= wait1 <= timedelta(seconds=5.5)
    assert (d.status, d.attempts, d.last_status_code) == ("pending", 1, 503)
    assert d.last_error == "HTTP 503 Service Unavailable"
    assert d.next_attempt_at == T0 + wait1

    early = T0 + wait1 - timedelta(milliseconds=1)
    assert dispatch_once(platform, now=at(receiver, early)).attempted == 0

    t2 = T0 + wait1
    assert dispatch_once(platform, now=at(receiver, t2)).retrying == 1
    wait2 = retry_delay(2, key)
    assert wait2 is not None and timedelta(seconds=27) <= wait2 <= timedelta(seconds=33)
    assert _only(platform, bank_a).next_attempt_at == t2 + wait2

    t3 = t2 + wait2
    assert dispatch_once(platform, now=at(receiver, t3)).delivered == 1
    d = _only(platform, bank_a)
    assert (d.status, d.attempts, d.last_status_code, d.delivered_at) == ("delivered", 3, 204, t3)
    # Every attempt carried the same id and body, each signed at its own time.
    assert [r.headers["webhook-id"] for r in receiver.received] == [event_id] * 3
    assert len({r.body for r in receiver.received}) == 1
    assert [int(r.headers["webhook-timestamp"]) for r in receiver.received] == [
        int(t.timestamp()) for t in (T0, t2, t3)
    ]


def test_a_delivery_fails_for_good_after_the_last_attempt(
    platform: Platform, database: Database, bank_a: str, receiver: Receiver
) -> None:
    subscribe(platform, bank_a, receiver)
    record(database, bank_a)
    receiver.fail_first = 10**6
    t = T0
    for attempt in range(1, MAX_ATTEMPTS + 1):
        summary = dispatch_once(platform, now=at(receiver, t))
        assert summary.attempted == 1
        d = _only(platform, bank_a)
        assert d.attempts == attempt
        if attempt < MAX_ATTEMPTS:
            assert d.status == "pending" and d.next_attempt_at is not None
            assert d.next_attempt_at - t == retry_delay(attempt, f"{d.event_id}:{d.endpoint_id}")
            t = d.next_attempt_at
    assert (d.status, d.next_attempt_at, d.last_status_code) == ("failed", None, 500)
    assert summary.failed == 1
    assert dispatch_once(platform, now=at(receiver, t + timedelta(days=30))).idle
    assert len(receiver.received) == MAX_ATTEMPTS == len(RETRY_SCHEDULE) + 1


def test_the_schedule_spans_most_of_a_day_with_bounded_jitter() -> None:
    delays = [retry_delay(n, "evt_a:whe_b") for n in range(1, MAX_ATTEMPTS)]
    assert retry_delay(MAX_ATTEMPTS, "evt_a:whe_b") is None
    for got, base in zip(delays, RETRY_SCHEDULE, strict=True):
        assert got is not None and base * 0.9 <= got <= base * 1.1
    assert delays == [retry_delay(n, "evt_a:whe_b") for n in range(1, MAX_ATTEMPTS)]
    assert len({retry_delay(1, f"evt_{i}:whe_b") for i in range(50)}) > 40  # spread out


def test_retry_after_stretches_the_wait(
    platform: Platform, database: Database, bank_a: str, receiver: Receiver
) -> None:
    subscribe(platform, bank_a, receiver)
    record(database, bank_a)
    receiver.fail_first, receiver.fail_status, receiver.retry_after = 1, 429, "120"
    dispatch_once(platform, now=at(receiver, T0))
    d = _only(platform, bank_a)
    assert (d.last_status_code, d.next_attempt_at) == (429, T0 + timedelta(seconds=120))


@pytest.mark.parametrize("status", [302, 400, 404, 500])
def test_non_2xx_answers_are_failures(
    platform: Platform, database: Database, bank_a: str, receiver: Receiver, status: int
) -> None:
    subscribe(platform, bank_a, receiver)
    record(database, bank_a)
    receiver.fail_first, receiver.fail_status = 1, status
    assert dispatch_once(platform, now=at(receiver, T0)).retrying == 1
    assert _only(platform, bank_a).last_status_code == status


def test_410_gone_disables_the_endpoint(
    platform: Platform, database: Database, bank_a: str, receiver: Receiver
) -> None:
    endpoint_id = subscribe(platform, bank_a, receiver)
    record(database, bank_a)
    receiver.fail_first, receiver.fail_status = 1, 410
    assert dispatch_once(platform, now=at(receiver, T0)).failed == 1
    d = _only(platform, bank_a)
    assert (d.status, d.last_status_code) == ("failed", 410)
    (endpoint,) = list_endpoints(platform.uow(), institution_id=bank_a)
    assert endpoint.id == endpoint_id and not endpoint.active
    record(database, bank_a)
    assert dispatch_once(platform, now=at(receiver, T0)).deliveries_created == 0


def test_network_errors_are_recorded_and_retried(
    platform: Platform, database: Database, bank_a: str
) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    dead = Receiver()
    dead.url = f"http://127.0.0.1:{port}/hooks"
    subscribe(platform, bank_a, dead)
    record(database, bank_a)
    assert dispatch_once(platform, now=T0).retrying == 1
    d = _only(platform, bank_a)
    assert d.last_status_code is None and d.last_error is not None
    assert d.last_error.startswith("ConnectionRefusedError")


def test_a_slow_receiver_times_out(
    platform: Platform, database: Database, bank_a: str, receiver: Receiver
) -> None:
    subscribe(platform, bank_a, receiver)
    record(database, bank_a)
    receiver.delay = 0.5
    assert dispatch_once(platform, now=at(receiver, T0), timeout=0.1).retrying == 1
    d = _only(platform, bank_a)
    assert d.last_error is not None and "timed out" in d.last_error


def test_a_disabled_endpoint_gets_no_more_attempts(
    platform: Platform, database: Database, bank_a: str, receiver: Receiver
) -> None:
    endpoint_id = subscribe(platform, bank_a, receiver)
    record(database, bank_a)
    receiver.fail_first = 1
    dispatch_once(platform, now=at(receiver, T0))
    # Disabled behind the dispatcher's back (say, directly in the database):
    with database.sessions.begin() as s:
        s.execute(
            update(m.WebhookEndpoint)
            .where(m.WebhookEndpoint.id == endpoint_id)
            .values(active=False)
        )
    summary = dispatch_once(platform, now=at(receiver, T0 + timedelta(minutes=1)))
    assert (summary.attempted, summary.cancelled) == (0, 1)
    assert _only(platform, bank_a).status == "cancelled"
    assert len(receiver.received) == 1


# -- secrets ---------------------------------------------------------------------------------


def test_during_a_rotation_both_secrets_sign(
    platform: Platform, database: Database, bank_a: str, receiver: Receiver
) -> None:
    endpoint_id = subscribe(platform, bank_a, receiver)
    old = receiver.secrets[0]
    rotated = rotate_endpoint_secret(
        platform.uow(),
        platform.vault,
        institution_id=bank_a,
        endpoint_id=endpoint_id,
        overlap=timedelta(hours=1),
        now=T0,
    )
    record(database, bank_a)
    dispatch_once(platform, now=at(receiver, T0 + timedelta(minutes=5)))  # receiver on old
    receiver.secrets = [rotated.secret]
    record(database, bank_a)
    dispatch_once(platform, now=at(receiver, T0 + timedelta(minutes=6)))  # receiver on new
    assert [r.error for r in receiver.received] == [None, None]
    assert all(len(r.headers["webhook-signature"].split()) == 2 for r in receiver.received)

    receiver.secrets = [old]
    record(database, bank_a)
    dispatch_once(platform, now=at(receiver, T0 + timedelta(hours=2)))  # overlap over
    assert receiver.received[-1].error is not None
    assert len(receiver.received[-1].headers["webhook-signature"].split()) == 1


# -- tenants and concurrency -----------------------------------------------------------------


def test_an_institutions_events_never_reach_another_institution(
    platform: Platform,
    database: Database,
    bank_a: str,
    bank_b: str,
    make_receiver: Callable[[], Receiver],
) -> None:
    ra, rb = make_receiver(), make_receiver()
    subscribe(platform, bank_a, ra)
    endpoint_b = subscribe(platform, bank_b, rb)
    a_events = {record(database, bank_a) for _ in range(3)}
    b_event = record(database, bank_b, "loan.disbursed")
    at(rb, T0)
    dispatch_once(platform, now=at(ra, T0))
    assert set(ra.event_ids) == a_events
    assert rb.event_ids == [b_event]
    assert {r.message["institution"] for r in ra.authentic} == {"DEMO_BANK"}
    assert {r.message["institution"] for r in rb.authentic} == {"OTHER_BANK"}
    assert [d.event_id for d in _log(platform, bank_b)] == [b_event]
    assert {d.endpoint_id for d in _log(platform, bank_b)} == {endpoint_b}
    assert len(_log(platform, bank_a)) == 3


def test_a_delivery_row_pointing_across_tenants_is_never_sent(
    platform: Platform,
    database: Database,
    bank_a: str,
    bank_b: str,
    receiver: Receiver,
) -> None:
    endpoint_b = subscribe(platform, bank_b, receiver)
    a_event = record(database, bank_a)
    dispatch_once(platform, now=at(receiver, T0))
    with database.sessions.begin() as s:  # a bug or a bad hand edit, not the fan-out
        s.add(
            m.WebhookDelivery(
                endpoint_id=endpoint_b, event_id=a_event, status="pending", next_attempt_at=T0
            )
        )
    assert dispatch_once(platform, now=at(receiver, T0)).failed == 1
    assert receiver.received == []
    d = _only(platform, bank_b)
    assert (d.status, d.last_error) == ("failed", "event of another institution")


def test_concurrent_dispatchers_deliver_each_event_once(
    platform: Platform,
    database: Database,
    bank_a: str,
    make_receiver: Callable[[], Receiver],
) -> None:
    r1, r2 = make_receiver(), make_receiver()
    subscribe(platform, bank_a, r1)
    subscribe(platform, bank_a, r2)
    events = {record(database, bank_a) for _ in range(24)}
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []
    totals: list[DispatchSummary] = []

    def dispatcher() -> None:
        try:
            barrier.wait()
            total = DispatchSummary()
            while not (summary := dispatch_once(platform, limit=5)).idle:
                total += summary
            totals.append(total)
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=dispatcher) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    for r in (r1, r2):
        assert sorted(r.event_ids) == sorted(events)  # all of them, none twice
        assert all(rec.error is None for rec in r.received)
    assert sum(t.delivered for t in totals) == 48
    assert sum(t.events_published for t in totals) == 24 + 3
    assert {d.status for d in delivery_log(platform.uow(), institution_id=bank_a, limit=100)} == {
        "delivered"
    }


def test_a_repeated_fan_out_creates_no_duplicates(
    platform: Platform, database: Database, bank_a: str, receiver: Receiver
) -> None:
    subscribe(platform, bank_a, receiver)
    record(database, bank_a)
    assert fan_out(database.sessions, now=T0).deliveries_created == 1
    with database.sessions.begin() as s:  # as if a crashed dispatcher never marked it
        s.execute(update(m.Event).values(published_at=None))
    again = fan_out(database.sessions, now=T0)
    assert (again.events_published, again.deliveries_created) == (3, 0)
    with database.sessions() as s:
        assert s.scalar(select(func.count()).select_from(m.WebhookDelivery)) == 1


def test_a_stale_claim_cannot_overwrite_a_newer_outcome(
    platform: Platform, database: Database, bank_a: str, receiver: Receiver
) -> None:
    subscribe(platform, bank_a, receiver)
    record(database, bank_a)
    dispatch_once(platform, now=at(receiver, T0))
    with database.sessions.begin() as s:  # someone re-opened it: attempts moved on
        s.execute(update(m.WebhookDelivery).values(status="pending", next_attempt_at=T0))
    from puhui.webhooks import dispatcher

    attempts, _ = dispatcher._claim(database.sessions, platform.vault, now=T0, limit=10)
    (attempt,) = attempts
    with database.sessions.begin() as s:
        s.execute(update(m.WebhookDelivery).values(attempts=5))
    assert dispatcher._record(database.sessions, attempt, dispatcher.HttpResult(500), T0) is None
    assert _only(platform, bank_a).attempts == 5


# -- end to end ------------------------------------------------------------------------------


def test_a_submitted_application_reaches_the_partner(
    platform: Platform,
    database: Database,
    bank_a: str,
    receiver: Receiver,
    vault: Vault,
    indexer: BlindIndexer,
) -> None:
    subscribe(platform, bank_a, receiver, ["application.submitted"])
    receipt = submit_application(
        UnitOfWork(database.sessions), vault, indexer, factories.application()
    )
    summary = dispatch_once(platform)
    assert summary.delivered == 1
    (got,) = receiver.authentic
    message = got.message
    assert message["type"] == "application.submitted"
    assert message["institution"] == "DEMO_BANK"
    assert message["resource"] == {"type": "application", "id": receipt.application_id}
    assert message["data"]["external_ref"] == "REF-0001"
    assert message["data"]["applicant_id"] == receipt.applicant_id
    # Masked, never personal data in the clear.
    assert message["data"]["mobile"] != factories.MOBILE and "*" in message["data"]["mobile"]
    for secret in (factories.MOBILE, factories.ID_NUMBER, factories.NAME, factories.BANK_CARD):
        assert secret.encode() not in got.body


def test_the_background_runner_delivers_until_stopped(
    platform: Platform, database: Database, bank_a: str, receiver: Receiver
) -> None:
    subscribe(platform, bank_a, receiver)
    stop = threading.Event()
    batches: list[DispatchSummary] = []
    worker = threading.Thread(
        target=run, args=(platform, stop, 0.05), kwargs={"on_batch": batches.append}
    )
    worker.start()
    try:
        first = record(database, bank_a)
        _wait_for(lambda: receiver.event_ids == [first])
        second = record(database, bank_a, "loan.disbursed")
        _wait_for(lambda: receiver.event_ids == [first, second])
    finally:
        stop.set()
        worker.join(timeout=10)
    assert not worker.is_alive()
    assert sum(b.delivered for b in batches) == 2
    assert Counter(d.status for d in _log(platform, bank_a)) == {"delivered": 2}


def test_a_busy_runner_gathers_events_into_one_round(
    platform: Platform, database: Database, bank_a: str, receiver: Receiver
) -> None:
    """After a round with less than a batch of work the runner waits ``gather`` seconds, so
    events that arrive meanwhile are fanned out together rather than one round each."""
    subscribe(platform, bank_a, receiver)
    stop = threading.Event()
    batches: list[DispatchSummary] = []
    worker = threading.Thread(
        target=run,
        args=(platform, stop, 0.05),
        kwargs={"gather": 3.0, "on_batch": batches.append},
    )
    worker.start()
    try:
        first = record(database, bank_a)
        _wait_for(lambda: receiver.event_ids == [first])  # round 1 done; now gathering
        later = [record(database, bank_a, "loan.disbursed") for _ in range(3)]
        _wait_for(lambda: sorted(receiver.event_ids) == sorted([first, *later]))
    finally:
        stop.set()
        worker.join(timeout=10)
    assert batches[-1].events_published == 3  # the three later events: one round, not three


def test_a_new_endpoint_for_the_same_url_gets_its_own_secret(
    platform: Platform, bank_a: str, receiver: Receiver
) -> None:
    a, secret_a = register_endpoint(
        platform.uow(), platform.vault, institution_id=bank_a, url=receiver.url, event_types=["*"]
    )
    b, secret_b = register_endpoint(
        platform.uow(), platform.vault, institution_id=bank_a, url=receiver.url, event_types=["*"]
    )
    assert a.id != b.id and secret_a != secret_b
