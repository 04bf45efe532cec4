"""Masking by default wherever personal data leaves the core: API responses, pages, logs.

Field maskers follow common Chinese display conventions and keep the length of fixed-format
identifiers, so a masked value still looks like what it is:

=================  ======================  ======================
masker             input                   output
=================  ======================  ======================
mask_id_number     11010519491231002X      110***********002X
mask_mobile        13812345678             138****5678
mask_bank_card     6222021234567890123     6222***********0123
mask_name          欧阳娜娜                欧***
mask_address       北京市朝阳区建国路88号  北京市朝阳区****
mask_email         zhangsan@example.com    z***@example.com
=================  ======================  ======================

Bank cards keep the first 4 and last 4 digits (the "6222 **** 0123" of Chinese banking apps),
fewer than the first 6 + last 4 PCI DSS would allow: the issuer's BIN is not needed for display.

:func:`mask_text` finds identifier-shaped substrings in free text — 18-character ID numbers
(with X), 15-digit legacy IDs, mobiles (with or without +86/0086, spaces or dashes), 15 to 19
digit card numbers (also written in groups of four), e-mail addresses — and masks them. It errs
on the side of masking: any run of 15 or more digits is masked unless it is a decimal amount
(``123456789012345.67``) or a compact timestamp (``20241128123456789``) that fails the Luhn check.

Logs: :class:`MaskingFilter` renders the message (``msg % args``), masks it and clears the args
(left alone only when neither the message nor any argument holds an identifier); it also renders
and masks exception and stack text and string ``extra`` fields, and drops the live exception
object (its arguments often hold personal data that a structured handler would serialise raw).
See :func:`install_log_masking` for why a filter alone is not enough.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping
from typing import Any

from puhui.domain.identifiers import luhn_valid

MASK = "*"


def _stars(n: int) -> str:
    return MASK * max(n, 0)


def _keep(value: str, head: int, tail: int) -> str:
    """Keep ``head`` leading and ``tail`` trailing characters; star the rest (same length)."""
    if len(value) <= head + tail:
        return _stars(len(value))
    return value[:head] + _stars(len(value) - head - tail) + (value[-tail:] if tail else "")


# -- field maskers --------------------------------------------------------------------------


def mask_id_number(value: str) -> str:
    """Resident ID number: first 3 and last 4 kept, length preserved."""
    return _keep(value.strip(), 3, 4)


_MOBILE_PARTS = re.compile(r"((?:\+|00)?86[ -]?)?(1\d{2})[ -]?(\d{4})[ -]?(\d{4})")


def mask_mobile(value: str) -> str:
    """Mainland mobile: ``138****5678``; a +86/0086 prefix is kept, separators dropped."""
    text = value.strip()
    match = _MOBILE_PARTS.fullmatch(text)
    if match is None:
        return _keep(text, 3, 4)
    prefix, head, _, tail = match.groups()
    return f"{prefix or ''}{head}****{tail}"


def mask_bank_card(value: str) -> str:
    """Bank card: first 4 and last 4 digits, stars between, separators dropped."""
    digits = re.sub(r"[\s-]", "", value)
    return _keep(digits, 4, 4)


_NAME_SEPARATORS = frozenset(" ·•・.")


def mask_name(value: str) -> str:
    """Person's name: the first character kept (the surname), the rest starred.

    ``张三`` → ``张*``, ``欧阳娜娜`` → ``欧***``; separators of minority and foreign names stay
    (``阿沛·阿旺晋美`` → ``阿*·****``). One character is fully starred.
    """
    text = value.strip()
    if len(text) <= 1:
        return _stars(len(text))
    return text[0] + "".join(c if c in _NAME_SEPARATORS else MASK for c in text[1:])


_ADMIN_PREFIX = re.compile(
    r"(?:[^\d\s省市区县路街道号]{2,7}?(?:省|自治区|特别行政区))?"
    r"(?:[^\d\s省市区县路街道号]{2,9}?(?:市|自治州|地区|盟))?"
    r"(?:[^\d\s省市区县路街道号]{1,9}?(?:区|县|旗|市))?"
)


def mask_address(value: str) -> str:
    """Address: kept up to the district (县/区) when recognisable, else the first 6 characters
    (at most half of the text), then ``****``. The street and number are never shown."""
    text = value.strip()
    if not text:
        return ""
    match = _ADMIN_PREFIX.match(text)
    end = match.end() if match else 0
    if end < 2:
        end = min(6, len(text) // 2)
    return text[:end] + "****"


def mask_email(value: str) -> str:
    """E-mail: the first character of the local part, ``***``, then the domain."""
    text = value.strip()
    local, at, domain = text.rpartition("@")
    if not at:
        return (text[:1] + "***") if len(text) > 1 else _stars(len(text))
    shown = local[:1] if len(local) > 1 else ""
    return f"{shown}***@{domain}"


# -- free text ------------------------------------------------------------------------------

_TEXT = re.compile(
    r"""
    (?P<email>(?<![A-Za-z0-9._%+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,})
  | (?P<id_x>(?<!\d)\d{17}[Xx](?![A-Za-z0-9]))
  | (?P<spaced_card>(?<!\d)(?<!\d\.)\d{4}(?:[ -]\d{4}){3}(?:[ -]?\d{1,3})?(?!\d)(?!\.\d))
  | (?P<mobile>(?<!\d)(?<!\d\.)(?:(?:\+|00)?86[ -]?)?1[3-9]\d(?:[ -]?\d{4}){2}(?!\d)(?!\.\d))
  | (?P<digits>(?<!\d)(?<!\d\.)\d{15,}(?!\d)(?!\.\d))
    """,
    re.VERBOSE,
)

_TIMESTAMP = re.compile(
    r"(?:19|20)\d\d(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])(?:[01]\d|2[0-3])[0-5]\d[0-5]\d\d*"
)

_ID_PROVINCES = frozenset(
    str(code)
    for code in (
        *range(11, 16),
        *range(21, 24),
        *range(31, 38),
        *range(41, 47),
        *range(50, 55),
        *range(61, 66),
        71,
        81,
        82,
        83,
    )
)
"""First two digits of GB/T 2260 province codes (71 Taiwan, 81-83 Hong Kong, Macao, Taiwan)."""


def _mask_digits(run: str) -> str:
    if _TIMESTAMP.fullmatch(run) and not luhn_valid(run):
        return run  # 20241128123456789: a compact timestamp, not an identifier
    if len(run) in (15, 18) and run[:2] in _ID_PROVINCES:
        return mask_id_number(run)
    if len(run) == 15:
        return mask_id_number(run)
    return mask_bank_card(run)


def _replace(match: re.Match[str]) -> str:
    kind = match.lastgroup
    text = match.group(0)
    if kind == "email":
        return mask_email(text)
    if kind == "id_x":
        return mask_id_number(text)
    if kind == "spaced_card":
        return mask_bank_card(text)
    if kind == "mobile":
        return mask_mobile(text)
    return _mask_digits(text)


def mask_text(text: str) -> str:
    """``text`` with every identifier-shaped substring masked (see the module docstring)."""
    return _TEXT.sub(_replace, text)


# -- logging --------------------------------------------------------------------------------

_MARK = "_puhui_masked"
_STANDARD_ATTRS = frozenset(logging.LogRecord("", logging.INFO, "", 0, "", (), None).__dict__) | {
    "message",
    "asctime",
    "taskName",
    _MARK,
}
_EXC_FORMATTER = logging.Formatter()


def _args_clean(record: logging.LogRecord) -> bool:
    """Whether every %-argument is free of identifiers as it stands (its ``str`` unchanged)."""
    args = record.args
    values = args.values() if isinstance(args, Mapping) else (args or ())
    try:
        return all(mask_text(text) == text for text in (str(v) for v in values))
    except Exception:  # a __str__ that raises: treat as unclean, render and clear
        return False


def mask_record(record: logging.LogRecord) -> logging.LogRecord:
    """Mask a log record in place (idempotent) and return it.

    If the rendered message contains something to mask, it replaces ``msg`` and ``args`` is
    cleared, so no handler can re-render (or serialise) the raw arguments. If neither the
    message nor any argument holds an identifier, ``msg`` and ``args`` are left as they were:
    formatters that read ``record.args`` themselves (uvicorn's access log) keep working.
    """
    if not getattr(record, _MARK, False):
        rendered = True
        try:
            message = record.getMessage()
        except Exception:  # bad %-args: keep what can be shown, masked, rather than crash
            message = f"{record.msg!s} (unformattable args: {record.args!r})"
            rendered = False
        masked = mask_text(message)
        if (
            not rendered
            or masked != message
            or not isinstance(record.msg, str)
            or not _args_clean(record)
        ):
            record.msg = masked
            record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = _EXC_FORMATTER.formatException(record.exc_info)
        record.exc_info = None  # the text stays; the live exception (and its args) go
        if record.exc_text:
            record.exc_text = mask_text(record.exc_text)
        if record.stack_info:
            record.stack_info = mask_text(record.stack_info)
        setattr(record, _MARK, True)
    # ``extra`` fields are attached after the record factory runs, so check them every time.
    for name, value in list(record.__dict__.items()):
        if name not in _STANDARD_ATTRS and isinstance(value, str):
            setattr(record, name, mask_text(value))
    return record


class MaskingFilter(logging.Filter):
    """A filter that masks every record passing through it; it never drops a record."""

    def filter(self, record: logging.LogRecord) -> bool:
        mask_record(record)
        return True


_previous_factory: Callable[..., logging.LogRecord] | None = None


def _masking_factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
    assert _previous_factory is not None
    return mask_record(_previous_factory(*args, **kwargs))


def install_log_masking(
    logger: logging.Logger | None = None, *, record_factory: bool = True
) -> MaskingFilter:
    """Mask everything logged through ``logger`` (default: the root logger). Idempotent.

    Three layers, because each alone leaves a gap:

    * The filter goes on each of the logger's **current handlers** — handler filters see every
      record that reaches the handler, including those propagated from child loggers.
    * It also goes on the **logger itself**, covering records logged on it directly even if
      a handler is added later. (A logger's own filters do *not* run for records propagated
      from child loggers such as ``puhui.api``; that is Python's logging design.)
    * With ``record_factory`` (default) the process-wide **log record factory** masks every
      record as it is created, whichever logger or handler — including handlers added later,
      by uvicorn or a library — ends up emitting it. Extras set via ``extra=`` are attached
      after the factory runs; the handler and logger filters catch those.

    Undo with :func:`uninstall_log_masking`.
    """
    global _previous_factory
    target = logger if logger is not None else logging.getLogger()
    existing = [f for f in target.filters if isinstance(f, MaskingFilter)]
    masking = existing[0] if existing else MaskingFilter()
    if not existing:
        target.addFilter(masking)
    for handler in target.handlers:
        if not any(isinstance(f, MaskingFilter) for f in handler.filters):
            handler.addFilter(masking)
    if record_factory and logging.getLogRecordFactory() is not _masking_factory:
        _previous_factory = logging.getLogRecordFactory()
        logging.setLogRecordFactory(_masking_factory)
    return masking


def uninstall_log_masking(logger: logging.Logger | None = None) -> None:
    """Remove what :func:`install_log_masking` added (filters and the record factory)."""
    global _previous_factory
    target = logger if logger is not None else logging.getLogger()
    for holder in (target, *target.handlers):
        for f in [f for f in holder.filters if isinstance(f, MaskingFilter)]:
            holder.removeFilter(f)
    if logging.getLogRecordFactory() is _masking_factory and _previous_factory is not None:
        logging.setLogRecordFactory(_previous_factory)
        _previous_factory = None
