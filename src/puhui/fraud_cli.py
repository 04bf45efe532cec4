"""``puhui fraud rings``: find and score fraud rings in an external file or the platform's
history, list them for review, write each record's group and score, draw the top groups.

A thin adapter over :mod:`puhui.fraud`: parse options, read, call the ring finder, render
with Rich. The group table shows kinds and key numbers only — never identifier text.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from puhui.cli_errors import fail as _fail
from puhui.fraud.links import LinkTable, RecordMeta
from puhui.fraud.rings import Ring, RingResult, find_rings
from puhui.fraud_ops_cli import list_app, review, rules_app

fraud_app = typer.Typer(
    help="Anti-fraud: rules, lists, reviews and fraud rings.", no_args_is_help=True
)
fraud_app.add_typer(rules_app, name="rules")
fraud_app.add_typer(list_app, name="list")
fraud_app.command("review")(review)


def _console() -> Console:
    return Console()


def _platform_links() -> tuple[LinkTable, RecordMeta]:
    """The platform's own history: every application's blind-index links and labels."""
    from puhui.bootstrap import platform
    from puhui.fraud.history import platform_links

    p = platform()
    try:
        return platform_links(p)
    finally:
        p.close()


@fraud_app.command("rings")
def rings(
    from_file: Annotated[
        Path | None, typer.Option("--from", help="A CSV file with a header row.")
    ] = None,
    id_column: Annotated[str | None, typer.Option("--id", help="The record id column.")] = None,
    link: Annotated[
        list[str] | None,
        typer.Option(
            help="COLUMN:KIND, repeatable (kinds: device, mobile, contact_mobile, "
            "email, id_number, uscc, legal_rep, bank_account, ip, address)."
        ),
    ] = None,
    time: Annotated[str | None, typer.Option(help="Column of submission times.")] = None,
    label: Annotated[
        str | None, typer.Option(help="Column of known fraud (1) / cleared (0).")
    ] = None,
    institution: Annotated[str | None, typer.Option(help="Column of lender codes.")] = None,
    hub_cap: Annotated[int, typer.Option(help="Keys shared by more records do not link.")] = 20,
    use_weak: Annotated[
        bool,
        typer.Option(
            "--use-weak/--strong-only",
            help="Let weak links (ip, address, contact_mobile) join groups, under the hub cap "
            "(default: on — rings that share only contacts or addresses are otherwise missed).",
        ),
    ] = True,
    out: Annotated[Path | None, typer.Option(help="CSV: id, group, group_size, score.")] = None,
    pictures: Annotated[
        Path | None, typer.Option(help="Directory for PNG + HTML of the top groups.")
    ] = None,
    top: Annotated[int, typer.Option(help="Groups to print and draw.")] = 20,
    seed: Annotated[int, typer.Option(help="Seed of the refinement and the layout.")] = 0,
) -> None:
    """Find groups of applications linked by shared identifiers; list them, highest score
    first, with members and shared identifiers."""
    from puhui.fraud.external import HeaderError, parse_link_spec, read_external

    console = _console()
    if from_file is None:
        table, meta = _platform_links()
    else:
        if not id_column or not link:
            raise _fail("--from needs --id COLUMN and at least one --link COLUMN:KIND")
        try:
            specs = [parse_link_spec(s) for s in link]
            data = read_external(
                from_file,
                id_column,
                specs,
                time_column=time,
                label_column=label,
                institution_column=institution,
            )
        except (HeaderError, ValueError, OSError, UnicodeDecodeError) as e:
            raise _fail(f"{from_file}: {e}") from None
        for p in data.problems:
            console.print(
                f"[yellow]line {p.line}:[/yellow] {escape(p.reason)} — skipped", soft_wrap=True
            )
        console.print(
            f"{data.rows} rows: {data.table.n_records} read, {len(data.problems)} skipped"
        )
        table, meta = data.table, data.meta
    result = find_rings(table, meta, hub_cap=hub_cap, use_weak=use_weak, seed=seed)
    _print(console, result, top)
    if out is not None:
        _write_out(out, table, result)
        console.print(f"wrote {out}")
    if pictures is not None:
        from puhui.fraud.picture import write_group_pictures

        for ring in result.rings[:top]:
            write_group_pictures(result, ring, pictures, seed=seed)
        console.print(f"pictures of {min(top, len(result.rings))} groups in {pictures}")


def _shared_text(ring: Ring) -> str:
    parts = [
        f"{s.kind.value} #{s.key} ×{s.members}" + ("" if s.strong else " (weak)")
        for s in ring.shared[:6]
    ]
    if len(ring.shared) > 6:
        parts.append(f"+{len(ring.shared) - 6} more")
    return ", ".join(parts)


def _print(console: Console, result: RingResult, top: int) -> None:
    grouped = int((result.group >= 0).sum())
    console.print(
        f"{len(result.rings)} groups covering {grouped} records; "
        f"{len(result.hubs)} hub keys not used for linking"
    )
    table = Table(title=f"Top {min(top, len(result.rings))} groups")
    for column in ("group", "score", "size", "people", "members", "shared identifiers"):
        table.add_column(column)
    for ring in result.rings[:top]:
        members = ", ".join(ring.member_ids[:8])
        if len(ring.member_ids) > 8:
            members += f", … +{len(ring.member_ids) - 8}"
        table.add_row(
            str(ring.group),
            f"{ring.score:.1f}",
            str(ring.evidence.size),
            str(ring.evidence.identities),
            escape(members),
            escape(_shared_text(ring)),
        )
    console.print(table)
    for hub in result.hubs[:5]:
        console.print(f"hub: {hub.kind.value} #{hub.key} held by {hub.records} records")


def _write_out(path: Path, table: LinkTable, result: RingResult) -> None:
    sizes = {ring.group: len(ring.members) for ring in result.rings}
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["id", "group", "group_size", "score"])
        for record_id, group, score in zip(
            table.record_ids, result.group.tolist(), result.score.tolist(), strict=True
        ):
            if group < 0:
                writer.writerow([record_id, "", 1, f"{score:.2f}"])
            else:
                writer.writerow([record_id, group, sizes[group], f"{score:.2f}"])
