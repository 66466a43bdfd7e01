"""``channel = "sftp"``: outbox items become files.

- ``mode = "hosted"``: written into the partner's ``/outbound`` on our drop box
  (a hidden temporary file, fsynced, then renamed), where it collects them.
- ``mode = "poll"``: uploaded to ``outbound_path`` on the partner's server under a
  hidden temporary name, then renamed (posix-rename, so the partner never sees a
  half-written file).

The file name comes from the profile's ``filename`` template and the item's
creation time, so a re-send of the same item (after a crash before the outcome
was recorded) writes the same name again instead of a second file.

Outcomes: network and SSH errors are TRANSIENT. A refused host key or a refused
login are TRANSIENT too, logged at WARNING (the host key also counted in
``gateway_sftp_host_key_refused_total``): nothing was sent, and the fix is a
profile change (a new pinned key, a new key pair) after which the queued items
should flow without a replay; the outbox's max_attempts and max_age still
dead-letter them if nobody acts. The server refusing the path (permission
denied, no such folder) is PERMANENT, like a 4xx.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import re
import time
from pathlib import Path
from typing import Any, ClassVar

import paramiko

from gateway.ports import Clock, OutboundItem, SendOutcome, SendResult
from gateway.transports import sftp_jail as jail
from gateway.transports.sftp_client import HostKeyRefused, connect

log = logging.getLogger(__name__)

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


def file_name(template: str, item: OutboundItem) -> str:
    """The item's file name from the profile's template; anything but letters,
    digits, ``.``, ``_`` and ``-`` becomes ``_``."""
    name = template.format(
        kind=item.kind,
        interchange_control=f"{item.interchange_control or 0:09d}",
        timestamp=item.created_at.strftime("%Y%m%dT%H%M%S%fZ"),
        id=item.id,
        partner=item.partner_id,
    )
    return _UNSAFE.sub("_", name).lstrip(".") or item.id


class SftpTransport:
    channel: ClassVar[str] = "sftp"
    push: ClassVar[bool] = True

    def __init__(self, clock: Clock, sftp_root: Path, metrics: Any = None) -> None:
        self.clock = clock
        self.sftp_root = sftp_root  # <data_dir>/sftp: the hosted boxes
        self.metrics = metrics

    async def send(self, item: OutboundItem, partner: Any) -> SendResult:
        sftp = partner.sftp
        if partner.delivery.channel != self.channel or sftp is None:
            return SendResult(SendOutcome.PERMANENT, f"partner {item.partner_id} has no SFTP delivery now")
        name = file_name(sftp.filename, item)
        started = time.perf_counter()
        if sftp.mode == "hosted":
            result = await asyncio.to_thread(self._place, item, name, sftp.archive)
        else:
            result = await asyncio.to_thread(self._upload, item, name, sftp)
        return SendResult(
            result.outcome,
            result.detail,
            transport_id=name,
            duration_ms=(time.perf_counter() - started) * 1000,
        )

    def _place(self, item: OutboundItem, name: str, archive: bool) -> SendResult:
        box = jail.box_dir(self.sftp_root, item.partner_id)
        try:
            jail.ensure_box(box, archive=archive)
            temp = box / jail.OUTGOING / f"{item.id}.tmp"
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
            try:
                os.write(fd, item.payload)
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(temp, box / jail.OUTBOUND / name)
            dfd = os.open(box / jail.OUTBOUND, os.O_RDONLY)
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)
        except OSError as exc:
            return SendResult(SendOutcome.TRANSIENT, f"cannot write {name} to /outbound: {exc}")
        return SendResult(SendOutcome.SENT, f"/outbound/{name}")

    def _upload(self, item: OutboundItem, name: str, sftp: Any) -> SendResult:
        final = f"{sftp.outbound_path.rstrip('/')}/{name}"
        temp = f"{sftp.outbound_path.rstrip('/')}/.{name}.part"
        try:
            with connect(sftp) as conn:
                with conn.sftp.open(temp, "wb") as fh:
                    fh.set_pipelined(True)
                    fh.write(item.payload)
                try:
                    conn.sftp.posix_rename(temp, final)
                except OSError:
                    # No posix-rename extension: plain rename refuses to overwrite.
                    with contextlib.suppress(FileNotFoundError):
                        conn.sftp.remove(final)
                    conn.sftp.rename(temp, final)
        except HostKeyRefused as exc:
            log.warning("sftp: partner %s: host key refused, nothing sent: %s", item.partner_id, exc)
            if self.metrics is not None:
                self.metrics.sftp_host_key_refused[item.partner_id] += 1
            return SendResult(SendOutcome.TRANSIENT, f"host key refused: {exc}")
        except paramiko.AuthenticationException as exc:
            log.warning("sftp: partner %s: login as %r refused: %s", item.partner_id, sftp.username, exc)
            return SendResult(SendOutcome.TRANSIENT, f"login refused: {exc}")
        except OSError as exc:
            if exc.errno in (errno.EACCES, errno.ENOENT) and not isinstance(
                exc, ConnectionError | TimeoutError
            ):
                return SendResult(SendOutcome.PERMANENT, f"the server refused {final}: {exc}")
            return SendResult(SendOutcome.TRANSIENT, f"{type(exc).__name__}: {exc}")
        except (paramiko.SSHException, EOFError) as exc:
            return SendResult(SendOutcome.TRANSIENT, f"{type(exc).__name__}: {exc}")
        return SendResult(SendOutcome.SENT, final)

    async def close(self) -> None:
        return None
