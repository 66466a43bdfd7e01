"""Exceptions of the AS2 message package, each with the MDN disposition it produces.

Every problem found while opening a received message is raised as one of these, and
each class names the RFC 4130 / RFC 5402 disposition modifier the receiver answers
with (``processed/error: <modifier>``), so the transport turns any failure into an
MDN without a lookup table of its own::

    AS2Error                       unexpected-processing-error
     ├── MimeError                 unexpected-processing-error  unreadable MIME (headers, boundary, encoding)
     │    └── LimitExceeded        unexpected-processing-error  header size, nesting depth or decompressed size cap
     ├── AuthenticationFailed      authentication-failed        no trusted, currently valid certificate verifies the signature
     │    └── UnknownPartnership   authentication-failed        AS2-From/AS2-To pair not configured (RFC 4130 §7.5.3)
     ├── IntegrityCheckFailed      integrity-check-failed       the signed content does not match its digest
     ├── DecryptionFailed          decryption-failed            none of our keys opens the envelope, or it is corrupt
     ├── DecompressionFailed       decompression-failed         compressed-data that zlib cannot inflate (RFC 5402)
     ├── InsufficientSecurity      insufficient-message-security  unsigned/unencrypted where the partnership requires it
     ├── CertificateError          unexpected-processing-error  no usable certificate or key (send side, loading)
     └── MdnError                  unexpected-processing-error  a received MDN cannot be read

The package never raises anything else for bad input: a fuzz test holds it to that.
"""

from __future__ import annotations

from enum import StrEnum


class DispositionModifier(StrEnum):
    """The ``error:`` modifiers an AS2 receiver may put in an MDN's Disposition field."""

    AUTHENTICATION_FAILED = "authentication-failed"
    DECRYPTION_FAILED = "decryption-failed"
    INTEGRITY_CHECK_FAILED = "integrity-check-failed"
    DECOMPRESSION_FAILED = "decompression-failed"
    INSUFFICIENT_MESSAGE_SECURITY = "insufficient-message-security"
    UNEXPECTED_PROCESSING_ERROR = "unexpected-processing-error"


class AS2Error(Exception):
    """Base of every error the AS2 package raises."""

    disposition: DispositionModifier = DispositionModifier.UNEXPECTED_PROCESSING_ERROR

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class MimeError(AS2Error):
    """The bytes are not a MIME entity this package can read."""


class LimitExceeded(MimeError):
    """A configured limit (header bytes, nesting depth, decompressed size) was reached."""


class AuthenticationFailed(AS2Error):
    """The signature verifies with none of the partner's currently valid certificates."""

    disposition = DispositionModifier.AUTHENTICATION_FAILED


class UnknownPartnership(AuthenticationFailed):
    """The AS2-From / AS2-To pair names no configured partnership (RFC 4130 §7.5.3)."""


class IntegrityCheckFailed(AS2Error):
    """The content does not hash to the digest that was signed: it was altered."""

    disposition = DispositionModifier.INTEGRITY_CHECK_FAILED


class DecryptionFailed(AS2Error):
    """The envelope cannot be opened with any of our keys, or its content is corrupt."""

    disposition = DispositionModifier.DECRYPTION_FAILED


class DecompressionFailed(AS2Error):
    """Compressed data that cannot be inflated."""

    disposition = DispositionModifier.DECOMPRESSION_FAILED


class InsufficientSecurity(AS2Error):
    """The partnership requires signing or encryption the message does not have."""

    disposition = DispositionModifier.INSUFFICIENT_MESSAGE_SECURITY


class CertificateError(AS2Error):
    """No usable certificate or key: none valid now, or the bytes do not load."""


class MdnError(AS2Error):
    """A received MDN cannot be read (no disposition-notification part, bad fields)."""
