"""Logging in to a partner's SFTP server with its host key pinned.

:func:`connect` offers only the pinned key's algorithm, compares the key the
server presents with the profile's ``host_key`` before anything else is sent,
and refuses any other key (:class:`HostKeyRefused`): a key is never learned or
accepted on first use. Then it logs in with the profile's private key and/or its
password (``password_env`` / ``password_file``), never before the host key matched. Blocking (paramiko); callers run it in a thread.
"""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import paramiko

from gateway.partner_settings import SecretUnavailable
from gateway.transports.sftp_keys import describe, host_key_types, load_private_key, matches


class HostKeyRefused(Exception):
    """The server presented a host key other than the pinned one."""


class Connection:
    """An open SFTP session on a partner's server; close it."""

    def __init__(self, transport: paramiko.Transport, sftp: paramiko.SFTPClient) -> None:
        self.transport = transport
        self.sftp = sftp

    def close(self) -> None:
        self.sftp.close()
        self.transport.close()

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def _log_in(transport: paramiko.Transport, settings: Any) -> None:
    """The private key when the profile has one; the password (read now from its
    ``password_env`` / ``password_file``) when it has one and the key was refused or
    absent. The password is sent only after the host key matched."""
    if settings.private_key is not None:
        try:
            transport.auth_publickey(settings.username, load_private_key(Path(settings.private_key)))
            return
        except paramiko.AuthenticationException:
            if not settings.has_password or not transport.is_active():
                raise
    try:
        password = settings.secret_value()
    except SecretUnavailable as exc:
        raise paramiko.AuthenticationException(f"sftp.{exc}") from None
    transport.auth_password(settings.username, password)


def connect(settings: Any) -> Connection:
    """Log in as the ``[sftp]`` poll table says (see the module doc). Raises
    HostKeyRefused, paramiko.AuthenticationException, paramiko.SSHException or OSError."""
    timeout = settings.timeout_seconds
    sock = socket.create_connection((settings.host, settings.port), timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    transport = paramiko.Transport(sock)
    try:
        transport.banner_timeout = timeout
        transport.auth_timeout = timeout
        transport.get_security_options().key_types = host_key_types(settings.host_key)
        transport.start_client(timeout=timeout)
        presented = transport.get_remote_server_key()
        if not matches(presented, settings.host_key):
            raise HostKeyRefused(
                f"{settings.host}:{settings.port} presented host key {describe(presented)[:60]}..., "
                "not the pinned sftp.host_key"
            )
        _log_in(transport, settings)
        sftp = paramiko.SFTPClient.from_transport(transport)
        if sftp is None:
            raise paramiko.SSHException("the server refused the sftp subsystem")
        channel = sftp.get_channel()
        if channel is not None:
            channel.settimeout(timeout)
    except BaseException:
        transport.close()
        raise
    return Connection(transport, sftp)
