"""Vertical logistic regression (issue 6): two parties in two processes on default_credit.

Run: ``.venv/bin/python benchmarks/bench_hetero_lr.py`` (about 3–4 minutes on an idle 2-core
machine; ``--epochs 2`` for a quick run, ``--rows N`` to subsample). Seeded.

Data: FATE's default_credit vertical split (``data/federated``; guest 13 features + label,
host 10 features, 30,000 rows), split once 70/30 stratified (``random_state`` = the seed). The
training rows go to the two parties, the test rows are scored at the end through the serving
protocol.

The guest and the host each run in a forked process (``pipe_pair``), each with its own
2048-bit Paillier key, exactly as ``puhui.federated.hetero_lr`` runs between two machines;
each encrypts with ``--workers`` forked workers. Per party the protocol's stopwatch
(:class:`~puhui.federated.hetero_lr.PhaseClock`) splits wall time into key generation,
encryption, homomorphic products (the bucket matrix–vector products), other homomorphic work
(parsing, plaintext addition, masking and re-blinding), decryption, plaintext arithmetic, and
waiting for the peer (which includes the transfer); the process CPU time (with its encryption
workers) is read from ``os.times``. The transfer itself is timed separately: the same number
of bytes pushed through a ``pipe_pair`` between two processes.

Compared on the test rows (AUC and KS, ``puhui.risk.metrics``):

* federated LR — the two parties' models, scored with ``predict_guest`` /
  ``serve_host_predictions``;
* central LR, same optimiser — ``fit_central`` on the joined training rows with the same
  parameters (fixed point as the parties: must equal the federated weights exactly) and in
  float64 (the gap is the fixed-point rounding);
* guest-only LR, same optimiser — ``fit_central`` with an empty host block;
* exact LR — Newton maximum likelihood (``puhui.risk.logit.fit_logit``) on the joined rows,
  and on the guest's alone.

Reference: FATE's published coordinated (arbiter) LR, 2 min 16 s per epoch for 100,000 rows
× (30 + 300) features on 16-core hosts (REFERENCE.md §7), converted to core-µs per
row-feature-epoch beside ours (2 cores × wall seconds, and our measured CPU seconds). The
conversion is crude — encryption costs per row, not per feature, so FATE's 330 features
amortise it better than our 23; FATE's key size for that figure is not stated (its default is
1024 bits, ours 2048).

Results: ``benchmarks/results/hetero_lr.json`` with the machine and the load average before
and after (other work on the machine inflates wall times).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import multiprocessing.connection
import os
import sys
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

import hostinfo
from puhui.federated.channel import PipeChannel, pipe_pair
from puhui.federated.hetero_lr import (
    GuestLRModel,
    HeteroLRParams,
    HostLRModel,
    PhaseClock,
    fit_central,
    predict_guest,
    serve_host_predictions,
    train_guest,
    train_host,
)
from puhui.risk.logit import fit_logit
from puhui.risk.metrics import auc, ks

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "data" / "federated"
RESULTS = Path(__file__).parent / "results" / "hetero_lr.json"
SEED = 20261128
FATE_SECONDS_PER_EPOCH = 136.0
FATE_ROWS, FATE_FEATURES, FATE_CORES = 100_000, 330, 16


def load(rows: int | None) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str], list[str]]:
    guest = pd.read_csv(DATA / "default_credit_hetero_guest.csv")
    host = pd.read_csv(DATA / "default_credit_hetero_host.csv")
    if not (guest["id"] == host["id"]).all():
        raise SystemExit("the guest and host files are not aligned row by row")
    if rows is not None and rows < len(guest):
        keep, _ = train_test_split(
            np.arange(len(guest)), train_size=rows, stratify=guest["y"], random_state=SEED
        )
        keep = np.sort(keep)
        guest, host = guest.iloc[keep], host.iloc[keep]
    xg, xh = guest.drop(columns=["id", "y"]), host.drop(columns=["id"])
    return xg.to_numpy(), guest["y"].to_numpy(), xh.to_numpy(), list(xg.columns), list(xh.columns)


def _cpu_seconds() -> float:
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def _party(role: str, channel: PipeChannel, out: Connection, job: dict[str, Any]) -> None:
    """One party's whole life: train, then serve or request the test-set scores."""
    try:
        timer = PhaseClock()
        cpu0, started = _cpu_seconds(), time.perf_counter()
        model: GuestLRModel | HostLRModel
        if role == "guest":
            model = train_guest(
                channel,
                job["x_train"],
                job["y_train"],
                job["params"],
                job["names"],
                workers=job["workers"],
                timer=timer,
            )
        else:
            model = train_host(
                channel, job["x_train"], job["names"], workers=job["workers"], timer=timer
            )
        train_wall, train_cpu = time.perf_counter() - started, _cpu_seconds() - cpu0
        started = time.perf_counter()
        scores: list[float] | None = None
        if isinstance(model, GuestLRModel):
            scores = predict_guest(channel, model, job["x_test"]).tolist()
        else:
            serve_host_predictions(channel, model, job["x_test"])
        out.send(
            {
                "model": model.to_dict(),
                "phases_s": timer.as_dict(),
                "train_wall_s": train_wall,
                "train_cpu_s": train_cpu,
                "predict_wall_s": time.perf_counter() - started,
                "bytes_sent": channel.stats.bytes_sent,
                "bytes_received": channel.stats.bytes_received,
                "scores": scores,
            }
        )
    except BaseException as exc:  # reported to the parent, which fails the run
        out.send({"error": f"{type(exc).__name__}: {exc}"})
        raise


def run_federated(jobs: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Fork the guest and the host, each with its end of a pipe; collect what they report."""
    context = multiprocessing.get_context("fork")
    guest_end, host_end = pipe_pair(timeout=1800)
    results: dict[str, dict[str, Any]] = {}
    processes = []
    receivers = {}
    for role, channel in (("guest", guest_end), ("host", host_end)):
        receive, send = context.Pipe(duplex=False)
        process = context.Process(target=_party, args=(role, channel, send, jobs[role]))
        process.start()
        processes.append(process)
        receivers[role] = receive
    # Collect reports as they come: when one party fails, its peer would otherwise wait for
    # it until the pipe's timeout (30 min), so it is stopped at once.
    roles = {id(receive): role for role, receive in receivers.items()}
    while len(results) < len(receivers):
        for ready in multiprocessing.connection.wait(
            [r for role, r in receivers.items() if role not in results]
        ):
            role = roles[id(ready)]
            results[role] = ready.recv()
            if "error" in results[role]:
                for process in processes:
                    process.terminate()
                raise SystemExit(f"the {role} party failed: {results[role]['error']}")
    for process in processes:
        process.join()
    return results


def _pipe_sink(channel: PipeChannel, count: int) -> None:
    for _ in range(count):
        channel.recv("blob")
    channel.send("done", True)


def measure_transfer(total_bytes: int, message_bytes: int) -> float:
    """Seconds to push ``total_bytes`` through a pipe_pair between two processes."""
    context = multiprocessing.get_context("fork")
    guest_end, host_end = pipe_pair(timeout=600)
    count = max(1, total_bytes // message_bytes)
    blob = os.urandom(message_bytes)
    sink = context.Process(target=_pipe_sink, args=(host_end, count))
    sink.start()
    started = time.perf_counter()
    for _ in range(count):
        guest_end.send("blob", blob)
    guest_end.recv("done")
    elapsed = time.perf_counter() - started
    sink.join()
    return elapsed


def metrics(y: np.ndarray, scores: np.ndarray) -> dict[str, float]:
    return {"auc": round(auc(y, scores), 4), "ks": round(ks(y, scores), 4)}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=8192)
    parser.add_argument("--learning-rate", type=float, default=0.3)
    parser.add_argument("--rows", type=int, default=None, help="stratified subsample (all: 30k)")
    parser.add_argument("--workers", type=int, default=1, help="encryption workers per party")
    parser.add_argument("--key-bits", type=int, default=2048)
    args = parser.parse_args(argv)
    info = hostinfo.describe()
    xg, y, xh, guest_names, host_names = load(args.rows)
    train, test = train_test_split(np.arange(len(y)), test_size=0.3, stratify=y, random_state=SEED)
    train, test = np.sort(train), np.sort(test)
    params = HeteroLRParams(
        learning_rate=args.learning_rate,
        max_epochs=args.epochs,
        batch_size=args.batch_size,
        seed=SEED,
        key_bits=args.key_bits,
    )
    print(f"{len(train)} training rows, {len(test)} test rows; {params}", flush=True)
    jobs = {
        "guest": {
            "x_train": xg[train],
            "y_train": y[train],
            "x_test": xg[test],
            "names": guest_names,
            "params": params,
            "workers": args.workers,
        },
        "host": {
            "x_train": xh[train],
            "x_test": xh[test],
            "names": host_names,
            "workers": args.workers,
        },
    }
    started = time.perf_counter()
    parties = run_federated(jobs)
    wall = time.perf_counter() - started
    guest_model = GuestLRModel.from_dict(parties["guest"]["model"])
    host_model = HostLRModel.from_dict(parties["host"]["model"])
    epochs = guest_model.epochs_run
    train_wall = max(parties["guest"]["train_wall_s"], parties["host"]["train_wall_s"])
    key_gen = max(p["phases_s"].get("key generation", 0.0) for p in parties.values())
    per_epoch = (train_wall - key_gen) / epochs
    print(
        f"federated: {train_wall:.1f} s for {epochs} epochs ({per_epoch:.1f} s/epoch)", flush=True
    )

    central = fit_central(xg[train], y[train], xh[train], params)
    floating = fit_central(xg[train], y[train], xh[train], params, quantised=False)
    guest_only = fit_central(xg[train], y[train], xh[train][:, :0], params)
    federated_w = np.concatenate([guest_model.coef, [guest_model.intercept], host_model.coef])
    central_w = np.concatenate([central.coef_guest, [central.intercept], central.coef_host])
    float_w = np.concatenate([floating.coef_guest, [floating.intercept], floating.coef_host])
    joined = np.hstack([xg, xh])
    exact = fit_logit(joined[train], y[train].astype(float))
    exact_guest = fit_logit(xg[train], y[train].astype(float))
    federated_scores = np.asarray(parties["guest"]["scores"])
    central_scores = central.predict_proba(xg[test], xh[test])
    quality = {
        "federated LR (this protocol)": metrics(y[test], federated_scores),
        "central LR, same optimiser (fixed point)": metrics(y[test], central_scores),
        "central LR, same optimiser (float64)": metrics(
            y[test], floating.predict_proba(xg[test], xh[test])
        ),
        "guest-only LR, same optimiser": metrics(
            y[test], guest_only.predict_proba(xg[test], xh[test][:, :0])
        ),
        "exact LR (Newton ML), joined": metrics(y[test], exact.decision(joined[test])),
        "exact LR (Newton ML), guest only": metrics(y[test], exact_guest.decision(xg[test])),
    }
    sent = parties["guest"]["bytes_sent"] + parties["host"]["bytes_sent"]
    transfer_s = measure_transfer(sent, 4096 * 512)
    features = len(guest_names) + len(host_names)
    cpu = parties["guest"]["train_cpu_s"] + parties["host"]["train_cpu_s"]
    ours_wall_core_us = per_epoch * 2 * 1e6 / (len(train) * features)
    ours_cpu_core_us = (cpu / epochs) * 1e6 / (len(train) * features)
    fate_core_us = FATE_SECONDS_PER_EPOCH * FATE_CORES * 1e6 / (FATE_ROWS * FATE_FEATURES)
    out = {
        "benchmark": "hetero_lr",
        "machine": info | {"load_average_at_end": hostinfo.load_average()},
        "parameters": {
            "seed": SEED,
            "rows_train": len(train),
            "rows_test": len(test),
            "guest_features": len(guest_names),
            "host_features": len(host_names),
            "params": params.to_message(),
            "encryption_workers_per_party": args.workers,
            "timing": "one run, wall seconds unless stated",
        },
        "training": {
            "epochs": epochs,
            "total_wall_s": round(train_wall, 2),
            "key_generation_s": round(key_gen, 2),
            "seconds_per_epoch": round(per_epoch, 2),
            "cpu_s_both_parties": round(cpu, 1),
            "phases_s": {
                role: {k: round(v, 2) for k, v in sorted(p["phases_s"].items())}
                for role, p in parties.items()
            },
            "per_unit_us": {
                f"{role} {what}": round(p["phases_s"].get(phase, 0.0) * 1e6 / (epochs * units), 1)
                for role, p in parties.items()
                for what, phase, units in (
                    ("encrypt, per value", "encrypt", len(train)),
                    (
                        "homomorphic products, per row-feature",
                        "homomorphic products",
                        len(train) * (len(guest_names) + 1 if role == "guest" else len(host_names)),
                    ),
                )
            },
            "bytes_on_wire": sent,
            "bytes_per_epoch": sent // max(epochs, 1),
            "transfer_of_those_bytes_over_a_pipe_s": round(transfer_s, 2),
            "test_scoring_wall_s": round(parties["guest"]["predict_wall_s"], 3),
            "run_wall_s": round(wall, 1),
        },
        "agreement": {
            "max_abs_weight_diff_vs_central_fixed_point": float(
                np.max(np.abs(federated_w - central_w))
            ),
            "max_abs_weight_diff_vs_central_float64": float(np.max(np.abs(federated_w - float_w))),
            "max_abs_probability_diff_vs_central": float(
                np.max(np.abs(federated_scores - central_scores))
            ),
        },
        "quality_test_set": quality,
        "reference": {
            "fate_coordinated_lr_s_per_epoch": FATE_SECONDS_PER_EPOCH,
            "fate_setup": "100k rows, 30 + 300 features, 16-core hosts (published)",
            "fate_core_us_per_row_feature_epoch": round(fate_core_us, 1),
            "ours_core_us_per_row_feature_epoch_wall_x2": round(ours_wall_core_us, 1),
            "ours_core_us_per_row_feature_epoch_cpu": round(ours_cpu_core_us, 1),
        },
    }
    print(json.dumps(out, indent=1, ensure_ascii=False), flush=True)
    RESULTS.write_text(json.dumps(out, indent=2, ensure_ascii=False) + "\n")
    print(f"wrote {RESULTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
