"""Keyed blind indexes: equality look-ups on encrypted identifiers.

Field ciphertexts are randomised (a fresh nonce each time), so "is this ID number already an
applicant?" or "how many applications share this mobile?" cannot be asked of them. A blind
index is a deterministic fingerprint stored beside the ciphertext (``*_bidx`` columns)::

    index = hex(HMAC-SHA256(key, "puhui/bidx/v1" 0x00 kind 0x00 normalise(kind, v))[:16])

Why a keyed HMAC and not a plain hash: identifier spaces are tiny. Every mainland mobile
(``1[3-9]`` + 9 digits, 7·10^9 values) hashes in about 1.5 core-hours, and resident ID
numbers (area × birth date × sequence, check digit implied) are not much larger; an unkeyed
SHA-256 column is therefore a plaintext column with extra steps. With HMAC an attacker who has
the database but not the key file (kept apart, see :mod:`puhui.privacy.keys`) cannot test
guesses at all. Matching across organisations needs PSI, not shared blind indexes.

Domain separation: the kind is part of the MAC input, so the same digits as a mobile and as a
card, or the same string as a name and as an address, never share an index — a fraud graph
cannot link records through a coincidence of kinds.

Normalisation per kind runs first, so spellings of one identifier agree ('+86 138-1234-5678'
and '13812345678'; a full-width 'Ｘ' and 'x'; a 15-digit legacy ID and its 18-digit upgrade).

Truncation to 128 bits: short enough for a ``String(64)`` column and a compact index; long
enough that collisions do not happen in practice — at 10^9 values of one kind the chance of
any collision is about 10^18 / 2^129 ≈ 1.5·10^-21. (Deliberately coarse indexes, e.g. 16 bits,
would add false positives that hide which rows match; this platform needs exact matches for
uniqueness and fraud links, so it keeps them exact and relies on the key for secrecy.)

The blind-index key cannot rotate without recomputing every index; store its id
(:attr:`BlindIndexer.key_id`) if a re-index may ever be needed.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import re
import unicodedata
from collections.abc import Callable
from enum import StrEnum

from puhui.domain.errors import ValidationError
from puhui.domain.identifiers import id_check_char
from puhui.privacy.keys import KeyRing

INDEX_BYTES = 16
"""128-bit indexes: 32 hex characters."""

_PREFIX = b"puhui/bidx/v1"


class IndexKind(StrEnum):
    """What an indexed value is; each kind has its own normalisation and MAC domain."""

    ID_NUMBER = "id_number"
    MOBILE = "mobile"
    USCC = "uscc"
    BANK_CARD = "bank_card"
    NAME = "name"
    COMPANY_NAME = "company_name"
    ADDRESS = "address"
    DEVICE = "device"
    IP = "ip"
    EMAIL = "email"


_WS = re.compile(r"\s+")
_NON_DIGIT = re.compile(r"\D")
_NAME_DOTS = re.compile(r"[·•‧∙・･.]")  # middle dots of minority and foreign names


def _nfkc(value: str) -> str:
    return unicodedata.normalize("NFKC", value)


def _compact_upper(value: str) -> str:
    return _WS.sub("", _nfkc(value)).replace("-", "").upper()


def _id_number(value: str) -> str:
    text = _compact_upper(value)
    if len(text) == 15 and text.isdigit():
        # Legacy 15-digit number (YYMMDD, 19xx births): the same person's 18-digit number
        # inserts the century and appends the GB 11643 check character.
        body = text[:6] + "19" + text[6:]
        text = body + id_check_char(body)
    return text


def _mobile(value: str) -> str:
    digits = _NON_DIGIT.sub("", _nfkc(value))
    if len(digits) == 15 and digits.startswith("0086"):
        digits = digits[4:]
    elif len(digits) == 13 and digits.startswith("86"):
        digits = digits[2:]
    return digits


def _digits(value: str) -> str:
    return _NON_DIGIT.sub("", _nfkc(value))


def _name(value: str) -> str:
    text = _WS.sub(" ", _nfkc(value)).strip().casefold()
    text = _NAME_DOTS.sub("·", text)
    # Spaces carry no meaning next to CJK characters ('张 三' is '张三'); keep them between
    # Latin words ('john smith').
    return re.sub(r"\s*·\s*|(?<=[^\x00-\x7f]) | (?=[^\x00-\x7f])", _keep_dot, text)


def _keep_dot(match: re.Match[str]) -> str:
    return "·" if "·" in match.group(0) else ""


def _company_name(value: str) -> str:
    # NFKC already folds full-width brackets （） to ( ); drop all whitespace.
    return _WS.sub("", _nfkc(value)).casefold()


def _address(value: str) -> str:
    return _WS.sub("", _nfkc(value)).casefold()


def _device(value: str) -> str:
    return _WS.sub("", _nfkc(value)).casefold()


def _ip(value: str) -> str:
    text = _nfkc(value).strip()
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return text.casefold()
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.compressed


def _email(value: str) -> str:
    return _nfkc(value).strip().casefold()


_NORMALISERS: dict[IndexKind, Callable[[str], str]] = {
    IndexKind.ID_NUMBER: _id_number,
    IndexKind.MOBILE: _mobile,
    IndexKind.USCC: _compact_upper,
    IndexKind.BANK_CARD: _digits,
    IndexKind.NAME: _name,
    IndexKind.COMPANY_NAME: _company_name,
    IndexKind.ADDRESS: _address,
    IndexKind.DEVICE: _device,
    IndexKind.IP: _ip,
    IndexKind.EMAIL: _email,
}


def _kind(kind: IndexKind | str) -> IndexKind:
    try:
        return IndexKind(kind)
    except ValueError:
        known = ", ".join(k.value for k in IndexKind)
        raise ValueError(f"unknown blind-index kind {kind!r}; known kinds: {known}") from None


def normalise(kind: IndexKind | str, value: str) -> str:
    """The canonical spelling of ``value`` that is hashed for ``kind``.

    Raises :class:`ValidationError` if nothing is left (an empty value must never become an
    index: every blank field would then "match" every other).
    """
    k = _kind(kind)
    text = _NORMALISERS[k](value)
    if not text:
        raise ValidationError.single(
            k.value, "blind_index.empty", f"an empty {k.value} cannot be indexed"
        )
    return text


class BlindIndexer:
    """Computes blind indexes under one key. Stateless apart from the key: thread-safe."""

    __slots__ = ("_key", "key_id")

    def __init__(self, key: bytes, key_id: str) -> None:
        if len(key) < 32:
            raise ValueError("blind-index key must be at least 32 bytes")
        self._key = bytes(key)
        self.key_id = key_id

    @classmethod
    def from_keyring(cls, keyring: KeyRing) -> BlindIndexer:
        return cls(keyring.blind_index_key, keyring.blind_index_key_id)

    def index(self, kind: IndexKind | str, value: str) -> str:
        """The blind index of ``value`` as ``kind``: 32 lower-case hex characters."""
        k = _kind(kind)
        message = b"\x00".join((_PREFIX, k.value.encode("ascii"), normalise(k, value).encode()))
        return hmac.new(self._key, message, hashlib.sha256).digest()[:INDEX_BYTES].hex()

    def index_or_none(self, kind: IndexKind | str, value: str | None) -> str | None:
        """Like :meth:`index`, but None (not an error) for a missing or blank value."""
        if value is None or not value.strip():
            return None
        return self.index(kind, value)

    def __repr__(self) -> str:
        return f"BlindIndexer(key_id={self.key_id!r})"
