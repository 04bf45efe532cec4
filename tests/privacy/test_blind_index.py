from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest

from puhui.domain.errors import ValidationError
from puhui.privacy.blind_index import BlindIndexer, IndexKind, normalise
from puhui.privacy.keys import KeyRing

KEY = bytes(range(32))


@pytest.fixture
def indexer() -> BlindIndexer:
    return BlindIndexer(KEY, "bi-test")


def test_deterministic_fixed_length_hex(indexer: BlindIndexer) -> None:
    first = indexer.index("mobile", "13812345678")
    assert first == indexer.index(IndexKind.MOBILE, "13812345678")
    assert first == BlindIndexer(KEY, "bi-test").index("mobile", "13812345678")
    assert re.fullmatch(r"[0-9a-f]{32}", first)
    assert indexer.index("mobile", "13812345679") != first


@pytest.mark.parametrize(
    ("kind", "spellings"),
    [
        (
            "mobile",
            [
                "13812345678",
                "+86 138-1234-5678",
                "0086 13812345678",
                "8613812345678",
                "138 1234 5678",
                "１３８１２３４５６７８",
            ],
        ),
        (
            "id_number",
            [
                "11010519491231002X",
                "11010519491231002x",
                " 110105 19491231 002x ",
                "１１０１０５１９４９１２３１００２Ｘ",
            ],
        ),
        ("id_number", ["130503670401001", "130503196704010016"]),  # legacy 15 → 18 digits
        ("uscc", ["91350100M000100Y43", "91350100m000100y43", "9135 0100 M000 100Y 43"]),
        (
            "bank_card",
            ["6222021234567890123", "6222 0212 3456 7890 123", "6222-0212-3456-7890-123"],
        ),
        ("name", ["张三", " 张 三 ", "张　三"]),
        ("name", ["阿沛·阿旺晋美", "阿沛•阿旺晋美", "阿沛 · 阿旺晋美", "阿沛・阿旺晋美"]),
        ("name", ["John Smith", "JOHN  SMITH", "john smith "]),
        (
            "address",
            ["北京市朝阳区建国路88号", "北京市 朝阳区 建国路８８号", "北京市朝阳区建国路88号\n"],
        ),
        ("company_name", ["普惠科技（北京）有限公司", "普惠科技(北京)有限公司"]),
        ("email", ["ZhangSan@Example.COM", " zhangsan@example.com"]),
        ("ip", ["2001:db8::1", "2001:0DB8:0000:0000:0000:0000:0000:0001"]),
        ("ip", ["192.168.0.1", "::ffff:192.168.0.1", " 192.168.0.1 "]),
        ("device", ["ABCDEF01-2345", "abcdef01-2345"]),
    ],
)
def test_normalisation_equivalences(indexer: BlindIndexer, kind: str, spellings: list[str]) -> None:
    assert len({normalise(kind, s) for s in spellings}) == 1
    assert len({indexer.index(kind, s) for s in spellings}) == 1


def test_normalised_forms(indexer: BlindIndexer) -> None:
    assert normalise("mobile", "+86 138-1234-5678") == "13812345678"
    assert normalise("id_number", " 11010519491231002x") == "11010519491231002X"
    assert normalise("bank_card", "6222 0212 3456 7890") == "6222021234567890"
    assert normalise("name", "张 三") == "张三"
    assert normalise("name", "John  Smith") == "john smith"


def test_different_values_stay_different(indexer: BlindIndexer) -> None:
    assert indexer.index("name", "张三") != indexer.index("name", "张叁")
    assert indexer.index("id_number", "11010519491231002X") != indexer.index(
        "id_number", "110105194912310021"
    )


def test_domain_separation(indexer: BlindIndexer) -> None:
    digits = "6222021234567890123"
    per_kind = {k: indexer.index(k, digits) for k in ("bank_card", "device", "name", "address")}
    assert len(set(per_kind.values())) == len(per_kind)
    assert indexer.index("mobile", "13812345678") != indexer.index("bank_card", "13812345678")
    assert indexer.index("name", "北京") != indexer.index("address", "北京")
    assert indexer.index("name", "北京") != indexer.index("company_name", "北京")


def test_different_key_gives_different_index(indexer: BlindIndexer) -> None:
    other = BlindIndexer(bytes(reversed(range(32))), "bi-other")
    assert indexer.index("mobile", "13812345678") != other.index("mobile", "13812345678")


def test_from_keyring(tmp_path: Path) -> None:
    ring = KeyRing.load_or_create(tmp_path / "keys")
    a = BlindIndexer.from_keyring(ring)
    b = BlindIndexer.from_keyring(KeyRing.load(tmp_path / "keys"))
    assert a.key_id == ring.blind_index_key_id
    assert a.index("uscc", "91350100M000100Y43") == b.index("uscc", "91350100M000100Y43")


def test_no_plaintext_or_plain_hash_in_output(indexer: BlindIndexer) -> None:
    for kind, value in [
        ("mobile", "13812345678"),
        ("id_number", "11010519491231002X"),
        ("bank_card", "6222021234567890123"),
    ]:
        out = indexer.index(kind, value)
        assert value not in out and value.lower() not in out
        assert out not in hashlib.sha256(value.encode()).hexdigest()
        assert out not in hashlib.md5(value.encode()).hexdigest()
    assert repr(indexer) == "BlindIndexer(key_id='bi-test')"


def test_unknown_kind_and_empty_values(indexer: BlindIndexer) -> None:
    with pytest.raises(ValueError, match="unknown blind-index kind 'mobil'"):
        indexer.index("mobil", "13812345678")
    with pytest.raises(ValidationError) as caught:
        indexer.index("mobile", "+-- ")
    assert caught.value.rules == ("blind_index.empty",)
    assert indexer.index_or_none("mobile", None) is None
    assert indexer.index_or_none("mobile", "  ") is None
    assert indexer.index_or_none("mobile", "13812345678") == indexer.index("mobile", "13812345678")


def test_short_key_refused() -> None:
    with pytest.raises(ValueError):
        BlindIndexer(b"short", "bi-x")
