from __future__ import annotations

import base64
import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

import puhui.privacy.vault as vault_module
from puhui.privacy.errors import (
    DecryptionError,
    InvalidTokenError,
    PersonalDataErased,
    PrivacyError,
    UnknownKeyError,
)
from puhui.privacy.keys import KeyRing
from puhui.privacy.vault import (
    NONCE_BYTES,
    TAG_BYTES,
    WRAPPED_BYTES,
    DataKey,
    Vault,
    WrappedDataKey,
    decrypt_field,
    encrypt_field,
    generate_data_key,
    is_token,
    rewrap,
    token_key_id,
    unwrap,
)

ID = "11010519491231002X"
CTX = "applicants.id_number"


@pytest.fixture
def keyring(tmp_path: Path) -> KeyRing:
    return KeyRing.load_or_create(tmp_path / "keys")


def _b64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _token(version: str, key_id: str, blob: bytes) -> str:
    return f"{version}.{key_id}.{base64.urlsafe_b64encode(blob).rstrip(b'=').decode()}"


def test_round_trip(keyring: KeyRing) -> None:
    key, wrapped = generate_data_key(keyring)
    for text in (ID, "张三", "", "北京市朝阳区建国路88号 Room 1201", "🙂" * 50):
        token = encrypt_field(key, text, CTX)
        assert token.isascii()
        assert decrypt_field(key, token, CTX) == text
        assert decrypt_field(unwrap(keyring, wrapped), token, CTX) == text
    assert ID not in encrypt_field(key, ID, CTX)


def test_formats(keyring: KeyRing) -> None:
    key, wrapped = generate_data_key(keyring)
    assert re.fullmatch(r"dk-[0-9a-f]{32}", key.key_id)
    assert wrapped.key_id == key.key_id
    assert wrapped.master_key_id == keyring.active_master_id
    assert len(wrapped.wrapped) == WRAPPED_BYTES == 61
    assert wrapped.wrapped[0] == 1
    token = encrypt_field(key, ID, CTX)
    version, key_id, payload = token.split(".")
    assert (version, key_id) == ("v1", key.key_id)
    assert len(_b64(payload)) == NONCE_BYTES + len(ID) + TAG_BYTES
    assert token_key_id(token) == key.key_id
    assert is_token(token) and not is_token(ID) and not is_token("v1.dk-1.abc")
    assert WrappedDataKey.from_text(wrapped.to_text()) == wrapped


def test_context_binds_ciphertext_to_its_column(keyring: KeyRing) -> None:
    key, _ = generate_data_key(keyring)
    token = encrypt_field(key, ID, CTX)
    with pytest.raises(DecryptionError, match=r"applicants\.mobile"):
        decrypt_field(key, token, "applicants.mobile")
    with pytest.raises(ValueError):
        encrypt_field(key, ID, "")


def test_tampering_any_byte_is_detected(keyring: KeyRing) -> None:
    key, _ = generate_data_key(keyring)
    token = encrypt_field(key, ID, CTX)
    version, key_id, payload = token.split(".")
    blob = _b64(payload)
    regions = {"nonce": range(NONCE_BYTES), "ciphertext": range(NONCE_BYTES, len(blob) - 16)}
    regions["tag"] = range(len(blob) - TAG_BYTES, len(blob))
    for region, positions in regions.items():
        for i in positions:
            for bit in (0x01, 0x80):
                altered = bytearray(blob)
                altered[i] ^= bit
                with pytest.raises(DecryptionError):
                    decrypt_field(key, _token(version, key_id, bytes(altered)), CTX)
        assert positions, region
    # Truncated, extended, and every character of the text form.
    for bad in (blob[:-1], blob + b"\x00", blob[: NONCE_BYTES + TAG_BYTES - 1]):
        with pytest.raises(DecryptionError):
            decrypt_field(key, _token(version, key_id, bad), CTX)
    for i, ch in enumerate(token):
        for replacement in {"A", "b", "0", "-", "."} - {ch}:
            tampered = token[:i] + replacement + token[i + 1 :]
            with pytest.raises(DecryptionError):
                decrypt_field(key, tampered, CTX)
    with pytest.raises(InvalidTokenError):
        decrypt_field(key, token.replace("v1.", "v2.", 1), CTX)


def test_wrong_key_fails(keyring: KeyRing) -> None:
    key, _ = generate_data_key(keyring)
    other, _ = generate_data_key(keyring)
    token = encrypt_field(key, ID, CTX)
    with pytest.raises(DecryptionError, match="encrypted under data key"):
        decrypt_field(other, token, CTX)
    impostor = DataKey(key.key_id, other.material)  # right id, wrong material
    with pytest.raises(DecryptionError, match="failed authentication"):
        decrypt_field(impostor, token, CTX)


def test_errors_are_privacy_errors_without_plaintext(keyring: KeyRing) -> None:
    key, _ = generate_data_key(keyring)
    token = encrypt_field(key, ID, CTX)
    with pytest.raises(PrivacyError) as caught:
        decrypt_field(key, token, "other")
    assert ID not in str(caught.value)
    assert caught.value.code == "decryption_failed"


def test_wrapped_key_tampering_and_swaps_fail(keyring: KeyRing) -> None:
    _, wrapped = generate_data_key(keyring)
    _, other = generate_data_key(keyring)
    for i in range(1, len(wrapped.wrapped)):
        altered = bytearray(wrapped.wrapped)
        altered[i] ^= 0x01
        with pytest.raises(DecryptionError):
            unwrap(keyring, replace(wrapped, wrapped=bytes(altered)))
    # A wrapped key recorded under another data key id (a row swap) does not unwrap.
    with pytest.raises(DecryptionError):
        unwrap(keyring, replace(other, key_id=wrapped.key_id))
    with pytest.raises(DecryptionError, match="not a v1 wrapped key"):
        unwrap(keyring, replace(wrapped, wrapped=wrapped.wrapped[:-1]))
    with pytest.raises(UnknownKeyError):
        unwrap(keyring, replace(wrapped, master_key_id="mk-00000000"))


def test_rewrap_after_rotation_decrypts_same_ciphertext(keyring: KeyRing) -> None:
    key, wrapped = generate_data_key(keyring)
    token = encrypt_field(key, ID, CTX)
    old_master = keyring.active_master_id

    new_master = keyring.rotate_master()
    moved = rewrap(keyring, wrapped)

    assert moved.key_id == wrapped.key_id
    assert moved.master_key_id == new_master != old_master
    assert moved.wrapped != wrapped.wrapped
    assert decrypt_field(unwrap(keyring, moved), token, CTX) == ID  # token untouched
    assert decrypt_field(unwrap(keyring, wrapped), token, CTX) == ID  # old still readable
    assert rewrap(keyring, moved) is moved  # idempotent
    # Once nothing is wrapped under the old master it can go; the rewrapped key survives.
    keyring.drop_master(old_master, remaining_wrapped=0, now=datetime.now(UTC) + timedelta(days=1))
    assert decrypt_field(unwrap(KeyRing.load(keyring.key_dir), moved), token, CTX) == ID
    with pytest.raises(UnknownKeyError):
        unwrap(keyring, wrapped)


def test_stale_process_picks_up_a_rotation_on_demand(keyring: KeyRing) -> None:
    stale_vault = Vault(KeyRing.load(keyring.key_dir))
    keyring.rotate_master()
    key, wrapped = generate_data_key(keyring)  # wrapped under a master the stale one lacks
    token = encrypt_field(key, ID, CTX)
    assert stale_vault.decrypt(wrapped, token, CTX) == ID


def test_vault_new_keys_follow_rotation_after_refresh(keyring: KeyRing) -> None:
    now = [0.0]
    vault = Vault(KeyRing.load(keyring.key_dir), refresh_seconds=60, clock=lambda: now[0])
    first_master = keyring.active_master_id
    keyring.rotate_master()
    assert vault.new_data_key()[1].master_key_id == first_master  # not yet re-checked
    now[0] = 61.0
    assert vault.new_data_key()[1].master_key_id == keyring.active_master_id


def test_shredding_makes_decryption_impossible(keyring: KeyRing) -> None:
    vault = Vault(keyring)
    key, wrapped = vault.new_data_key()
    token = vault.encrypt(wrapped, ID, CTX)
    assert vault.decrypt(wrapped, token, CTX) == ID
    assert key.key_id in vault

    # Erasure: the store deletes the wrapped key, then tells the vault to forget it.
    stored: WrappedDataKey | None = None
    vault.forget(key.key_id)

    assert key.key_id not in vault
    with pytest.raises(PersonalDataErased) as caught:
        vault.decrypt(stored, token, CTX)
    assert caught.value.data_key_id == key.key_id
    assert caught.value.code == "personal_data_erased"
    # Nothing else in the system can decrypt it: the master key alone is useless without the
    # wrapped data key, and a new key under the same id is a different key.
    guessed, _ = generate_data_key(keyring)
    with pytest.raises(DecryptionError):
        decrypt_field(DataKey(key.key_id, guessed.material), token, CTX)


def test_decrypt_with_the_wrong_stored_key_is_refused(keyring: KeyRing) -> None:
    vault = Vault(keyring)
    _, wrapped = vault.new_data_key()
    _, other = vault.new_data_key()
    token = vault.encrypt(wrapped, ID, CTX)
    with pytest.raises(DecryptionError, match="token needs data key"):
        vault.decrypt(other, token, CTX)


def test_vault_cache_is_bounded_lru_and_expires(keyring: KeyRing) -> None:
    now = [0.0]
    vault = Vault(keyring, cache_size=3, ttl_seconds=10, clock=lambda: now[0])
    pairs = [generate_data_key(keyring) for _ in range(5)]
    for _, wrapped in pairs[:3]:
        vault.data_key(wrapped)
    vault.data_key(pairs[0][1])  # touch: most recently used
    vault.data_key(pairs[3][1])  # evicts the least recently used, pairs[1]
    assert len(vault) == 3
    assert pairs[0][0].key_id in vault and pairs[1][0].key_id not in vault
    now[0] = 11.0
    assert vault.data_key(pairs[2][1]) == pairs[2][0]  # expired entry is unwrapped again
    vault.clear()
    assert len(vault) == 0
    assert len(Vault(keyring, cache_size=0)) == 0


def test_cache_serves_without_unwrapping(keyring: KeyRing, monkeypatch: pytest.MonkeyPatch) -> None:
    vault = Vault(keyring)
    _, wrapped = vault.new_data_key()
    token = vault.encrypt(wrapped, ID, CTX)
    calls: list[str] = []
    real = vault_module.unwrap

    def counting_unwrap(ring: KeyRing, w: WrappedDataKey) -> DataKey:
        calls.append(w.key_id)
        return real(ring, w)

    monkeypatch.setattr(vault_module, "unwrap", counting_unwrap)
    for _ in range(10):
        assert vault.decrypt(wrapped, token, CTX) == ID
    assert calls == []


def test_tokens_carry_key_id(keyring: KeyRing) -> None:
    for _ in range(5):
        key, _ = generate_data_key(keyring)
        token = encrypt_field(key, "13812345678", "applicants.mobile")
        assert token.startswith(f"v1.{key.key_id}.")
        assert token_key_id(token) == key.key_id
    with pytest.raises(InvalidTokenError):
        token_key_id("13812345678")


def test_nonces_are_unique(keyring: KeyRing) -> None:
    key, _ = generate_data_key(keyring)
    tokens = [encrypt_field(key, ID, CTX) for _ in range(20_000)]
    nonces = {_b64(t.split(".")[2])[:NONCE_BYTES] for t in tokens}
    assert len(nonces) == len(tokens)
    assert len(set(tokens)) == len(tokens)  # same plaintext, never the same ciphertext
    wraps = {generate_data_key(keyring)[1].wrapped[1:13] for _ in range(2_000)}
    assert len(wraps) == 2_000


def test_data_key_repr_hides_material(keyring: KeyRing) -> None:
    key, wrapped = generate_data_key(keyring)
    vault = Vault(keyring)
    vault.data_key(wrapped)
    text = repr(key) + str(key) + repr(wrapped) + repr(vault)
    assert key.key_id in text
    for material in (key.material, wrapped.wrapped):
        assert repr(material) not in text
        assert material.hex() not in text
    with pytest.raises(ValueError):
        DataKey("dk-short", bytes(32))
    with pytest.raises(ValueError):
        DataKey(key.key_id, bytes(16))
