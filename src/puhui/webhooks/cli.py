"""``puhui webhooks …``: run the dispatcher and read the delivery log from the command line.

The dispatcher is a separate process from the API workers so that slow partner endpoints
never hold an HTTP worker; start as many as throughput needs — they share work safely through
the database (see ``dispatcher``).
"""

from __future__ import annotations

import signal
import threading
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from puhui.bootstrap import platform
from puhui.domain.errors import ValidationError
from puhui.store.unit_of_work import UnitOfWork
from puhui.webhooks.dispatcher import DispatchSummary, dispatch_once, run
from puhui.webhooks.endpoints import DeliveryInfo, delivery_log, operator_delivery_log

webhooks_app = typer.Typer(
    help="Webhooks to partner institutions: the dispatcher and the delivery log.",
    no_args_is_help=True,
)


def _console() -> Console:
    return Console()  # per command: picks up the terminal (or COLUMNS) it runs in


def _describe(s: DispatchSummary) -> str:
    return (
        f"published {s.events_published} events, created {s.deliveries_created} deliveries; "
        f"attempted {s.attempted}: delivered {s.delivered}, retrying {s.retrying}, "
        f"failed {s.failed}, cancelled {s.cancelled}"
    )


@webhooks_app.command()
def dispatch(
    once: Annotated[bool, typer.Option("--once", help="One round, then exit")] = False,
    interval: Annotated[float, typer.Option(min=0.05, help="Seconds to wait when idle")] = 1.0,
    limit: Annotated[
        int, typer.Option(min=1, max=10_000, help="Events and deliveries per round")
    ] = 100,
) -> None:
    """Deliver outbox events to partners' endpoints, until Ctrl-C or SIGTERM (or --once)."""
    console = _console()
    p = platform()
    try:
        if once:
            console.print(_describe(dispatch_once(p, limit=limit)))
            return
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        console.print(f"dispatching webhooks (idle poll every {interval:g} s); Ctrl-C stops")
        try:
            run(p, stop, interval, limit=limit, on_batch=lambda s: console.print(_describe(s)))
        except KeyboardInterrupt:
            stop.set()
    finally:
        p.close()


def _when(d: DeliveryInfo) -> str:
    return d.created_at.strftime("%Y-%m-%d %H:%M:%S")


@webhooks_app.command("log")
def log_(
    institution: Annotated[
        str | None, typer.Option(help="Institution code; default: every institution")
    ] = None,
    endpoint: Annotated[str | None, typer.Option(help="Only this endpoint id")] = None,
    status: Annotated[
        str | None, typer.Option(help="pending, delivered, failed or cancelled")
    ] = None,
    limit: Annotated[int, typer.Option(help="Newest N deliveries")] = 50,
) -> None:
    """The delivery log, newest first: event, endpoint, attempts, outcome."""
    console = _console()
    p = platform()
    try:
        if institution is None:
            if endpoint is not None:
                raise ValidationError.single(
                    "endpoint", "webhook.endpoint_needs_institution", "give --institution too"
                )
            rows = operator_delivery_log(p.uow("operator"), status=status, limit=limit)
        else:
            with UnitOfWork(p.sessions) as uow:
                found = uow.institutions.by_code(institution.strip().upper())
                institution_id = None if found is None else found.id
            if institution_id is None:
                raise ValidationError.single(
                    "institution", "institution.unknown", f"no institution {institution}"
                )
            rows = delivery_log(
                p.uow("operator"),
                institution_id=institution_id,
                endpoint_id=endpoint,
                status=status,
                limit=limit,
            )
    except ValidationError as exc:
        for e in exc.errors:
            console.print(f"[red]error:[/red] {escape(str(e))}", soft_wrap=True)
        raise typer.Exit(1) from None
    finally:
        p.close()
    table = Table("id", "created (UTC)", "event", "type", "endpoint", "status", "tries", "last")
    for d in rows:
        last = d.last_error or (str(d.last_status_code) if d.last_status_code else "")
        table.add_row(
            str(d.id),
            _when(d),
            d.event_id,
            d.event_type or "?",
            escape(d.endpoint_url),
            d.status,
            str(d.attempts),
            escape(last),
        )
    console.print(table)
    console.print(f"{len(rows)} deliveries")
