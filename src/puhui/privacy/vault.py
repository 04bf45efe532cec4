"""Envelope encryption of personal data with AES-256-GCM.

Each data subject (an applicant, an enterprise) gets its own random 256-bit **data key**; the
data key is stored only **wrapped** (encrypted) by a master key from the :class:`KeyRing`; each
personal field is encrypted under the subject's data key. Why envelopes:

* **Rotation without re-encryption.** Rotating the master key rewraps 60-byte data keys; the
  millions of field ciphertexts are untouched (:func:`rewrap`).
* **Crypto-shredding.** Erasing a subject (PIPL Art. 47) deletes one wrapped key; every copy
  of that subject's ciphertexts — replicas, backups, exports — becomes unreadable at once.
* **Blast radius.** A leaked data key exposes one subject, not the table.

Formats (both versioned so they can evolve):

* Wrapped data key, stored as three columns ``(key_id, master_key_id, wrapped)``::

      wrapped = 0x01 ‖ nonce (12) ‖ AES-256-GCM(master, data key (32)) ‖ tag (16)   61 bytes
      AAD     = "puhui/wrap/v1" 0x00 key_id 0x00 master_key_id

* Field token, stored in a text column (``*_enc``)::

      v1.<data key id>.<base64url, no padding, of nonce (12) ‖ ciphertext ‖ tag (16)>
      AAD = "puhui/field/v1" 0x00 data key id 0x00 context

  ``context`` names the column (``applicants.id_number``): a ciphertext copied into another
  column, or another subject's row, fails authentication instead of decrypting as the wrong
  field. The key id in the clear lets the store find the data key a token needs
  (:func:`token_key_id`); it is authenticated too.

Why AES-GCM to wrap rather than AES key wrap (RFC 3394, ``aes_key_wrap``): key wrap takes no
associated data, so it cannot bind a wrapped key to its own id and master key id — a wrapped key
swapped between two rows would silently unwrap as the other subject's key. GCM with a random
96-bit nonce is safe here: a master key wraps one key per subject, far below the 2^32
encryptions per key at which random nonces start to risk a collision. Field nonces are random
96-bit too; one data key encrypts a handful of fields per subject.

Nothing here logs or represents key material: :class:`DataKey`'s ``repr`` shows its id only.
"""

from __future__ import annotations

import base64
import binascii
import re
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from puhui.privacy.errors import (
    DecryptionError,
    InvalidTokenError,
    PersonalDataErased,
    UnknownKeyError,
)
from puhui.privacy.keys import KEY_BYTES, KeyRing

TOKEN_VERSION = "v1"
WRAP_VERSION = 0x01
NONCE_BYTES = 12
TAG_BYTES = 16
WRAPPED_BYTES = 1 + NONCE_BYTES + KEY_BYTES + TAG_BYTES

_WRAP_AAD = b"puhui/wrap/v1"
_FIELD_AAD = b"puhui/field/v1"

_DATA_KEY_ID = re.compile(r"dk-[0-9a-f]{32}")
_TOKEN = re.compile(r"v1\.(dk-[0-9a-f]{32})\.([A-Za-z0-9_-]+)")


@dataclass(frozen=True, slots=True)
class DataKey:
    """An unwrapped data key: a 256-bit AES key and its id. Keep it in memory only."""

    key_id: str
    material: bytes = field(repr=False)

    def __post_init__(self) -> None:
        if not _DATA_KEY_ID.fullmatch(self.key_id):
            raise ValueError(f"data key id must look like dk-<32 hex>, got {self.key_id!r}")
        if len(self.material) != KEY_BYTES:
            raise ValueError(f"data key material must be {KEY_BYTES} bytes")


@dataclass(frozen=True, slots=True)
class WrappedDataKey:
    """A data key encrypted under master key ``master_key_id``: safe to store next to the data."""

    key_id: str
    master_key_id: str
    wrapped: bytes = field(repr=False)

    def to_text(self) -> str:
        """One-string form ``wk1.<key_id>.<master_key_id>.<base64url>``, for a single column."""
        return f"wk1.{self.key_id}.{self.master_key_id}.{_b64encode(self.wrapped)}"

    @classmethod
    def from_text(cls, text: str) -> WrappedDataKey:
        parts = text.split(".")
        if len(parts) != 4 or parts[0] != "wk1":
            raise InvalidTokenError("not a wrapped data key (expected wk1.<id>.<master>.<b64>)")
        return cls(parts[1], parts[2], _b64decode(parts[3]))


# -- data keys ------------------------------------------------------------------------------


def _wrap_aad(key_id: str, master_key_id: str) -> bytes:
    return b"\x00".join((_WRAP_AAD, key_id.encode("ascii"), master_key_id.encode("ascii")))


def _wrap(keyring: KeyRing, key: DataKey, master_key_id: str) -> WrappedDataKey:
    master = keyring.master_key(master_key_id)
    nonce = secrets.token_bytes(NONCE_BYTES)
    sealed = AESGCM(master).encrypt(nonce, key.material, _wrap_aad(key.key_id, master_key_id))
    return WrappedDataKey(key.key_id, master_key_id, bytes([WRAP_VERSION]) + nonce + sealed)


def generate_data_key(keyring: KeyRing) -> tuple[DataKey, WrappedDataKey]:
    """A fresh random data key and the same key wrapped by the active master key."""
    key = DataKey(f"dk-{secrets.token_hex(16)}", secrets.token_bytes(KEY_BYTES))
    return key, _wrap(keyring, key, keyring.active_master_id)


def unwrap(keyring: KeyRing, wrapped: WrappedDataKey) -> DataKey:
    """Decrypt a wrapped data key.

    Raises :class:`UnknownKeyError` if the keyring lacks its master key, and
    :class:`DecryptionError` if the wrapped bytes were altered or belong to another key id.
    """
    master = keyring.master_key(wrapped.master_key_id)
    blob = wrapped.wrapped
    if len(blob) != WRAPPED_BYTES or blob[0] != WRAP_VERSION:
        raise DecryptionError(
            f"wrapped data key {wrapped.key_id} is not a v1 wrapped key "
            f"({len(blob)} bytes, expected {WRAPPED_BYTES})"
        )
    nonce, sealed = blob[1 : 1 + NONCE_BYTES], blob[1 + NONCE_BYTES :]
    try:
        material = AESGCM(master).decrypt(
            nonce, sealed, _wrap_aad(wrapped.key_id, wrapped.master_key_id)
        )
    except InvalidTag:
        raise DecryptionError(
            f"wrapped data key {wrapped.key_id} failed authentication under master key "
            f"{wrapped.master_key_id}: altered, or recorded under the wrong key id"
        ) from None
    return DataKey(wrapped.key_id, material)


def rewrap(
    keyring: KeyRing, wrapped: WrappedDataKey, master_key_id: str | None = None
) -> WrappedDataKey:
    """The same data key wrapped by ``master_key_id`` (default: the active master key).

    This is master-key rotation: field ciphertexts stay as they are. Already wrapped by the
    target key, the input is returned unchanged, so a rotation job can be re-run safely.
    """
    target = master_key_id or keyring.active_master_id
    if wrapped.master_key_id == target:
        return wrapped
    return _wrap(keyring, unwrap(keyring, wrapped), target)


# -- fields ---------------------------------------------------------------------------------


def _field_aad(key_id: str, context: str) -> bytes:
    if not context or "\x00" in context:
        raise ValueError("context must be a non-empty string without NUL, e.g. 'applicants.name'")
    return b"\x00".join((_FIELD_AAD, key_id.encode("ascii"), context.encode("utf-8")))


def _b64encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    if not re.fullmatch(r"[A-Za-z0-9_-]*", text):
        raise InvalidTokenError("token payload is not base64url")
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise InvalidTokenError("token payload is not valid base64url") from None
    if _b64encode(raw) != text:  # one spelling per ciphertext: no malleable padding bits
        raise InvalidTokenError("token payload is not canonical base64url")
    return raw


def encrypt_field(data_key: DataKey, plaintext: str, context: str) -> str:
    """Encrypt one field value; returns ``v1.<data key id>.<base64url>`` (ASCII)."""
    nonce = secrets.token_bytes(NONCE_BYTES)
    sealed = AESGCM(data_key.material).encrypt(
        nonce, plaintext.encode("utf-8"), _field_aad(data_key.key_id, context)
    )
    return f"{TOKEN_VERSION}.{data_key.key_id}.{_b64encode(nonce + sealed)}"


def _parse(token: str) -> tuple[str, bytes]:
    match = _TOKEN.fullmatch(token) if isinstance(token, str) else None
    if match is None:
        raise InvalidTokenError("not a v1 field token (expected v1.dk-<32 hex>.<base64url>)")
    return match.group(1), _b64decode(match.group(2))


def token_key_id(token: str) -> str:
    """The id of the data key that ``token`` needs, without decrypting anything."""
    return _parse(token)[0]


def is_token(value: str) -> bool:
    """Whether ``value`` is shaped like a field token (not whether it decrypts)."""
    return isinstance(value, str) and _TOKEN.fullmatch(value) is not None


def decrypt_field(data_key: DataKey, token: str, context: str) -> str:
    """Decrypt a token made by :func:`encrypt_field` with the same key and context.

    Raises :class:`DecryptionError` if the token was altered, the key is not the one it was
    encrypted with, or ``context`` differs (the ciphertext was moved from another column).
    """
    key_id, blob = _parse(token)
    if key_id != data_key.key_id:
        raise DecryptionError(f"token was encrypted under data key {key_id}, not {data_key.key_id}")
    if len(blob) < NONCE_BYTES + TAG_BYTES:
        raise InvalidTokenError("token payload is too short to hold a nonce and a tag")
    nonce, sealed = blob[:NONCE_BYTES], blob[NONCE_BYTES:]
    try:
        plain = AESGCM(data_key.material).decrypt(nonce, sealed, _field_aad(key_id, context))
    except InvalidTag:
        raise DecryptionError(
            f"field token under data key {key_id} failed authentication for context "
            f"{context!r}: altered, wrong key, or moved from another field"
        ) from None
    return plain.decode("utf-8")


# -- facade ---------------------------------------------------------------------------------


class Vault:
    """Keyring plus a bounded, expiring LRU cache of unwrapped data keys.

    Scoring or rendering a hot record decrypts several fields; the cache saves an unwrap per
    field. Entries expire after ``ttl_seconds`` so a key shredded by another worker stops
    decrypting here within that bound even without :meth:`forget`; in this process call
    :meth:`forget` right after deleting a wrapped key. ``refresh_seconds`` bounds how long
    this process may keep wrapping new keys under a master key another process has retired.
    """

    def __init__(
        self,
        keyring: KeyRing,
        *,
        cache_size: int = 1024,
        ttl_seconds: float | None = 300.0,
        refresh_seconds: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if cache_size < 0:
            raise ValueError("cache_size must be >= 0")
        self._keyring = keyring
        self._size = cache_size
        self._ttl = ttl_seconds
        self._refresh = refresh_seconds
        self._clock = clock
        self._cache: OrderedDict[str, tuple[DataKey, float]] = OrderedDict()
        self._lock = threading.Lock()
        self._checked_at = clock()

    @property
    def keyring(self) -> KeyRing:
        return self._keyring

    def new_data_key(self) -> tuple[DataKey, WrappedDataKey]:
        """A fresh data key for a new subject (cached), and its wrapped form to store."""
        now = self._clock()
        if now - self._checked_at >= self._refresh:
            self._checked_at = now
            self._keyring.reload_if_changed()  # pick up another process's rotation
        key, wrapped = generate_data_key(self._keyring)
        self._put(key)
        return key, wrapped

    def data_key(self, wrapped: WrappedDataKey) -> DataKey:
        """The unwrapped data key, from the cache or by unwrapping (then cached)."""
        cached = self._get(wrapped.key_id)
        if cached is not None:
            return cached
        try:
            key = unwrap(self._keyring, wrapped)
        except UnknownKeyError:
            # Wrapped by a master key created after this keyring was loaded: reload once.
            self._keyring.reload()
            key = unwrap(self._keyring, wrapped)
        self._put(key)
        return key

    def encrypt(self, wrapped: WrappedDataKey, plaintext: str, context: str) -> str:
        return encrypt_field(self.data_key(wrapped), plaintext, context)

    def decrypt(self, wrapped: WrappedDataKey | None, token: str, context: str) -> str:
        """Decrypt ``token``; ``wrapped`` is the stored key it names, or None if shredded.

        Raises :class:`PersonalDataErased` when the data key is gone (``wrapped`` is None),
        :class:`DecryptionError` when the token does not authenticate.
        """
        key_id = token_key_id(token)
        if wrapped is None:
            self.forget(key_id)
            raise PersonalDataErased(data_key_id=key_id)
        if wrapped.key_id != key_id:
            raise DecryptionError(
                f"token needs data key {key_id} but data key {wrapped.key_id} was given"
            )
        return decrypt_field(self.data_key(wrapped), token, context)

    def rewrap(self, wrapped: WrappedDataKey, master_key_id: str | None = None) -> WrappedDataKey:
        """See :func:`rewrap`; the cache is unaffected (the data key itself does not change)."""
        try:
            return rewrap(self._keyring, wrapped, master_key_id)
        except UnknownKeyError:
            self._keyring.reload()
            return rewrap(self._keyring, wrapped, master_key_id)

    def forget(self, key_id: str) -> None:
        """Drop one data key from the cache (call it when the wrapped key is shredded)."""
        with self._lock:
            self._cache.pop(key_id, None)

    def clear(self) -> None:
        with self._lock:
            self._cache.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._cache)

    def __contains__(self, key_id: object) -> bool:
        with self._lock:
            return key_id in self._cache

    def __repr__(self) -> str:
        return f"Vault({self._keyring!r}, cached={len(self)}/{self._size})"

    def _get(self, key_id: str) -> DataKey | None:
        with self._lock:
            entry = self._cache.get(key_id)
            if entry is None:
                return None
            key, stored_at = entry
            if self._ttl is not None and self._clock() - stored_at >= self._ttl:
                del self._cache[key_id]
                return None
            self._cache.move_to_end(key_id)
            return key

    def _put(self, key: DataKey) -> None:
        if self._size == 0:
            return
        with self._lock:
            self._cache[key.key_id] = (key, self._clock())
            self._cache.move_to_end(key.key_id)
            while len(self._cache) > self._size:
                self._cache.popitem(last=False)
