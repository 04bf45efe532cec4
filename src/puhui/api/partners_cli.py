"""``puhui partners``: create, rotate, revoke and list partner API clients.

Added to the main CLI with ``app.add_typer(partners_app, name="partners")``. A secret is
printed once, when created or rotated, and never again: the platform keeps it only sealed.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from puhui.api.partners import create_partner, list_partners, revoke, rotate_secret
from puhui.bootstrap import platform
from puhui.cli_errors import fail as _fail
from puhui.domain.errors import ValidationError

partners_app = typer.Typer(help="Partner institutions' API clients.", no_args_is_help=True)
console = Console()

_STORE_IT = (
    "[bold yellow]Store the client secret now, somewhere safe: it is shown only this once "
    "and cannot be retrieved later.[/bold yellow] (Lost it? `puhui partners rotate`.)"
)


@partners_app.command("create")
def create(
    name: Annotated[str, typer.Argument(help="The partner institution's full name")],
    code: Annotated[
        str | None, typer.Option(help="Institution code, e.g. HZRCB (default: generated)")
    ] = None,
    institution_type: Annotated[str, typer.Option("--type", help="Licence class")] = "bank",
    rate_limit: Annotated[int, typer.Option(help="Requests per minute")] = 600,
) -> None:
    """Register a partner institution and create its API client; prints the secret once."""
    p = platform()
    try:
        creds = create_partner(
            p.uow("cli"),
            p.vault,
            name=name,
            code=code,
            institution_type=institution_type,
            rate_limit_per_minute=rate_limit,
        )
    except ValidationError as exc:
        raise _fail(exc) from exc
    finally:
        p.close()
    console.print(f"institution   {creds.institution_code}")
    console.print(f"client_id     {creds.client_id}")
    console.print(f"client_secret {creds.client_secret}", soft_wrap=True, highlight=False)
    console.print(_STORE_IT, soft_wrap=True)


@partners_app.command("rotate")
def rotate(
    client_id: Annotated[str, typer.Argument(help="The client id (pk_…)")],
    overlap_hours: Annotated[
        float, typer.Option(min=0, help="Hours the current secret keeps working")
    ] = 24.0,
) -> None:
    """Issue a new secret; the current one keeps working for the overlap, then stops."""
    p = platform()
    overlap = timedelta(hours=overlap_hours)
    now = datetime.now(UTC)
    try:
        secret = rotate_secret(p.uow("cli"), p.vault, client_id=client_id, overlap=overlap, now=now)
    except ValidationError as exc:
        raise _fail(exc) from exc
    finally:
        p.close()
    console.print(f"client_id     {client_id}")
    console.print(f"client_secret {secret}", soft_wrap=True, highlight=False)
    console.print(
        f"the previous secret stops working at {(now + overlap).isoformat(timespec='seconds')}"
    )
    console.print(_STORE_IT, soft_wrap=True)


@partners_app.command("revoke")
def revoke_client(
    client_id: Annotated[str, typer.Argument(help="The client id (pk_…)")],
) -> None:
    """Revoke a client at once: its tokens and signatures stop working."""
    p = platform()
    try:
        revoke(p.uow("cli"), client_id=client_id)
    except ValidationError as exc:
        raise _fail(exc) from exc
    finally:
        p.close()
    console.print(f"revoked {client_id}")


@partners_app.command("list")
def list_clients() -> None:
    """List API clients (never their secrets)."""
    p = platform()
    try:
        rows = list_partners(p.uow("cli"))
    finally:
        p.close()
    table = Table("institution", "name", "limit/min", "secrets", "created", "status")
    table.add_column("client id", no_wrap=True, min_width=35)  # operators copy it whole
    for r in rows:
        table.add_row(
            r.institution_code,
            r.name,
            str(r.rate_limit_per_minute),
            str(r.valid_secrets),
            r.created_at.isoformat(timespec="seconds"),
            "revoked" if r.revoked_at else "active",
            r.client_id,
        )
    console.print(table)
