"""Reading a bank's legacy file into a link table, as a bank seeding the graph would.

A legacy export is never clean: rows with a column too many, blank or repeated ids, a phone
number typed into the email column. Every such row is reported with its line number and the
reason, and skipped; the rest is read. Nothing is dropped silently, because a reviewer must
know which records the ring finder never saw.

The standard library's ``csv`` reader is used (not pandas) because it tells us the physical
line each record starts on, quoted line breaks included. Identifier cells are normalised by
their kind (:func:`~puhui.fraud.links.normalise`) and may hold several values separated by
``;``; once interned, their text is not kept.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from puhui.fraud.links import LinkKind, LinkTable, RecordMeta, normalise

_BAD = {"1", "true", "yes", "y", "fraud", "bad", "confirmed"}
_GOOD = {"0", "false", "no", "n", "cleared", "good"}


@dataclass(frozen=True)
class LinkColumn:
    """A CSV column whose cells are identifiers of one kind."""

    column: str
    kind: LinkKind


def parse_link_spec(spec: str) -> LinkColumn:
    """``COLUMN:KIND`` (the column name may itself contain ``:``; the kind is after the last)."""
    column, sep, kind = spec.rpartition(":")
    if not sep or not column:
        raise ValueError(f"--link {spec!r}: expected COLUMN:KIND")
    try:
        return LinkColumn(column, LinkKind(kind.strip()))
    except ValueError:
        known = ", ".join(k.value for k in LinkKind)
        raise ValueError(f"--link {spec!r}: unknown kind {kind!r}; one of {known}") from None


@dataclass(frozen=True)
class Problem:
    """A row that was skipped: the line it starts on and why."""

    line: int
    reason: str


@dataclass(frozen=True)
class ExternalData:
    table: LinkTable
    meta: RecordMeta
    problems: tuple[Problem, ...]
    rows: int
    """Data rows in the file (read or skipped)."""


class HeaderError(ValueError):
    """The file cannot be read at all (no header, a named column missing)."""


def _parse_time(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        pass
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def _parse_label(text: str) -> int:
    value = text.strip().lower()
    if not value:
        return -1
    if value in _BAD:
        return 1
    if value in _GOOD:
        return 0
    raise ValueError(f"label {text!r} is neither fraud (1/true/fraud) nor cleared (0/false)")


def read_external(
    path: str | Path,
    id_column: str,
    links: Sequence[LinkColumn],
    *,
    time_column: str | None = None,
    label_column: str | None = None,
    institution_column: str | None = None,
) -> ExternalData:
    """Read ``path`` (UTF-8, header row) into a :class:`LinkTable` and :class:`RecordMeta`.

    Raises :class:`HeaderError` when a named column is missing; bad rows become
    :class:`Problem` entries instead.
    """
    with Path(path).open(encoding="utf-8-sig", newline="") as handle:
        reader = csv.reader(handle)
        try:
            header = next(reader)
        except StopIteration:
            raise HeaderError("the file is empty (no header row)") from None
        position = {name.strip(): i for i, name in enumerate(header)}
        wanted = [id_column, *(c.column for c in links)]
        wanted += [c for c in (time_column, label_column, institution_column) if c]
        missing = [c for c in wanted if c not in position]
        if missing:
            raise HeaderError(f"column(s) not in the header: {', '.join(missing)}")
        ids: list[str] = []
        seen: dict[str, int] = {}
        times: list[float] = []
        labels: list[int] = []
        institutions: list[str] = []
        triples: list[tuple[str, LinkKind, str]] = []
        problems: list[Problem] = []
        rows = 0
        end = reader.line_num
        for row in reader:
            line, end = end + 1, reader.line_num
            rows += 1
            reason = _row_problem(row, len(header), position[id_column], seen)
            if reason:
                problems.append(Problem(line, reason))
                continue
            record_id = row[position[id_column]].strip()
            found: list[tuple[str, LinkKind, str]] = []
            try:
                for c in links:
                    for value in row[position[c.column]].split(";"):
                        if value.strip():
                            found.append((record_id, c.kind, _normalised(c, value)))
                when = math.nan
                if time_column and row[position[time_column]].strip():
                    when = _timestamp(time_column, row[position[time_column]].strip())
                label = _parse_label(row[position[label_column]]) if label_column else -1
            except ValueError as e:
                problems.append(Problem(line, str(e)))
                continue
            seen[record_id] = line
            ids.append(record_id)
            triples.extend(found)
            times.append(when)
            labels.append(label)
            if institution_column:
                institutions.append(row[position[institution_column]].strip())
    table = LinkTable.from_triples(triples, ids)
    meta = RecordMeta(
        ids=table.record_ids,
        timestamps=np.array(times, dtype=np.float64) if time_column else None,
        institutions=institutions if institution_column else None,
        labels=np.array(labels, dtype=np.int8) if label_column else None,
    )
    return ExternalData(table, meta, tuple(problems), rows)


def _row_problem(row: list[str], width: int, id_at: int, seen: dict[str, int]) -> str | None:
    if len(row) != width:
        return f"{len(row)} columns, the header has {width}"
    record_id = row[id_at].strip()
    if not record_id:
        return "empty id"
    if record_id in seen:
        return f"duplicate id (first on line {seen[record_id]})"
    return None


def _normalised(column: LinkColumn, value: str) -> str:
    try:
        return normalise(column.kind, value)
    except ValueError as e:
        raise ValueError(f"column {column.column!r} ({column.kind.value}): {e}") from None


def _timestamp(column: str, text: str) -> float:
    try:
        return _parse_time(text)
    except ValueError:
        raise ValueError(f"column {column!r}: not a time (ISO 8601 or epoch seconds)") from None
