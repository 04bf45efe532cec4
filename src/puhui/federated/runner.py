"""A whole joint-modelling run for one party: align, agree the plan, train, evaluate, save.

``puhui federated train --role guest|host`` calls :func:`run_guest` or :func:`run_host` with its
channel and its own data; the demo runs the two as separate processes. The steps, each timed
with the bytes it sent and received:

1. **align** — ECDH PSI on the id columns (:mod:`puhui.federated.alignment`): both sides get
   their own row numbers of the shared businesses, in one common order.
2. **plan** — the guest draws a seeded, stratified hold-out split of the aligned rows and sends
   the host the protocol name and which aligned rows are held out (row positions only).
3. **train** — SecureBoost or vertical LR on the training rows (the protocol modules).
4. **evaluate** — the federated model scores the held-out rows (one batch through the
   protocol's prediction exchange); the guest computes AUC and KS. The guest also fits the
   same algorithm on its own columns alone (no partner) for the comparison an analyst wants:
   what did the partner's data add?

Nothing but the protocol messages crosses: the plan is positions, never ids or labels.
"""

from __future__ import annotations

import csv
import math
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
from sklearn.model_selection import train_test_split

from puhui.federated import alignment
from puhui.federated.channel import Channel, ChannelStats
from puhui.federated.errors import FederatedError, ProtocolMismatch
from puhui.federated.hetero_lr import guest as lr_guest
from puhui.federated.hetero_lr import host as lr_host
from puhui.federated.hetero_lr.central import fit_central
from puhui.federated.hetero_lr.model import GuestLRModel, HostLRModel
from puhui.federated.hetero_lr.params import HeteroLRParams
from puhui.federated.secureboost import guest as sb_guest
from puhui.federated.secureboost import host as sb_host
from puhui.federated.secureboost.central import train_central
from puhui.federated.secureboost.model import GuestModel, HostModel
from puhui.federated.secureboost.params import SecureBoostParams
from puhui.risk.metrics import auc, ks

Protocol = Literal["secureboost", "hetero_lr"]
PROTOCOLS: tuple[Protocol, ...] = ("secureboost", "hetero_lr")
FloatArray = npt.NDArray[np.float64]
_TAG_PLAN = "run.plan"


@dataclass(frozen=True)
class PartyData:
    """One party's table: ids, feature matrix (NaN = missing), names, and labels (guest)."""

    ids: list[str]
    X: FloatArray
    feature_names: list[str]
    y: npt.NDArray[np.int64] | None = None


def read_party_csv(
    path: Path, id_column: str, label_column: str | None = None, *, bad_label: str = "1"
) -> PartyData:
    """Read a party's CSV: every column but the id (and label) is a numeric feature.

    Blank cells are missing values. Errors name the file, line and column."""
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.reader(fh)
        try:
            header = next(reader)
        except StopIteration:
            raise FederatedError(f"{path}: the file is empty") from None
        for needed in filter(None, [id_column, label_column]):
            if needed not in header:
                raise FederatedError(f"{path}: no column {needed!r} (columns: {', '.join(header)})")
        id_at = header.index(id_column)
        label_at = header.index(label_column) if label_column else -1
        names = [c for k, c in enumerate(header) if k not in (id_at, label_at)]
        ids: list[str] = []
        rows: list[list[float]] = []
        labels: list[int] = []
        for line, row in enumerate(reader, start=2):
            if len(row) != len(header):
                raise FederatedError(
                    f"{path}:{line}: {len(row)} cells, the header has {len(header)}"
                )
            ids.append(row[id_at].strip())
            values = []
            for k, cell in enumerate(row):
                if k in (id_at, label_at):
                    continue
                try:
                    values.append(float(cell) if cell.strip() else math.nan)
                except ValueError:
                    raise FederatedError(
                        f"{path}:{line}: column {header[k]!r}: {cell!r} is not a number"
                    ) from None
            rows.append(values)
            if label_column:
                labels.append(1 if row[label_at].strip() == bad_label else 0)
    if not ids:
        raise FederatedError(f"{path}: the file has a header but no rows")
    X = np.asarray(rows, dtype=np.float64).reshape(len(rows), len(names))
    y = np.asarray(labels, dtype=np.int64) if label_column else None
    if y is not None and len(set(y.tolist())) < 2:
        raise FederatedError(
            f"{path}: column {label_column!r} needs both classes (bad is {bad_label!r})"
        )
    return PartyData(ids, X, names, y)


@dataclass
class Step:
    """One step's cost as this party saw it."""

    name: str
    seconds: float
    bytes_sent: int
    bytes_received: int


@dataclass
class RunReport:
    """What a party did and what it cost; the guest's also holds the test metrics."""

    role: str
    protocol: str
    rows: int
    aligned: int
    train_rows: int
    test_rows: int
    steps: list[Step] = field(default_factory=list)
    metrics: dict[str, float] = field(default_factory=dict)
    timings: list[dict[str, float]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "role": self.role,
            "protocol": self.protocol,
            "rows": self.rows,
            "aligned": self.aligned,
            "train_rows": self.train_rows,
            "test_rows": self.test_rows,
            "steps": [s.__dict__ for s in self.steps],
            "metrics": self.metrics,
            "tree_timings": self.timings,
        }


def _stats(channel: Channel) -> ChannelStats:
    stats = getattr(channel, "stats", None)
    return stats if isinstance(stats, ChannelStats) else ChannelStats()


@contextmanager
def _step(
    report: RunReport, channel: Channel, name: str, progress: Callable[[str], None]
) -> Iterator[None]:
    progress(f"{report.role}: {name} …")
    stats = _stats(channel)
    sent, received, started = stats.bytes_sent, stats.bytes_received, time.perf_counter()
    yield
    step = Step(
        name,
        time.perf_counter() - started,
        stats.bytes_sent - sent,
        stats.bytes_received - received,
    )
    report.steps.append(step)
    progress(
        f"{report.role}: {name} done in {step.seconds:.1f} s "
        f"(sent {step.bytes_sent / 1e6:.1f} MB, received {step.bytes_received / 1e6:.1f} MB)"
    )


def _quiet(_: str) -> None:
    return None


def run_guest(
    channel: Channel,
    data: PartyData,
    protocol: Protocol,
    params: SecureBoostParams | HeteroLRParams,
    *,
    test_share: float = 0.3,
    seed: int = 2026,
    progress: Callable[[str], None] = _quiet,
) -> tuple[GuestModel | GuestLRModel, RunReport]:
    """The guest's whole run; returns its half of the model and the report."""
    if data.y is None:
        raise FederatedError("the guest's data needs its label column")
    if not 0.0 < test_share < 0.9:
        raise FederatedError("test_share must be between 0 and 0.9")
    report = RunReport("guest", protocol, len(data.ids), 0, 0, 0)
    progress(f"{report.role}: PSI multiplications by {alignment.psi_backend()} (X25519)")
    with _step(report, channel, "align (PSI)", progress):
        rows = alignment.align_as_guest(channel, data.ids)
    X, y = data.X[rows], data.y[rows]
    positions = np.arange(len(rows))
    try:
        train, test = train_test_split(
            positions, test_size=test_share, random_state=seed, stratify=y
        )
    except ValueError as exc:
        raise FederatedError(f"cannot split {len(rows)} aligned rows for testing: {exc}") from None
    train, test = np.sort(train), np.sort(test)
    report.aligned, report.train_rows, report.test_rows = len(rows), len(train), len(test)
    with _step(report, channel, "plan", progress):
        mask = np.zeros(len(rows), dtype=bool)
        mask[test] = True
        channel.send(
            _TAG_PLAN,
            {"protocol": protocol, "aligned": len(rows), "test": np.packbits(mask).tobytes()},
        )
    model: GuestModel | GuestLRModel
    with _step(report, channel, "train", progress):
        if protocol == "secureboost":
            assert isinstance(params, SecureBoostParams)
            model = sb_guest.train_guest(channel, X[train], y[train], params, data.feature_names)
            report.timings = list(model.timings)
        else:
            assert isinstance(params, HeteroLRParams)
            model = lr_guest.train_guest(channel, X[train], y[train], params, data.feature_names)
    with _step(report, channel, "evaluate", progress):
        if isinstance(model, GuestModel):
            pd = sb_guest.predict_guest(channel, model, X[test])
        else:
            pd = lr_guest.predict_guest(channel, model, X[test])
    report.metrics = {"federated_auc": auc(y[test], pd), "federated_ks": ks(y[test], pd)}
    started = time.perf_counter()
    alone = _guest_alone(protocol, params, X[train], y[train], X[test])
    report.metrics.update(guest_only_auc=auc(y[test], alone), guest_only_ks=ks(y[test], alone))
    report.steps.append(Step("guest-only model (local)", time.perf_counter() - started, 0, 0))
    return model, report


def _guest_alone(
    protocol: Protocol,
    params: SecureBoostParams | HeteroLRParams,
    X_train: FloatArray,
    y_train: npt.NDArray[np.int64],
    X_test: FloatArray,
) -> FloatArray:
    """The same algorithm on the guest's own columns, in the clear (no partner)."""
    if isinstance(params, SecureBoostParams):
        return train_central(X_train, y_train, params).predict_proba(X_test)
    fit = fit_central(X_train, y_train, np.empty((len(X_train), 0)), params)
    return fit.predict_proba(X_test, np.empty((len(X_test), 0)))


def run_host(
    channel: Channel, data: PartyData, *, progress: Callable[[str], None] = _quiet
) -> tuple[HostModel | HostLRModel, RunReport]:
    """The host's whole run; returns its half of the model and the report."""
    report = RunReport("host", "?", len(data.ids), 0, 0, 0)
    progress(f"{report.role}: PSI multiplications by {alignment.psi_backend()} (X25519)")
    with _step(report, channel, "align (PSI)", progress):
        rows = alignment.align_as_host(channel, data.ids)
    with _step(report, channel, "plan", progress):
        plan = channel.recv(_TAG_PLAN)
        protocol, test = _check_plan(plan, len(rows))
    report.protocol = protocol
    X = data.X[rows]
    train, test_rows = np.flatnonzero(~test), np.flatnonzero(test)
    report.aligned, report.train_rows, report.test_rows = len(rows), len(train), len(test_rows)
    model: HostModel | HostLRModel
    with _step(report, channel, "train", progress):
        if protocol == "secureboost":
            model = sb_host.train_host(channel, X[train], data.feature_names, workers=2)
            report.timings = list(model.timings)
        else:
            model = lr_host.train_host(channel, X[train], data.feature_names)
    with _step(report, channel, "evaluate", progress):
        if isinstance(model, HostModel):
            sb_host.serve_host_predictions(channel, model, X[test_rows])
        else:
            lr_host.serve_host_predictions(channel, model, X[test_rows])
    return model, report


def _check_plan(plan: Any, aligned: int) -> tuple[Protocol, npt.NDArray[np.bool_]]:
    if not isinstance(plan, dict) or plan.get("protocol") not in PROTOCOLS:
        raise ProtocolMismatch(f"the guest's plan names no known protocol ({PROTOCOLS})")
    if plan.get("aligned") != aligned:
        raise ProtocolMismatch(
            f"the guest aligned {plan.get('aligned')} rows and this host {aligned}: "
            "the two sides did not finish alignment alike"
        )
    packed = plan.get("test")
    if not isinstance(packed, bytes) or len(packed) != (aligned + 7) // 8:
        raise ProtocolMismatch("the guest's hold-out mask has the wrong size")
    test = np.unpackbits(np.frombuffer(packed, dtype=np.uint8))[:aligned].astype(bool)
    return plan["protocol"], test
