"""The foundation's hot paths, each beside the bare library call it is built on.

Run: ``.venv/bin/python benchmarks/bench_foundation.py`` (about a minute). Seeded throughout.

* **Field encryption** — ``Vault.encrypt`` / ``Vault.decrypt`` (token format, AAD, cached data
  key) against a bare ``cryptography`` AESGCM call on the same plaintext: the ratio is our
  overhead over the primitive.
* **Blind index** — ``BlindIndexer.index`` (normalisation + domain-separated HMAC) against a
  bare ``hmac.new(...).digest()``.
* **Submission use case** — validate, consent check, seal, blind-index, insert, outbox event and
  audit record, one transaction per application, on SQLite (WAL) and PostgreSQL (127.0.0.1:5432,
  a scratch database dropped afterwards): per-application latency percentiles.
* **Audit verification** — records per second through ``audit.verify``.
* **Synthetic generation** — applications per second from the seeded generator.

Issue 2 sets no performance target; these are baselines for later issues to hold.
Results go to benchmarks/results/foundation.json.
"""

from __future__ import annotations

import hmac
import json
import secrets
import statistics
import tempfile
import time
import timeit
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

import hostinfo
from puhui.bootstrap import Platform
from puhui.origination.seed import as_submission
from puhui.origination.submit import submit_application
from puhui.privacy import audit
from puhui.privacy.blind_index import BlindIndexer, IndexKind
from puhui.privacy.keys import KeyRing
from puhui.privacy.vault import Vault
from puhui.settings import Settings
from puhui.store import migrate
from puhui.synthetic import generate
from scratch_db import postgres_scratch

RESULTS = Path(__file__).parent / "results" / "foundation.json"
SUBMISSIONS = 400
SEED = 20261128


def per_call_us(fn: Callable[[], object], seconds: float = 0.3) -> float:
    timer = timeit.Timer(fn)
    number = max(1, int(seconds / max(timer.timeit(10) / 10, 1e-9)))
    return min(timer.repeat(3, number)) / number * 1e6


def crypto(key_dir: Path) -> dict[str, Any]:
    keyring = KeyRing.load_or_create(key_dir)
    vault = Vault(keyring)
    _, wrapped = vault.new_data_key()
    plaintext = "11010519491231002X"
    token = vault.encrypt(wrapped, plaintext, "applicants.id_number")
    raw_key, nonce = secrets.token_bytes(32), secrets.token_bytes(12)
    sealed = AESGCM(raw_key).encrypt(nonce, plaintext.encode(), b"ctx")
    ours_enc = per_call_us(lambda: vault.encrypt(wrapped, plaintext, "applicants.id_number"))
    ours_dec = per_call_us(lambda: vault.decrypt(wrapped, token, "applicants.id_number"))
    bare_enc = per_call_us(
        lambda: AESGCM(raw_key).encrypt(secrets.token_bytes(12), plaintext.encode(), b"ctx")
    )
    bare_dec = per_call_us(lambda: AESGCM(raw_key).decrypt(nonce, sealed, b"ctx"))
    indexer = BlindIndexer.from_keyring(keyring)
    bidx = per_call_us(lambda: indexer.index(IndexKind.MOBILE, "+86 138-1234-5678"))
    bare_hmac = per_call_us(lambda: hmac.new(raw_key, b"13812345678", "sha256").digest())
    return {
        "encrypt_us": {"puhui": ours_enc, "bare_aesgcm": bare_enc, "ratio": ours_enc / bare_enc},
        "decrypt_us": {"puhui": ours_dec, "bare_aesgcm": bare_dec, "ratio": ours_dec / bare_dec},
        "blind_index_us": {"puhui": bidx, "bare_hmac": bare_hmac, "ratio": bidx / bare_hmac},
    }


def percentiles(samples_ms: list[float]) -> dict[str, float]:
    q = statistics.quantiles(samples_ms, n=100, method="inclusive")
    return {
        "p50_ms": q[49],
        "p95_ms": q[94],
        "p99_ms": q[98],
        "mean_ms": statistics.fmean(samples_ms),
        "per_second": 1000 / statistics.fmean(samples_ms),
    }


def submissions(url: str, key_dir: Path) -> dict[str, Any]:
    migrate.upgrade(url)
    p = Platform(Settings(database_url=url, key_dir=key_dir))
    population = generate(SUBMISSIONS, seed=SEED)
    from puhui.origination.institutions import register_institution
    from puhui.origination.seed import INSTITUTION_TYPES

    for code in sorted({a.institution_code for a in population.applications}):
        register_institution(
            p.uow(),
            code=code,
            name=code,
            institution_type=INSTITUTION_TYPES.get(code.split("_")[0], "bank"),
        )
    raws = [as_submission(a) for a in population.applications]
    for raw in raws[:20]:  # warm-up: imports, pools, caches
        submit_application(
            p.uow(), p.vault, p.indexer, {**raw, "external_ref": "W" + raw["external_ref"]}
        )
    samples = []
    for raw in raws:
        began = time.perf_counter()
        submit_application(p.uow(), p.vault, p.indexer, raw)
        samples.append((time.perf_counter() - began) * 1000)
    with p.sessions() as s:
        began = time.perf_counter()
        report = audit.verify(s)
        verify_s = time.perf_counter() - began
    assert report.ok, report.problems
    p.close()
    return {
        **percentiles(samples),
        "n": len(samples),
        "audit_verify_records_per_second": report.checked / verify_s,
        "audit_records": report.checked,
    }


def main() -> None:
    results: dict[str, Any] = {
        "machine": hostinfo.describe(),
        "seed": SEED,
    }
    with tempfile.TemporaryDirectory() as tmp:
        tmpdir = Path(tmp)
        results["crypto"] = crypto(tmpdir / "keys")
        results["submission_sqlite"] = submissions(
            f"sqlite:///{tmpdir / 'bench.db'}", tmpdir / "keys"
        )
        pg = postgres_scratch()
        if pg is not None:
            url, drop = pg
            try:
                results["submission_postgresql"] = submissions(url, tmpdir / "keys")
            finally:
                drop()
    began = time.perf_counter()
    generate(10_000, seed=SEED)
    results["synthetic_per_second"] = 10_000 / (time.perf_counter() - began)

    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    c = results["crypto"]
    print(
        f"encrypt {c['encrypt_us']['puhui']:.1f} µs (bare AESGCM "
        f"{c['encrypt_us']['bare_aesgcm']:.1f} µs, ×{c['encrypt_us']['ratio']:.2f})"
    )
    print(
        f"decrypt {c['decrypt_us']['puhui']:.1f} µs (bare {c['decrypt_us']['bare_aesgcm']:.1f} µs,"
        f" ×{c['decrypt_us']['ratio']:.2f})"
    )
    print(
        f"blind index {c['blind_index_us']['puhui']:.1f} µs (bare HMAC "
        f"{c['blind_index_us']['bare_hmac']:.1f} µs, ×{c['blind_index_us']['ratio']:.2f})"
    )
    for kind in ("submission_sqlite", "submission_postgresql"):
        if kind in results:
            r = results[kind]
            print(
                f"{kind}: p50 {r['p50_ms']:.1f} ms, p95 {r['p95_ms']:.1f} ms, "
                f"p99 {r['p99_ms']:.1f} ms, {r['per_second']:.0f}/s; audit verify "
                f"{r['audit_verify_records_per_second']:.0f} records/s"
            )
    print(f"synthetic generation {results['synthetic_per_second']:.0f} applications/s")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
