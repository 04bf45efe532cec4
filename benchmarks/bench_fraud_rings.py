"""Fraud rings over the history (issue 5, §2-3): quality on planted rings, speed at 1M.

Run: ``.venv/bin/python benchmarks/bench_fraud_rings.py`` (about 4 min with the 1M cache in
place; the first run builds the cache, about 2½ min more). ``--quality-only`` skips part (b).

(a) Quality. ``puhui.synthetic.generate(100_000, seed=SEED)`` at its default fraud rate (2 %:
rings of seven shapes, honest applicants sharing office IPs, co-working addresses,
dormitories and household contacts). Links: device, IP, the representative's mobile, contact
mobiles, home and registered address, bank card, ID number and USCC, each normalised
(:func:`puhui.fraud.links.normalise`) and turned into a keyed 128-bit HMAC, as the
platform's blind indexes are. Meta: submission time and institution; no labels. Compared:

* ``rules`` — the rules-only baseline: flag an application when any of its device, mobile,
  bank card or ID number is held by at least ``RULE_N`` = 2 *other* applications (three in
  all; with 1 other, every honest repeat applicant would be flagged). Its groups are the
  sets of applications holding one such key.
* ``rings strong`` — the ring finder with its defaults (strong links, hub cap 20, CPM γ 0.2
  above 50 records); a group is flagged when its score ≥ ``REVIEW_THRESHOLD`` (30).
* ``rings weak`` — the same with ``use_weak=True`` (IP, address, contact mobile also link).

Application level: precision and recall of flagged applications against ``is_fraud``.
Group level: a planted ring counts as *found* when ≥ 50 % of its members are in one flagged
group whose members are ≥ 50 % that ring; group precision is the share of flagged groups
whose members are ≥ 50 % one planted ring. Recall is also given per ring shape.

(b) Performance with 1,000,000 historical applications. The generator draws them once
(seed ``SEED``) and the links — record index, kind code, 32-hex-character blind-index key —
are cached in ``var/bench-cache/`` (gitignored) with times and institutions. A fresh
process then times the full rebuild from those arrays: ``LinkTable.from_arrays`` (interning
~10M opaque keys), graph with hubs, components, projection, CPM refinement and scoring; it
reports peak RSS (``resource.getrusage``) and, in a second run, the peak traced by
``tracemalloc`` (numpy and pandas report their buffers to it). Beside it, scipy's
``connected_components`` alone on the same star graph, and on a random graph of 1M nodes and
3M edges (the issue's reference figure).
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import itertools
import json
import resource
import subprocess
import sys
import time
import tracemalloc
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
from scipy import sparse
from scipy.sparse.csgraph import connected_components

import hostinfo
from puhui.fraud.links import NAMESPACE, LinkKind, LinkTable, RecordMeta, kind_code, normalise
from puhui.fraud.rings import REVIEW_THRESHOLD, RingFinder, RingResult
from puhui.synthetic import RING_SHAPES, Population, generate

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).parent / "results" / "fraud_rings.json"
CACHE = ROOT / "var" / "bench-cache"
SEED = 20261205
QUALITY_N = 100_000
PERF_N = 1_000_000
RULE_N = 2
RULE_KINDS = (LinkKind.DEVICE, LinkKind.MOBILE, LinkKind.BANK_ACCOUNT, LinkKind.ID_NUMBER)
_KEY = hashlib.sha256(b"bench-fraud-rings").digest()  # stands in for the blind-index key


def _links(population: Population) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(record index, kind code, blind-index-like key) for every identifier of every app."""
    records: list[int] = []
    kinds: list[int] = []
    keys: list[bytes] = []
    code = {k: kind_code(k) for k in LinkKind}
    prefix = {k: NAMESPACE[k].value.encode() + b"\x00" for k in LinkKind}
    mac = hmac.new

    def add(i: int, kind: LinkKind, value: str) -> None:
        text = normalise(kind, value).encode()
        records.append(i)
        kinds.append(code[kind])
        keys.append(mac(_KEY, prefix[kind] + text, "sha256").hexdigest()[:32].encode())

    for i, a in enumerate(population.applications):
        e, p = a.enterprise, a.legal_representative
        add(i, LinkKind.DEVICE, a.device_id)
        add(i, LinkKind.IP, a.ip_address)
        add(i, LinkKind.MOBILE, p.mobile)
        for contact in a.contact_mobiles:
            add(i, LinkKind.CONTACT_MOBILE, contact)
        add(i, LinkKind.ADDRESS, p.address)
        add(i, LinkKind.ADDRESS, e.address)
        add(i, LinkKind.BANK_ACCOUNT, p.bank_card)
        add(i, LinkKind.ID_NUMBER, p.id_number)
        add(i, LinkKind.USCC, e.uscc)
    return (
        np.array(records, dtype=np.int32),
        np.array(kinds, dtype=np.int8),
        np.array(keys, dtype="S32"),
    )


def _meta(population: Population) -> RecordMeta:
    apps = population.applications
    return RecordMeta(
        ids=tuple(a.application_id for a in apps),
        timestamps=np.array([a.submitted_at.timestamp() for a in apps]),
        institutions=[a.institution_code for a in apps],
    )


# -- (a) quality ---------------------------------------------------------------------------


def _rules(table: LinkTable) -> tuple[np.ndarray, list[np.ndarray]]:
    """The baseline: flagged applications, and one group per over-shared key."""
    codes = np.array([kind_code(k) for k in RULE_KINDS])
    m = np.isin(table.kind, codes)
    rec, key = table.record[m], table.key[m]
    pairs = np.unique(np.stack([key, rec]), axis=1)
    holders = np.bincount(pairs[0], minlength=table.n_keys)
    hot = holders[pairs[0]] >= RULE_N + 1
    flagged = np.zeros(table.n_records, dtype=bool)
    flagged[pairs[1][hot]] = True
    hot_pairs = pairs[:, hot]
    bounds = np.flatnonzero(np.r_[True, hot_pairs[0][1:] != hot_pairs[0][:-1], True])
    groups = {tuple(hot_pairs[1][a:b].tolist()) for a, b in itertools.pairwise(bounds)}
    return flagged, [np.array(g) for g in sorted(groups)]


def _evaluate(
    flagged: np.ndarray,
    groups: list[np.ndarray],
    ring_of: np.ndarray,
    rings: dict[int, tuple[str, np.ndarray]],
) -> dict[str, Any]:
    fraud = ring_of >= 0
    tp = int((flagged & fraud).sum())
    found: set[int] = set()
    pure = 0
    for members in groups:
        labels = ring_of[members]
        counts = Counter(labels[labels >= 0].tolist())
        if not counts:
            continue
        ring, inside = counts.most_common(1)[0]
        if inside >= 0.5 * len(members):
            pure += 1
            if inside >= 0.5 * len(rings[ring][1]):
                found.add(ring)
    by_shape: dict[str, dict[str, Any]] = {}
    for shape in RING_SHAPES:
        ids = [r for r, (s, _) in rings.items() if s == shape]
        apps = np.concatenate([rings[r][1] for r in ids]) if ids else np.empty(0, np.int64)
        by_shape[shape] = {
            "rings": len(ids),
            "applications": len(apps),
            "app_recall": round(float(flagged[apps].mean()), 4) if len(apps) else None,
            "group_recall": round(sum(r in found for r in ids) / len(ids), 4) if ids else None,
        }
    return {
        "flagged_applications": int(flagged.sum()),
        "app_precision": round(tp / max(int(flagged.sum()), 1), 4),
        "app_recall": round(tp / max(int(fraud.sum()), 1), 4),
        "honest_flagged": int((flagged & ~fraud).sum()),
        "flagged_groups": len(groups),
        "group_precision": round(pure / max(len(groups), 1), 4),
        "group_recall": round(len(found) / max(len(rings), 1), 4),
        "by_shape": by_shape,
    }


def _flagged_groups(result: RingResult) -> tuple[np.ndarray, list[np.ndarray]]:
    flagged = result.score >= REVIEW_THRESHOLD
    groups = [np.array(r.members) for r in result.rings if r.score >= REVIEW_THRESHOLD]
    return flagged, groups


def quality() -> dict[str, Any]:
    started = time.perf_counter()
    population = generate(QUALITY_N, seed=SEED)
    record, kind, keys = _links(population)
    meta = _meta(population)
    table = LinkTable.from_arrays(record, kind, keys, meta.ids)
    prepared = time.perf_counter() - started
    position = {a: i for i, a in enumerate(meta.ids)}
    ring_of = np.full(len(meta.ids), -1, dtype=np.int64)
    rings: dict[int, tuple[str, np.ndarray]] = {}
    for r, ring in enumerate(population.rings):
        members = np.array([position[a] for a in ring.application_ids])
        ring_of[members] = r
        rings[r] = (ring.shape, members)
    out: dict[str, Any] = {
        "applications": QUALITY_N,
        "fraud_applications": int((ring_of >= 0).sum()),
        "planted_rings": len(rings),
        "links": len(table),
        "prepare_seconds": round(prepared, 1),
        "methods": {},
    }
    flagged, groups = _rules(table)
    out["methods"][f"rules (key held by >= {RULE_N} others)"] = _evaluate(
        flagged, groups, ring_of, rings
    )
    for name, use_weak in (("rings strong", False), ("rings weak", True)):
        t0 = time.perf_counter()
        finder = RingFinder(use_weak=use_weak).fit(table, meta)
        seconds = time.perf_counter() - t0
        flagged, groups = _flagged_groups(finder.result_)
        out["methods"][name] = _evaluate(flagged, groups, ring_of, rings) | {
            "seconds": round(seconds, 2),
            "groups": len(finder.result_.rings),
            "hubs": len(finder.result_.hubs),
        }
    return out


# -- (b) performance -----------------------------------------------------------------------


def _cache_path() -> Path:
    return CACHE / f"fraud_links_{PERF_N}_{SEED}.npz"


def build_cache() -> dict[str, Any]:
    path = _cache_path()
    if path.exists():
        return {"cache": str(path.relative_to(ROOT)), "built_now": False}
    CACHE.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    population = generate(PERF_N, seed=SEED)
    generated = time.perf_counter() - t0
    record, kind, keys = _links(population)
    meta = _meta(population)
    ids = np.array(meta.ids, dtype="S11")
    institutions = np.array(meta.institutions, dtype="S16")
    assert meta.timestamps is not None
    timestamps = meta.timestamps
    del population, meta
    np.savez(path, record=record, kind=kind, keys=keys, ids=ids, ts=timestamps, inst=institutions)
    return {
        "cache": str(path.relative_to(ROOT)),
        "built_now": True,
        "generate_seconds": round(generated, 1),
        "cache_seconds": round(time.perf_counter() - t0, 1),
    }


def _load() -> tuple[np.ndarray, np.ndarray, np.ndarray, RecordMeta]:
    with np.load(_cache_path()) as z:
        ids = tuple(z["ids"].astype(str).tolist())
        meta = RecordMeta(ids, z["ts"], z["inst"].astype(str).tolist())
        return z["record"], z["kind"], z["keys"], meta


def _peak_rss_mb() -> int:
    """Peak RSS of this process: ``ru_maxrss`` (Linux keeps it across exec, so the parent
    starts children before it grows) cross-checked with ``VmHWM``."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                peak = min(peak, int(line.split()[1]) / 1024)
    return round(peak)


def rebuild(traced: bool) -> dict[str, Any]:
    """One full rebuild from the cached arrays (run in a fresh process)."""
    record, kind, keys, meta = _load()
    if traced:
        tracemalloc.start()
    rss_loaded = _peak_rss_mb()
    t0 = time.perf_counter()
    table = LinkTable.from_arrays(record, kind, keys, meta.ids)
    t_table = time.perf_counter() - t0
    out: dict[str, Any] = {
        "records": table.n_records,
        "links": len(table),
        "keys": table.n_keys,
        "peak_rss_mb_after_loading_cache": rss_loaded,
    }
    for name, use_weak in (("strong", False), ("weak", True)):
        t1 = time.perf_counter()
        finder = RingFinder(use_weak=use_weak).fit(table, meta)
        seconds = time.perf_counter() - t1
        out[name] = {
            "total_seconds": round(t_table + seconds, 2),
            "steps_seconds": {"link_table": round(t_table, 2)}
            | {k: round(v, 2) for k, v in finder.timings_.items()},
            "groups": len(finder.result_.rings),
            "records_in_groups": int((finder.result_.group >= 0).sum()),
            "largest_group": max((len(r.members) for r in finder.result_.rings), default=0),
            "split_groups": sum(r.split for r in finder.result_.rings),
            "hubs": len(finder.result_.hubs),
            "star_edges": int(finder.result_.graph.adjacency().nnz),
        }
        if traced:
            out[name]["tracemalloc_peak_mb"] = round(tracemalloc.get_traced_memory()[1] / 2**20)
            tracemalloc.reset_peak()
    out["peak_rss_mb"] = _peak_rss_mb()
    if traced:
        tracemalloc.stop()
        return out
    adjacency = finder.result_.graph.adjacency()
    t0 = time.perf_counter()
    count, _ = connected_components(adjacency, directed=False)
    out["scipy_components_same_graph_weak"] = {
        "seconds": round(time.perf_counter() - t0, 3),
        "nodes": adjacency.shape[0],
        "edges": int(adjacency.nnz),
        "components": int(count),
    }
    rng = np.random.default_rng(SEED)
    n, m = 1_000_000, 3_000_000
    random_graph = sparse.csr_matrix(
        (np.ones(m, dtype=np.int8), (rng.integers(0, n, m), rng.integers(0, n, m))), shape=(n, n)
    )
    t0 = time.perf_counter()
    connected_components(random_graph, directed=False)
    out["scipy_components_random_1m_3m_seconds"] = round(time.perf_counter() - t0, 3)
    return out


def _child(flag: str) -> dict[str, Any]:
    output = subprocess.run(
        [sys.executable, __file__, flag], check=True, capture_output=True, text=True, cwd=ROOT
    ).stdout
    result: dict[str, Any] = json.loads(output.strip().splitlines()[-1])
    return result


def performance() -> dict[str, Any]:
    """Each step in its own process, started before this one has generated anything."""
    cache = _child("--build-cache")
    timed = _child("--rebuild")
    traced = _child("--rebuild-traced")
    for name in ("strong", "weak"):
        timed[name]["tracemalloc_peak_mb"] = traced[name]["tracemalloc_peak_mb"]
    return cache | {"rebuild": timed}


def _print(results: dict[str, Any]) -> None:
    q = results["quality"]
    print(f"quality: {q['applications']:,} applications, {q['planted_rings']} rings")
    print(f"{'method':38} {'app P':>6} {'app R':>6} {'grp P':>6} {'grp R':>6} {'flagged':>8}")
    for name, m in q["methods"].items():
        print(
            f"{name:38} {m['app_precision']:6.3f} {m['app_recall']:6.3f} "
            f"{m['group_precision']:6.3f} {m['group_recall']:6.3f} {m['flagged_applications']:8}"
        )
    for shape in RING_SHAPES:
        cells = [
            f"{m['by_shape'][shape]['app_recall']}/{m['by_shape'][shape]['group_recall']}"
            for m in q["methods"].values()
        ]
        print(f"  {shape:18} " + "  ".join(f"{c:>14}" for c in cells))
    if "performance" in results:
        r = results["performance"]["rebuild"]
        for name in ("strong", "weak"):
            m = r[name]
            print(f"1M rebuild ({name}): {m['total_seconds']} s {m['steps_seconds']}")
        alone = r["scipy_components_same_graph_weak"]
        print(f"peak RSS {r['peak_rss_mb']} MB; scipy alone: {alone}")


def main(argv: list[str]) -> int:
    if argv[:1] in (["--rebuild"], ["--rebuild-traced"]):
        print(json.dumps(rebuild(traced=argv[0] == "--rebuild-traced")))
        return 0
    if argv[:1] == ["--build-cache"]:
        print(json.dumps(build_cache()))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quality-only", action="store_true")
    args = parser.parse_args(argv)
    results: dict[str, Any] = {
        "machine": hostinfo.describe(),
        "seed": SEED,
        "review_threshold": REVIEW_THRESHOLD,
    }
    if not args.quality_only:
        results["performance"] = performance()
    results["quality"] = quality()
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    _print(results)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
