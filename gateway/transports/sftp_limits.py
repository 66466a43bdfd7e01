"""Connection limits of the hosted drop box (docs/sftp.md, "Connection limits"):
one partner, or anyone on the network before logging in, must not starve the
others, and paramiko spends a thread on every connection.

- ``max_startups``: connections not logged in yet. A TCP connection beyond it is
  closed at once, before any SSH work (as OpenSSH's ``MaxStartups``); one not
  logged in after ``auth_timeout_seconds`` is closed (paramiko's own
  ``auth_timeout`` only bounds its client side).
- ``max_connections`` (all partners) and the partner's cap (its profile's
  ``max_connections``, else ``max_connections_per_partner``): logged-in sessions.
  A login beyond them is refused at authentication, with the usual SSH
  authentication failure, a log line and ``gateway_sftp_connections_refused_total``.

paramiko asks ``check_auth_publickey`` before it checks the client's signature
(and for a key offered without one), so a login takes its slot when its key or
password is accepted, under the drop box's lock (two logins never both take the
last slot): the slot counts while the connection is logged in, or for
``CLAIM_SECONDS`` after the connection's first claim. A claim whose signature then
fails, or whose client never signs, stops counting; asking again on the same
connection does not renew it, so holding a partner's slots with its public key
alone takes a stream of new connections (bounded by ``max_startups``, like any
pre-login flood). The drop box calls these functions under its lock.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

CLAIM_SECONDS = 2.0  # a connection's claim counts this long unless its login completes

STARTUPS = "max_startups"
GLOBAL = "max_connections"
PER_PARTNER = "max_connections_per_partner"


@dataclass(frozen=True, slots=True)
class Limits:
    """gateway.toml ``[sftp]``'s limits (defaults as there)."""

    max_connections: int = 200
    max_connections_per_partner: int = 10
    max_startups: int = 20
    auth_timeout: float = 30.0

    @classmethod
    def of(cls, sftp: Any) -> Limits:
        """From gateway.config.SftpServerSettings."""
        return cls(
            max_connections=sftp.max_connections,
            max_connections_per_partner=sftp.max_connections_per_partner,
            max_startups=sftp.max_startups,
            auth_timeout=sftp.auth_timeout_seconds,
        )


def logged_in(session: Any) -> bool:
    return bool(session.transport.is_authenticated())


def holds_slot(session: Any, now: float) -> bool:
    """Whether ``session`` (gateway.transports.sftp_session.Session) counts against
    the login limits: logged in, or claimed a moment ago."""
    if session.partner_id is None or not session.transport.is_active():
        return False
    return logged_in(session) or now - session.claimed < CLAIM_SECONDS


def startup_refused(sessions: Iterable[Any], limits: Limits) -> bool:
    """A new TCP connection is refused: ``max_startups`` connections wait to log in."""
    waiting = sum(1 for s in sessions if s.transport.is_active() and not logged_in(s))
    return waiting >= limits.max_startups


def login_refused(
    sessions: Iterable[Any], session: Any, partner_id: str, partner_cap: int | None, limits: Limits
) -> str | None:
    """The limit a login of ``session`` as ``partner_id`` would break (None: it may
    log in, and its slot is claimed)."""
    now = time.monotonic()
    holding = [s for s in sessions if s is not session and holds_slot(s, now)]
    if len(holding) >= limits.max_connections:
        return GLOBAL
    cap = partner_cap if partner_cap is not None else limits.max_connections_per_partner
    if sum(1 for s in holding if s.partner_id == partner_id) >= cap:
        return PER_PARTNER
    session.partner_id, session.claimed = partner_id, session.claimed or now  # never renewed
    return None


def auth_expired(session: Any, now: float, limits: Limits) -> bool:
    """Connected for longer than ``auth_timeout`` without logging in."""
    return not logged_in(session) and now - session.opened > limits.auth_timeout
