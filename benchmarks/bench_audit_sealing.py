"""Audit sealing, inline against deferred, under concurrent writers — without HTTP.

Run: ``.venv/bin/python benchmarks/bench_audit_sealing.py`` (about three minutes).

The API server's write transactions each end with audit records. Sealed **inline**, each
transaction locks the chain's head and keeps it until its commit is on disk, so concurrent
writers queue on that one row; **deferred**, each commits its records into ``audit_pending``
and a sealer chains them in batches (``privacy.audit``). This measures that difference on
its own, free of the HTTP benchmark's noise: ``--processes`` processes × ``--threads`` threads
(like ``puhui serve --workers 2`` with its request threads) each commit units of work for
``--seconds``, every one recording two events (two audit records), the shape of a
submission's or a decision's transaction minus its business rows. The two modes alternate,
``--rounds`` times each, on a fresh SQLite file and a scratch PostgreSQL database; a deferred
round runs the sealer as ``puhui serve`` does, and each round ends by checking that every
record is chained exactly once and the chain verifies.

Results go to benchmarks/results/audit_sealing.json.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

import hostinfo
from puhui.privacy import audit, audit_sealer
from puhui.store import migrate
from puhui.store.db import make_engine, make_session_factory
from puhui.store.models import AuditPending, AuditRecord
from puhui.store.unit_of_work import AuditSealing, UnitOfWork
from scratch_db import postgres_scratch

RESULTS = Path(__file__).parent / "results" / "audit_sealing.json"
RECORDS_PER_COMMIT = 2


def _writer(url: str, mode: AuditSealing, threads: int, seconds: float, out: Any) -> None:
    """One process: ``threads`` threads committing units of work until time is up."""
    engine = make_engine(url)
    sessions = make_session_factory(engine)
    latencies: list[list[float]] = [[] for _ in range(threads)]
    start = time.monotonic() + 0.5  # every thread starts together
    end = start + seconds

    def loop(t: int) -> None:
        while time.monotonic() < start:
            time.sleep(0.001)
        n = 0
        while time.monotonic() < end:
            began = time.perf_counter()
            with UnitOfWork(sessions, actor="bench", audit_sealing=mode) as uow:
                for k in range(RECORDS_PER_COMMIT):
                    uow.record_event(
                        aggregate_type="bench",
                        aggregate_id=f"p{os.getpid()}t{t}n{n}",
                        event_type=f"bench.step{k}",
                        payload={"n": n, "k": k},
                    )
                uow.commit()
            latencies[t].append(time.perf_counter() - began)
            n += 1

    workers = [threading.Thread(target=loop, args=(t,)) for t in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    engine.dispose()
    out.put([x for per_thread in latencies for x in per_thread])


def _round(url: str, mode: AuditSealing, config: argparse.Namespace) -> dict[str, Any]:
    engine = make_engine(url)
    sessions = make_session_factory(engine)
    with sessions() as s:
        before = int(s.scalar(select(func.count()).select_from(AuditRecord)) or 0)
    stop = threading.Event()
    sealer = None
    if mode == "deferred":
        sealer = threading.Thread(target=audit_sealer.run, args=(sessions, stop))
        sealer.start()
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    processes = [
        ctx.Process(target=_writer, args=(url, mode, config.threads, config.seconds, out))
        for _ in range(config.processes)
    ]
    for p in processes:
        p.start()
    latencies = [x for _ in processes for x in out.get()]
    for p in processes:
        p.join()
    stop.set()
    if sealer is not None:
        sealer.join()
    with sessions() as s:
        chained = int(s.scalar(select(func.count()).select_from(AuditRecord)) or 0) - before
        waiting = int(s.scalar(select(func.count()).select_from(AuditPending)) or 0)
        report = audit.verify(s)
    engine.dispose()
    if not report.ok or waiting or chained != len(latencies) * RECORDS_PER_COMMIT:
        raise SystemExit(
            f"{mode}: {chained} records chained for {len(latencies)} commits, {waiting} "
            f"waiting, chain problems {report.problems[:3]}"
        )
    latencies.sort()
    return {
        "mode": mode,
        "commits": len(latencies),
        "commits_per_s": len(latencies) / config.seconds,
        "p50_ms": 1000 * statistics.median(latencies),
        "p99_ms": 1000 * latencies[int(0.99 * (len(latencies) - 1))],
        "records_chained": chained,
    }


def run_database(kind: str, url: str, config: argparse.Namespace) -> dict[str, Any]:
    migrate.upgrade(url)
    rounds = []
    for i in range(config.rounds):
        order: list[AuditSealing] = ["inline", "deferred"] if i % 2 == 0 else ["deferred", "inline"]
        for mode in order:
            r = _round(url, mode, config)
            rounds.append(r)
            print(
                f"[{kind}] {mode:<8} {r['commits_per_s']:7.1f} commits/s  "
                f"p50 {r['p50_ms']:6.1f} ms  p99 {r['p99_ms']:6.1f} ms",
                flush=True,
            )

    def median(mode: str, key: str) -> float:
        return statistics.median(r[key] for r in rounds if r["mode"] == mode)

    summary = {
        mode: {key: median(mode, key) for key in ("commits_per_s", "p50_ms", "p99_ms")}
        for mode in ("inline", "deferred")
    }
    summary["deferred_over_inline"] = {
        key: summary["deferred"][key] / summary["inline"][key]
        for key in ("commits_per_s", "p50_ms", "p99_ms")
    }
    return {"rounds": rounds, "median": summary}


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rounds", type=int, default=3, help="per mode, alternating")
    parser.add_argument("--databases", default="sqlite,postgresql")
    parser.add_argument("--output", type=Path, default=RESULTS)
    config = parser.parse_args(argv)
    results: dict[str, Any] = {
        "machine": hostinfo.describe(),
        "config": {k: v for k, v in vars(config).items() if k != "output"},
        "records_per_commit": RECORDS_PER_COMMIT,
        "databases": {},
    }
    kinds = [k.strip() for k in config.databases.split(",") if k.strip()]
    with tempfile.TemporaryDirectory() as tmp:
        if "sqlite" in kinds:
            url = f"sqlite:///{Path(tmp) / 'audit.db'}"
            results["databases"]["sqlite"] = run_database("sqlite", url, config)
        if "postgresql" in kinds and (pg := postgres_scratch()) is not None:
            url, drop = pg
            try:
                results["databases"]["postgresql"] = run_database("postgresql", url, config)
            finally:
                drop()
    config.output.parent.mkdir(parents=True, exist_ok=True)
    config.output.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    for kind, r in results["databases"].items():
        m = r["median"]
        ratio = m["deferred_over_inline"]
        print(
            f"{kind}: inline {m['inline']['commits_per_s']:.0f} commits/s (p99 "
            f"{m['inline']['p99_ms']:.1f} ms), deferred {m['deferred']['commits_per_s']:.0f} "
            f"commits/s (p99 {m['deferred']['p99_ms']:.1f} ms): throughput ×"
            f"{ratio['commits_per_s']:.2f}, p99 ×{ratio['p99_ms']:.2f}"
        )
    print(f"wrote {config.output}")


if __name__ == "__main__":
    main(sys.argv[1:])
