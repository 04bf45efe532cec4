"""Normalisers per kind, strength, and the interned link table."""

from __future__ import annotations

import numpy as np
import pytest

from puhui.fraud.links import (
    KINDS,
    STRONG_KINDS,
    LinkKind,
    LinkTable,
    RecordMeta,
    is_strong,
    kind_code,
    normalise,
)


@pytest.mark.parametrize(
    ("kind", "raw", "expected"),
    [
        ("mobile", "+86 138-1234-5678", "13812345678"),
        ("mobile", "8613812345678", "13812345678"),
        ("mobile", "0086 13812345678", "13812345678"),
        ("mobile", "１３８１２３４５６７８", "13812345678"),
        ("contact_mobile", "(+86) 139 0000 1111", "13900001111"),
        ("email", "  Zhang.San@Example.COM ", "zhang.san@example.com"),
        ("id_number", "110105 19491231 002x", "11010519491231002X"),
        ("id_number", "110105491231002", "110105491231002"),
        ("address", " 北京市 朝阳区，建国路１号（A座）", "北京市朝阳区建国路1号a座"),
        ("address", "Room 5-B, No.1 Road", "room5bno1road"),
        ("ip", " 10.0.0.1 ", "10.0.0.1"),
        ("ip", "::ffff:10.0.0.1", "10.0.0.1"),
        ("ip", "2001:0DB8:0000::0001", "2001:db8::1"),
        ("device", " ab12-cd34 ", "AB12-CD34"),
        ("bank_account", "6222 0200-1234 5678", "6222020012345678"),
        ("uscc", " 91110108 MA01ABCD2X ", "91110108MA01ABCD2X"),
        ("legal_rep", " 11010519491231002x ", "11010519491231002X"),
    ],
)
def test_normalisers(kind: str, raw: str, expected: str) -> None:
    assert normalise(kind, raw) == expected


@pytest.mark.parametrize(
    ("kind", "raw"),
    [
        ("mobile", "12345"),
        ("mobile", "23812345678"),
        ("email", "not-an-email"),
        ("email", "a@b@c.com"),
        ("id_number", "1101051949"),
        ("ip", "300.1.1.1"),
        ("uscc", "123"),
        ("bank_account", "6222*0200"),
        ("address", " ，。 "),
        ("device", "   "),
    ],
)
def test_unparseable_values_are_refused(kind: str, raw: str) -> None:
    with pytest.raises(ValueError):
        normalise(kind, raw)


def test_strength_of_each_kind() -> None:
    strong = {"device", "mobile", "email", "id_number", "uscc", "legal_rep", "bank_account"}
    assert {k.value for k in STRONG_KINDS} == strong
    assert not any(is_strong(k) for k in ("ip", "address", "contact_mobile"))
    assert len(KINDS) == 10
    with pytest.raises(ValueError, match="known kinds"):
        kind_code("fax")


def test_keys_are_interned_per_namespace() -> None:
    t = LinkTable.from_triples(
        [
            ("a", "mobile", "k1"),
            ("b", "contact_mobile", "k1"),  # a contact mobile is a mobile
            ("c", "device", "k1"),  # same text, other namespace: another key
            ("a", "mobile", "k1"),  # duplicate link: kept once
            ("d", "legal_rep", "p1"),
            ("e", "id_number", "p1"),  # a legal representative is a person
        ]
    )
    assert t.record_ids == ("a", "b", "c", "d", "e")
    assert len(t) == 5
    key_of = {
        (t.record_ids[r], KINDS[k].value): int(x)
        for r, k, x in zip(t.record, t.kind, t.key, strict=True)
    }
    assert key_of[("a", "mobile")] == key_of[("b", "contact_mobile")]
    assert key_of[("c", "device")] != key_of[("a", "mobile")]
    assert key_of[("d", "legal_rep")] == key_of[("e", "id_number")]
    assert t.n_keys == 3


def test_record_ids_fix_the_order_and_keep_records_without_links() -> None:
    t = LinkTable.from_triples([("b", LinkKind.DEVICE, "x")], ["a", "b", "c"])
    assert t.n_records == 3 and t.record.tolist() == [1]
    with pytest.raises(ValueError, match="not in record_ids"):
        LinkTable.from_triples([("z", "device", "x")], ["a"])
    with pytest.raises(ValueError, match="duplicates"):
        LinkTable.from_triples([], ["a", "a"])
    with pytest.raises(ValueError, match="empty key"):
        LinkTable.from_triples([("a", "device", "")])


def test_from_arrays_matches_from_triples_with_opaque_bytes_keys() -> None:
    triples = [("r0", "device", "aa"), ("r1", "device", "aa"), ("r1", "ip", "bb")]
    slow = LinkTable.from_triples(triples)
    fast = LinkTable.from_arrays(
        np.array([0, 1, 1]),
        np.array([kind_code("device"), kind_code("device"), kind_code("ip")]),
        np.array([b"aa", b"aa", b"bb"]),
        ["r0", "r1"],
    )
    assert fast.record.tolist() == slow.record.tolist()
    assert fast.key.tolist() == slow.key.tolist()
    assert fast.kind.tolist() == slow.kind.tolist()


def test_record_meta_checks_lengths() -> None:
    with pytest.raises(ValueError, match="timestamps"):
        RecordMeta(["a", "b"], timestamps=np.zeros(3))
