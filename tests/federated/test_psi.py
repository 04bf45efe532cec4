"""DH-PSI (X25519 form, protocol v2): exactness, unlinkability, validation, the wire, backends."""

from __future__ import annotations

import ctypes
import hashlib
import random

import pytest

from puhui.federated.psi import DEFAULT_PREFIX, PsiError, PsiParty, _from_hash, hash_to_group


def _sets(seed: int, n_guest: int, n_host: int, overlap: int) -> tuple[list[str], list[str]]:
    """Two shuffled sets of unified social credit code-like ids with ``overlap`` in common."""
    rng = random.Random(seed)
    pool = [f"91{rng.randrange(10**16):016d}" for _ in range(n_guest + n_host)]
    assert len(set(pool)) == len(pool)
    shared = pool[:overlap]
    guest = shared + pool[overlap:n_guest]
    host = shared + pool[n_guest : n_guest + n_host - overlap]
    rng.shuffle(guest)
    rng.shuffle(host)
    return guest, host


def _run(
    guest_ids: list[str], host_ids: list[str], wire: list[object] | None = None, **kw: object
) -> list[tuple[int, int]]:
    """The three-message exchange; every message is appended to ``wire`` as it is sent."""
    guest, host = PsiParty.from_seed("guest", **kw), PsiParty.from_seed("host", **kw)
    wire = [] if wire is None else wire
    msg1 = guest.blind(guest_ids)
    wire.append(msg1)
    msg2 = (host.reblind(msg1), host.blind(host_ids))
    wire.append(msg2)
    pairs = guest.intersect(msg2[0], guest.reblind(msg2[1]))
    wire.append([j for _, j in pairs])
    return pairs


def test_finds_exactly_the_overlap() -> None:
    guest_ids, host_ids = _sets(7, 3000, 2000, 700)
    pairs = _run(guest_ids, host_ids)
    expected = set(guest_ids) & set(host_ids)
    assert len(pairs) == len(expected) == 700
    assert all(guest_ids[i] == host_ids[j] for i, j in pairs)  # nothing else matches
    assert {guest_ids[i] for i, _ in pairs} == expected
    assert [i for i, _ in pairs] == sorted(i for i, _ in pairs)


def test_parallel_paths_agree_with_serial() -> None:
    guest_ids, host_ids = _sets(11, 900, 800, 300)
    serial = _run(guest_ids, host_ids, workers=1)
    for mode in ("threads", "processes"):
        assert _run(guest_ids, host_ids, parallel=mode, parallel_threshold=100) == serial


def test_order_of_inputs_does_not_matter() -> None:
    guest_ids, host_ids = _sets(3, 500, 400, 150)
    base = {(guest_ids[i], host_ids[j]) for i, j in _run(guest_ids, host_ids)}
    rng = random.Random(5)
    g2, h2 = guest_ids[:], host_ids[:]
    rng.shuffle(g2)
    rng.shuffle(h2)
    assert {(g2[i], h2[j]) for i, j in _run(g2, h2)} == base
    swapped = {(h2[i], g2[j]) for i, j in _run(h2, g2)}  # roles exchanged
    assert swapped == base


def test_empty_and_disjoint_sets() -> None:
    guest_ids, host_ids = _sets(1, 50, 50, 0)
    assert _run(guest_ids, host_ids) == []
    assert _run([], host_ids) == []
    assert _run(guest_ids, []) == []


def test_unlinkable_but_commuting() -> None:
    a, b = PsiParty.from_seed(1), PsiParty.from_seed(2)
    ids = ["913301001234567890", "张三小卖部"]
    blind_a, blind_b = a.blind(ids), b.blind(ids)
    assert not set(blind_a) & set(blind_b)  # same ids, different secrets: nothing in common
    assert b.reblind(blind_a) == a.reblind(blind_b)  # H(x)^(ab) == H(x)^(ba)
    assert PsiParty().blind(ids) != PsiParty().blind(ids)  # fresh OS secrets differ


def test_invalid_peer_points_raise() -> None:
    party = PsiParty.from_seed(1)
    good = PsiParty.from_seed(2).blind(["x"])[0]
    with pytest.raises(PsiError, match="non-canonical point at position 1"):
        party.reblind([good, b"\xff" * 32])  # top bit set
    p_bytes = (2**255 - 19).to_bytes(32, "little")  # p itself: zero, written the long way
    with pytest.raises(PsiError, match="non-canonical point at position 2"):
        party.reblind([good, good, p_bytes])
    with pytest.raises(PsiError, match="peer point at position 0 has small order"):
        party.reblind([bytes(32)])  # u = 0: the point of order 2
    one = (1).to_bytes(32, "little")  # u = 1: a point of order 4
    with pytest.raises(PsiError, match="peer point at position 1 has small order"):
        party.reblind([good, one])
    with pytest.raises(PsiError, match="not 32"):
        party.reblind([good[:31]])
    with pytest.raises(PsiError, match="not 32"):
        party.intersect([good], [good + b"\x00"])


def test_duplicates_and_bad_scalars_rejected() -> None:
    party = PsiParty.from_seed(1)
    twice = party.blind(["a", "a"])
    with pytest.raises(PsiError, match="duplicate"):
        party.intersect(twice, [])
    with pytest.raises(PsiError, match="duplicate"):
        party.intersect([], twice)
    for bad, rule in (
        (bytes(32), "not one byte repeated"),
        (b"\xff" * 32, "not one byte repeated"),
        (b"\x01" * 31, "32 bytes, got 31"),
    ):
        with pytest.raises(PsiError, match=rule):
            PsiParty(bad)
    assert "scalar" not in repr(party)


def test_domain_separation() -> None:
    ident = "913301001234567890"
    assert hash_to_group(ident) != hash_to_group(ident, b"other-protocol:")
    one = PsiParty.from_seed(9).blind([ident])
    other = PsiParty.from_seed(9, prefix=b"puhui-psi/v3:").blind([ident])
    assert one != other
    assert PsiParty.from_seed(9).blind([ident]) == one  # deterministic for a given secret


def _ristretto_encoding(ident: str) -> bytes:
    out = ctypes.create_string_buffer(32)
    _from_hash()(ctypes.addressof(out), hashlib.sha512(DEFAULT_PREFIX + ident.encode()).digest())
    return out.raw


def test_nothing_identifying_crosses_the_wire() -> None:
    guest_ids, host_ids = _sets(21, 300, 300, 100)
    wire: list[object] = []
    _run(guest_ids, host_ids, wire)

    def flatten(obj: object) -> list[bytes]:
        if isinstance(obj, bytes):
            return [obj]
        if isinstance(obj, int):
            return [str(obj).encode()]
        assert isinstance(obj, list | tuple)
        return [b for item in obj for b in flatten(item)]

    sent = flatten(wire)
    blob = b"".join(sent)
    forbidden: set[bytes] = set()
    for ident in guest_ids + host_ids:
        raw = ident.encode()
        forbidden |= {
            raw,
            hashlib.sha512(raw).digest(),
            hashlib.sha512(DEFAULT_PREFIX + raw).digest(),
            hashlib.sha256(raw).digest(),
            hash_to_group(ident),  # unblinded H(id) would allow a dictionary attack
            _ristretto_encoding(ident),  # ... and so would the encoding it is derived from
        }
    assert not forbidden & set(sent)
    for value in forbidden:
        if len(value) >= 16:
            assert value[:16] not in blob
    assert all(len(p) == 32 for p in sent if len(p) > 8)
