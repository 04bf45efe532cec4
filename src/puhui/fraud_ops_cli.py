"""``puhui fraud rules …``, ``puhui fraud list …`` and ``puhui fraud review …``: the fraud
team's day-to-day commands (adapters over ``puhui.fraud``)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from puhui.cli_errors import fail as _fail
from puhui.domain.errors import ValidationError

rules_app = typer.Typer(help="Fraud rules as data: show, dry-run, load.", no_args_is_help=True)
list_app = typer.Typer(help="Blacklist and confirmed-fraud list.", no_args_is_help=True)


def _read_rules(path: Path) -> dict[str, object]:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _fail(f"{path}: not a readable JSON rule set ({exc})") from exc
    if not isinstance(doc, dict):
        raise _fail(f"{path}: a rule set is a JSON object")
    return doc


@rules_app.command("show")
def rules_show(
    as_json: Annotated[bool, typer.Option("--json", help="Print the rule set as JSON.")] = False,
) -> None:
    """The active rule set (the shipped default until one is loaded)."""
    from puhui.bootstrap import platform
    from puhui.fraud.rule_store import active_rule_set

    p = platform()
    try:
        with p.sessions() as s:
            rules = active_rule_set(s)
    finally:
        p.close()
    console = Console()
    if as_json:
        console.print_json(json.dumps(rules.to_dict(), ensure_ascii=False))
        return
    t = Table("id", "when", "outcome", "reason (zh / en)", title=f"active: {rules.version}")
    for r in rules.rules:
        when = " and ".join(f"{c.feature} {c.op} {c.value:g}" for c in r.when)
        t.add_row(r.id, when, r.outcome.value, f"{r.text_zh} / {r.text_en}")
    console.print(t)


@rules_app.command("dry-run")
def rules_dry_run(
    file: Annotated[Path, typer.Argument(help="Candidate rule set (JSON).")],
    days: Annotated[int, typer.Option(help="Replay decisions of the last N days.")] = 90,
) -> None:
    """Replay a candidate rule set over the features recorded with past decisions."""
    from puhui.bootstrap import platform
    from puhui.fraud.dry_run import dry_run
    from puhui.fraud.rules import parse_rule_set

    try:
        candidate = parse_rule_set(_read_rules(file))
    except ValidationError as exc:
        raise _fail(exc) from exc
    now = datetime.now(UTC)
    p = platform()
    try:
        result = dry_run(
            p.uow("cli"),
            candidate,
            since=now - timedelta(days=days),
            until=now + timedelta(seconds=1),
        )
    finally:
        p.close()
    console = Console()
    console.print(
        f"{candidate.version}: {result.applications:,} decisions replayed, "
        f"{result.changed:,} would change outcome"
    )
    t = Table("rule", "would fire")
    for r in candidate.rules:
        t.add_row(r.id, f"{result.rule_hits[r.id]:,}")
    console.print(t)
    moves = Table("recorded", "under candidate", "applications")
    for (was, now_), n in sorted(result.transitions.items()):
        moves.add_row(was, now_, f"{n:,}")
    console.print(moves)


@rules_app.command("load")
def rules_load(
    file: Annotated[Path, typer.Argument(help="Rule set to activate (JSON).")],
    by: Annotated[str, typer.Option(help="Who loads it (recorded).")] = "",
) -> None:
    """Check a rule set whole and make it the active one (recorded in the audit log)."""
    from puhui.bootstrap import platform
    from puhui.fraud.rule_store import load_rule_set

    doc = _read_rules(file)
    p = platform()
    try:
        rules = load_rule_set(p.uow(by or "cli"), doc, by=by)
    except ValidationError as exc:
        raise _fail(exc) from exc
    finally:
        p.close()
    Console().print(f"active fraud rules: {rules.version} ({len(rules.rules)} rules)")


@list_app.command("add")
def list_add(
    kind: Annotated[
        str, typer.Option(help="device, ip, mobile, bank_account, id_number, uscc, address")
    ],
    value: Annotated[str, typer.Option(help="The identifier; only its blind index is stored.")],
    reason: Annotated[str, typer.Option(help="Why (recorded).")],
    by: Annotated[str, typer.Option(help="Who (recorded).")],
    list_name: Annotated[
        str, typer.Option("--list", help="blacklist or confirmed_fraud")
    ] = "blacklist",
) -> None:
    """Put an identifier on a list, as a blind index (the value itself is never stored)."""
    from puhui.bootstrap import platform
    from puhui.fraud.lists import add_to_list

    p = platform()
    try:
        added = add_to_list(
            p.uow(by or "cli"),
            p.indexer,
            list_name=list_name,
            kind=kind,
            value=value,
            reason=reason,
            added_by=by,
        )
    except ValidationError as exc:
        raise _fail(exc) from exc
    finally:
        p.close()
    Console().print(f"{kind} {'listed' if added else 'was already listed'} on {list_name}")


def review(
    application_id: Annotated[str, typer.Argument(help="Application id (app_…).")],
    verdict: Annotated[str, typer.Option(help="confirmed or cleared")],
    reason: Annotated[str, typer.Option(help="Why (recorded).")],
    by: Annotated[str, typer.Option(help="Who (recorded).")],
) -> None:
    """Record a fraud verdict; a confirmed case lists the application's identifiers."""
    from puhui.bootstrap import platform
    from puhui.fraud.lists import record_fraud_review

    p = platform()
    try:
        listed = record_fraud_review(
            p.uow(by or "cli"),
            application_id=application_id,
            verdict=verdict,
            reviewed_by=by,
            reason=reason,
            at=datetime.now(UTC),
        )
    except ValidationError as exc:
        raise _fail(exc) from exc
    finally:
        p.close()
    Console().print(
        f"{application_id}: {verdict}; {listed} identifiers newly on the confirmed-fraud list"
    )
