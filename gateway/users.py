"""The people who use the operations console: users with a role, their login
sessions, the audit log, and the login rate limit (issue 12; docs/console.md).

- Passwords are hashed with scrypt (gateway.passwords, shared with the SFTP drop
  box), stored as ``scrypt$N$r$p$salt$hash`` (docs/decisions/0006-console.md).
- The login rate limit (:class:`LoginLimit`) is kept in the database, so every
  process serving the console on one database shares it.
- A session is a random 32-byte cookie value; the table keeps only its SHA-256, so a
  copy of the database logs nobody in. Each session has its own CSRF token.
- This module never logs a password, a cookie or a CSRF token.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import delete, func, insert, select, update

from gateway.db.engine import Database
from gateway.db.ids import new_id
from gateway.db.models_console import AuditEntry, ConsoleSession, LoginFailure, User
from gateway.passwords import (
    MAX_PASSWORD,
    MIN_PASSWORD,
    dummy_hash,
    hash_password,
    verify_password,
)

NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._@-")


class Role(StrEnum):
    VIEWER = "viewer"  # may look
    OPERATOR = "operator"  # may also replay, release, cancel
    ADMIN = "admin"  # may also manage users

    def may(self, needed: Role) -> bool:
        order = [Role.VIEWER, Role.OPERATOR, Role.ADMIN]
        return order.index(self) >= order.index(needed)


class UserError(Exception):
    """A user cannot be added or changed; the message says why."""


def check_new_user(name: str, role: str, password: str) -> Role:
    if not (0 < len(name) <= 100) or not set(name) <= NAME_CHARS:
        raise UserError("a user name is 1-100 letters, digits or . _ @ -")
    try:
        checked = Role(role)
    except ValueError:
        raise UserError("the role is viewer, operator or admin") from None
    if not (MIN_PASSWORD <= len(password) <= MAX_PASSWORD):
        raise UserError(f"the password needs {MIN_PASSWORD} to {MAX_PASSWORD} characters")
    return checked


async def add_user(db: Database, name: str, role: str, password: str, *, now: datetime) -> str:
    checked = check_new_user(name, role, password)
    hashed = await asyncio.to_thread(hash_password, password)
    async with db.write() as conn:
        found = (await conn.execute(select(User.id).where(User.name == name))).first()
        if found is not None:
            raise UserError(f"there is a user {name!r} already")
        user_id = new_id()
        await conn.execute(
            insert(User).values(
                id=user_id,
                name=name,
                role=str(checked),
                password_hash=hashed,
                disabled=False,
                created_at=now,
                updated_at=now,
            )
        )
    return user_id


async def set_disabled(db: Database, name: str, disabled: bool, *, now: datetime) -> bool:
    """Disable (or enable) a user; a disabled user's sessions end at once."""
    async with db.write() as conn:
        user_id = (await conn.execute(select(User.id).where(User.name == name))).scalar_one_or_none()
        if user_id is None:
            return False
        await conn.execute(update(User).where(User.id == user_id).values(disabled=disabled, updated_at=now))
        if disabled:
            await conn.execute(delete(ConsoleSession).where(ConsoleSession.user_id == user_id))
    return True


async def list_users(db: Database) -> list[dict[str, Any]]:
    async with db.read() as conn:
        rows = (await conn.execute(select(User).order_by(User.name))).all()
    return [
        {"name": u.name, "role": u.role, "disabled": u.disabled, "created_at": u.created_at} for u in rows
    ]


async def authenticate(db: Database, name: str, password: str) -> tuple[str, str] | None:
    """(user id, role) when the name and password match an enabled user."""
    if len(password) > MAX_PASSWORD or len(name) > 100:
        return None
    async with db.read() as conn:
        row = (await conn.execute(select(User).where(User.name == name))).first()
    # scrypt takes ~0.1 s of CPU by design: off the event loop, so a login never
    # stalls the partners' requests
    if row is None:
        await asyncio.to_thread(verify_password, password, dummy_hash())
        return None
    if not await asyncio.to_thread(verify_password, password, row.password_hash) or row.disabled:
        return None
    return row.id, row.role


# --------------------------------------------------------------------------- sessions


@dataclass(frozen=True, slots=True)
class SessionUser:
    name: str
    role: Role
    csrf_token: str
    token_hash: str


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def open_session(db: Database, user_id: str, *, now: datetime, lifetime: timedelta) -> str:
    """A new session: returns the cookie value (only its digest is stored)."""
    token = secrets.token_urlsafe(32)
    async with db.write() as conn:
        await conn.execute(delete(ConsoleSession).where(ConsoleSession.expires_at < now))
        await conn.execute(
            insert(ConsoleSession).values(
                token_hash=_digest(token),
                user_id=user_id,
                csrf_token=secrets.token_urlsafe(32),
                created_at=now,
                expires_at=now + lifetime,
            )
        )
    return token


async def session_user(db: Database, token: str, *, now: datetime) -> SessionUser | None:
    if not token or len(token) > 100:
        return None
    async with db.read() as conn:
        row = (
            await conn.execute(
                select(ConsoleSession.token_hash, ConsoleSession.csrf_token, User.name, User.role)
                .join(User, User.id == ConsoleSession.user_id)
                .where(
                    ConsoleSession.token_hash == _digest(token),
                    ConsoleSession.expires_at > now,
                    User.disabled.is_(False),
                )
            )
        ).first()
    if row is None:
        return None
    return SessionUser(
        name=row.name, role=Role(row.role), csrf_token=row.csrf_token, token_hash=row.token_hash
    )


async def close_session(db: Database, token_hash: str) -> None:
    async with db.write() as conn:
        await conn.execute(delete(ConsoleSession).where(ConsoleSession.token_hash == token_hash))


# --------------------------------------------------------------------------- audit log


async def audit(
    db: Database,
    *,
    actor: str,
    action: str,
    target: str,
    outcome: str,
    now: datetime,
    detail: str | None = None,
    client: str | None = None,
) -> None:
    async with db.write() as conn:
        await conn.execute(
            insert(AuditEntry).values(
                at=now,
                actor=actor[:100],
                action=action[:40],
                target=target[:200],
                outcome=outcome[:40],
                detail=detail[:2000] if detail else None,
                client=client[:64] if client else None,
            )
        )


async def audit_entries(db: Database, *, limit: int = 100, before: int | None = None) -> list[Any]:
    query = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit)
    if before is not None:
        query = query.where(AuditEntry.id < before)
    async with db.read() as conn:
        return list((await conn.execute(query)).all())


# --------------------------------------------------------------------------- login rate limit


@dataclass(frozen=True, slots=True)
class LoginLimit:
    """At most ``attempts`` failed logins per (user name, client address) within
    ``window``, and ``attempts * 4`` per client address whatever the names (one
    address trying many names); a success clears its own name and address's count.
    Kept in the database (``login_failures``), so every process serving the console
    on one database shares one count."""

    attempts: int = 5
    window: timedelta = timedelta(seconds=300)

    async def admit(self, db: Database, name: str, client: str, *, now: datetime) -> bool:
        """Count this attempt as failed (committed first), then whether it may go on:
        parallel attempts cannot all slip under the limit while their passwords are
        checked, since each one's count includes every attempt committed before it.
        A success then clears the count (:meth:`succeeded`)."""
        await self.failed(db, name, client, now=now)
        since = now - self.window
        recent = (
            select(LoginFailure.name_key).where(LoginFailure.client == client[:64], LoginFailure.at > since)
        ).subquery()
        query = select(func.count(), func.count().filter(recent.c.name_key == _key(name)))
        async with db.read() as conn:
            per_client, per_name = (await conn.execute(query.select_from(recent))).one()
        return int(per_name) <= self.attempts and int(per_client) <= self.attempts * 4

    async def failed(self, db: Database, name: str, client: str, *, now: datetime) -> None:
        async with db.write() as conn:
            await conn.execute(delete(LoginFailure).where(LoginFailure.at <= now - self.window))
            await conn.execute(insert(LoginFailure).values(name_key=_key(name), client=client[:64], at=now))

    async def succeeded(self, db: Database, name: str, client: str) -> None:
        async with db.write() as conn:
            await conn.execute(
                delete(LoginFailure).where(
                    LoginFailure.client == client[:64], LoginFailure.name_key == _key(name)
                )
            )


def _key(name: str) -> str:
    return name.lower()[:100]
