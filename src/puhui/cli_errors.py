"""How every ``puhui`` command reports a refused request: one line per problem, a non-zero exit.

Shared by the command groups (``cli``, ``model_cli``, ``fraud_cli``, ``fraud_ops_cli``,
``api.partners_cli``) so an operator reads errors the same way whichever command failed.
"""

from __future__ import annotations

import typer
from rich.console import Console
from rich.markup import escape

from puhui.domain.errors import ValidationError


def fail(error: str | Exception, code: int = 1) -> typer.Exit:
    """Print an error (each field error of a ValidationError on its own line); the exit to raise."""
    console = Console()  # per call: picks up the terminal (or COLUMNS) it runs in
    if isinstance(error, ValidationError):
        for e in error.errors:
            console.print(f"[red]error:[/red] {escape(str(e))}", soft_wrap=True)
    else:
        console.print(f"[red]error:[/red] {escape(str(error))}", soft_wrap=True)
    return typer.Exit(code)
