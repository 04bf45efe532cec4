"""Private set intersection (issue 6): Puhui's DH-PSI (X25519 form) beside openmined-psi.

Run: ``.venv/bin/python benchmarks/bench_psi.py [--n N] [--peer-n M]`` (default N = 1,000,000,
and the peer on the same sets: about 8 minutes on 2 cores; ``--peer-n 100000`` about 3½;
``--n 100000`` about half a minute). Seeded.

Puhui runs once per X25519 backend that works here (``crypto_mb``: Intel's multi-buffer code,
where the ``ipp-crypto`` wheel and AVX-512 IFMA are present; ``openssl``: always), with
worker processes, and with ``crypto_mb`` also with threads.

Two sets of N identifiers (18-character unified-social-credit-code-like strings), half of
each in common, both shuffled. Both parties run in this process, one after the other, as the
three-message exchange of ``puhui.federated.psi`` (no network): each side's hash-to-group +
blind, each side's re-blind of the other's points, and the guest's intersect are timed
separately, and the result is checked against the plain set intersection.

The peer is ``openmined-psi`` (Apache-2.0; ECDH over P-256 in C++, one core, import
``private_set_intersection.python``), run on the first ``--peer-n`` ids of the same sets
(default: all of them), with its raw (uncompressed) response, which is the same protocol
shape. It pins protobuf==6.30.2, which conflicts with ortools from the ``bench`` extra, so it
is not in that extra: install it with ``pip install --no-deps openmined-psi``; it works with
the newer protobuf here. If it is missing, its row is skipped.

Results go to benchmarks/results/psi.json with machine information.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path
from typing import Any

import hostinfo
from puhui.federated import crypto_mb
from puhui.federated.psi import PsiParty

RESULTS = Path(__file__).parent / "results" / "psi.json"
SEED = 20261128


def make_sets(n: int, seed: int) -> tuple[list[str], list[str]]:
    """Two shuffled sets of ``n`` distinct ids each, ``n // 2`` of them shared."""
    rng = random.Random(seed)
    pool = rng.sample(range(10**16), n + n - n // 2)
    ids = [f"91{v:016d}" for v in pool]
    shared = ids[: n // 2]
    guest = shared + ids[n // 2 : n]
    host = shared + ids[n:]
    rng.shuffle(guest)
    rng.shuffle(host)
    return guest, host


def timed(fn: Any, *args: Any) -> tuple[Any, float]:
    started = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - started


def run_ours(
    guest_ids: list[str], host_ids: list[str], parallel: str, backend: str
) -> dict[str, Any]:
    kind: Any = {"parallel": parallel, "backend": backend}
    guest = PsiParty.from_seed(f"guest-{SEED}", **kind)
    host = PsiParty.from_seed(f"host-{SEED}", **kind)
    steps: dict[str, float] = {}
    started = time.perf_counter()
    msg1, steps["guest hash-to-group + blind"] = timed(guest.blind, guest_ids)
    own2, steps["host re-blind guest points"] = timed(host.reblind, msg1)
    theirs, steps["host hash-to-group + blind"] = timed(host.blind, host_ids)
    theirs2, steps["guest re-blind host points"] = timed(guest.reblind, theirs)
    pairs, steps["guest intersect"] = timed(guest.intersect, own2, theirs2)
    total = time.perf_counter() - started
    assert {guest_ids[i] for i, _ in pairs} == set(guest_ids) & set(host_ids)
    assert all(guest_ids[i] == host_ids[j] for i, j in pairs)
    n = len(guest_ids)
    return {
        "n_per_side": n,
        "parallel": parallel,
        "backend": backend,
        "intersection": len(pairs),
        "steps_s": steps,
        "total_s": total,
        "us_per_id_per_side": total / (2 * n) * 1e6,
        "bytes_on_wire": 32 * (len(msg1) + len(own2) + len(theirs)) + 4 * len(pairs),
    }


def run_openmined(guest_ids: list[str], host_ids: list[str]) -> dict[str, Any]:
    try:
        import private_set_intersection.python as om  # type: ignore[import-untyped]
    except ImportError as exc:
        return {"skipped": f"openmined-psi not importable: {exc}"}
    client = om.client.CreateWithNewKey(True)  # reveal_intersection=True: indexes, like ours
    server = om.server.CreateWithNewKey(True)
    steps: dict[str, float] = {}
    started = time.perf_counter()
    setup, steps["server setup (hash + blind host ids)"] = timed(
        server.CreateSetupMessage, 1e-9, len(guest_ids), host_ids, om.DataStructure.RAW
    )
    request, steps["client request (hash + blind guest ids)"] = timed(
        client.CreateRequest, guest_ids
    )
    response, steps["server process (re-blind guest points)"] = timed(
        server.ProcessRequest, request
    )
    found, steps["client intersect (re-blind host points + match)"] = timed(
        client.GetIntersection, setup, response
    )
    total = time.perf_counter() - started
    assert {guest_ids[i] for i in found} == set(guest_ids) & set(host_ids)
    n = len(guest_ids)
    return {
        "n_per_side": n,
        "version": getattr(om, "__version__", "?"),
        "intersection": len(found),
        "steps_s": steps,
        "total_s": total,
        "us_per_id_per_side": total / (2 * n) * 1e6,
    }


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000, help="ids per side")
    parser.add_argument("--peer-n", type=int, default=None, help="ids per side for the peer")
    args = parser.parse_args(argv)
    info = hostinfo.describe()
    guest_ids, host_ids = make_sets(args.n, SEED)
    results: list[dict[str, Any]] = []
    runs = [("openssl", "processes")]
    if crypto_mb.load() is not None:
        runs = [("crypto_mb", "processes"), ("crypto_mb", "threads"), *runs]
    for backend, parallel in runs:
        row = run_ours(guest_ids, host_ids, parallel, backend)
        results.append({"implementation": f"puhui X25519 {backend}", **row})
        print(json.dumps(results[-1], indent=1), flush=True)
    ours = len(results)
    peer_n = args.peer_n or args.n
    g, h = make_sets(peer_n, SEED)
    results.append({"implementation": "openmined-psi P-256", **run_openmined(g, h)})
    print(json.dumps(results[-1], indent=1), flush=True)
    best = min(r["us_per_id_per_side"] for r in results[:ours])
    extrapolation: dict[str, Any] = {
        "note": "EXTRAPOLATION, not a measurement: per-id cost at the measured N times 1M"
    }
    if args.n < 1_000_000:
        extrapolation["puhui_1m_x_1m_s"] = best * 2 * 1_000_000 / 1e6
    if "us_per_id_per_side" in results[-1] and peer_n < 1_000_000:
        extrapolation["openmined_1m_x_1m_s"] = (
            results[-1]["us_per_id_per_side"] * 2 * 1_000_000 / 1e6
        )
    out = {
        "benchmark": "psi",
        "machine": info,
        "parameters": {
            "seed": SEED,
            "n_per_side": args.n,
            "overlap": args.n // 2,
            "peer_n_per_side": peer_n,
            "workers": 2,
            "timing": "one run, seconds",
        },
        "results": results,
        "extrapolation_to_1m": extrapolation if len(extrapolation) > 1 else None,
    }
    RESULTS.write_text(json.dumps(out, indent=2, ensure_ascii=False) + "\n")
    print(f"wrote {RESULTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
