"""The ``puhui`` command line: one entry point for operators and analysts.

Each command is a thin adapter: parse options, build the platform from settings, call a use
case or library function, render the result with Rich. Later issues add their own groups
(partners, simulate, train, fraud, federated) to this app.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from puhui.api.partners_cli import partners_app
from puhui.bootstrap import Platform, platform
from puhui.cli_errors import fail as _fail
from puhui.federated_cli import federated_app
from puhui.fraud_cli import fraud_app
from puhui.model_cli import models_app, train
from puhui.webhooks.cli import webhooks_app

app = typer.Typer(
    help="Puhui (普惠): digital lending for small and micro enterprises.", no_args_is_help=True
)
keys_app = typer.Typer(help="Master and blind-index keys.", no_args_is_help=True)
audit_app = typer.Typer(help="The hash-chained audit log.", no_args_is_help=True)
institutions_app = typer.Typer(help="Lending institutions (tenants).", no_args_is_help=True)
subjects_app = typer.Typer(help="Data-subject requests (PIPL Art. 44-47).", no_args_is_help=True)
synthetic_app = typer.Typer(help="Seeded synthetic small businesses.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
app.add_typer(audit_app, name="audit")
app.add_typer(institutions_app, name="institutions")
app.add_typer(subjects_app, name="subjects")
app.add_typer(synthetic_app, name="synthetic")
app.add_typer(partners_app, name="partners")
app.add_typer(webhooks_app, name="webhooks")
app.add_typer(models_app, name="models")
app.add_typer(fraud_app, name="fraud")
app.add_typer(federated_app, name="federated")
app.command()(train)

console = Console()


def progress_bar() -> Progress:
    """The progress bar every long job shows."""
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
    )


@app.command()
def migrate(
    revision: Annotated[str, typer.Option(help="Target revision")] = "head",
) -> None:
    """Upgrade the database schema (SQLite under var/ by default, or PUHUI_DATABASE_URL)."""
    from puhui.store import migrate as migrations

    p = platform()
    migrations.upgrade(p.settings.resolved_database_url, revision)
    keyring = p.keyring  # first run: create the local key files beside the database
    console.print(
        f"database at revision [bold]{migrations.current_revision(p.engine)}[/bold]; "
        f"keys in {keyring.key_dir} (active master {keyring.active_master_id})"
    )
    p.close()


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Bind address")] = None,
    port: Annotated[int | None, typer.Option(help="Port")] = None,
    workers: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="API processes (default PUHUI_WORKERS or 1). The API keeps no state in the "
            "process, so several share one PostgreSQL; on SQLite one process is best.",
        ),
    ] = None,
) -> None:
    """Serve the HTTP API (default 127.0.0.1:8000)."""
    import uvicorn
    from sqlalchemy.engine import make_url

    from puhui.api.app import create_app
    from puhui.privacy.masking import install_log_masking

    p = platform()
    logging.basicConfig(level=p.settings.log_level)
    install_log_masking()
    console.print(f"keys in {p.keyring.key_dir} (active master {p.keyring.active_master_id})")
    n = workers or p.settings.workers
    stop = threading.Event()
    sealer = None
    # On PostgreSQL requests leave their audit records to one sealer, in this process; SQLite
    # serialises writers anyway, and there a sealer's batch only lengthens the write lock
    # (BENCHMARKS.md, issue 3, session 7).
    on_sqlite = make_url(p.settings.resolved_database_url).get_backend_name() == "sqlite"
    defer = p.settings.audit_sealing == "deferred" or (p.settings.audit_sealer and not on_sqlite)
    # What this process decided, for the app it builds and for the workers, which read their
    # settings from the environment: how many they are (api.rebalance) and how they seal.
    decided: dict[str, Any] = {"workers": n}
    if defer:
        decided["audit_sealing"] = "deferred"
    os.environ.update({f"PUHUI_{key.upper()}": str(value) for key, value in decided.items()})
    p = Platform(p.settings.model_copy(update=decided))
    if defer and p.settings.audit_sealer:
        from puhui.privacy.audit_sealer import run as run_sealer

        sealer = threading.Thread(
            target=run_sealer,
            args=(p.sessions, stop),
            kwargs={"interval": p.settings.audit_seal_interval_seconds},
            daemon=True,
            name="audit-sealer",
        )
        sealer.start()
    dispatcher = None
    if p.settings.webhook_dispatcher:  # one dispatcher, in this process, whatever the workers
        from puhui.webhooks.dispatcher import run as run_dispatcher

        dispatcher = threading.Thread(
            target=run_dispatcher, args=(p, stop), daemon=True, name="webhook-dispatcher"
        )
        dispatcher.start()
    options: dict[str, Any] = {
        "host": host or p.settings.host,
        "port": port or p.settings.port,
        "log_level": p.settings.log_level.lower(),
    }
    try:
        if n == 1:
            uvicorn.run(create_app(p), **options)
        else:  # each worker process builds its own app from the same PUHUI_* settings
            uvicorn.run("puhui.api.app:app_from_settings", factory=True, workers=n, **options)
    finally:
        stop.set()
        if dispatcher is not None:
            dispatcher.join(timeout=10)
        if sealer is not None:
            sealer.join(timeout=30)


@app.command("refresh-delinquency")
def refresh_delinquency_command(
    as_of: Annotated[
        str | None, typer.Option(help="Business date YYYY-MM-DD; default today")
    ] = None,
    batch_size: Annotated[int, typer.Option(min=1)] = 500,
) -> None:
    """Accrue default interest and move loans between active and overdue as of a business date."""
    from datetime import date

    from puhui.domain.clock import business_date, now_utc
    from puhui.servicing.batch import refresh_delinquency

    day = date.fromisoformat(as_of) if as_of else business_date(now_utc())
    p = platform()
    with progress_bar() as bar:
        task = bar.add_task(f"delinquency as of {day}", total=None)
        summary = refresh_delinquency(
            p.sessions,
            as_of=day,
            batch_size=batch_size,
            on_progress=lambda running: bar.update(task, completed=running.loans),
        )
    console.print(
        f"{summary.loans} loans: {summary.became_overdue} became overdue, {summary.cured} cured, "
        f"default interest accrued {summary.penalty_accrued}; buckets {summary.by_bucket}"
    )


@app.command()
def simulate(
    applications: Annotated[int, typer.Option("--applications", "-n", min=1)] = 200,
    seed: Annotated[int, typer.Option()] = 42,
    fraud_rate: Annotated[float, typer.Option(min=0.0, max=0.5)] = 0.05,
    months: Annotated[int, typer.Option(min=1, max=60, help="Business months to play")] = 12,
    workdir: Annotated[Path, typer.Option(help="Fresh database and keys for the run")] = Path(
        "var/simulation"
    ),
    database_url: Annotated[
        str | None, typer.Option(help="Use this (empty) database instead")
    ] = None,
) -> None:
    """Drive N synthetic applicants from several partners through the real HTTP API.

    Starts the platform on a loopback port with a simulated business clock, signs requests
    like a partner, accepts offers, disburses, and plays repayments and defaults forward.
    """
    import shutil

    from puhui.settings import Settings
    from puhui.simulation.driver import simulate as run_simulation
    from puhui.store import migrate as migrations

    if database_url is None and workdir.exists():
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    settings = Settings(
        var_dir=workdir,
        database_url=database_url or "",
        simulation=True,
        webhook_dispatcher=False,
        log_level="WARNING",
    )
    migrations.upgrade(settings.resolved_database_url)
    p = Platform(settings)
    with progress_bar() as bar:
        tasks: dict[str, TaskID] = {}

        def advance(phase: str, done: int, total: int) -> None:
            if phase not in tasks:
                tasks[phase] = bar.add_task(phase, total=total)
            bar.update(tasks[phase], completed=done, total=total)

        summary = run_simulation(
            p, n=applications, seed=seed, fraud_rate=fraud_rate, months=months, on_progress=advance
        )
    p.close()
    _print_simulation(summary)


def _print_simulation(s: Any) -> None:
    table = Table(title=f"{s.applications} applications, played to {s.horizon}")
    table.add_column("decision")
    table.add_column("count", justify="right")
    table.add_column("share", justify="right")
    for state, count in s.decisions.most_common():
        table.add_row(state, str(count), f"{count / s.applications:.1%}")
    console.print(table)
    if s.fraud_total:
        console.print(
            f"fraud caught: {s.fraud_stopped}/{s.fraud_total} fraudulent applications "
            f"declined or referred ({s.fraud_stopped / s.fraud_total:.0%}); honest "
            f"applicants stopped: {s.honest_stopped / max(s.honest_total, 1):.0%}"
        )
    grades = Table(title="loans and defaults (over 60 days past due at the horizon) by grade")
    for col in ("grade", "loans", "defaults", "default rate"):
        grades.add_column(col, justify="right")
    for grade, rate in s.default_rate_by_grade.items():
        grades.add_row(
            grade,
            str(s.loans_by_grade[grade]),
            str(s.defaults_by_grade.get(grade, 0)),
            f"{rate:.1%}",
        )
    console.print(grades)
    lat = s.latency_ms
    console.print(
        f"submit-to-decision latency over HTTP: p50 {lat['p50']:.1f} ms, p95 "
        f"{lat['p95']:.1f} ms, p99 {lat['p99']:.1f} ms; {s.loans} loans, "
        f"{s.repayments} repayments, {s.wall_seconds:.1f} s wall"
    )
    if s.errors:
        console.print(f"[red]errors[/red]: {dict(s.errors)}")


# --- keys -----------------------------------------------------------------------------------


@keys_app.command("status")
def keys_status() -> None:
    """Show master keys and how many data keys each still wraps."""
    p = platform()
    with p.uow() as uow:
        counts = uow.data_keys.count_by_master()
    table = Table("master key", "status", "created (UTC)", "data keys wrapped")
    for info in p.keyring.master_keys:
        table.add_row(
            info.id,
            info.status,
            info.created_at.isoformat(timespec="seconds"),
            str(counts.get(info.id, 0)),
        )
    console.print(table)
    console.print(f"blind-index key {p.keyring.blind_index_key_id}")


@keys_app.command("rotate")
def keys_rotate(
    batch_size: Annotated[
        int, typer.Option(min=1, help="Data keys re-wrapped per transaction")
    ] = 500,
) -> None:
    """Make a new master key active and re-wrap every data key under it, without downtime.

    Running servers keep decrypting throughout: the retired master key stays in the key file
    until ``puhui keys drop`` removes it. Data is never re-encrypted — only data keys are.
    """
    from puhui.privacy.rotation import rewrap_all

    p = platform()
    new_id = p.keyring.rotate_master()
    console.print(f"new active master key [bold]{new_id}[/bold]")
    with progress_bar() as bar:
        task = bar.add_task("re-wrapping data keys", total=None)
        result = rewrap_all(
            p.sessions,
            p.vault,
            batch_size=batch_size,
            on_progress=lambda done, total: bar.update(task, completed=done, total=total),
        )
    console.print(
        f"re-wrapped {result.rewrapped} data keys; run `puhui keys drop` for the "
        "retired key once every server has reloaded (after the grace period)"
    )


@keys_app.command("drop")
def keys_drop(
    key_id: Annotated[str, typer.Argument(help="Retired master key id (see `keys status`)")],
) -> None:
    """Delete a retired master key for good, once no data key is wrapped by it."""
    from puhui.domain.errors import DomainError
    from puhui.privacy.rotation import rewrap_all

    p = platform()
    rewrap_all(p.sessions, p.vault)  # catch keys wrapped by servers that had not yet reloaded
    with p.uow() as uow:
        remaining = uow.data_keys.count_by_master().get(key_id, 0)
    try:
        p.keyring.drop_master(key_id, remaining_wrapped=remaining)
    except DomainError as exc:
        raise _fail(exc) from exc
    console.print(f"dropped master key {key_id}")


# --- audit ----------------------------------------------------------------------------------


@audit_app.command("verify")
def audit_verify() -> None:
    """Walk the hash chain; report any edited, deleted or reordered record (exit 1)."""
    from puhui.privacy import audit

    p = platform()
    with p.sessions() as session, progress_bar() as bar:
        task = bar.add_task("verifying audit chain", total=None)
        report = audit.verify(
            session, on_progress=lambda done, total: bar.update(task, completed=done, total=total)
        )
    if report.waiting:
        console.print(
            f"{report.waiting} records wait to be sealed (oldest from "
            f"{report.oldest_waiting:%Y-%m-%d %H:%M:%S} UTC); not yet covered by the chain"
        )
    if report.ok:
        console.print(
            f"[green]audit chain intact[/green]: {report.checked} records; "
            f"head {report.head_seq} {report.head_hash}"
        )
        return
    for problem in report.problems[:50]:
        console.print(f"[red]✗[/red] {problem}")
    if len(report.problems) > 50:
        console.print(f"… and {len(report.problems) - 50} more")
    raise _fail(f"audit chain broken: {len(report.problems)} problem(s)")


@audit_app.command("seal")
def audit_seal(
    follow: Annotated[
        bool, typer.Option("--follow", help="Keep sealing until interrupted (a sealer process)")
    ] = False,
) -> None:
    """Chain the audit records that deferred-sealing transactions left waiting."""
    from puhui.privacy import audit_sealer

    p = platform()
    if not follow:
        console.print(f"sealed {audit_sealer.seal_all(p.sessions)} waiting audit records")
        return
    stop = threading.Event()
    sealed = 0

    def count(n: int) -> None:
        nonlocal sealed
        sealed += n

    console.print("sealing audit records as they arrive; Ctrl-C to stop")
    try:
        audit_sealer.run(p.sessions, stop, on_round=count)
    except KeyboardInterrupt:
        stop.set()
        sealed += audit_sealer.seal_all(p.sessions)
    console.print(f"sealed {sealed} audit records")


# --- institutions ---------------------------------------------------------------------------


@institutions_app.command("create")
def institutions_create(
    code: Annotated[str, typer.Argument(help="Short code, e.g. HZRCB")],
    name: Annotated[str, typer.Option(help="Full name")],
    institution_type: Annotated[str, typer.Option("--type", help="Licence class")] = "bank",
) -> None:
    """Register a lending institution."""
    from puhui.domain.errors import ValidationError
    from puhui.origination.institutions import register_institution

    p = platform()
    try:
        inst = register_institution(
            p.uow("cli"), code=code, name=name, institution_type=institution_type
        )
    except ValidationError as exc:
        raise _fail(exc) from exc
    console.print(f"institution {inst.code} ({inst.id})")


@institutions_app.command("list")
def institutions_list() -> None:
    """List institutions."""
    p = platform()
    with p.uow() as uow:
        rows = uow.institutions.all()
        table = Table("code", "name", "type", "id")
        for r in rows:
            table.add_row(r.code, r.name, r.institution_type, r.id)
    console.print(table)


# --- data-subject requests ------------------------------------------------------------------


@subjects_app.command("export")
def subjects_export(
    institution: Annotated[str, typer.Option(help="Institution code")],
    id_number: Annotated[str, typer.Option(help="The person's resident ID number")],
    out: Annotated[Path, typer.Option(help="Write the export (JSON) here, for the person only")],
    actor: Annotated[str, typer.Option(help="Who handles the request (audited)")] = "dpo",
) -> None:
    """Export everything held about one person, decrypted, to a file for them (audited)."""
    from puhui.domain.errors import DomainError
    from puhui.privacy.subject_requests import export_subject

    p = platform()
    try:
        data = export_subject(
            p.uow(actor), p.vault, p.indexer, institution_code=institution, id_number=id_number
        )
    except DomainError as exc:
        raise _fail(exc) from exc
    _write_private(out, json.dumps(data, ensure_ascii=False, indent=2, default=str))
    console.print(f"exported {len(data['applications'])} application(s) to {out} (mode 0600)")


def _write_private(path: Path, content: str) -> None:
    """Write a file only its owner can read — from its first byte, whatever the umask."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)  # an existing file keeps its old mode through O_CREAT
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(content)


@subjects_app.command("erase")
def subjects_erase(
    institution: Annotated[str, typer.Option(help="Institution code")],
    id_number: Annotated[str, typer.Option(help="The person's resident ID number")],
    actor: Annotated[str, typer.Option(help="Who handles the request (audited)")] = "dpo",
) -> None:
    """Erase a person's personal data by shredding their data key (audited)."""
    from puhui.domain.errors import DomainError
    from puhui.privacy.subject_requests import erase_subject

    p = platform()
    try:
        result = erase_subject(
            p.uow(actor), p.vault, p.indexer, institution_code=institution, id_number=id_number
        )
    except DomainError as exc:
        raise _fail(exc) from exc
    console.print(f"erased applicant {result.applicant_id}; data key {result.data_key_id} shredded")


# --- synthetic data -------------------------------------------------------------------------


@synthetic_app.command("generate")
def synthetic_generate(
    n: Annotated[int, typer.Option("--applications", "-n", min=1)] = 1000,
    seed: Annotated[int, typer.Option()] = 42,
    fraud_rate: Annotated[float, typer.Option(min=0.0, max=0.5)] = 0.02,
    out: Annotated[Path, typer.Option(help="CSV file to write")] = Path("var/synthetic.csv"),
) -> None:
    """Write N seeded synthetic applications to a CSV file."""
    from puhui.synthetic import generate, write_csv

    population = generate(n, seed=seed, fraud_rate=fraud_rate)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_csv(population, out)
    console.print(f"wrote {n} applications to {out} (seed {seed})")


@synthetic_app.command("load")
def synthetic_load(
    n: Annotated[int, typer.Option("--applications", "-n", min=1)] = 200,
    seed: Annotated[int, typer.Option()] = 42,
    fraud_rate: Annotated[float, typer.Option(min=0.0, max=0.5)] = 0.02,
) -> None:
    """Submit N seeded synthetic applications through the real submission use case."""
    from puhui.origination.seed import load_synthetic

    p = platform()
    with progress_bar() as bar:
        task = bar.add_task("submitting applications", total=n)
        summary = load_synthetic(
            p, n=n, seed=seed, fraud_rate=fraud_rate, on_progress=lambda: bar.advance(task)
        )
    console.print(
        f"submitted {summary.submitted}, repeats recognised {summary.replayed}, "
        f"rejected {summary.rejected} ({', '.join(summary.rejection_rules) or 'no rule failed'})"
    )


if __name__ == "__main__":
    app()
