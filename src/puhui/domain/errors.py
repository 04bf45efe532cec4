"""Errors raised by domain rules.

Every rejection names the field that was wrong and the rule it broke, so an API can turn
it into an RFC 9457 problem with every field error listed and a person can fix the input.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class FieldError:
    """One broken rule on one input field.

    ``field`` is a dotted path (``legal_representative.id_number``); ``rule`` is a stable,
    machine-readable rule name (``gb11643.check_digit``); ``message`` explains it to a person.
    """

    field: str
    rule: str
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message} [rule {self.rule}]"

    def under(self, prefix: str) -> FieldError:
        """The same error with its field nested under ``prefix``."""
        return FieldError(
            f"{prefix}.{self.field}" if prefix else self.field, self.rule, self.message
        )


class DomainError(Exception):
    """Base of every error the business rules raise on purpose."""

    code = "domain_error"


class ValidationError(DomainError, ValueError):
    """Input broke one or more rules; nothing was changed.

    Collects every field error rather than stopping at the first, so a caller can fix all of
    them in one round trip.
    """

    code = "validation_failed"

    def __init__(self, errors: Iterable[FieldError]) -> None:
        self.errors: tuple[FieldError, ...] = tuple(errors)
        if not self.errors:
            raise ValueError("ValidationError needs at least one FieldError")
        super().__init__("; ".join(str(e) for e in self.errors))

    @classmethod
    def single(cls, field: str, rule: str, message: str) -> ValidationError:
        return cls([FieldError(field, rule, message)])

    def under(self, prefix: str) -> ValidationError:
        """The same errors with every field nested under ``prefix``."""
        return ValidationError(e.under(prefix) for e in self.errors)

    @property
    def fields(self) -> tuple[str, ...]:
        return tuple(e.field for e in self.errors)

    @property
    def rules(self) -> tuple[str, ...]:
        return tuple(e.rule for e in self.errors)


class ErrorCollector:
    """Gathers field errors from several checks and raises them together.

    >>> errors = ErrorCollector()
    >>> with errors.checking("amount"):
    ...     parse_amount(raw)
    >>> errors.raise_if_any()
    """

    def __init__(self) -> None:
        self._errors: list[FieldError] = []

    def add(self, field: str, rule: str, message: str) -> None:
        self._errors.append(FieldError(field, rule, message))

    def extend(self, error: ValidationError, prefix: str = "") -> None:
        self._errors.extend(e.under(prefix) if prefix else e for e in error.errors)

    def checking(self, prefix: str = "") -> _Capture:
        """A context manager that records a ValidationError instead of propagating it."""
        return _Capture(self, prefix)

    @property
    def errors(self) -> tuple[FieldError, ...]:
        return tuple(self._errors)

    def raise_if_any(self) -> None:
        if self._errors:
            raise ValidationError(self._errors)


class _Capture:
    def __init__(self, collector: ErrorCollector, prefix: str) -> None:
        self._collector = collector
        self._prefix = prefix

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type: object, exc: BaseException | None, tb: object) -> bool:
        if isinstance(exc, ValidationError):
            self._collector.extend(exc, self._prefix)
            return True
        return False


class InvalidTransition(DomainError):
    """A lifecycle was asked to move along a transition its current state does not allow."""

    code = "invalid_transition"

    def __init__(self, machine: str, state: str, transition: str, reason: str) -> None:
        self.machine = machine
        self.state = state
        self.transition = transition
        self.reason = reason
        super().__init__(f"{machine}: cannot {transition!r} from state {state!r}: {reason}")
