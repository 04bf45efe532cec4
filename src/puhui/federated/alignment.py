"""Sample alignment over a channel: the PSI of :mod:`puhui.federated.psi`, both sides' steps.

:func:`align_as_guest` and :func:`align_as_host` run the three-message DH-PSI between the
two parties and return, for each, the indexes of its own rows that are in the intersection,
**in one common order**: row ``k`` of the guest's aligned data and row ``k`` of the host's are
the same business. That order is what every training protocol relies on.

Both sides shuffle their ids (a fresh secret permutation per run) before blinding, as the PSI
module recommends: the guest then learns from the host's positions ``j`` nothing about how the
host's file is sorted, and the host learns nothing about the guest's order from the order of
message 3 (the common order is the guest's *shuffled* order, i.e. random). The permutations
never leave their party; each side maps positions back to its own rows.

Messages (tags ``psi/1``…``psi/3``), with a version number so that parties running different
protocol versions fail with :class:`ProtocolMismatch` instead of misreading each other::

    guest -> host   psi/1  {"v": 2, "points": A}           A = H(x)^a, 32 bytes each, joined
    host  -> guest  psi/2  {"v": 2, "reblinded": A^b, "points": B}    B = H(y)^b
    guest -> host   psi/3  {"v": 2, "matches": [j, ...]}   host positions, in the common order

Version 2 carries X25519 u-coordinates; version 1 carried ristretto255 encodings.

Points travel as one joined ``bytes`` value per message rather than a list of 32-byte
strings: a million ids are then one 32 MB blob for the codec, not a million objects.
"""

from __future__ import annotations

import csv
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from puhui.federated import x25519
from puhui.federated.channel import Channel
from puhui.federated.errors import FederatedError, ProtocolMismatch
from puhui.federated.psi import POINT_BYTES, PsiError, PsiParty

__all__ = ["PSI_VERSION", "align_as_guest", "align_as_host", "psi_backend", "read_ids"]

PSI_VERSION = 2  # 1: ristretto255 encodings; 2: X25519 u-coordinates (psi.py)
_TAG_BLINDED, _TAG_REPLY, _TAG_MATCHES = "psi/1", "psi/2", "psi/3"
_CANNOT_START = "sample alignment cannot start"


def _check_ids(ids: Sequence[str]) -> list[str]:
    """The ids as a list; each must be a non-empty string and appear once."""
    ids = list(ids)
    first: dict[str, int] = {}
    for position, identifier in enumerate(ids):
        if not isinstance(identifier, str) or not identifier:
            raise FederatedError(f"id at row {position} is empty or not a string")
        seen = first.setdefault(identifier, position)
        if seen != position:  # the id itself is not printed: it may be personal data
            raise FederatedError(f"ids must be unique: rows {seen} and {position} hold the same id")
    return ids


def _party(seed: int | None, role: str) -> tuple[PsiParty, random.Random]:
    """A PSI secret and a shuffling generator: fresh from the OS, or from ``seed`` (tests)."""
    try:
        if seed is None:
            return PsiParty(), random.SystemRandom()
        return PsiParty.from_seed(f"{role}:{seed}"), random.Random(f"{role}:{seed}")
    except PsiError as exc:  # no libsodium, or PUHUI_PSI_BACKEND names one that cannot run
        raise FederatedError(f"{_CANNOT_START}: {exc}") from exc


def psi_backend() -> str:
    """The X25519 backend alignment will use here (for progress lines), or a
    :class:`FederatedError` naming why ``PUHUI_PSI_BACKEND`` cannot be honoured."""
    try:
        return x25519.backend_name()
    except ValueError as exc:
        raise FederatedError(f"{_CANNOT_START}: {exc}") from None


def _message(payload: Any, tag: str, keys: Sequence[str]) -> dict[str, Any]:
    if not isinstance(payload, dict) or payload.get("v") != PSI_VERSION:
        version = payload.get("v") if isinstance(payload, dict) else None
        raise ProtocolMismatch(
            f"the peer's '{tag}' message is PSI version {version!r}, this party speaks "
            f"{PSI_VERSION}: run the same puhui version on both sides"
        )
    for key in keys:
        if key not in payload:
            raise FederatedError(f"the peer's '{tag}' message has no '{key}'")
    return payload


def _points(blob: Any, tag: str, what: str, expected: int | None = None) -> list[bytes]:
    """Split a joined run of 32-byte points, checking its length."""
    if not isinstance(blob, bytes) or len(blob) % POINT_BYTES:
        raise FederatedError(f"the peer's '{tag}' {what} is not a whole number of points")
    count = len(blob) // POINT_BYTES
    if expected is not None and count != expected:
        raise FederatedError(f"the peer's '{tag}' {what} has {count} points, expected {expected}")
    return [blob[k : k + POINT_BYTES] for k in range(0, len(blob), POINT_BYTES)]


def align_as_guest(
    channel: Channel, ids: Sequence[str], seed: int | None = None, timeout: float | None = None
) -> list[int]:
    """The guest's side of sample alignment: indexes into ``ids``, in the common order.

    ``seed`` makes the secret and the shuffle reproducible — for tests only, never in
    production (a known secret lets the host test guesses). ``timeout`` bounds each wait for
    the host (default: the channel's).
    """
    ids = _check_ids(ids)
    party, rng = _party(seed, "guest")
    order = list(range(len(ids)))
    rng.shuffle(order)  # order[p] = the row blinded at position p
    try:
        blinded = party.blind([ids[row] for row in order])
        channel.send(_TAG_BLINDED, {"v": PSI_VERSION, "points": b"".join(blinded)})
        reply = _message(channel.recv(_TAG_REPLY, timeout), _TAG_REPLY, ("reblinded", "points"))
        ours = _points(reply["reblinded"], _TAG_REPLY, "re-blinded points", len(ids))
        theirs = party.reblind(_points(reply["points"], _TAG_REPLY, "points"))
        pairs = PsiParty.intersect(ours, theirs)
    except PsiError as exc:
        raise FederatedError(f"sample alignment failed: {exc}") from exc
    channel.send(_TAG_MATCHES, {"v": PSI_VERSION, "matches": [j for _, j in pairs]})
    return [order[p] for p, _ in pairs]


def align_as_host(
    channel: Channel, ids: Sequence[str], seed: int | None = None, timeout: float | None = None
) -> list[int]:
    """The host's side of sample alignment: indexes into ``ids``, in the common order."""
    ids = _check_ids(ids)
    party, rng = _party(seed, "host")
    order = list(range(len(ids)))
    rng.shuffle(order)
    try:
        first = _message(channel.recv(_TAG_BLINDED, timeout), _TAG_BLINDED, ("points",))
        theirs = _points(first["points"], _TAG_BLINDED, "points")
        reblinded = party.reblind(theirs)
        blinded = party.blind([ids[row] for row in order])
    except PsiError as exc:
        raise FederatedError(f"sample alignment failed: {exc}") from exc
    channel.send(
        _TAG_REPLY,
        {"v": PSI_VERSION, "reblinded": b"".join(reblinded), "points": b"".join(blinded)},
    )
    last = _message(channel.recv(_TAG_MATCHES, timeout), _TAG_MATCHES, ("matches",))
    matches = last["matches"]
    if not isinstance(matches, list) or len(matches) > min(len(ids), len(theirs)):
        raise FederatedError(f"the peer's '{_TAG_MATCHES}' message is not a list of positions")
    seen: set[int] = set()
    for j in matches:
        if not isinstance(j, int) or isinstance(j, bool) or not 0 <= j < len(ids) or j in seen:
            raise FederatedError(
                f"the peer's '{_TAG_MATCHES}' message holds an invalid or repeated position"
            )
        seen.add(j)
    return [order[j] for j in matches]


def read_ids(path: Path, column: str) -> list[str]:
    """The ``column`` of a CSV file (header row first), as strings exactly as written.

    Ids are kept as text (no number parsing: ``0123`` stays ``0123``) and surrounding spaces
    are removed; an empty cell is an error naming its line, since it cannot be aligned.
    """
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            reader = csv.reader(handle)
            header = next(reader, None)
            if header is None:
                raise FederatedError(f"{path}: the file is empty")
            names = [name.strip() for name in header]
            if column not in names:
                raise FederatedError(f"{path}: no column '{column}' (columns: {', '.join(names)})")
            index = names.index(column)
            ids = []
            for line, row in enumerate(reader, start=2):
                if not row:
                    continue
                value = row[index].strip() if index < len(row) else ""
                if not value:
                    raise FederatedError(f"{path}: line {line}: '{column}' is empty")
                ids.append(value)
            return ids
    except FileNotFoundError:
        raise FederatedError(f"{path}: file not found") from None
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise FederatedError(f"{path}: cannot read: {exc}") from None
