"""AS2 messages without I/O: S/MIME wrap and unwrap, MIC, MDN (RFC 4130, 5751, 3274, 8098).

Bytes in, values out. Receiving::

    msg = unwrap(http_headers, body, partner_certs=..., our_keys=...)
    mdn = build_mdn(original_message_id=..., final_recipient=..., mic=msg.mic, sign_with=our_keys)

and on failure ``Disposition.for_error(exc)`` turns any ``AS2Error`` into the MDN
disposition. Sending::

    out = build_message(payload, options=SendOptions(...), our_keys=..., partner_certs=...)
    headers = {**as2_headers(as2_from=..., as2_to=..., message_id=...), **out.headers}
    report = parse_mdn(mdn_headers, mdn_body, partner_certs=...)
    report.mic.matches(out.mic)

This package must never import the service (``gateway``), the translators, or
anything that does I/O (sockets, asyncio, databases): an import contract holds it.
"""

from as2.build import (
    AS2_VERSION,
    Compression,
    OutgoingMessage,
    SendOptions,
    TransferEncoding,
    as2_headers,
    build_message,
    make_message_id,
    quote_as2_name,
    unquote_as2_name,
)
from as2.certs import (
    KeyPair,
    Validity,
    days_until_expiry,
    generate_self_signed,
    key_pair_pem,
    load_certificates,
    load_key_pair,
    load_private_key,
    newest_valid,
    newest_valid_key,
    valid_certificates,
    validity,
)
from as2.errors import (
    AS2Error,
    AuthenticationFailed,
    CertificateError,
    DecompressionFailed,
    DecryptionFailed,
    DispositionModifier,
    InsufficientSecurity,
    IntegrityCheckFailed,
    LimitExceeded,
    MdnError,
    MimeError,
    UnknownPartnership,
)
from as2.mdn import Disposition, MdnReport, OutgoingMdn, build_mdn, parse_mdn
from as2.mic import Mic, MicalgSpelling, ReceiptRequest, disposition_options, parse_disposition_options
from as2.unwrap import ReceivedMessage, ReceiveLimits, unwrap

__all__ = [
    "AS2_VERSION",
    "AS2Error",
    "AuthenticationFailed",
    "CertificateError",
    "Compression",
    "DecompressionFailed",
    "DecryptionFailed",
    "Disposition",
    "DispositionModifier",
    "InsufficientSecurity",
    "IntegrityCheckFailed",
    "KeyPair",
    "LimitExceeded",
    "MdnError",
    "MdnReport",
    "Mic",
    "MicalgSpelling",
    "MimeError",
    "OutgoingMdn",
    "OutgoingMessage",
    "ReceiptRequest",
    "ReceiveLimits",
    "ReceivedMessage",
    "SendOptions",
    "TransferEncoding",
    "UnknownPartnership",
    "Validity",
    "as2_headers",
    "build_mdn",
    "build_message",
    "days_until_expiry",
    "disposition_options",
    "generate_self_signed",
    "key_pair_pem",
    "load_certificates",
    "load_key_pair",
    "load_private_key",
    "make_message_id",
    "newest_valid",
    "newest_valid_key",
    "parse_disposition_options",
    "parse_mdn",
    "quote_as2_name",
    "unquote_as2_name",
    "unwrap",
    "valid_certificates",
    "validity",
]
