"""Writing an application's identifiers into the link table, as blind indexes only.

Every later question — velocity over a window, distinct identities per device, the two-hop
neighbourhood, multi-lending counts, the ring rebuild — reads ``fraud_links``. Writing the
rows in the submission's own transaction means no application exists without its links, and
a failed submission leaves none behind. Values are blind-indexed here, so the table (and
anything built from it) never holds an identifier in the clear.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from puhui.fraud.links import is_strong
from puhui.privacy.blind_index import BlindIndexer, IndexKind
from puhui.store import direct
from puhui.store import models as m

# link kind → the blind-index domain its values are indexed in
KINDS: dict[str, IndexKind] = {
    "device": IndexKind.DEVICE,
    "ip": IndexKind.IP,
    "mobile": IndexKind.MOBILE,
    "bank_account": IndexKind.BANK_CARD,
    "id_number": IndexKind.ID_NUMBER,
    "uscc": IndexKind.USCC,
    "address": IndexKind.ADDRESS,
}
STRONG = frozenset(kind for kind in KINDS if is_strong(kind))
"""The linked kinds the ring finder calls strong (``fraud.links``); ip and address are weak."""


@dataclass(frozen=True)
class Link:
    kind: str
    key: str


def links_of(indexer: BlindIndexer, values: Iterable[tuple[str, str | None]]) -> list[Link]:
    """Blind-index (kind, plaintext) pairs; empty values are skipped, duplicates collapsed."""
    seen: dict[tuple[str, str], Link] = {}
    for kind, value in values:
        if not value:
            continue
        key = indexer.index(KINDS[kind], value)
        seen.setdefault((kind, key), Link(kind, key))
    return list(seen.values())


def record_links(
    session: Session,
    *,
    application_id: str,
    institution_id: str,
    identity: str,
    occurred_at: datetime,
    links: Iterable[Link],
) -> int:
    """Insert the application's links in the caller's transaction (one statement)."""
    rows = [
        {
            "application_id": application_id,
            "institution_id": institution_id,
            "kind": link.kind,
            "key": link.key,
            "identity": identity,
            "occurred_at": occurred_at,
        }
        for link in links
    ]
    if rows:
        # on the connection, a statement built once: the ORM's bulk path costs more than the
        # INSERT (and the rows are never read back as objects)
        direct.insert_rows(session.connection(), _LINKS, rows, later=True)
    return len(rows)


_LINKS = m.table(m.FraudLink)
