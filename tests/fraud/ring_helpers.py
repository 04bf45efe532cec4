"""Hand-built link tables for the ring-finder tests."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from puhui.fraud.links import LinkTable


def clique(
    prefix: str, size: int, kind: str = "device", key: str | None = None
) -> list[tuple[str, str, str]]:
    """``size`` records all holding one key of ``kind``, each with its own ID number."""
    shared = key or f"{prefix}-{kind}"
    out = []
    for i in range(size):
        record = f"{prefix}{i}"
        out.append((record, kind, shared))
        out.append((record, "id_number", f"{record}-id"))
    return out


def pairwise(prefix: str, size: int) -> list[tuple[str, str, str]]:
    """A dense ring: every pair of ``size`` records shares its own device key."""
    out = [(f"{prefix}{i}", "id_number", f"{prefix}{i}-id") for i in range(size)]
    for i in range(size):
        for j in range(i + 1, size):
            out += [
                (f"{prefix}{i}", "device", f"{prefix}{i}-{j}"),
                (f"{prefix}{j}", "device", f"{prefix}{i}-{j}"),
            ]
    return out


def table(triples: Iterable[tuple[str, str, str]], ids: Sequence[str] | None = None) -> LinkTable:
    return LinkTable.from_triples(list(triples), ids)
