"""Submit-to-decision latency through HTTP, from a separate process, open and closed loop.

Run: ``.venv/bin/python benchmarks/bench_api.py`` (about 3½ minutes on 2 cores). Seeded.

For each database — SQLite (WAL, a file in a temporary directory) and PostgreSQL when it is
reachable at ``PUHUI_TEST_POSTGRES_URL`` (default ``postgresql+pg8000://postgres@127.0.0.1/test``;
a scratch database is created and dropped afterwards):

1. **Prepare** — migrate a fresh database, create one partner API client with
   ``create_partner`` (rate limit raised to ``MAX_RATE_LIMIT`` per minute so the limiter never
   caps the test; the result says so), and pre-encode N seeded synthetic applications
   (``as_submission`` without ``institution_code``/``submitted_at``; unique ``external_ref``).
2. **Serve** — start the server as a separate process, ``.venv/bin/puhui serve --host
   127.0.0.1 --port <free> --workers N``, as operators run it, with
   ``PUHUI_DATABASE_URL``/``PUHUI_KEY_DIR``/``PUHUI_VAR_DIR`` pointing at the prepared ones and
   log level WARNING; wait for ``/healthz``. N per database from ``--workers`` (default
   ``sqlite=1,postgresql=2``: SQLite serialises writers, so one process is best there, while
   API processes share one PostgreSQL with no state of their own).
3. **Load** — this process is the load generator: asyncio and ``lean_http.LeanClient`` (in
   this folder), a minimal HTTP/1.1 keep-alive client with at most ``--connections``
   persistent connections. It exists because the generator shares the machine's cores with
   the server: a general-purpose client (httpx2, used here before) spent ≈ 2–3 ms of generator
   CPU per request, taken from the server under test; the lean client needs a fraction of
   that (httpx2 is still used for the untimed ``/healthz`` wait). ``--timeout`` is one
   deadline per request (waiting for a connection included). For the same reason a full
   garbage collection is done before each measured phase, not during it. Every request is a complete
   partner call: ``POST /v1/applications`` with the bearer token (one per simulated client,
   fetched once and renewed before expiry or on ``auth.token_expired``), a fresh signature
   (``puhui.api.client.sign_request``) and a fresh ``Idempotency-Key``. A success is ``201``
   carrying a decision; everything else is counted as an error.

   * **Open loop** at a fixed offered rate (default 100 applications/s for 20 s): request *i*
     is due at ``t0 + i/rate`` whatever has completed, and its latency runs from that due time
     to the end of the response, so time spent queued behind a slow server (or a late client)
     is counted — no coordinated omission.
   * **Closed loop** (saturation): K clients each submit back to back for a fixed time,
     K stepped (default 2, 4, 8, 16). Throughput and latency at each K; the saturation
     throughput is the highest sustained rate among the steps.

Caveat printed with the figures: the server and the load generator share the same cores (the
standard machine has 2), so generator CPU is taken from the server. CPU use per phase — the
server process, its PostgreSQL backends, the generator, and anything else running on the
machine (which disturbs the figures; a warning is printed) — is measured from /proc and
reported beside the figures.

Issue target: p99 ≤ 100 ms at 100 applications/s; report the saturation throughput. (Reference:
MYbank's "310" promise is approval within one second.) Results go to
benchmarks/results/api.json; ``--help`` lists the knobs (each also has a ``PUHUI_BENCH_API_*``
environment variable).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import gc
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self
from urllib.parse import quote

import httpx2
from sqlalchemy.engine import make_url

import hostinfo
from lean_http import LeanClient, LeanResponse
from puhui.api.auth import TOKEN_PATH
from puhui.api.client import encode_json, sign_request
from puhui.api.idempotency import IDEMPOTENCY_HEADER
from puhui.api.partners import MAX_RATE_LIMIT, create_partner
from puhui.bootstrap import Platform
from puhui.origination.seed import as_submission
from puhui.settings import Settings
from puhui.store import migrate
from puhui.synthetic import generate
from scratch_db import postgres_scratch

HERE = Path(__file__).parent
RESULTS = HERE / "results" / "api.json"
SEED = 20261201
SUBMIT_PATH = "/v1/applications"
TARGET_RATE = 100.0
TARGET_P99_MS = 100.0
INSTITUTION_CODE = "BENCH_API"
SHARED_CORES_NOTE = (
    "server and load generator run on the same machine and share its {cpus} cores; "
    "generator CPU is taken from the server"
)


# -- configuration ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Config:
    rate: float
    open_seconds: float
    closed_seconds: float
    concurrency: tuple[int, ...]
    warmup: int
    bodies: int
    databases: tuple[str, ...]
    workers: dict[str, int]
    connections: int
    timeout: float
    drain_seconds: float
    output: Path

    @property
    def open_requests(self) -> int:
        return round(self.rate * self.open_seconds)


def _env(name: str, default: str) -> str:
    return os.environ.get(f"PUHUI_BENCH_API_{name}", default)


def parse_args(argv: list[str]) -> Config:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=float(_env("RATE", "100")))
    parser.add_argument(
        "--open-seconds", type=float, default=float(_env("OPEN_SECONDS", "20")), help="open loop"
    )
    parser.add_argument(
        "--closed-seconds",
        type=float,
        default=float(_env("CLOSED_SECONDS", "15")),
        help="each closed-loop step",
    )
    parser.add_argument(
        "--concurrency",
        default=_env("CONCURRENCY", "2,4,8,16"),
        help="closed-loop client counts, comma separated (empty: skip)",
    )
    parser.add_argument("--warmup", type=int, default=int(_env("WARMUP", "100")))
    parser.add_argument(
        "--bodies",
        type=int,
        default=int(_env("BODIES", "0")),
        help="synthetic applications to pre-generate (0: enough for the phases at up to 300/s)",
    )
    parser.add_argument(
        "--databases", default=_env("DATABASES", "sqlite,postgresql"), help="sqlite,postgresql"
    )
    parser.add_argument(
        "--workers",
        default=_env("WORKERS", "sqlite=1,postgresql=2"),
        help="`puhui serve --workers N` per database: N for both, or sqlite=N,postgresql=M",
    )
    parser.add_argument("--connections", type=int, default=int(_env("CONNECTIONS", "64")))
    parser.add_argument("--timeout", type=float, default=float(_env("TIMEOUT", "30")))
    parser.add_argument(
        "--drain-seconds",
        type=float,
        default=float(_env("DRAIN_SECONDS", "10")),
        help="open loop: how long to wait for stragglers after the last send",
    )
    parser.add_argument("--output", type=Path, default=Path(_env("OUTPUT", str(RESULTS))))
    args = parser.parse_args(argv)
    concurrency = tuple(int(k) for k in str(args.concurrency).split(",") if k.strip())
    warmup = max(0, args.warmup)
    bodies = args.bodies or (
        warmup
        + round(args.rate * args.open_seconds)
        + round(300 * args.closed_seconds * len(concurrency))
    )
    databases = tuple(d.strip() for d in str(args.databases).split(",") if d.strip())
    unknown = set(databases) - {"sqlite", "postgresql"}
    if unknown:
        parser.error(f"unknown database(s): {', '.join(sorted(unknown))}")
    return Config(
        rate=args.rate,
        open_seconds=args.open_seconds,
        closed_seconds=args.closed_seconds,
        concurrency=concurrency,
        warmup=warmup,
        bodies=bodies,
        databases=databases,
        workers=_workers(str(args.workers), parser),
        connections=max(args.connections, max(concurrency, default=1)),
        timeout=args.timeout,
        drain_seconds=args.drain_seconds,
        output=args.output,
    )


def _workers(spec: str, parser: argparse.ArgumentParser) -> dict[str, int]:
    """``"2"`` → both databases 2; ``"sqlite=1,postgresql=2"`` → each its own (default 1)."""
    found = {"sqlite": 1, "postgresql": 1}
    try:
        if "=" not in spec:
            return dict.fromkeys(found, max(1, int(spec)))
        for part in spec.split(","):
            name, _, value = part.partition("=")
            if name.strip() not in found:
                parser.error(f"--workers: unknown database {name.strip()!r}")
            found[name.strip()] = max(1, int(value))
    except ValueError:
        parser.error(f"--workers: expected N or sqlite=N,postgresql=M, got {spec!r}")
    return found


# -- preparation ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Credentials:
    client_id: str
    client_secret: str = field(repr=False)


def prepare_database(url: str, key_dir: Path, var_dir: Path) -> Credentials:
    """Migrate ``url`` and create one partner API client whose limit never caps the test."""
    migrate.upgrade(url)
    p = Platform(Settings(database_url=url, key_dir=key_dir, var_dir=var_dir))
    try:
        creds = create_partner(
            p.uow(),
            p.vault,
            name="Benchmark partner",
            code=INSTITUTION_CODE,
            institution_type="bank",
            rate_limit_per_minute=MAX_RATE_LIMIT,
        )
    finally:
        p.close()
    return Credentials(creds.client_id, creds.client_secret)


def synthetic_bodies(n: int) -> list[bytes]:
    """``n`` seeded applications, each as the exact JSON bytes a partner would send."""
    population = generate(n, seed=SEED)
    bodies = []
    refs = set()
    for app in population.applications:
        raw = as_submission(app)
        raw.pop("institution_code")
        raw.pop("submitted_at")
        refs.add(raw["external_ref"])
        bodies.append(encode_json(raw))
    if len(refs) != len(bodies):
        raise RuntimeError("synthetic external_ref values are not unique")
    return bodies


# -- the server process -----------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    base_url: str
    log: Path
    command: list[str]
    db_name: str | None
    """The PostgreSQL database's name (PostgreSQL CPU is then measured), or None for SQLite."""

    def cpu_seconds(self) -> float:
        """User + system CPU of the server and its worker processes so far."""
        pids = [self.process.pid, *_children(self.process.pid)]
        return sum(_proc_cpu_seconds(pid) for pid in pids)


def _children(pid: int) -> list[int]:
    """Direct child processes of ``pid`` (uvicorn's workers), from /proc."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        if ppid == pid:
            found.append(int(stat.parent.name))
    return found


def _proc_cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _machine_busy_seconds() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot, from /proc/stat."""
    try:
        values = [int(v) for v in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
    except OSError:
        return 0.0, 0.0
    idle = values[3] + (values[4] if len(values) > 4 else 0)
    tick = os.sysconf("SC_CLK_TCK")
    return (sum(values) - idle) / tick, sum(values) / tick


@contextmanager
def running_server(url: str, key_dir: Path, var_dir: Path, workers: int) -> Iterator[Server]:
    port = free_port()
    env = {
        **os.environ,
        "PUHUI_DATABASE_URL": url,
        "PUHUI_KEY_DIR": str(key_dir),
        "PUHUI_VAR_DIR": str(var_dir),
        "PUHUI_LOG_LEVEL": "WARNING",
    }
    command = [
        str(Path(sys.executable).parent / "puhui"),
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
    ]
    log = var_dir / "server.log"
    with log.open("wb") as out:
        # cwd: the temporary directory, so no .env of the checkout is read by the server.
        process = subprocess.Popen(command, env=env, cwd=var_dir, stdout=out, stderr=out)
    parsed = make_url(url)
    db_name = parsed.database if parsed.get_backend_name() == "postgresql" else None
    server = Server(process, f"http://127.0.0.1:{port}", log, command, db_name)
    try:
        _wait_healthy(server)
        yield server
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_healthy(server: Server, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    last = ""
    with httpx2.Client(base_url=server.base_url, timeout=2.0) as http:
        while time.monotonic() < deadline:
            if server.process.poll() is not None:
                break
            try:
                r = http.get("/healthz")
                if r.status_code == 200 and r.json().get("status") == "ok":
                    return
                last = f"{r.status_code} {r.text[:200]}"
            except httpx2.TransportError as exc:
                last = repr(exc)
            time.sleep(0.1)
    tail = server.log.read_text(errors="replace")[-3000:]
    raise RuntimeError(f"server did not become healthy ({last}); log:\n{tail}")


# -- the load generator -----------------------------------------------------------------------


class TokenSource:
    """One simulated partner client's access token: fetched once, renewed before expiry."""

    def __init__(
        self, http: LeanClient, creds: Credentials, margin: float = 60.0, timeout: float = 30.0
    ):
        self.http = http
        self.creds = creds
        self.margin = margin
        self.timeout = timeout
        self.token = ""
        self.expires = 0.0
        self.fetched = 0
        self._lock = asyncio.Lock()

    async def get(self, *, refresh: bool = False) -> str:
        if not refresh and self.token and time.time() < self.expires - self.margin:
            return self.token  # the common case, without the lock
        async with self._lock:
            if refresh or not self.token or time.time() >= self.expires - self.margin:
                c = self.creds
                basic = f"{quote(c.client_id, safe='')}:{quote(c.client_secret, safe='')}"
                r = await self.http.request(
                    "POST",
                    TOKEN_PATH,
                    {
                        "Content-Type": "application/x-www-form-urlencoded",
                        "Authorization": "Basic " + base64.b64encode(basic.encode()).decode(),
                    },
                    b"grant_type=client_credentials",
                    self.timeout,
                )
                if r.status != 200:
                    raise RuntimeError(f"token endpoint answered {r.status}: {r.text[:300]}")
                payload = r.json()
                self.token = str(payload["access_token"])
                self.expires = time.time() + float(payload["expires_in"])
                self.fetched += 1
            return self.token


@dataclass
class Sample:
    due: float
    """When the request was due (open loop: its schedule slot; closed loop: when it was sent)."""
    sent: float
    done: float
    status: int
    """HTTP status, or 0 when the request failed without a response."""
    problem: str = ""
    outcome: str = ""

    @property
    def ok(self) -> bool:
        return self.status == 201 and bool(self.outcome)

    @property
    def latency_ms(self) -> float:
        return (self.done - self.due) * 1000


class BodyFeed:
    def __init__(self, bodies: list[bytes]) -> None:
        self.bodies = bodies
        self.next_index = 0

    def take(self) -> bytes | None:
        if self.next_index >= len(self.bodies):
            return None
        body = self.bodies[self.next_index]
        self.next_index += 1
        return body


async def submit(
    http: LeanClient, tokens: TokenSource, body: bytes, due: float, timeout: float
) -> Sample:
    """One complete partner submission; never raises.

    A failure without an answer is recorded as status 0 with the exception's class name:
    ``TimeoutError`` for no complete answer within ``timeout``, a ``lean_http`` error class
    (``LeanConnectionError``, ``LeanProtocolError``) otherwise.
    """
    sent = time.perf_counter()
    idempotency_key = str(uuid.uuid4())
    try:
        for attempt in (0, 1):
            token = await tokens.get(refresh=attempt == 1)
            headers = {
                "Authorization": f"Bearer {token}",
                "Content-Type": "application/json",
                IDEMPOTENCY_HEADER: idempotency_key,
                **sign_request("POST", SUBMIT_PATH, body, tokens.creds.client_secret),
            }
            r = await http.request("POST", SUBMIT_PATH, headers, body, timeout)
            problem = _problem_code(r) if r.status != 201 else ""
            if r.status == 401 and problem == "auth.token_expired" and attempt == 0:
                continue
            break
    except Exception as exc:
        return Sample(due, sent, time.perf_counter(), 0, type(exc).__name__)
    done = time.perf_counter()
    outcome = ""
    if r.status == 201:
        try:
            decision = r.json().get("decision") or {}
            outcome = str(decision.get("outcome") or "")
        except ValueError:
            outcome = ""
        if not outcome:
            problem = "no_decision"
    return Sample(due, sent, done, r.status, problem, outcome)


def _problem_code(r: LeanResponse) -> str:
    try:
        body = r.json()
    except ValueError:
        return ""
    return str(body.get("code") or body.get("error") or "") if isinstance(body, dict) else ""


@dataclass
class Meter:
    """CPU used over a phase by the server, its PostgreSQL backends, this process, and the rest.

    PostgreSQL (only on PostgreSQL runs; SQLite works inside the server) is every
    ``postgres`` process, so it includes other clients of the same PostgreSQL if any.
    "Other" is whatever else ran on the machine meanwhile (other jobs: noise in the figures).
    """

    server: Server
    wall: float = 0.0
    server_cpu: float = 0.0
    db_cpu: float = 0.0
    generator_cpu: float = 0.0
    machine_busy: float = 0.0
    machine_total: float = 0.0

    def _db(self) -> float:
        return _postgresql_cpu_seconds() if self.server.db_name else 0.0

    def __enter__(self) -> Self:
        self.wall = time.perf_counter()
        self.server_cpu = self.server.cpu_seconds()
        self.db_cpu = self._db()
        self.generator_cpu = time.process_time()
        self.machine_busy, self.machine_total = _machine_busy_seconds()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall = time.perf_counter() - self.wall
        self.server_cpu = self.server.cpu_seconds() - self.server_cpu
        self.db_cpu = self._db() - self.db_cpu
        self.generator_cpu = time.process_time() - self.generator_cpu
        busy, total = _machine_busy_seconds()
        self.machine_busy, self.machine_total = busy - self.machine_busy, total - self.machine_total

    def report(self, served: int) -> dict[str, float]:
        """``served``: requests that got a response in the phase."""
        other = self.machine_busy - self.server_cpu - self.db_cpu - self.generator_cpu
        per_request = 1000 / max(served, 1)
        return {
            "server_cpu_percent_of_one_core": 100 * self.server_cpu / self.wall,
            "postgresql_backends_cpu_percent_of_one_core": 100 * self.db_cpu / self.wall,
            "generator_cpu_percent_of_one_core": 100 * self.generator_cpu / self.wall,
            "other_processes_cpu_percent_of_one_core": max(0.0, 100 * other / self.wall),
            "machine_busy_percent": (
                100 * self.machine_busy / self.machine_total if self.machine_total else 0.0
            ),
            "server_cpu_ms_per_request": self.server_cpu * per_request,
            "postgresql_backends_cpu_ms_per_request": self.db_cpu * per_request,
            "generator_cpu_ms_per_request": self.generator_cpu * per_request,
        }


def _postgresql_cpu_seconds() -> float:
    """CPU of every PostgreSQL process on the machine so far, ended backends included.

    Backends come and go with the server's connection pool, so the live ones alone would
    lose the CPU of those that ended mid-phase; the postmaster's ``cutime``/``cstime`` (its
    reaped children) keeps it. Other users of the same PostgreSQL are counted too.
    """
    total = 0.0
    tick = os.sysconf("SC_CLK_TCK")
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            raw = stat.read_text()
        except OSError:
            continue
        name, _, rest = raw.partition(" (")[2].rpartition(")")
        if name != "postgres":
            continue
        fields = rest.split()
        total += (int(fields[11]) + int(fields[12])) / tick
        if fields[1] == "1" or not _is_postgres(int(fields[1])):  # the postmaster
            total += (int(fields[13]) + int(fields[14])) / tick
    return total


def _is_postgres(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip() == "postgres"
    except OSError:
        return False


def summarise(samples: list[Sample], elapsed: float) -> dict[str, Any]:
    ok = [s for s in samples if s.ok]
    latencies = sorted(s.latency_ms for s in ok)
    out: dict[str, Any] = {
        "requests": len(samples),
        "ok_201_with_decision": len(ok),
        "errors": len(samples) - len(ok),
        "error_kinds": dict(
            Counter(f"{s.status} {s.problem}".strip() for s in samples if not s.ok).most_common()
        ),
        "outcomes": dict(Counter(s.outcome for s in ok).most_common()),
        "elapsed_s": elapsed,
        "throughput_per_s": len(ok) / elapsed if elapsed > 0 else 0.0,
    }
    if len(latencies) >= 2:
        q = statistics.quantiles(latencies, n=100, method="inclusive")
        out.update(
            p50_ms=q[49],
            p90_ms=q[89],
            p99_ms=q[98],
            max_ms=latencies[-1],
            mean_ms=statistics.fmean(latencies),
        )
    return out


def _client(base_url: str, config: Config) -> LeanClient:
    """The phase's HTTP client: at most ``--connections`` keep-alive connections."""
    return LeanClient(base_url, limit=config.connections)


@contextmanager
def _no_full_gc() -> Iterator[None]:
    """No full garbage collection of this process's heap during a measured phase.

    The generator's heap (imports, synthetic data) is large: a full collection takes ≈ 0.1 s
    of CPU here, charged to the generator and taken from the server's cores, and it stalls
    sends meanwhile. One is done before the phase instead, and what exists is frozen (kept
    out of later collections) until the phase ends; young objects are still collected.
    """
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


async def warm_up(server: Server, creds: Credentials, feed: BodyFeed, config: Config) -> None:
    """Imports, pools, caches and connections; not measured."""
    async with _client(server.base_url, config) as http:
        tokens = TokenSource(http, creds, timeout=config.timeout)
        await tokens.get()

        async def one_client() -> None:
            while feed.next_index < config.warmup and (body := feed.take()) is not None:
                sample = await submit(http, tokens, body, time.perf_counter(), config.timeout)
                if not sample.ok:
                    raise RuntimeError(f"warm-up request failed: {sample}")

        await asyncio.gather(*(one_client() for _ in range(4)))


async def open_loop(
    server: Server, creds: Credentials, feed: BodyFeed, config: Config
) -> dict[str, Any]:
    """``rate`` requests a second, each due at t0 + i/rate whatever has completed."""
    n = config.open_requests
    async with _client(server.base_url, config) as http:
        tokens = TokenSource(http, creds, timeout=config.timeout)
        await tokens.get()
        tasks: list[tuple[float, asyncio.Task[Sample]]] = []
        with _no_full_gc(), Meter(server) as meter:
            t0 = time.perf_counter() + 0.05
            for i in range(n):
                body = feed.take()
                if body is None:
                    break
                due = t0 + i / config.rate
                delay = due - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                task = asyncio.create_task(submit(http, tokens, body, due, config.timeout))
                tasks.append((due, task))
            # An overloaded server builds an ever longer backlog; stop waiting for it after
            # the drain time, so a run stays bounded, and count what is left as failures.
            _, pending = await asyncio.wait([t for _, t in tasks], timeout=config.drain_seconds)
            for task in pending:
                task.cancel()
            stopped = time.perf_counter()
            samples = [
                t.result()
                if t not in pending
                else Sample(due, due, stopped, 0, "unfinished_at_drain_deadline")
                for due, t in tasks
            ]
        elapsed = max(s.done for s in samples) - t0
    lag = sorted((s.sent - s.due) * 1000 for s in samples if s.status or s.sent != s.due) or [0.0]
    result = summarise(samples, elapsed)
    result.update(
        offered_per_s=config.rate,
        offered_requests=n,
        send_lag_ms={"p50": lag[len(lag) // 2], "p99": lag[int(len(lag) * 0.99)], "max": lag[-1]},
        tokens_fetched=tokens.fetched,
        cpu=meter.report(sum(1 for s in samples if s.status)),
    )
    return result


async def closed_loop(
    server: Server, creds: Credentials, feed: BodyFeed, config: Config, k: int
) -> dict[str, Any]:
    """``k`` clients, each with its own token, submitting back to back for a fixed time."""
    async with _client(server.base_url, config) as http:
        sources = [TokenSource(http, creds, timeout=config.timeout) for _ in range(k)]
        await asyncio.gather(*(t.get() for t in sources))
        samples: list[Sample] = []
        exhausted = False

        async def one_client(tokens: TokenSource, end: float) -> None:
            nonlocal exhausted
            while time.perf_counter() < end:
                body = feed.take()
                if body is None:
                    exhausted = True
                    return
                samples.append(
                    await submit(http, tokens, body, time.perf_counter(), config.timeout)
                )

        with _no_full_gc(), Meter(server) as meter:
            start = time.perf_counter()
            await asyncio.gather(*(one_client(t, start + config.closed_seconds) for t in sources))
            elapsed = time.perf_counter() - start
    result = summarise(samples, elapsed)
    result.update(
        clients=k,
        bodies_exhausted=exhausted,
        tokens_fetched=sum(t.fetched for t in sources),
        cpu=meter.report(sum(1 for s in samples if s.status)),
    )
    return result


def run_database(kind: str, url: str, tmp: Path, bodies: list[bytes], config: Config) -> Any:
    var_dir = tmp / kind
    var_dir.mkdir()
    key_dir = var_dir / "keys"
    creds = prepare_database(url, key_dir, var_dir)
    feed = BodyFeed(bodies)
    result: dict[str, Any] = {
        "database": kind,
        "partner": {
            "institution_code": INSTITUTION_CODE,
            "rate_limit_per_minute": MAX_RATE_LIMIT,
            "note": "created with create_partner and the highest allowed rate limit, so the "
            "per-client limiter never refuses a benchmark request (it still counts each one)",
        },
    }
    with running_server(url, key_dir, var_dir, config.workers[kind]) as server:
        result["server_command"] = " ".join(
            Path(c).name if c in (sys.executable, server.command[0]) else c for c in server.command
        )
        print(f"[{kind}] server up ({server.base_url}); warming up", flush=True)
        asyncio.run(warm_up(server, creds, feed, config))
        print(f"[{kind}] open loop: {config.rate:g}/s for {config.open_seconds:g} s", flush=True)
        result["open_loop"] = asyncio.run(open_loop(server, creds, feed, config))
        result["closed_loop"] = []
        for k in config.concurrency:
            print(f"[{kind}] closed loop: {k} clients for {config.closed_seconds:g} s", flush=True)
            result["closed_loop"].append(asyncio.run(closed_loop(server, creds, feed, config, k)))
        result["applications_in_database_at_end"] = feed.next_index
    steps = result["closed_loop"]
    if steps:
        best = max(steps, key=lambda s: s["throughput_per_s"])
        result["saturation"] = {
            "throughput_per_s": best["throughput_per_s"],
            "clients": best["clients"],
            "p50_ms": best.get("p50_ms"),
            "p99_ms": best.get("p99_ms"),
        }
    o = result["open_loop"]
    result["target"] = {
        "rate_per_s": TARGET_RATE,
        "p99_ms_max": TARGET_P99_MS,
        "measured_p99_ms": o.get("p99_ms"),
        # None: the offered rate was below the target's, so the target was not tested.
        "met": None
        if config.rate < TARGET_RATE
        else o["errors"] == 0 and o.get("p99_ms", float("inf")) <= TARGET_P99_MS,
    }
    return result


# -- output -----------------------------------------------------------------------------------


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def print_table(results: dict[str, Any], output: Path) -> None:
    print()
    print(SHARED_CORES_NOTE.format(cpus=results["machine"]["cpu_count"]))
    head = (
        f"{'database':<11} {'phase':<12} {'sent':>5} {'err':>4} {'ok/s':>6} {'p50':>7} "
        f"{'p90':>7} {'p99':>7} {'max':>7} {'srv ms/req':>10} {'srv':>5} {'pg':>5} {'gen':>5} "
        f"{'other':>5}"
    )
    print(head)
    print("-" * len(head))
    noisy = 0.0
    for kind, r in results["databases"].items():
        rows = [(f"open {r['open_loop']['offered_per_s']:g}/s", r["open_loop"])]
        rows += [(f"closed K={s['clients']}", s) for s in r["closed_loop"]]
        for label, s in rows:
            c = s["cpu"]
            noisy = max(noisy, c["other_processes_cpu_percent_of_one_core"])
            print(
                f"{kind:<11} {label:<12} {s['requests']:>5} {s['errors']:>4} "
                f"{s['throughput_per_s']:>6.1f} {_ms(s.get('p50_ms')):>7} "
                f"{_ms(s.get('p90_ms')):>7} {_ms(s.get('p99_ms')):>7} {_ms(s.get('max_ms')):>7} "
                f"{c['server_cpu_ms_per_request']:>10.1f} "
                f"{c['server_cpu_percent_of_one_core']:>4.0f}% "
                f"{c['postgresql_backends_cpu_percent_of_one_core']:>4.0f}% "
                f"{c['generator_cpu_percent_of_one_core']:>4.0f}% "
                f"{c['other_processes_cpu_percent_of_one_core']:>4.0f}%"
            )
    print(
        "(latencies in ms; errors are non-201 answers, answers without a decision, and requests "
        "unanswered at the deadline; srv ms/req = server-process CPU per answered request; "
        "srv/pg/gen/other = CPU of the server process, its PostgreSQL backends, this load "
        "generator and everything else on the machine, in % of one core)"
    )
    if noisy > 20:
        print(
            f"WARNING: other processes used up to {noisy:.0f}% of a core during a phase; "
            "the figures are disturbed by them"
        )
    for kind, r in results["databases"].items():
        t, sat = r["target"], r.get("saturation")
        verdict = {True: "MET", False: "MISSED", None: "NOT TESTED (offered rate below it)"}[
            t["met"]
        ]
        line = (
            f"{kind}: target p99 ≤ {t['p99_ms_max']:g} ms at {t['rate_per_s']:g}/s {verdict} "
            f"(p99 {_ms(t['measured_p99_ms'])} ms)"
        )
        if sat:
            line += f"; saturation {sat['throughput_per_s']:.1f}/s at K={sat['clients']}"
        print(line)
        for phase in [r["open_loop"], *r["closed_loop"]]:
            if phase["error_kinds"]:
                print(f"  errors: {phase['error_kinds']}")
    print(f"wrote {output}")


def main(argv: list[str]) -> None:
    config = parse_args(argv)
    if shutil.which("puhui", path=str(Path(sys.executable).parent)) is None:
        raise SystemExit(f"no puhui script beside {sys.executable}; run `make install`")
    machine = hostinfo.describe()
    results: dict[str, Any] = {
        "machine": machine,
        "seed": SEED,
        "settings": {
            "offered_rate_per_s": config.rate,
            "open_loop_seconds": config.open_seconds,
            "closed_loop_seconds_per_step": config.closed_seconds,
            "closed_loop_clients": list(config.concurrency),
            "warmup_requests": config.warmup,
            "bodies_generated": config.bodies,
            "server_workers": config.workers,
            "max_connections": config.connections,
            "request_timeout_s": config.timeout,
            "open_loop_drain_seconds": config.drain_seconds,
            "load_generator": "this process: asyncio + lean_http.LeanClient (minimal HTTP/1.1 "
            "keep-alive client, to keep generator CPU off the server's cores); token per "
            "client, sign_request per request, fresh Idempotency-Key",
            "latency": "open loop: from the request's scheduled time to the end of the response "
            "(queueing counted); closed loop: from send to the end of the response",
            "shared_cores": SHARED_CORES_NOTE.format(cpus=machine["cpu_count"]),
        },
        "target": f"p99 ≤ {TARGET_P99_MS:g} ms at {TARGET_RATE:g} applications/s",
        "databases": {},
    }
    began = time.perf_counter()
    bodies = synthetic_bodies(config.bodies)
    print(f"{len(bodies)} synthetic applications in {time.perf_counter() - began:.1f} s")
    with tempfile.TemporaryDirectory(prefix="puhui-bench-api-") as tmp:
        tmpdir = Path(tmp)
        if "sqlite" in config.databases:
            url = f"sqlite:///{tmpdir / 'sqlite' / 'bench.db'}"
            results["databases"]["sqlite"] = run_database("sqlite", url, tmpdir, bodies, config)
        if "postgresql" in config.databases:
            pg = postgres_scratch()
            if pg is not None:
                url, drop = pg
                try:
                    results["databases"]["postgresql"] = run_database(
                        "postgresql", url, tmpdir, bodies, config
                    )
                finally:
                    drop()
    results["total_seconds"] = time.perf_counter() - began
    results["machine"]["load_average_at_end"] = hostinfo.load_average()
    results["max_other_processes_cpu_percent_of_one_core"] = max(
        (
            phase["cpu"]["other_processes_cpu_percent_of_one_core"]
            for r in results["databases"].values()
            for phase in [r["open_loop"], *r["closed_loop"]]
        ),
        default=0.0,
    )
    config.output.parent.mkdir(parents=True, exist_ok=True)
    config.output.write_text(
        json.dumps(results, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    print_table(results, config.output)


if __name__ == "__main__":
    main(sys.argv[1:])
