from __future__ import annotations

import io
import logging
import random
import re
import uuid
from collections.abc import Iterator

import pytest

from puhui.privacy.masking import (
    MaskingFilter,
    install_log_masking,
    mask_address,
    mask_bank_card,
    mask_email,
    mask_id_number,
    mask_mobile,
    mask_name,
    mask_text,
    uninstall_log_masking,
)

ID = "11010519491231002X"
MOBILE = "13812345678"
CARD = "6222021234567890123"


# -- field maskers --------------------------------------------------------------------------


def test_mask_id_number() -> None:
    assert mask_id_number(ID) == "110***********002X"
    assert mask_id_number("110105491231002") == "110********1002"
    assert len(mask_id_number(ID)) == len(ID)
    assert mask_id_number("1234567") == "*******"  # too short to show anything


def test_mask_mobile() -> None:
    assert mask_mobile(MOBILE) == "138****5678"
    assert mask_mobile("+8613812345678") == "+86138****5678"
    assert mask_mobile("+86 138-1234-5678") == "+86 138****5678"
    assert mask_mobile("138 1234 5678") == "138****5678"
    assert mask_mobile("12345") == "*****"


def test_mask_bank_card() -> None:
    assert mask_bank_card(CARD) == "6222***********0123"
    assert mask_bank_card("6222 0212 3456 7890") == "6222********7890"
    assert mask_bank_card("6222-0212-3456-7890") == "6222********7890"
    assert mask_bank_card("1234") == "****"


def test_mask_name() -> None:
    assert mask_name("张三") == "张*"
    assert mask_name("李小龙") == "李**"
    assert mask_name("欧阳娜娜") == "欧***"
    assert mask_name("阿沛·阿旺晋美") == "阿*·****"
    assert mask_name("John Smith") == "J*** *****"
    assert mask_name("王") == "*"
    assert mask_name("") == ""


def test_mask_address() -> None:
    assert mask_address("北京市朝阳区建国路88号") == "北京市朝阳区****"
    assert mask_address("广东省深圳市南山区科技园科苑路15号") == "广东省深圳市南山区****"
    assert mask_address("上海市浦东新区世纪大道100号") == "上海市浦东新区****"
    assert mask_address("浙江省义乌市稠州北路1号") == "浙江省义乌市****"
    assert (
        mask_address("内蒙古自治区呼和浩特市新城区新华大街1号")
        == "内蒙古自治区呼和浩特市新城区****"
    )
    assert mask_address("朝阳区建国路88号") == "朝阳区****"
    assert mask_address("88 Jianguo Road, Beijing") == "88 Jia****"
    assert mask_address("Room 1201, 88 Jianguo Road") == "Room 1****"
    assert mask_address("") == ""


def test_mask_email() -> None:
    assert mask_email("zhangsan@example.com") == "z***@example.com"
    assert mask_email("a@example.com") == "***@example.com"
    assert mask_email("not-an-email") == "n***"


# -- free text ------------------------------------------------------------------------------


def test_mask_text_mixed_chinese_and_english() -> None:
    text = (
        f"申请人张三，身份证号{ID}，手机+86 138-1234-5678，"
        f"银行卡6222 0212 3456 7890 123; legacy id 110105491231002, "
        f"mobile:{MOBILE}, card={CARD}, mail zhangsan@example.com."
    )
    masked = mask_text(text)
    assert masked == (
        "申请人张三，身份证号110***********002X，手机+86 138****5678，"
        "银行卡6222***********0123; legacy id 110********1002, "
        "mobile:138****5678, card=6222***********0123, mail z***@example.com."
    )


@pytest.mark.parametrize(
    "text",
    [
        "amount 123456789012345.67 CNY",
        "rate 0.13812345678",
        "at 2024-11-28T12:34:56.123456+08:00",
        "compact ts 20241128123456789",
        "order 202411281234 and loan 500000 fen, 12 months",
        "USCC 91350100M000100Y43",
        "unix ms 1732781234567",
        "",
    ],
)
def test_mask_text_leaves_ordinary_numbers(text: str) -> None:
    assert mask_text(text) == text


def test_mask_text_errs_on_masking_long_digit_runs() -> None:
    assert mask_text("ref 12345678901234567890123") == "ref 1234***************0123"
    assert mask_text("13812345678,13912345678") == "138****5678,139****5678"
    assert mask_text("tel8613812345678") == "tel86138****5678"
    assert mask_text("ID11010519491231002Xyz").count("*") > 0


def test_mask_text_is_idempotent() -> None:
    once = mask_text(f"{ID} {MOBILE} {CARD}")
    assert mask_text(once) == once


# -- logging --------------------------------------------------------------------------------


@pytest.fixture
def log() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    logger = logging.getLogger(f"puhui.test.masking.{uuid.uuid4().hex}")
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    logger.addHandler(handler)
    install_log_masking(logger)
    try:
        yield logger, stream
    finally:
        uninstall_log_masking(logger)
        logger.removeHandler(handler)


def test_filter_masks_percent_args(log: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = log
    logger.info("applicant %s mobile %s card %s", ID, MOBILE, CARD)
    out = stream.getvalue()
    assert "applicant 110***********002X mobile 138****5678 card 6222***********0123" in out
    for raw in (ID, MOBILE, CARD):
        assert raw not in out


def test_filter_masks_exception_text(log: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = log
    try:
        raise ValueError(f"applicant {ID} has mobile {MOBILE}")
    except ValueError:
        logger.exception("lookup failed for %s", CARD)
    out = stream.getvalue()
    assert "Traceback" in out and "ValueError: applicant 110***********002X" in out
    for raw in (ID, MOBILE, CARD):
        assert raw not in out


def test_filter_masks_a_bare_record() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "id=%s", (ID,), None)
    assert MaskingFilter().filter(record) is True
    assert record.msg == "id=110***********002X" and record.args is None
    assert record.getMessage() == "id=110***********002X"


def test_handler_filter_covers_child_loggers_and_extras() -> None:
    parent = logging.getLogger(f"puhui.test.parent.{uuid.uuid4().hex}")
    parent.propagate = False
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(message)s %(mobile)s"))
    parent.addHandler(handler)
    install_log_masking(parent, record_factory=False)
    try:
        parent.getChild("api").warning("child says %s", ID, extra={"mobile": MOBILE})
    finally:
        uninstall_log_masking(parent)
        parent.removeHandler(handler)
    out = stream.getvalue()
    assert "child says 110***********002X 138****5678" in out
    assert ID not in out and MOBILE not in out


def test_record_factory_covers_handlers_added_later(
    log: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, _ = log
    late_stream = io.StringIO()
    late = logging.StreamHandler(late_stream)
    logger.getChild("late").addHandler(late)
    try:
        logger.getChild("late").error("mobile %s", MOBILE)
    finally:
        logger.getChild("late").removeHandler(late)
    assert late_stream.getvalue() == "mobile 138****5678\n"


def test_install_is_idempotent_and_uninstall_restores(
    log: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, _ = log
    factory = logging.getLogRecordFactory()
    install_log_masking(logger)
    assert sum(isinstance(f, MaskingFilter) for f in logger.filters) == 1
    assert sum(isinstance(f, MaskingFilter) for f in logger.handlers[0].filters) == 1
    assert logging.getLogRecordFactory() is factory
    uninstall_log_masking(logger)
    assert logging.getLogRecordFactory() is not factory
    assert not any(isinstance(f, MaskingFilter) for f in logger.filters)


# -- a sweep of generated identifiers --------------------------------------------------------

_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)


def _id_number(rng: random.Random) -> str:
    area = rng.choice(["110105", "310115", "440305", "510107", "650102"])
    body = f"{area}{rng.randint(1950, 2005)}{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}"
    body += f"{rng.randint(0, 999):03d}"
    return body + "10X98765432"[sum(int(d) * w for d, w in zip(body, _WEIGHTS, strict=True)) % 11]


def _card(rng: random.Random) -> str:
    digits = "62" + "".join(str(rng.randint(0, 9)) for _ in range(rng.randint(13, 16)))
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 0:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return digits + str((10 - total % 10) % 10)


def _mobile(rng: random.Random) -> str:
    return f"1{rng.choice('3456789')}{rng.randint(0, 999_999_999):09d}"


def _spell_mobile(rng: random.Random, m: str) -> str:
    return rng.choice(
        [
            m,
            f"+86{m}",
            f"+86 {m}",
            f"0086{m}",
            f"{m[:3]}-{m[3:7]}-{m[7:]}",
            f"{m[:3]} {m[3:7]} {m[7:]}",
        ]
    )


def _spell_card(rng: random.Random, c: str) -> str:
    if rng.random() < 0.5:
        return c
    groups = [c[i : i + 4] for i in range(0, len(c), 4)]
    return rng.choice([" ", "-"]).join(groups)


_LEAKS = {
    "id_number": re.compile(r"(?<!\d)\d{17}[\dXx](?!\d)"),
    "legacy_id": re.compile(r"(?<!\d)\d{15}(?!\d)"),
    "long_digits": re.compile(r"\d{12,}"),
    "mobile": re.compile(r"(?<!\d)1[3-9]\d[ -]?\d{4}[ -]?\d{4}(?!\d)"),
    "card": re.compile(r"\d{4}[ -]?\d{4}[ -]?\d{4}[ -]?\d{4}"),
}


def test_no_identifier_survives_logging(log: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = log
    rng = random.Random(20251128)
    templates = [
        "新申请 身份证%s 手机%s 卡号%s",
        "applicant id=%s mobile=%s card=%s ok",
        "[%s|%s|%s]",
        "id:%s, tel:%s; acct:%s.",
    ]
    expected_tails: list[str] = []
    for i in range(600):
        ident = _id_number(rng)
        legacy = ident[:6] + ident[8:17]
        mobile = _mobile(rng)
        card = _card(rng)
        expected_tails.append(mobile[-4:])
        logger.info(
            rng.choice(templates), ident, _spell_mobile(rng, mobile), _spell_card(rng, card)
        )
        logger.warning(f"legacy {legacy} and {ident.lower()} inline")  # f-string: no args
        if i % 50 == 0:
            try:
                raise RuntimeError(f"card {card} rejected for {ident}, call {mobile}")
            except RuntimeError:
                logger.exception("payout failed")
    out = stream.getvalue()
    assert out.count("\n") >= 1200
    for kind, pattern in _LEAKS.items():
        leaks = pattern.findall(out)
        assert not leaks, f"unmasked {kind}: {leaks[:5]}"
    assert all(f"****{tail}" in out for tail in expected_tails[:50])


def test_clean_records_keep_their_args_and_dirty_ones_lose_them() -> None:
    clean = logging.LogRecord(
        "x", logging.INFO, __file__, 1, "%s %s %d", ("GET", "/loans", 200), None
    )
    mask_record_ = MaskingFilter().filter
    mask_record_(clean)
    assert clean.args == ("GET", "/loans", 200) and clean.msg == "%s %s %d"
    # An identifier hidden from the rendered text (%.3s) or split across args is still caught.
    hidden = logging.LogRecord("x", logging.INFO, __file__, 1, "%.3s", (MOBILE,), None)
    mask_record_(hidden)
    assert hidden.args is None and hidden.msg == "138"
    split = logging.LogRecord("x", logging.INFO, __file__, 1, "%s%s", ("1381234", "5678"), None)
    mask_record_(split)
    assert split.args is None and split.msg == "138****5678"
    broken = logging.LogRecord("x", logging.INFO, __file__, 1, "%s %s", (MOBILE,), None)
    mask_record_(broken)
    assert broken.args is None and MOBILE not in broken.getMessage()
