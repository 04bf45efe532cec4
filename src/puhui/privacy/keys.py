"""Local key files: the master keys that wrap data keys, and the blind-index key.

Why local files: ``make run`` must work on a fresh machine without a KMS. The files sit in
``PUHUI_KEY_DIR`` (default ``var/keys``), apart from the database, so a stolen database dump
holds only wrapped keys and ciphertexts. A KMS can later replace this class behind the same
four calls (``active_master_id``, ``master_key``, ``rotate_master``, ``blind_index_key``).

Layout of the key directory (mode 0700)::

    master-keys.json       0600  every master key, active and retired, in one file so that a
                                 rotation (add one, retire another) is one atomic replace
    blind-index-key.json   0600  the HMAC key of the blind indexes; kept apart because it has
                                 a different life: it cannot rotate without re-indexing
    .lock                  0600  advisory lock (flock) serialising writers across processes

``master-keys.json``::

    {"format": "puhui-master-keys/1",
     "keys": [{"id": "mk-1a2b3c4d", "status": "active", "created_at": "2025-...Z",
               "retired_at": null, "material": "<base64 of 32 bytes>"}, ...]}

``blind-index-key.json``::

    {"format": "puhui-blind-index-key/1", "id": "bi-5e6f7a8b",
     "created_at": "2025-...Z", "material": "<base64 of 32 bytes>"}

Decisions:

* Files are written to a temporary file opened with ``os.open(..., 0o600)`` (never readable by
  others, whatever the umask), fsynced, then moved into place with ``os.replace``. First-run
  creation instead links the temporary file into place, which fails if another process won the
  race; the loser then loads the winner's keys, so two workers starting together never end up
  with different keys.
* A key file readable or writable by group or others is **refused**, not silently fixed: it may
  already have been copied, and the operator has to decide whether to rotate. The message
  names the file and the rule and gives the ``chmod`` that fixes it.
* If only one of the two files exists the keyring refuses to start instead of creating the
  missing one: a fresh master key would orphan every wrapped data key and a fresh blind-index
  key every index. Restore from backup.
* Rotation is zero-downtime: the old master stays (retired) for unwrapping; a process still
  holding the old keyring keeps decrypting, and :meth:`KeyRing.reload` (or
  :meth:`KeyRing.reload_if_changed`) picks up the new one. A retired master is dropped only once
  the caller states that no wrapped key uses it any more and a grace period has passed.
* Key material never appears in ``repr``, ``str`` or logs: only ids.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import fcntl
import json
import os
import secrets
import stat
import threading
from collections.abc import Collection, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from puhui.privacy.errors import KeyFileError, KeyInUseError, UnknownKeyError

MASTER_FILE = "master-keys.json"
BLIND_INDEX_FILE = "blind-index-key.json"
LOCK_FILE = ".lock"

MASTER_FORMAT = "puhui-master-keys/1"
BLIND_INDEX_FORMAT = "puhui-blind-index-key/1"

KEY_BYTES = 32
"""AES-256 master keys and a 256-bit HMAC key."""

DIR_MODE = 0o700
FILE_MODE = 0o600

DEFAULT_DROP_GRACE = timedelta(hours=1)
"""How long a master key must have been retired before it may be dropped.

Long enough for every running process to have reloaded the keyring (see
``Vault(refresh_seconds=...)``), so none can still be wrapping new data keys under it.
"""

Status = Literal["active", "retired"]


@dataclass(frozen=True, slots=True)
class MasterKeyInfo:
    """What may be shown about a master key: everything but its material."""

    id: str
    status: Status
    created_at: datetime
    retired_at: datetime | None


@dataclass(frozen=True, slots=True)
class _MasterKey:
    id: str
    status: Status
    created_at: datetime
    retired_at: datetime | None
    material: bytes = field(repr=False)

    @property
    def info(self) -> MasterKeyInfo:
        return MasterKeyInfo(self.id, self.status, self.created_at, self.retired_at)


@dataclass(frozen=True, slots=True)
class _BlindIndexKey:
    id: str
    created_at: datetime
    material: bytes = field(repr=False)


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def _new_id(prefix: str, taken: Collection[str] = ()) -> str:
    while True:
        candidate = f"{prefix}-{secrets.token_hex(4)}"
        if candidate not in taken:
            return candidate


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


class KeyRing:
    """Master keys and the blind-index key of one installation, loaded from ``key_dir``.

    Create with :meth:`load_or_create` (first run creates the files) or :meth:`load`.
    Thread-safe; writers in different processes are serialised by an advisory file lock.
    """

    def __init__(
        self, key_dir: Path, masters: tuple[_MasterKey, ...], blind: _BlindIndexKey
    ) -> None:
        # Private: use load_or_create() or load().
        self._dir = key_dir
        self._masters = masters
        self._blind = blind
        self._mutex = threading.RLock()
        self._stamp = _file_stamp(key_dir / MASTER_FILE)

    # -- construction ---------------------------------------------------------------------

    @classmethod
    def load_or_create(cls, key_dir: Path) -> KeyRing:
        """Load the keys in ``key_dir``, creating the directory and both key files on first run."""
        key_dir = Path(key_dir)
        if not key_dir.exists():
            key_dir.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
            os.chmod(key_dir, DIR_MODE)  # mkdir's mode is filtered by the umask
        _check_dir(key_dir)
        master_path, blind_path = key_dir / MASTER_FILE, key_dir / BLIND_INDEX_FILE
        if not master_path.exists() or not blind_path.exists():
            # A first run, or one under way elsewhere (the master file written, the blind-index
            # file not yet): decide under the lock, once the other creator has finished. Only
            # an empty directory gets keys; a lone file is a lost one, refused by load().
            with _locked(key_dir):
                if not master_path.exists() and not blind_path.exists():
                    now = _now()
                    master = _MasterKey(
                        _new_id("mk"), "active", now, None, secrets.token_bytes(KEY_BYTES)
                    )
                    blind = _BlindIndexKey(_new_id("bi"), now, secrets.token_bytes(KEY_BYTES))
                    # Each create is a no-clobber link: if a creator that took no lock got
                    # there first, keep its file and load it below.
                    _create_file(master_path, _dump_masters((master,)))
                    _create_file(blind_path, _dump_blind(blind))
        return cls.load(key_dir)

    @classmethod
    def load(cls, key_dir: Path) -> KeyRing:
        """Load existing key files; never creates anything."""
        key_dir = Path(key_dir)
        if not key_dir.is_dir():
            raise KeyFileError(f"key directory {key_dir} does not exist")
        _check_dir(key_dir)
        master_path, blind_path = key_dir / MASTER_FILE, key_dir / BLIND_INDEX_FILE
        missing = [p.name for p in (master_path, blind_path) if not p.exists()]
        if missing:
            raise KeyFileError(
                f"key directory {key_dir} lacks {', '.join(missing)}; restore it from backup "
                "(a new key would orphan every wrapped data key or blind index made with the "
                "old one)"
            )
        return cls(key_dir, _read_masters(master_path), _read_blind(blind_path))

    def reload(self) -> None:
        """Re-read the key files, picking up a rotation made by another process."""
        masters = _read_masters(self._dir / MASTER_FILE)
        with self._mutex:
            self._masters = masters
            self._stamp = _file_stamp(self._dir / MASTER_FILE)

    def reload_if_changed(self) -> bool:
        """Reload if the master key file changed on disk since it was read; cheap (one stat)."""
        if _file_stamp(self._dir / MASTER_FILE) == self._stamp:
            return False
        self.reload()
        return True

    # -- reading --------------------------------------------------------------------------

    @property
    def key_dir(self) -> Path:
        return self._dir

    @property
    def active_master_id(self) -> str:
        with self._mutex:
            return next(m.id for m in self._masters if m.status == "active")

    @property
    def master_keys(self) -> tuple[MasterKeyInfo, ...]:
        """Every master key's id, status and dates, oldest first; no material."""
        with self._mutex:
            return tuple(m.info for m in self._masters)

    def master_key(self, key_id: str) -> bytes:
        """The 32 bytes of master key ``key_id`` (active or retired).

        Raises :class:`UnknownKeyError` (a ``KeyError``) for an id this keyring does not hold.
        """
        with self._mutex:
            for m in self._masters:
                if m.id == key_id:
                    return m.material
        raise UnknownKeyError(
            key_id,
            f"unknown master key id {key_id!r} in {self._dir / MASTER_FILE} "
            f"(known: {', '.join(m.id for m in self._masters)}); "
            "if another process rotated keys, reload the keyring",
        )

    @property
    def blind_index_key_id(self) -> str:
        return self._blind.id

    @property
    def blind_index_key(self) -> bytes:
        return self._blind.material

    # -- changing -------------------------------------------------------------------------

    def rotate_master(self) -> str:
        """Add a new active master key and retire the current one; return the new id.

        Existing wrapped data keys stay readable (the retired key is kept); move them to the
        new key with ``vault.rewrap`` at leisure, then :meth:`drop_master` the old one.
        """
        with self._mutex, _locked(self._dir):
            # Re-read under the lock so a concurrent rotation elsewhere is never lost.
            current = _read_masters(self._dir / MASTER_FILE)
            now = _now()
            retired = tuple(
                replace(m, status="retired", retired_at=now) if m.status == "active" else m
                for m in current
            )
            new = _MasterKey(
                _new_id("mk", {m.id for m in current}),
                "active",
                now,
                None,
                secrets.token_bytes(KEY_BYTES),
            )
            masters = (*retired, new)
            _replace_file(self._dir / MASTER_FILE, _dump_masters(masters))
            self._masters = masters
            self._stamp = _file_stamp(self._dir / MASTER_FILE)
            return new.id

    def drop_master(
        self,
        key_id: str,
        *,
        remaining_wrapped: int,
        grace: timedelta = DEFAULT_DROP_GRACE,
        now: datetime | None = None,
    ) -> None:
        """Delete retired master key ``key_id`` for good.

        The keyring cannot see the database, so the caller states ``remaining_wrapped``: how
        many stored wrapped data keys still name ``key_id`` (``SELECT count(*) ... WHERE
        master_key_id = :id``) — it must be 0. The key must also have been retired for at least
        ``grace``, so that no process still holding an old keyring is wrapping new data keys
        under it. Anything wrapped under a dropped key is unrecoverable: that is the point of
        asking.
        """
        now = now or datetime.now(UTC)
        with self._mutex, _locked(self._dir):
            current = _read_masters(self._dir / MASTER_FILE)
            target = next((m for m in current if m.id == key_id), None)
            if target is None:
                raise UnknownKeyError(key_id, f"unknown master key id {key_id!r}")
            if target.status == "active":
                raise KeyInUseError(
                    f"master key {key_id} is active; rotate_master() first, rewrap, then drop"
                )
            if remaining_wrapped != 0:
                raise KeyInUseError(
                    f"master key {key_id} still wraps {remaining_wrapped} data key(s); "
                    "rewrap them to the active master key first"
                )
            if target.retired_at is not None and now - target.retired_at < grace:
                raise KeyInUseError(
                    f"master key {key_id} was retired at {_iso(target.retired_at)}; wait until "
                    f"{_iso(target.retired_at + grace)} so every process has reloaded"
                )
            masters = tuple(m for m in current if m.id != key_id)
            _replace_file(self._dir / MASTER_FILE, _dump_masters(masters))
            self._masters = masters
            self._stamp = _file_stamp(self._dir / MASTER_FILE)

    def __repr__(self) -> str:
        with self._mutex:
            ids = ", ".join(f"{m.id}:{m.status}" for m in self._masters)
        return f"KeyRing(dir={str(self._dir)!r}, masters=[{ids}], blind_index={self._blind.id})"

    __str__ = __repr__


# -- files --------------------------------------------------------------------------------


def _check_dir(key_dir: Path) -> None:
    mode = stat.S_IMODE(key_dir.stat().st_mode)
    if mode & 0o022:
        raise KeyFileError(
            f"key directory {key_dir} has mode {mode:04o}; it must not be writable by group or "
            f"others (they could swap the key files). Fix: chmod 700 {key_dir}"
        )


def _check_file(path: Path) -> None:
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise KeyFileError(
            f"key file {path} has mode {mode:04o}; key files must not be readable or writable "
            "by group or others. Refusing to use it: it may already have been copied, so "
            f"consider rotating. Fix: chmod 600 {path}"
        )


def _file_stamp(path: Path) -> tuple[int, int, int] | None:
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return (st.st_ino, st.st_mtime_ns, st.st_size)


@contextlib.contextmanager
def _locked(key_dir: Path) -> Iterator[None]:
    fd = os.open(key_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, FILE_MODE)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def _write_temp(path: Path, data: bytes) -> Path:
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    try:
        os.fchmod(fd, FILE_MODE)  # in case the umask removed the owner's bits
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        tmp.unlink(missing_ok=True)
        raise
    os.close(fd)
    return tmp


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _replace_file(path: Path, data: bytes) -> None:
    tmp = _write_temp(path, data)
    try:
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def _create_file(path: Path, data: bytes) -> bool:
    """Create ``path`` atomically unless it exists; True if this call created it."""
    tmp = _write_temp(path, data)
    try:
        os.link(tmp, path)
    except FileExistsError:
        return False
    finally:
        tmp.unlink(missing_ok=True)
    _fsync_dir(path.parent)
    return True


def _read_json(path: Path) -> dict[str, Any]:
    _check_file(path)
    try:
        doc = json.loads(path.read_bytes())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise KeyFileError(f"key file {path} cannot be read as JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise KeyFileError(f"key file {path} must hold a JSON object")
    return doc


def _material(path: Path, key_id: str, encoded: object) -> bytes:
    try:
        if not isinstance(encoded, str):
            raise ValueError
        raw = base64.b64decode(encoded, validate=True)
    except (ValueError, binascii.Error):
        raise KeyFileError(f"key file {path}: key {key_id} material is not base64") from None
    if len(raw) != KEY_BYTES:
        raise KeyFileError(f"key file {path}: key {key_id} must be {KEY_BYTES} bytes")
    return raw


def _optional_time(path: Path, key_id: str, value: object) -> datetime | None:
    return None if value is None else _time(path, key_id, value)


def _time(path: Path, key_id: str, value: object) -> datetime:
    try:
        if not isinstance(value, str):
            raise ValueError
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise KeyFileError(f"key file {path}: key {key_id} has a bad timestamp") from None
    if moment.tzinfo is None:
        raise KeyFileError(f"key file {path}: key {key_id} timestamp must carry a UTC offset")
    return moment.astimezone(UTC)


def _read_masters(path: Path) -> tuple[_MasterKey, ...]:
    doc = _read_json(path)
    if doc.get("format") != MASTER_FORMAT:
        raise KeyFileError(f"key file {path}: format must be {MASTER_FORMAT!r}")
    entries = doc.get("keys")
    if not isinstance(entries, list) or not entries:
        raise KeyFileError(f"key file {path}: 'keys' must be a non-empty list")
    masters: list[_MasterKey] = []
    for entry in entries:
        if not isinstance(entry, dict) or not isinstance(entry.get("id"), str):
            raise KeyFileError(f"key file {path}: every key needs a string 'id'")
        key_id: str = entry["id"]
        status = entry.get("status")
        if status not in ("active", "retired"):
            raise KeyFileError(f"key file {path}: key {key_id} status must be active or retired")
        masters.append(
            _MasterKey(
                id=key_id,
                status=status,
                created_at=_time(path, key_id, entry.get("created_at")),
                retired_at=_optional_time(path, key_id, entry.get("retired_at")),
                material=_material(path, key_id, entry.get("material")),
            )
        )
    ids = [m.id for m in masters]
    if len(set(ids)) != len(ids):
        raise KeyFileError(f"key file {path}: duplicate key ids")
    if any("." in i or not i for i in ids):
        raise KeyFileError(f"key file {path}: key ids must be non-empty and contain no '.'")
    active = [m.id for m in masters if m.status == "active"]
    if len(active) != 1:
        raise KeyFileError(
            f"key file {path}: exactly one master key must be active, found {len(active)}"
        )
    return tuple(masters)


def _read_blind(path: Path) -> _BlindIndexKey:
    doc = _read_json(path)
    if doc.get("format") != BLIND_INDEX_FORMAT:
        raise KeyFileError(f"key file {path}: format must be {BLIND_INDEX_FORMAT!r}")
    key_id = doc.get("id")
    if not isinstance(key_id, str) or not key_id:
        raise KeyFileError(f"key file {path}: needs a string 'id'")
    created = _time(path, key_id, doc.get("created_at"))
    return _BlindIndexKey(key_id, created, _material(path, key_id, doc.get("material")))


def _dump_masters(masters: tuple[_MasterKey, ...]) -> bytes:
    doc = {
        "format": MASTER_FORMAT,
        "keys": [
            {
                "id": m.id,
                "status": m.status,
                "created_at": _iso(m.created_at),
                "retired_at": _iso(m.retired_at),
                "material": base64.b64encode(m.material).decode("ascii"),
            }
            for m in masters
        ],
    }
    return (json.dumps(doc, indent=2) + "\n").encode("ascii")


def _dump_blind(blind: _BlindIndexKey) -> bytes:
    doc = {
        "format": BLIND_INDEX_FORMAT,
        "id": blind.id,
        "created_at": _iso(blind.created_at),
        "material": base64.b64encode(blind.material).decode("ascii"),
    }
    return (json.dumps(doc, indent=2) + "\n").encode("ascii")
