"""``puhui federated train | serve | sample-data | register | demo``: running joint models.

Added to the ``federated`` group of :mod:`puhui.federated_cli` (which holds the CA and
alignment commands). Each party runs ``train`` with its own ``party.toml`` and data; the host
later runs ``serve`` so the bank's decisions can use the model online; the bank registers its
half with ``register`` and promotes it like any other model. ``demo`` does all of it on one
machine with two real processes.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from puhui.cli_errors import fail as _fail
from puhui.federated.errors import FederatedError


def register_commands(app: typer.Typer) -> None:
    """Add this module's commands to the ``federated`` group."""
    app.command("train")(train)
    app.command("serve")(serve)
    app.command("sample-data")(sample_data)
    app.command("register")(register)
    app.command("demo")(demo)


ProtocolOption = Annotated[
    str, typer.Option("--protocol", help="secureboost (trees) or hetero_lr (logistic).")
]


def train(
    role: Annotated[str, typer.Option("--role", help="This party's role: guest or host.")],
    config: Annotated[Path, typer.Option("--config", help="This party's party.toml.")],
    out: Annotated[Path, typer.Option(help="Directory for this party's model and report.")],
    protocol: ProtocolOption = "secureboost",
    trees: Annotated[int, typer.Option(help="SecureBoost: number of trees.")] = 10,
    depth: Annotated[int, typer.Option(help="SecureBoost: tree depth.")] = 3,
    bins: Annotated[int, typer.Option(help="SecureBoost: bins per feature.")] = 32,
    learning_rate: Annotated[float, typer.Option(help="Learning rate (both protocols).")] = 0.3,
    epochs: Annotated[int, typer.Option(help="Vertical LR: epochs.")] = 5,
    test_share: Annotated[float, typer.Option(help="Guest: share of rows held out.")] = 0.3,
    seed: Annotated[int, typer.Option(help="Guest: seed of the hold-out split.")] = 2026,
) -> None:
    """Align with the peer, train one model together, evaluate it on held-out rows.

    The guest decides the protocol and parameters; the host follows (its options other than
    --role, --config and --out are ignored). Writes <role>_model.json and <role>_report.json.
    """
    from puhui.federated.hetero_lr.model import GuestLRModel, HostLRModel
    from puhui.federated.hetero_lr.params import HeteroLRParams
    from puhui.federated.runner import PROTOCOLS, read_party_csv, run_guest, run_host
    from puhui.federated.secureboost.model import GuestModel, HostModel
    from puhui.federated.secureboost.params import SecureBoostParams
    from puhui.federated_cli import _federated_errors, load_party, party_channel

    console = Console()
    cfg = load_party(config, role)
    if protocol not in PROTOCOLS:
        raise _fail(f"--protocol: must be one of {', '.join(PROTOCOLS)} (got {protocol!r})")
    with _federated_errors():
        data = read_party_csv(
            cfg.data.file, cfg.data.id_column, cfg.data.label_column if role == "guest" else None
        )
        console.print(
            f"{role}: {len(data.ids)} rows × {len(data.feature_names)} features "
            f"from {cfg.data.file}"
        )
        try:
            params: SecureBoostParams | HeteroLRParams = (
                SecureBoostParams(
                    n_trees=trees, max_depth=depth, n_bins=bins, learning_rate=learning_rate
                )
                if protocol == "secureboost"
                else HeteroLRParams(max_epochs=epochs, learning_rate=learning_rate)
            )
        except ValueError as exc:
            raise _fail(str(exc)) from None
        with party_channel(cfg, console) as channel:
            model: GuestModel | GuestLRModel | HostModel | HostLRModel
            if role == "guest":
                model, report = run_guest(
                    channel,
                    data,
                    "secureboost" if protocol == "secureboost" else "hetero_lr",
                    params,
                    test_share=test_share,
                    seed=seed,
                    progress=console.print,
                )
            else:
                model, report = run_host(channel, data, progress=console.print)
    out.mkdir(parents=True, exist_ok=True)
    document = model.to_dict()
    (out / f"{role}_model.json").write_text(json.dumps(document, indent=1), encoding="utf-8")
    (out / f"{role}_report.json").write_text(
        json.dumps(report.as_dict(), indent=1), encoding="utf-8"
    )
    _print_report(console, report.as_dict())
    console.print(f"wrote {out / f'{role}_model.json'} and {out / f'{role}_report.json'}")


def _print_report(console: Console, report: dict[str, object]) -> None:
    table = Table(title=f"{report['role']}: {report['protocol']}")
    for column in ("step", "seconds", "MB sent", "MB received"):
        table.add_column(column, justify="left" if column == "step" else "right")
    for step in report["steps"]:  # type: ignore[attr-defined]
        table.add_row(
            escape(step["name"]),
            f"{step['seconds']:.1f}",
            f"{step['bytes_sent'] / 1e6:.2f}",
            f"{step['bytes_received'] / 1e6:.2f}",
        )
    console.print(table)
    console.print(
        f"rows {report['rows']}, shared with the peer {report['aligned']}, "
        f"trained on {report['train_rows']}, held out {report['test_rows']}"
    )
    metrics = report.get("metrics") or {}
    if metrics:
        assert isinstance(metrics, dict)
        console.print(
            f"held-out AUC: guest only {metrics['guest_only_auc']:.4f}, "
            f"federated {metrics['federated_auc']:.4f} "
            f"(KS {metrics['guest_only_ks']:.4f} → {metrics['federated_ks']:.4f})"
        )


def serve(
    role: Annotated[str, typer.Option("--role", help="Must be host: the partner serves.")],
    config: Annotated[Path, typer.Option("--config", help="The host's party.toml.")],
    model: Annotated[
        list[Path], typer.Option("--model", help="A host_model.json to serve (repeatable).")
    ],
) -> None:
    """Host: answer the bank's live scoring requests for the given models (until Ctrl-C).

    Listens on the party.toml's listen address with the same mutual TLS as training and
    looks businesses up in the party's data file by its id column."""
    from puhui.federated.hetero_lr.model import HostLRModel
    from puhui.federated.online import ScoringServer, ServedModels
    from puhui.federated.scoring import HostTable, lr_answerer, secureboost_answerer
    from puhui.federated.secureboost.model import HOST_FORMAT, HostModel
    from puhui.federated_cli import _federated_errors, load_party

    console = Console()
    if role != "host":
        raise _fail("--role: only the host serves scores (the guest asks them in its decisions)")
    cfg = load_party(config, "host")
    served = ServedModels()
    with _federated_errors():
        for path in model:
            try:
                document = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                raise _fail(f"--model: cannot read {path}: {exc}") from None
            host_model: HostModel | HostLRModel
            if document.get("format") == HOST_FORMAT:
                host_model = HostModel.from_dict(document)
                table = HostTable.from_csv(
                    cfg.data.file, cfg.data.id_column, host_model.feature_names
                )
                served.add(host_model.model_id, secureboost_answerer(host_model, table))
            else:
                try:
                    host_model = HostLRModel.from_dict(document)
                except (KeyError, ValueError) as exc:
                    raise _fail(f"--model: {path} is not a host model: {exc}") from None
                table = HostTable.from_csv(
                    cfg.data.file, cfg.data.id_column, host_model.feature_names
                )
                served.add(host_model.model_id, lr_answerer(host_model, table))
            console.print(f"serving model {host_model.model_id} for {len(table.index)} businesses")
        server = ScoringServer(cfg.tls, served, cfg.listen_host, cfg.listen_port)
    console.print(f"host: scoring on https://{cfg.listen_host}:{server.port} (Ctrl-C stops)")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.close()


def sample_data(
    out: Annotated[Path, typer.Option(help="Directory for guest.csv and host.csv.")],
    applications: Annotated[int, typer.Option(help="Synthetic applications to draw.")] = 20_000,
    seed: Annotated[int, typer.Option(help="Generator seed.")] = 2026,
) -> None:
    """Write the platform's own split on synthetic data: the bank's features, the partner's
    invoice figures, keyed by USCC — what a model for the lending journey is trained on."""
    from datetime import date

    from puhui.federated.sme_data import write_training_files
    from puhui.synthetic import generate

    if applications < 100:
        raise _fail("--applications: at least 100")
    population = generate(
        applications, seed=seed, fraud_rate=0.02, start=date(2024, 1, 2), days=250
    )
    rows, _ = write_training_files(population.applications, out / "guest.csv", out / "host.csv")
    Console().print(f"wrote {rows} businesses to {out / 'guest.csv'} and {out / 'host.csv'}")


def register(
    model: Annotated[Path, typer.Option("--model", help="The guest_model.json to register.")],
    report: Annotated[
        Path | None, typer.Option(help="The guest_report.json (its metrics go to metadata).")
    ] = None,
    fallback: Annotated[
        str, typer.Option(help="Model id used when the partner cannot answer, or 'bundled'.")
    ] = "bundled",
    name: Annotated[str, typer.Option(help="Registry name.")] = "sme-credit",
) -> None:
    """Bank: put a federated model in the registry as a candidate (promote it afterwards).

    The model must be trained on the platform's guest features (`sample-data`'s guest.csv),
    since live decisions feed it those."""
    from puhui.bootstrap import platform
    from puhui.domain.errors import ValidationError
    from puhui.federated.artifact import FederatedArtifact
    from puhui.federated.live_model import FederatedCreditModel
    from puhui.risk import bundled
    from puhui.risk.registry import load_artifact
    from puhui.risk.registry import register as register_model

    try:
        document = json.loads(model.read_text(encoding="utf-8"))
        protocol = "secureboost" if "secureboost" in str(document.get("format")) else "hetero_lr"
        live = FederatedCreditModel.from_dict(
            {"format": "puhui.federated.credit/1", "protocol": protocol, "guest": document}
        )
        metadata: dict[str, object] = {"name": name, "protocol": protocol}
        if report is not None:
            metadata["test_metrics"] = json.loads(report.read_text(encoding="utf-8"))["metrics"]
    except (OSError, ValueError, KeyError, FederatedError) as exc:
        raise _fail(f"--model: {exc}") from None
    p = platform()
    try:
        fallback_artifact = (
            bundled.load() if fallback == "bundled" else load_artifact(p.uow("cli"), fallback)
        )
        metadata["fallback"] = fallback
        summary = register_model(
            p.uow("cli"),
            FederatedArtifact(live, fallback_artifact, metadata),
            name=name,
            created_by="cli",
        )
    except (ValidationError, ValueError) as exc:
        raise _fail(exc) from None
    finally:
        p.close()
    Console().print(
        f"registered {summary.name} v{summary.version} ({summary.id}), kind federated, "
        f"as a candidate; promote with `puhui models promote {summary.id}`"
    )


def demo(
    data: Annotated[
        str, typer.Option(help="default_credit, give_credit, breast or sme (synthetic).")
    ] = "default_credit",
    protocol: ProtocolOption = "secureboost",
    trees: Annotated[int, typer.Option(help="SecureBoost trees.")] = 5,
    epochs: Annotated[int, typer.Option(help="Vertical LR epochs.")] = 3,
    directory: Annotated[
        Path | None, typer.Option("--dir", help="Work directory (default: a new temporary one).")
    ] = None,
) -> None:
    """Both parties on this machine as two processes over mutual TLS: CA, certificates,
    alignment, training, evaluation; prints each step's cost and the held-out AUCs."""
    from puhui.federated.demo import run_demo

    console = Console()
    try:
        reports = run_demo(
            data,
            protocol,
            trees=trees,
            epochs=epochs,
            directory=directory,
            echo=lambda line: console.print(line, markup=False, highlight=False),
        )
    except FederatedError as exc:
        raise _fail(exc) from None
    _print_demo_summary(console, reports["guest"], reports["host"])


def _print_demo_summary(
    console: Console, guest: dict[str, object], host: dict[str, object]
) -> None:
    table = Table(title=f"Demo summary: {guest['protocol']}")
    for column in ("step", "guest s", "host s", "MB guest→host", "MB host→guest"):
        table.add_column(column, justify="left" if column == "step" else "right")
    host_steps = {s["name"]: s for s in host["steps"]}  # type: ignore[attr-defined]
    for step in guest["steps"]:  # type: ignore[attr-defined]
        other = host_steps.get(step["name"])
        table.add_row(
            escape(step["name"]),
            f"{step['seconds']:.1f}",
            f"{other['seconds']:.1f}" if other else "-",
            f"{step['bytes_sent'] / 1e6:.2f}",
            f"{step['bytes_received'] / 1e6:.2f}",
        )
    console.print(table)
    metrics = guest["metrics"]
    assert isinstance(metrics, dict)
    console.print(
        f"guest rows {guest['rows']}, host rows {host['rows']}, shared {guest['aligned']} "
        f"(trained on {guest['train_rows']}, held out {guest['test_rows']})"
    )
    console.print(
        f"held-out AUC: guest only {metrics['guest_only_auc']:.4f} → federated "
        f"{metrics['federated_auc']:.4f}; KS {metrics['guest_only_ks']:.4f} → "
        f"{metrics['federated_ks']:.4f}"
    )
    timings = guest.get("tree_timings") or []
    if timings:
        assert isinstance(timings, list)
        per_tree = sum(t.get("total", 0.0) for t in timings) / len(timings)
        console.print(f"SecureBoost: {per_tree:.2f} s per tree on average ({len(timings)} trees)")
