from __future__ import annotations

import base64
import json
import os
import stat
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from puhui.privacy import keys as keys_module
from puhui.privacy.errors import KeyFileError, KeyInUseError, UnknownKeyError
from puhui.privacy.keys import BLIND_INDEX_FILE, MASTER_FILE, KeyRing


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_first_run_creates_directory_and_files_with_private_modes(tmp_path: Path) -> None:
    key_dir = tmp_path / "var" / "keys"
    old_umask = os.umask(0)  # the most permissive umask must not leak into the modes
    try:
        ring = KeyRing.load_or_create(key_dir)
    finally:
        os.umask(old_umask)
    assert mode(key_dir) == 0o700
    assert mode(key_dir / MASTER_FILE) == 0o600
    assert mode(key_dir / BLIND_INDEX_FILE) == 0o600
    assert not list(key_dir.glob("*.tmp")) and not list(key_dir.glob(".*.tmp"))
    assert ring.active_master_id.startswith("mk-") and len(ring.active_master_id) == 11
    assert ring.blind_index_key_id.startswith("bi-")
    assert len(ring.master_key(ring.active_master_id)) == 32
    assert len(ring.blind_index_key) == 32
    assert ring.blind_index_key != ring.master_key(ring.active_master_id)
    (info,) = ring.master_keys
    assert info.status == "active" and info.created_at.tzinfo is not None


def test_master_file_format(tmp_path: Path) -> None:
    ring = KeyRing.load_or_create(tmp_path / "keys")
    doc = json.loads((tmp_path / "keys" / MASTER_FILE).read_text())
    assert doc["format"] == "puhui-master-keys/1"
    (entry,) = doc["keys"]
    assert entry["id"] == ring.active_master_id
    assert entry["status"] == "active" and entry["created_at"].endswith("Z")
    assert base64.b64decode(entry["material"]) == ring.master_key(ring.active_master_id)


def test_reload_is_stable(tmp_path: Path) -> None:
    first = KeyRing.load_or_create(tmp_path / "keys")
    second = KeyRing.load_or_create(tmp_path / "keys")
    third = KeyRing.load(tmp_path / "keys")
    for ring in (second, third):
        assert ring.active_master_id == first.active_master_id
        assert ring.master_key(first.active_master_id) == first.master_key(first.active_master_id)
        assert ring.blind_index_key_id == first.blind_index_key_id
        assert ring.blind_index_key == first.blind_index_key


def test_concurrent_first_run_agrees_on_one_set_of_keys(tmp_path: Path) -> None:
    rings: list[KeyRing] = []
    failures: list[BaseException] = []
    barrier = threading.Barrier(8)

    def start() -> None:
        barrier.wait()
        try:
            rings.append(KeyRing.load_or_create(tmp_path / "keys"))
        except BaseException as exc:  # e.g. "lacks blind-index-key.json" mid-creation
            failures.append(exc)

    threads = [threading.Thread(target=start) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []
    assert len(rings) == 8
    assert len({r.active_master_id for r in rings}) == 1
    assert len({r.blind_index_key for r in rings}) == 1


def test_a_first_run_under_way_is_waited_for(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The creator has written the master file but not yet the blind-index file: a second
    starter waits for it instead of refusing a directory that "lacks" a file."""
    real_create = keys_module._create_file
    master_written = threading.Event()

    def slow_create(path: Path, data: bytes) -> None:
        real_create(path, data)
        if path.name == MASTER_FILE:
            master_written.set()
            time.sleep(0.3)  # the window in which the second starter looks

    monkeypatch.setattr(keys_module, "_create_file", slow_create)
    first: list[KeyRing] = []
    creator = threading.Thread(target=lambda: first.append(KeyRing.load_or_create(tmp_path)))
    creator.start()
    assert master_written.wait(5)
    second = KeyRing.load_or_create(tmp_path)
    creator.join()
    assert second.blind_index_key == first[0].blind_index_key
    assert second.active_master_id == first[0].active_master_id


def test_load_without_files_refuses(tmp_path: Path) -> None:
    with pytest.raises(KeyFileError, match="does not exist"):
        KeyRing.load(tmp_path / "nowhere")


def test_one_missing_file_is_not_silently_recreated(tmp_path: Path) -> None:
    KeyRing.load_or_create(tmp_path / "keys")
    (tmp_path / "keys" / BLIND_INDEX_FILE).unlink()
    with pytest.raises(KeyFileError, match=r"blind-index-key\.json.*restore it from backup"):
        KeyRing.load_or_create(tmp_path / "keys")


@pytest.mark.parametrize("bad_mode", [0o644, 0o640, 0o604, 0o620, 0o660])
@pytest.mark.parametrize("name", [MASTER_FILE, BLIND_INDEX_FILE])
def test_refuses_key_files_open_to_group_or_others(
    tmp_path: Path, name: str, bad_mode: int
) -> None:
    KeyRing.load_or_create(tmp_path / "keys")
    path = tmp_path / "keys" / name
    path.chmod(bad_mode)
    with pytest.raises(KeyFileError) as caught:
        KeyRing.load(tmp_path / "keys")
    message = str(caught.value)
    assert str(path) in message
    assert f"{bad_mode:04o}" in message
    assert "must not be readable or writable by group or others" in message
    assert f"chmod 600 {path}" in message
    assert mode(path) == bad_mode  # refused, not silently "fixed"


def test_refuses_group_writable_directory(tmp_path: Path) -> None:
    KeyRing.load_or_create(tmp_path / "keys")
    (tmp_path / "keys").chmod(0o770)
    with pytest.raises(KeyFileError, match="chmod 700"):
        KeyRing.load(tmp_path / "keys")


def test_malformed_files_are_named(tmp_path: Path) -> None:
    KeyRing.load_or_create(tmp_path / "keys")
    path = tmp_path / "keys" / MASTER_FILE
    path.write_text("{not json")
    with pytest.raises(KeyFileError, match=MASTER_FILE):
        KeyRing.load(tmp_path / "keys")
    doc = {
        "format": "puhui-master-keys/1",
        "keys": [
            {
                "id": f"mk-{i}",
                "status": "active",
                "created_at": "2025-01-01T00:00:00Z",
                "retired_at": None,
                "material": base64.b64encode(bytes(32)).decode(),
            }
            for i in range(2)
        ],
    }
    path.write_text(json.dumps(doc))
    with pytest.raises(KeyFileError, match="exactly one master key must be active"):
        KeyRing.load(tmp_path / "keys")
    doc["keys"] = doc["keys"][:1]
    doc["keys"][0]["material"] = base64.b64encode(bytes(16)).decode()
    path.write_text(json.dumps(doc))
    with pytest.raises(KeyFileError, match="must be 32 bytes"):
        KeyRing.load(tmp_path / "keys")


def test_unknown_master_key_id_is_a_clear_key_error(tmp_path: Path) -> None:
    ring = KeyRing.load_or_create(tmp_path / "keys")
    with pytest.raises(KeyError) as caught:
        ring.master_key("mk-00000000")
    assert isinstance(caught.value, UnknownKeyError)
    assert "unknown master key id 'mk-00000000'" in str(caught.value)
    assert ring.active_master_id in str(caught.value)


def test_rotation_keeps_old_keys_and_writes_atomically(tmp_path: Path) -> None:
    ring = KeyRing.load_or_create(tmp_path / "keys")
    old_id = ring.active_master_id
    old_material = ring.master_key(old_id)
    stale = KeyRing.load(tmp_path / "keys")  # another process, loaded before the rotation

    new_id = ring.rotate_master()

    assert new_id != old_id and ring.active_master_id == new_id
    assert ring.master_key(old_id) == old_material  # kept for unwrapping
    statuses = {k.id: k.status for k in ring.master_keys}
    assert statuses == {old_id: "retired", new_id: "active"}
    assert mode(tmp_path / "keys" / MASTER_FILE) == 0o600
    # The stale process still works with what it has, and a reload picks up the new key.
    assert stale.master_key(old_id) == old_material
    assert stale.active_master_id == old_id
    assert stale.reload_if_changed() is True
    assert stale.active_master_id == new_id
    assert stale.reload_if_changed() is False
    assert KeyRing.load(tmp_path / "keys").active_master_id == new_id


def test_concurrent_rotations_never_lose_a_key(tmp_path: Path) -> None:
    a = KeyRing.load_or_create(tmp_path / "keys")
    b = KeyRing.load(tmp_path / "keys")
    first = a.rotate_master()
    second = b.rotate_master()  # b had not seen a's rotation; it must merge, not overwrite
    fresh = KeyRing.load(tmp_path / "keys")
    ids = [k.id for k in fresh.master_keys]
    assert first in ids and second in ids and len(ids) == 3
    assert fresh.active_master_id == second
    assert [k.status for k in fresh.master_keys].count("active") == 1


def test_drop_master_needs_retired_unused_and_grace(tmp_path: Path) -> None:
    ring = KeyRing.load_or_create(tmp_path / "keys")
    old_id = ring.active_master_id
    with pytest.raises(KeyInUseError, match="is active"):
        ring.drop_master(old_id, remaining_wrapped=0)
    new_id = ring.rotate_master()
    with pytest.raises(KeyInUseError, match="still wraps 3 data key"):
        ring.drop_master(old_id, remaining_wrapped=3, grace=timedelta(0))
    with pytest.raises(KeyInUseError, match="wait until"):
        ring.drop_master(old_id, remaining_wrapped=0)
    with pytest.raises(UnknownKeyError):
        ring.drop_master("mk-deadbeef", remaining_wrapped=0)

    later = datetime.now(UTC) + timedelta(hours=2)
    ring.drop_master(old_id, remaining_wrapped=0, now=later)

    assert [k.id for k in ring.master_keys] == [new_id]
    with pytest.raises(UnknownKeyError):
        ring.master_key(old_id)
    assert [k.id for k in KeyRing.load(tmp_path / "keys").master_keys] == [new_id]


def test_repr_shows_ids_never_material(tmp_path: Path) -> None:
    ring = KeyRing.load_or_create(tmp_path / "keys")
    ring.rotate_master()
    text = repr(ring) + str(ring) + repr(ring.master_keys)
    for info in ring.master_keys:
        assert info.id in text
        material = ring.master_key(info.id)
        for spelling in (
            base64.b64encode(material).decode(),
            material.hex(),
            repr(material),
        ):
            assert spelling not in text
    blind = ring.blind_index_key
    assert base64.b64encode(blind).decode() not in text
    assert blind.hex() not in text
    assert ring.blind_index_key_id in text
