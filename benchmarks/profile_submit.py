"""Server CPU per ``POST /v1/applications``, in one process, with an optional profile.

Run: ``.venv/bin/python benchmarks/profile_submit.py [--database sqlite|postgresql] [--n 300]
[--profile 40]``.

Why this exists beside ``bench_api.py``: on a shared 2-core machine the saturation throughput of
the load test says more about the neighbours than about the code. This drives the real app
(``create_app``, every middleware) through ``httpx2.ASGITransport`` with complete partner calls
(bearer token, signature, fresh ``Idempotency-Key``), sequentially, and measures what the
*server* spends per request: process CPU time from the moment the ASGI app is entered until it
returns (the client's signing and parsing are outside) and, on PostgreSQL, the CPU of the
database's backends (from /proc). CPU time is less disturbed by other processes than wall
time, though a busy neighbour still inflates it by a fifth or more: compare runs made side by
side. A separate pass afterwards counts statements (an ``executemany`` counts once, as does
each statement ``store.direct`` runs, alone or sent together; SQLite's ``BEGIN IMMEDIATE``,
sent to the driver directly, is not counted) and commits per request.

``--inline`` (implied by ``--profile``) runs FastAPI's thread-pool calls in the event loop's
thread, so that cProfile, which sees one thread, sees the whole request. Neither the HTTP
server (uvicorn) nor the webhook dispatcher is in the figures: ``bench_api.py`` has both.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import os
import pstats
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import anyio.to_thread
import httpx2
from sqlalchemy import event, text
from starlette.types import ASGIApp, Receive, Scope, Send

from puhui.api.app import create_app
from puhui.api.client import encode_json, sign_request
from puhui.api.idempotency import IDEMPOTENCY_HEADER
from puhui.api.partners import MAX_RATE_LIMIT, create_partner
from puhui.bootstrap import Platform
from puhui.origination.seed import as_submission
from puhui.settings import Settings
from puhui.store import direct, migrate, pg
from puhui.synthetic import generate
from scratch_db import postgres_scratch

T = TypeVar("T")
SUBMIT_PATH = "/v1/applications"
COUNTED = 50
"""Requests of the statement-counting pass."""


class ServerClock:
    """ASGI wrapper: CPU and wall time spent inside the app, summed per request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.cpu: list[float] = []
        self.wall: list[float] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        cpu, wall = time.process_time(), time.perf_counter()
        try:
            await self.app(scope, receive, send)
        finally:
            self.cpu.append(time.process_time() - cpu)
            self.wall.append(time.perf_counter() - wall)


async def _inline(func: Callable[[], T], *args: Any, **kwargs: Any) -> T:
    return func()


def bodies(n: int, seed: int) -> list[bytes]:
    out = []
    for app in generate(n, seed=seed).applications:
        raw = as_submission(app)
        raw.pop("institution_code")
        raw.pop("submitted_at")
        out.append(encode_json(raw))
    return out


async def drive(
    app: ASGIApp,
    client_id: str,
    secret: str,
    payloads: list[bytes],
    before_submits: Callable[[], None] | None = None,
) -> None:
    """Fetch a token, then submit ``payloads`` one after the other, each a full partner call."""
    transport = httpx2.ASGITransport(app=app)
    async with httpx2.AsyncClient(transport=transport, base_url="http://bench") as http:
        r = await http.post(
            "/v1/oauth/token",
            data={"grant_type": "client_credentials"},
            auth=(client_id, secret),
        )
        r.raise_for_status()
        token = r.json()["access_token"]
        if before_submits is not None:
            before_submits()
        for i, body in enumerate(payloads):
            headers = {
                "Content-Type": "application/json",
                "Authorization": f"Bearer {token}",
                IDEMPOTENCY_HEADER: str(uuid.uuid4()),
                **sign_request("POST", SUBMIT_PATH, body, secret),
            }
            r = await http.post(SUBMIT_PATH, content=body, headers=headers)
            if r.status_code != 201:
                raise RuntimeError(f"request {i}: {r.status_code} {r.text[:500]}")


class BackendClock:
    """CPU of this database's PostgreSQL backends (server processes), from /proc."""

    def __init__(self, platform: Platform) -> None:
        with platform.engine.connect() as conn:
            self.pids = list(
                conn.execute(
                    text("select pid from pg_stat_activity where datname = current_database()")
                ).scalars()
            )
        self.started = self._cpu()

    def _cpu(self) -> float:
        total = 0.0
        for pid in self.pids:
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        return total

    def ms_per(self, n: int) -> float:
        return 1000 * (self._cpu() - self.started) / max(n, 1)


def count_statements(
    platform: Platform, app: ASGIApp, client_id: str, secret: str, payloads: list[bytes]
) -> tuple[float, float, float]:
    """Statements (an executemany counts once), commits and (PostgreSQL) network round trips
    per request, over ``payloads``.

    A separate pass after the timed one: an engine listener slows every statement down."""
    counts = {"statements": 0, "commits": 0, "round_trips": 0}

    def statement(*_args: Any) -> None:
        counts["statements"] += 1

    def commit(*_args: Any) -> None:
        counts["commits"] += 1

    run_direct = direct._run
    real_flush = pg._flush

    def round_trip(sock: Any) -> None:
        counts["round_trips"] += 1
        real_flush(sock)

    def counted_direct(*args: Any) -> Any:
        counts["statements"] += 1
        return run_direct(*args)

    together = pg.PipelinedCursor.execute_together

    def counted_together(cursor: Any, operations: Any) -> Any:
        counts["statements"] += len(operations)  # sent together on PostgreSQL, not via _run
        return together(cursor, operations)

    def listen() -> None:  # after the token request: only submissions are counted
        event.listen(platform.engine, "before_cursor_execute", statement)
        event.listen(platform.engine, "commit", commit)
        direct._run = counted_direct  # the statements ``store.direct`` runs bypass the events
        pg.PipelinedCursor.execute_together = counted_together  # type: ignore[method-assign]
        pg._flush = round_trip  # PostgreSQL: one flush of the socket per round trip

    try:
        asyncio.run(drive(app, client_id, secret, payloads, listen))
    finally:
        event.remove(platform.engine, "before_cursor_execute", statement)
        event.remove(platform.engine, "commit", commit)
        direct._run = run_direct
        pg.PipelinedCursor.execute_together = together  # type: ignore[method-assign]
        pg._flush = real_flush
    n = max(len(payloads), 1)
    return counts["statements"] / n, counts["commits"] / n, counts["round_trips"] / n


def run(database: str, n: int, warmup: int, profile: int, inline: bool, seed: int) -> None:
    if inline or profile:
        anyio.to_thread.run_sync = _inline  # type: ignore[assignment]
    with tempfile.TemporaryDirectory(prefix="puhui-profile-") as tmp:
        tmpdir = Path(tmp)
        drop: Callable[[], None] | None = None
        if database == "sqlite":
            url = f"sqlite:///{tmpdir / 'p.db'}"
        else:
            pg = postgres_scratch()
            if pg is None:
                raise SystemExit("PostgreSQL unreachable")
            url, drop = pg
        try:
            migrate.upgrade(url)
            platform = Platform(Settings(database_url=url, key_dir=tmpdir / "k", var_dir=tmpdir))
            creds = create_partner(
                platform.uow(),
                platform.vault,
                name="Profile partner",
                code="PROFILE",
                institution_type="bank",
                rate_limit_per_minute=MAX_RATE_LIMIT,
            )
            payloads = bodies(warmup + n + COUNTED, seed)
            clock = ServerClock(create_app(platform))
            asyncio.run(drive(clock, creds.client_id, creds.client_secret, payloads[:warmup]))
            clock.cpu.clear()
            clock.wall.clear()
            profiler = cProfile.Profile() if profile else None
            if profiler:
                profiler.enable()
            measured = payloads[warmup : warmup + n]
            backends = BackendClock(platform) if database == "postgresql" else None
            asyncio.run(drive(clock, creds.client_id, creds.client_secret, measured))
            backend_ms = backends.ms_per(n) if backends else None
            if profiler:
                profiler.disable()
            submits = clock.cpu[1:]  # the first call is the token request
            walls = clock.wall[1:]
            statements, commits, trips = count_statements(
                platform, clock, creds.client_id, creds.client_secret, payloads[warmup + n :]
            )
            print(
                f"{database}: {len(submits)} submits; server CPU ms/request "
                f"mean {1000 * statistics.mean(submits):.2f} "
                f"median {1000 * statistics.median(submits):.2f}; wall ms mean "
                f"{1000 * statistics.mean(walls):.2f}; statements/request {statements:.1f}; "
                f"commits/request {commits:.1f}"
                + (
                    ""
                    if backend_ms is None
                    else f"; PostgreSQL backend CPU ms/request {backend_ms:.2f}; "
                    f"round trips/request {trips:.1f}"
                )
                + (" (under the profiler)" if profiler else "")
            )
            if profiler:
                out = io.StringIO()
                stats = pstats.Stats(profiler, stream=out)
                stats.sort_stats("cumulative").print_stats(profile)
                stats.sort_stats("tottime").print_stats(profile)
                print(out.getvalue())
            platform.close()
        finally:
            if drop is not None:
                drop()


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--n", type=int, default=300)
    parser.add_argument("--warmup", type=int, default=50)
    parser.add_argument("--profile", type=int, default=0, help="print the top N functions")
    parser.add_argument("--inline", action="store_true", help="no thread pool")
    parser.add_argument("--seed", type=int, default=20261201)
    args = parser.parse_args(argv)
    run(args.database, args.n, args.warmup, args.profile, args.inline, args.seed)


if __name__ == "__main__":
    main(sys.argv[1:])
