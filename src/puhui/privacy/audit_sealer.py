"""The audit sealer: chains the records that deferred-sealing transactions left waiting.

One transaction per round (:func:`seal_once`): lock the chain's head, take up to a batch of
waiting records in the order they were written, chain them, move the head, commit. Several
sealers may run against one database (the head lock serialises them), but one is enough:
``puhui serve`` runs it as a thread of its main process, whatever the number of workers, and
``puhui audit seal --follow`` runs it on its own.

The loop's pace sets how long a record waits unprotected by the chain: a round that filled a
batch is followed at once by the next; one that found fewer waits ``gather`` seconds, so that
under steady traffic each round takes many requests' records under one head lock and one
commit (the point of deferring); an idle round waits ``interval``. With the defaults a record
is sealed within about half a second of its commit.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from sqlalchemy.orm import Session, sessionmaker

from puhui.privacy import audit

log = logging.getLogger(__name__)


def seal_once(sessions: sessionmaker[Session], *, limit: int = audit.SEAL_BATCH) -> int:
    """Seal up to ``limit`` waiting records in one transaction; returns how many."""
    with sessions() as session:
        sealed = audit.seal(session, limit=limit)
        if sealed:
            session.commit()
        return sealed


def seal_all(sessions: sessionmaker[Session], *, limit: int = audit.SEAL_BATCH) -> int:
    """Seal everything waiting now, a batch per transaction; returns how many."""
    total = 0
    while True:
        sealed = seal_once(sessions, limit=limit)
        total += sealed
        if sealed < limit:
            return total


def run(
    sessions: sessionmaker[Session],
    stop: threading.Event,
    *,
    interval: float = 0.5,
    gather: float = 0.2,
    limit: int = audit.SEAL_BATCH,
    on_round: Callable[[int], None] | None = None,
) -> None:
    """Seal until ``stop`` is set, then seal what is left once more and return.

    An error in one round (the database restarting, say) is logged and the loop carries on;
    the records wait, committed, for the next round.
    """
    while not stop.is_set():
        sealed: int | None = None
        try:
            sealed = seal_once(sessions, limit=limit)
        except Exception:
            log.exception("audit sealing round failed; retrying in %.1f s", interval)
        if sealed and on_round is not None:
            on_round(sealed)
        if not sealed:
            stop.wait(interval)
        elif sealed < limit:
            stop.wait(gather)
    try:  # the server is stopping: leave nothing waiting that this process could seal
        seal_all(sessions, limit=limit)
    except Exception:
        log.exception("audit sealing at shutdown failed; records wait for the next sealer")
