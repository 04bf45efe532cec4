"""Errors raised by the privacy layer.

They derive from :class:`puhui.domain.errors.DomainError` so the API turns every one of them
into an RFC 9457 problem with a stable ``code``. None of them ever carries personal data or key
material in its message: a subject is named by an opaque reference, a key by its id.
"""

from __future__ import annotations

from puhui.domain.errors import DomainError


class PrivacyError(DomainError):
    """Base of every error the privacy layer raises on purpose."""

    code = "privacy_error"


class KeyFileError(PrivacyError):
    """A key file or the key directory is missing, malformed or unsafely exposed.

    The message names the file and the rule it broke, so an operator can fix it.
    """

    code = "key_file_error"


class UnknownKeyError(PrivacyError, KeyError):
    """A key id that the keyring (or a cache) does not hold.

    A ``KeyError`` too, so ``except KeyError`` around a lookup keeps working; ``str()`` shows
    the plain message rather than ``KeyError``'s quoted repr.
    """

    code = "unknown_key"

    def __init__(self, key_id: str, message: str | None = None) -> None:
        self.key_id = key_id
        self.message = message or f"unknown key id {key_id!r}"
        super().__init__(self.message)

    def __str__(self) -> str:
        return self.message


class KeyInUseError(PrivacyError):
    """A key cannot be dropped or retired yet: it is active or still wraps data keys."""

    code = "key_in_use"


class DecryptionError(PrivacyError):
    """A ciphertext could not be authenticated and decrypted.

    Raised for a tampered token, a wrong data key, a wrong context (a ciphertext moved to
    another column) or a malformed token. AES-GCM cannot tell these apart on purpose, so the
    message says which checks were made, never what the plaintext was.
    """

    code = "decryption_failed"


class InvalidTokenError(DecryptionError):
    """A string that is not a well-formed field token (wrong version, id or encoding)."""

    code = "invalid_token"


class ConsentRequired(PrivacyError):
    """Processing for ``purpose`` needs a consent from ``subject`` that is not on record.

    ``subject`` is an opaque subject reference (an applicant or party id), never a raw
    identifier such as an ID number or a mobile.
    """

    code = "consent_required"

    def __init__(self, purpose: str, subject: str, message: str | None = None) -> None:
        self.purpose = purpose
        self.subject = subject
        super().__init__(
            message or f"no valid consent from subject {subject!r} for purpose {purpose!r}"
        )


class PersonalDataErased(PrivacyError):
    """The data key a ciphertext needs has been shredded: the personal data is gone for good.

    This is the expected outcome after an erasure request (PIPL Art. 47), not a fault; callers
    show "erased" rather than retrying.
    """

    code = "personal_data_erased"

    def __init__(
        self,
        data_key_id: str | None = None,
        subject: str | None = None,
        message: str | None = None,
    ) -> None:
        self.data_key_id = data_key_id
        self.subject = subject
        if message is None:
            what = f"data key {data_key_id!r}" if data_key_id else "the data key"
            whose = f" of subject {subject!r}" if subject else ""
            message = f"{what}{whose} has been erased; the personal data cannot be decrypted"
        super().__init__(message)
