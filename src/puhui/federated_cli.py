"""``puhui federated``: the operators' commands for a federated party.

Each party (the bank as guest, the data partner as host) runs these on its own machine with its
own ``party.toml``. The group holds the operators' CA (``ca init``, ``ca issue``), a commented
example configuration, and the party commands — today ``align``; ``train``, ``serve`` and
``demo`` follow the same shape:

    cfg = load_party(config, role)              # party.toml, checked against --role
    with party_channel(cfg, console) as channel:  # server up, peer reached, both authenticated
        ... run the protocol over `channel` ...

Every refusal goes through :func:`puhui.cli_errors.fail`, one line per problem, exit 1.
"""

from __future__ import annotations

import csv
import time
from collections.abc import Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from puhui.cli_errors import fail as _fail
from puhui.federated.channel import MessageLog
from puhui.federated.config import PartyConfig, config_example, load_config
from puhui.federated.errors import FederatedError
from puhui.federated.pki import DEFAULT_HOSTS, create_ca, issue_party_certificate
from puhui.federated.transport import HttpChannel, open_channel

__all__ = ["Role", "federated_app", "load_party", "party_channel"]

federated_app = typer.Typer(
    help="Joint modelling with a data partner (vertical federated learning).",
    no_args_is_help=True,
)
ca_app = typer.Typer(
    help="The operators' certificate authority (mutual TLS).", no_args_is_help=True
)
federated_app.add_typer(ca_app, name="ca")


class Role(StrEnum):
    """A party's role: the guest holds the labels, the host holds features."""

    guest = "guest"
    host = "host"


RoleOption = Annotated[Role, typer.Option("--role", help="This party's role.")]
ConfigOption = Annotated[
    Path, typer.Option("--config", help="This party's party.toml (see config-example).")
]


def _console() -> Console:
    return Console()


def load_party(config: Path, role: Role | str) -> PartyConfig:
    """Load ``party.toml`` and check it is for ``role``; any problem exits through ``fail``."""
    try:
        cfg = load_config(config)
    except FederatedError as exc:
        raise _fail(exc) from None
    if cfg.role != str(role):
        raise _fail(f"{config}: role: is {cfg.role!r}, but the command was given --role {role}")
    return cfg


@contextmanager
def party_channel(
    cfg: PartyConfig, console: Console, log: MessageLog | None = None
) -> Iterator[HttpChannel]:
    """This party's channel, started and connected to the peer, closed on the way out.

    Prints where the party listens and whom it waits for, since the other operator may not
    have started yet. Errors are the caller's (see :func:`_federated_errors`).
    """
    console.print(
        f"{cfg.role}: listening on {cfg.listen_host}:{cfg.listen_port}, "
        f"waiting for the {cfg.peer_role} at {cfg.peer_url} "
        f"(up to {cfg.network.startup_timeout:g} s) …"
    )
    with open_channel(cfg, log=log) as channel:
        console.print(f"{cfg.role}: connected to the {cfg.peer_role} (run {channel.run_id})")
        yield channel


@contextmanager
def _federated_errors() -> Iterator[None]:
    """Turn the runtime's errors into the CLI's one-line refusals."""
    try:
        yield
    except FederatedError as exc:
        raise _fail(exc) from None
    except OSError as exc:
        where = f"{exc.filename}: " if exc.filename else ""
        raise _fail(f"{where}{exc.strerror or exc}") from None


@ca_app.command("init")
def ca_init(
    directory: Annotated[Path, typer.Option("--dir", help="Directory for ca.crt and ca.key.")],
    name: Annotated[str, typer.Option(help="The CA's common name.")] = "Puhui federation CA",
    days: Annotated[int, typer.Option(help="Validity in days.")] = 3650,
    force: Annotated[bool, typer.Option(help="Replace an existing CA.")] = False,
) -> None:
    """Create the federation CA: both parties' certificates are issued from it."""
    with _federated_errors():
        files = create_ca(directory, name=name, valid_days=days, overwrite=force)
    console = _console()
    console.print(f"CA certificate: {files.cert}")
    console.print(f"CA key (0600, keep it offline): {files.key}")


@ca_app.command("issue")
def ca_issue(
    directory: Annotated[Path, typer.Option("--dir", help="The CA directory (from ca init).")],
    role: RoleOption,
    name: Annotated[str, typer.Option(help="The party's name, e.g. the institution.")],
    out: Annotated[Path, typer.Option(help="Directory for <role>.crt, <role>.key and ca.crt.")],
    host: Annotated[
        list[str] | None,
        typer.Option(help="DNS name or IP the peer uses to reach this party (repeatable)."),
    ] = None,
    days: Annotated[int, typer.Option(help="Validity in days.")] = 825,
    force: Annotated[bool, typer.Option(help="Replace existing files in --out.")] = False,
) -> None:
    """Issue a party certificate for ROLE, valid for the given host names."""
    hosts = host or list(DEFAULT_HOSTS)
    with _federated_errors():
        files = issue_party_certificate(
            directory, str(role), name, out, hosts=hosts, valid_days=days, overwrite=force
        )
    console = _console()
    console.print(f"{role} certificate for {escape(name)} ({', '.join(hosts)}): {files.cert}")
    console.print(f"key (0600): {files.key}")
    console.print(f"CA certificate: {files.ca_cert}")


@federated_app.command("config-example")
def config_example_command(role: RoleOption) -> None:
    """Print a commented party.toml for ROLE."""
    typer.echo(config_example(str(role)), nl=False)


@federated_app.command("align")
def align(
    role: RoleOption,
    config: ConfigOption,
    out: Annotated[
        Path | None,
        typer.Option(help="CSV of the aligned rows (default: <data file>.aligned.csv)."),
    ] = None,
) -> None:
    """Find the businesses both parties hold (private set intersection), in a common order.

    Writes `row,<id column>` for each shared business, in the order both parties agree on:
    line k of the guest's file and line k of the host's are the same business.
    """
    from puhui.federated.alignment import align_as_guest, align_as_host, read_ids

    console = _console()
    cfg = load_party(config, role)
    target = out or cfg.data.file.with_name(f"{cfg.data.file.stem}.aligned.csv")
    with _federated_errors():
        ids = read_ids(cfg.data.file, cfg.data.id_column)
        console.print(f"{cfg.role}: {len(ids)} ids from {cfg.data.file}")
        started = time.perf_counter()
        with party_channel(cfg, console) as channel:
            run = align_as_guest if cfg.role == "guest" else align_as_host
            rows = run(channel, ids)
            stats = channel.stats
            run_id = channel.run_id
        seconds = time.perf_counter() - started
        _write_aligned(target, cfg.data.id_column, ids, rows)
    table = Table(title=f"Sample alignment ({cfg.role})")
    table.add_column("")
    table.add_column("value", justify="right")
    table.add_row("run", escape(run_id or "-"))
    table.add_row("own rows", str(len(ids)))
    table.add_row("shared rows", str(len(rows)))
    table.add_row("seconds", f"{seconds:.2f}")
    table.add_row("bytes sent", f"{stats.bytes_sent:,}")
    table.add_row("bytes received", f"{stats.bytes_received:,}")
    console.print(table)
    if not rows:
        console.print("[yellow]warning:[/yellow] the parties share no business")
    console.print(f"wrote {target}")


def _write_aligned(path: Path, column: str, ids: list[str], rows: list[int]) -> None:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["row", column])
        for row in rows:
            writer.writerow([row, ids[row]])


def _add_run_commands() -> None:
    """train, serve, sample-data, register and demo live in their own module (read it)."""
    from puhui.federated_run_cli import register_commands

    register_commands(federated_app)


_add_run_commands()
