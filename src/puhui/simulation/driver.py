"""Drive N synthetic applicants from several partner institutions through the HTTP API.

Business time is simulated: each request carries the moment it happens in the story
(submitted at the generator's time, accepted an hour later, disbursed the next day, repaid on
each due date), so months of repayments and defaults play out in minutes. Borrowers the
generator marked as defaulting stop paying at a seeded instalment; everyone else pays on time.
At the horizon each loan's status is read back through the API.
"""

from __future__ import annotations

import random
import statistics
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from datetime import time as dtime
from decimal import Decimal
from typing import Any

from puhui.api.client import PartnerClient
from puhui.api.partners import create_partner
from puhui.api.time import SIMULATED_TIME_HEADER
from puhui.bootstrap import Platform
from puhui.domain.clock import BUSINESS_TZ
from puhui.origination.seed import INSTITUTION_TYPES, as_submission
from puhui.simulation.server import running_server
from puhui.synthetic import SyntheticApplication, generate

Progress = Callable[[str, int, int], None]


@dataclass
class Outcome:
    app: SyntheticApplication
    state: str = ""
    grade: str | None = None
    latency_ms: float = 0.0
    loan_id: str | None = None
    default_from: int | None = None
    days_past_due: int = 0
    bucket: str = ""
    repayments: int = 0


@dataclass
class Summary:
    applications: int
    decisions: Counter[str]
    fraud_total: int
    fraud_stopped: int
    honest_total: int
    honest_stopped: int
    loans: int
    repayments: int
    loans_by_grade: dict[str, int]
    defaults_by_grade: dict[str, int]
    latency_ms: dict[str, float]
    horizon: date
    wall_seconds: float
    errors: Counter[str] = field(default_factory=Counter)

    @property
    def default_rate_by_grade(self) -> dict[str, float]:
        return {
            g: self.defaults_by_grade.get(g, 0) / n
            for g, n in sorted(self.loans_by_grade.items())
            if n
        }


def _at(moment: datetime) -> dict[str, str]:
    return {SIMULATED_TIME_HEADER: moment.isoformat()}


def _due_moment(day: date) -> datetime:
    return datetime.combine(day, dtime(10, 0), BUSINESS_TZ).astimezone(UTC)


def _body(app: SyntheticApplication) -> dict[str, Any]:
    raw = as_submission(app)
    raw.pop("institution_code")
    raw.pop("submitted_at")
    return raw


def simulate(
    platform: Platform,
    *,
    n: int,
    seed: int,
    fraud_rate: float,
    months: int,
    workers: int = 4,
    on_progress: Progress | None = None,
) -> Summary:
    began = time.perf_counter()
    population = generate(n, seed=seed, fraud_rate=fraud_rate)
    rng = random.Random(seed)
    codes = sorted({a.institution_code for a in population.applications})
    creds = {
        code: create_partner(
            platform.uow("simulator"),
            platform.vault,
            name=f"{code} (simulated)",
            code=code,
            institution_type=INSTITUTION_TYPES.get(code.split("_")[0], "bank"),
            rate_limit_per_minute=100_000,
        )
        for code in codes
    }
    outcomes = [Outcome(a) for a in sorted(population.applications, key=lambda a: a.submitted_at)]
    start = min(a.submitted_at for a in population.applications)
    horizon = (start + timedelta(days=30 * months)).astimezone(BUSINESS_TZ).date()
    errors: Counter[str] = Counter()
    with running_server(platform) as base_url:
        clients = {
            c: PartnerClient(k.client_id, k.client_secret, base_url=base_url, timeout=30)
            for c, k in creds.items()
        }
        try:
            _originate(clients, outcomes, rng, errors, on_progress)
            _repay(clients, outcomes, horizon, workers, errors, on_progress)
            _read_status(clients, outcomes, horizon, workers, errors, on_progress)
        finally:
            for client in clients.values():
                client.close()
    return _summarise(outcomes, horizon, time.perf_counter() - began, errors)


def _originate(
    clients: dict[str, PartnerClient],
    outcomes: list[Outcome],
    rng: random.Random,
    errors: Counter[str],
    on_progress: Progress | None,
) -> None:
    for i, o in enumerate(outcomes, 1):
        client = clients[o.app.institution_code]
        t0 = time.perf_counter()
        r = client.post("/v1/applications", json=_body(o.app), headers=_at(o.app.submitted_at))
        o.latency_ms = (time.perf_counter() - t0) * 1000
        if r.status_code != 201:
            errors[f"submit {r.status_code} {_code(r)}"] += 1
            o.state = "error"
        else:
            body = r.json()
            o.state = body["state"]
            o.grade = (body.get("decision") or {}).get("grade")
            if o.state == "approved":
                _contract(client, o, body["offer"]["id"], rng, errors)
        if on_progress:
            on_progress("applications", i, len(outcomes))


def _contract(
    client: PartnerClient, o: Outcome, offer_id: str, rng: random.Random, errors: Counter[str]
) -> None:
    accepted = client.post(
        f"/v1/offers/{offer_id}/accept", headers=_at(o.app.submitted_at + timedelta(hours=1))
    )
    if accepted.status_code != 200:
        errors[f"accept {accepted.status_code} {_code(accepted)}"] += 1
        return
    loan_id = accepted.json()["loan_id"]
    paid_out = client.post(
        f"/v1/loans/{loan_id}/disburse",
        json={"disbursement_ref": f"SIM-{o.app.application_id}"},
        headers=_at(o.app.submitted_at + timedelta(days=1)),
    )
    if paid_out.status_code != 200:
        errors[f"disburse {paid_out.status_code} {_code(paid_out)}"] += 1
        return
    o.loan_id = loan_id
    if o.app.defaulted:
        o.default_from = rng.randint(1, max(1, o.app.term_months))


def _repay(
    clients: dict[str, PartnerClient],
    outcomes: list[Outcome],
    horizon: date,
    workers: int,
    errors: Counter[str],
    on_progress: Progress | None,
) -> None:
    loans = [o for o in outcomes if o.loan_id]

    def play(o: Outcome) -> None:
        client = clients[o.app.institution_code]
        schedule = client.get(f"/v1/loans/{o.loan_id}").json()["schedule"]
        for line in schedule:
            due = date.fromisoformat(line["due_date"])
            if due > horizon or (o.default_from is not None and line["number"] >= o.default_from):
                break
            amount = Decimal(line["principal"]) + Decimal(line["interest"]) + Decimal(line["fee"])
            moment = _due_moment(due)
            r = client.post(
                "/v1/repayments",
                headers=_at(moment),
                json={
                    "loan_id": o.loan_id,
                    "external_ref": f"SIM-{o.loan_id}-{line['number']}",
                    "amount": str(amount),
                    "received_at": moment.isoformat(),
                },
            )
            if r.status_code != 201:
                errors[f"repay {r.status_code} {_code(r)}"] += 1
                break
            o.repayments += 1

    _in_parallel(play, loans, workers, "repayments", on_progress)


def _read_status(
    clients: dict[str, PartnerClient],
    outcomes: list[Outcome],
    horizon: date,
    workers: int,
    errors: Counter[str],
    on_progress: Progress | None,
) -> None:
    def read(o: Outcome) -> None:
        r = clients[o.app.institution_code].get(
            f"/v1/loans/{o.loan_id}/status", params={"as_of": horizon.isoformat()}
        )
        if r.status_code != 200:
            errors[f"status {r.status_code} {_code(r)}"] += 1
            return
        body = r.json()
        o.days_past_due, o.bucket = body["days_past_due"], body["bucket"]

    _in_parallel(read, [o for o in outcomes if o.loan_id], workers, "loan status", on_progress)


def _in_parallel(
    fn: Callable[[Outcome], None],
    items: list[Outcome],
    workers: int,
    phase: str,
    on_progress: Progress | None,
) -> None:
    done = 0
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for _ in pool.map(fn, items):
            done += 1
            if on_progress:
                on_progress(phase, done, len(items))


def _code(response: Any) -> str:
    try:
        return str(response.json().get("code", ""))
    except ValueError:
        return ""


def _summarise(
    outcomes: list[Outcome], horizon: date, wall: float, errors: Counter[str]
) -> Summary:
    decisions = Counter(o.state for o in outcomes)
    fraud = [o for o in outcomes if o.app.is_fraud]
    honest = [o for o in outcomes if not o.app.is_fraud]

    def stopped(group: list[Outcome]) -> int:
        return sum(o.state in ("declined", "referred") for o in group)

    loans_by_grade: dict[str, int] = defaultdict(int)
    defaults_by_grade: dict[str, int] = defaultdict(int)
    for o in outcomes:
        if o.loan_id and o.grade:
            loans_by_grade[o.grade] += 1
            if o.days_past_due > 60:
                defaults_by_grade[o.grade] += 1
    latencies = [o.latency_ms for o in outcomes if o.state != "error"]
    q = (
        statistics.quantiles(latencies, n=100, method="inclusive")
        if len(latencies) > 1
        else [latencies[0] if latencies else 0.0] * 99
    )
    return Summary(
        applications=len(outcomes),
        decisions=decisions,
        fraud_total=len(fraud),
        fraud_stopped=stopped(fraud),
        honest_total=len(honest),
        honest_stopped=stopped(honest),
        loans=sum(1 for o in outcomes if o.loan_id),
        repayments=sum(o.repayments for o in outcomes),
        loans_by_grade=dict(loans_by_grade),
        defaults_by_grade=dict(defaults_by_grade),
        latency_ms={"p50": q[49], "p95": q[94], "p99": q[98]},
        horizon=horizon,
        wall_seconds=wall,
        errors=errors,
    )
