"""Links: the identifiers two applications can share, and the table the ring finder reads.

A *link* says "record r holds key k as kind t". Two records sharing a key are linked. The
table stores only integers — record index, kind code, key id — because the keys the platform
feeds in are blind indexes (opaque hex from the database) and the ring finder must work, and
report, without ever reading them. Plaintext only appears on the external-file path, where
:func:`normalise` brings each spelling of an identifier to one form before it is interned
and forgotten.

Strength. A *strong* kind is one that honest applicants rarely share with a different
person — a device, a mobile, an email, an ID number, a USCC, a legal representative, a bank
account — so sharing it is evidence by itself. A *weak* kind is shared by honest people all
the time — an office IP, a building's address, a relative listed as a contact — so it only
annotates a group unless the caller asks for weak links to link too.

Namespaces. A contact mobile and an applicant's mobile are the same kind of thing: one
applicant's phone listed as another's contact is a link. So keys are interned per
*namespace* (``contact_mobile`` shares ``mobile``'s, ``legal_rep`` shares ``id_number``'s),
while each link keeps its own kind and hence its own strength.
"""

from __future__ import annotations

import ipaddress
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum

import numpy as np
import numpy.typing as npt
import pandas as pd


class LinkKind(StrEnum):
    """What a shared key is. The order fixes the integer codes in :class:`LinkTable`."""

    DEVICE = "device"
    MOBILE = "mobile"
    CONTACT_MOBILE = "contact_mobile"
    EMAIL = "email"
    ID_NUMBER = "id_number"
    USCC = "uscc"
    LEGAL_REP = "legal_rep"
    BANK_ACCOUNT = "bank_account"
    IP = "ip"
    ADDRESS = "address"


KINDS: tuple[LinkKind, ...] = tuple(LinkKind)
"""Kinds in code order: ``KINDS[code]`` is the kind of a link whose kind code is ``code``."""

STRONG_KINDS: frozenset[LinkKind] = frozenset(
    {
        LinkKind.DEVICE,
        LinkKind.MOBILE,
        LinkKind.EMAIL,
        LinkKind.ID_NUMBER,
        LinkKind.USCC,
        LinkKind.LEGAL_REP,
        LinkKind.BANK_ACCOUNT,
    }
)
"""Kinds whose sharing is evidence by itself; the others (IP, address, contact mobile) are weak."""

IDENTITY_KINDS: frozenset[LinkKind] = frozenset({LinkKind.ID_NUMBER, LinkKind.LEGAL_REP})
"""Kinds that name a person: records sharing one of these are the same identity."""

NAMESPACE: dict[LinkKind, LinkKind] = {k: k for k in LinkKind} | {
    LinkKind.CONTACT_MOBILE: LinkKind.MOBILE,
    LinkKind.LEGAL_REP: LinkKind.ID_NUMBER,
}
"""Kinds whose keys are compared with each other's (a contact mobile is a mobile)."""

STRONG_CODE: npt.NDArray[np.bool_] = np.array([k in STRONG_KINDS for k in KINDS])
IDENTITY_CODE: npt.NDArray[np.bool_] = np.array([k in IDENTITY_KINDS for k in KINDS])


def kind_code(kind: LinkKind | str) -> int:
    """The integer code of ``kind`` (raises ``ValueError`` naming the known kinds)."""
    try:
        return KINDS.index(LinkKind(kind))
    except ValueError:
        known = ", ".join(KINDS)
        raise ValueError(f"unknown link kind {kind!r}; known kinds: {known}") from None


def is_strong(kind: LinkKind | str) -> bool:
    return LinkKind(kind) in STRONG_KINDS


# -- normalising plaintext ------------------------------------------------------------------

_SPACE_DASH = re.compile(r"[\s\-()（）]+")
_WS = re.compile(r"\s+")
_ID = re.compile(r"\d{17}[\dX]|\d{15}")
_USCC = re.compile(r"[0-9A-Z]{18}")
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


def _nfkc(value: str) -> str:
    return unicodedata.normalize("NFKC", value)


def _mobile(value: str) -> str:
    text = _SPACE_DASH.sub("", _nfkc(value))
    for prefix in ("+86", "0086"):
        if text.startswith(prefix):
            text = text[len(prefix) :]
            break
    else:
        if len(text) == 13 and text.startswith("86"):
            text = text[2:]
    if not (text.isascii() and text.isdigit() and len(text) == 11 and text[0] == "1"):
        raise ValueError("not a mainland mobile number (11 digits starting with 1)")
    return text


def _email(value: str) -> str:
    text = _nfkc(value).strip().lower()
    if not _EMAIL.fullmatch(text):
        raise ValueError("not an email address")
    return text


def _id_number(value: str) -> str:
    text = _WS.sub("", _nfkc(value)).upper()
    if not _ID.fullmatch(text):
        raise ValueError("not a resident ID number (18 characters, or 15 digits)")
    return text


def _compact_upper(value: str) -> str:
    return _WS.sub("", _nfkc(value)).upper()


def _uscc(value: str) -> str:
    text = _compact_upper(value)
    if not _USCC.fullmatch(text):
        raise ValueError("not a unified social credit code (18 letters and digits)")
    return text


def _bank_account(value: str) -> str:
    text = _SPACE_DASH.sub("", _nfkc(value)).upper()
    if not text.isalnum():
        raise ValueError("a bank account has only letters and digits")
    return text


def _ip(value: str) -> str:
    try:
        address = ipaddress.ip_address(_nfkc(value).strip())
    except ValueError:
        raise ValueError("not an IP address") from None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped.compressed
    return address.compressed


def _address(value: str) -> str:
    """Addresses differ in spacing, punctuation and width far more than in content."""
    text = _nfkc(value)
    kept = (c for c in text if not (c.isspace() or unicodedata.category(c)[0] in "PS"))
    return "".join(kept).lower()


_NORMALISERS = {
    LinkKind.DEVICE: _compact_upper,
    LinkKind.MOBILE: _mobile,
    LinkKind.CONTACT_MOBILE: _mobile,
    LinkKind.EMAIL: _email,
    LinkKind.ID_NUMBER: _id_number,
    LinkKind.USCC: _uscc,
    LinkKind.LEGAL_REP: _compact_upper,
    LinkKind.BANK_ACCOUNT: _bank_account,
    LinkKind.IP: _ip,
    LinkKind.ADDRESS: _address,
}


def normalise(kind: LinkKind | str, value: str) -> str:
    """One spelling per identifier, so that equal identifiers give equal keys.

    Raises ``ValueError`` with the reason when ``value`` cannot be an identifier of ``kind``
    (an empty result included: a blank must never match every other blank).
    """
    text = _NORMALISERS[LinkKind(kind)](value)
    if not text:
        raise ValueError(f"empty {LinkKind(kind).value}")
    return text


# -- the records and the table --------------------------------------------------------------


@dataclass(frozen=True)
class RecordMeta:
    """What the ring finder may know about each record besides its links, aligned by index.

    ``timestamps`` are seconds since the epoch (NaN where unknown); ``institutions`` are the
    codes of the lenders that received each application; ``labels`` are 1 for confirmed
    fraud, 0 for cleared, -1 for unknown. Any of the three may be absent.
    """

    ids: Sequence[str]
    timestamps: npt.NDArray[np.float64] | None = None
    institutions: Sequence[str] | None = None
    labels: npt.NDArray[np.int8] | None = None

    def __post_init__(self) -> None:
        n = len(self.ids)
        for name in ("timestamps", "institutions", "labels"):
            value = getattr(self, name)
            if value is not None and len(value) != n:
                raise ValueError(f"{name} has {len(value)} entries for {n} records")


IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True)
class LinkTable:
    """Links as three aligned integer arrays, sorted by key then record.

    ``record[i]`` indexes :attr:`record_ids`, ``kind[i]`` indexes :data:`KINDS`, ``key[i]`` is
    an interned key id (``0 ≤ key < n_keys``; equal ids mean equal keys in one namespace).
    Each (record, kind, key) appears once. Key text is not kept.
    """

    record_ids: tuple[str, ...]
    record: IntArray
    kind: npt.NDArray[np.int8]
    key: IntArray
    n_keys: int

    @property
    def n_records(self) -> int:
        return len(self.record_ids)

    def __len__(self) -> int:
        return len(self.record)

    @classmethod
    def from_triples(
        cls,
        triples: Iterable[tuple[str, LinkKind | str, str]],
        record_ids: Sequence[str] | None = None,
    ) -> LinkTable:
        """Build from ``(record_id, kind, key)``; keys are used as given (not normalised).

        With ``record_ids`` the table's records are exactly those, in that order (records
        without links included, so indexes align with a :class:`RecordMeta`); a triple naming
        another record is an error. Without it, records are numbered in order of first sight.
        """
        index: dict[str, int] = {r: i for i, r in enumerate(record_ids or ())}
        if record_ids is not None and len(index) != len(record_ids):
            raise ValueError("record_ids has duplicates")
        codes = {k: i for i, k in enumerate(KINDS)} | {k.value: i for i, k in enumerate(KINDS)}
        records: list[int] = []
        kinds: list[int] = []
        keys: list[str] = []
        for record_id, kind, key in triples:
            i = index.get(record_id)
            if i is None:
                if record_ids is not None:
                    raise ValueError(f"link for a record not in record_ids: {record_id!r}")
                i = index[record_id] = len(index)
            code = codes.get(kind)
            if code is None:
                code = kind_code(kind)
            records.append(i)
            kinds.append(code)
            keys.append(key)
        ids = tuple(record_ids) if record_ids is not None else tuple(index)
        return cls.from_arrays(
            np.array(records, dtype=np.int64),
            np.array(kinds, dtype=np.int8),
            np.array(keys, dtype=object),
            ids,
        )

    @classmethod
    def from_arrays(
        cls,
        record: npt.ArrayLike,
        kind: npt.ArrayLike,
        keys: npt.ArrayLike,
        record_ids: Sequence[str],
    ) -> LinkTable:
        """Build from aligned arrays: record indexes, kind codes, and keys (str or bytes).

        The fast path for millions of links (keys interned with a hash table per namespace);
        empty keys are rejected, since a blank must never link.
        """
        rec = np.asarray(record, dtype=np.int64)
        kd = np.asarray(kind, dtype=np.int8)
        raw = np.asarray(keys)
        if not (len(rec) == len(kd) == len(raw)):
            raise ValueError("record, kind and keys must have the same length")
        if len(rec) and (rec.min() < 0 or rec.max() >= len(record_ids)):
            raise ValueError("record index out of range")
        if len(kd) and (kd.min() < 0 or kd.max() >= len(KINDS)):
            raise ValueError("kind code out of range")
        key = np.empty(len(rec), dtype=np.int64)
        space = np.array([KINDS.index(NAMESPACE[k]) for k in KINDS], dtype=np.int8)[kd]
        n_keys = 0
        for ns in np.unique(space).tolist():
            mask = space == ns
            codes, uniques = pd.factorize(raw[mask])
            if min(map(len, uniques), default=1) == 0:
                raise ValueError("empty key")
            key[mask] = codes + n_keys
            n_keys += len(uniques)
        order = np.lexsort((kd, rec, key))
        rec, kd, key = rec[order], kd[order], key[order]
        if len(rec) > 1:
            keep = np.ones(len(rec), dtype=bool)
            keep[1:] = (np.diff(key) != 0) | (np.diff(rec) != 0) | (np.diff(kd) != 0)
            rec, kd, key = rec[keep], kd[keep], key[keep]
        return cls(tuple(record_ids), rec, kd, key, n_keys)
