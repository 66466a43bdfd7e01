"""One partner's SSH login and SFTP session on the hosted drop box
(gateway.transports.sftp_server runs the listener and takes the files).

paramiko calls these classes from its per-connection threads: key auth against
the profile's ``authorized_keys`` (password auth only against its ``password_hash``),
every path through the jail
(gateway.transports.sftp_jail), uploads into hidden temporary files that become
``/inbound/<name>`` only on CLOSE, downloads and deletes in ``/outbound``. Nothing
here touches the database or the event loop; a closed upload is handed to the
drop box (``box.place`` then ``box.schedule``).
"""

from __future__ import annotations

import errno
import hashlib
import logging
import os
import struct
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import paramiko
from paramiko.sftp import (
    _VERSION as SFTP_VERSION,
)
from paramiko.sftp import (
    CMD_CLOSE,
    CMD_EXTENDED,
    CMD_INIT,
    CMD_VERSION,
    CMD_WRITE,
    SFTP_BAD_MESSAGE,
    SFTP_FAILURE,
    SFTP_NO_SUCH_FILE,
    SFTP_OK,
    SFTP_OP_UNSUPPORTED,
    SFTP_PERMISSION_DENIED,
)

from gateway.passwords import MAX_PASSWORD, dummy_hash, verify_password
from gateway.transports import sftp_jail as jail
from gateway.transports.sftp_keys import matches
from gateway.transports.sftp_marks import mark_file, read_file
from gateway.transports.sftp_wire import SMALL_FILE

if TYPE_CHECKING:
    from gateway.transports.sftp_server import DropBox

log = logging.getLogger(__name__)

ACCEPT_TIMEOUT_SECONDS = 120.0  # with close_after_store: a CLOSE waits this long at most
# Announced in our VERSION packet: OpenSSH's client uses an extension only when announced.
EXTENSIONS = (("posix-rename@openssh.com", "1"), ("fsync@openssh.com", "1"), ("check-file", "md5,sha1"))
# A durable upload carries its content's SHA-256 in this extended attribute, set before
# the one fsync that makes its bytes, the attribute and its name in /inbound durable
# together (Upload.finish); a file whose bytes do not match it was cut short by a crash.


@dataclass(slots=True)
class Session:
    """One SSH connection: who logged in, and when it was last busy."""

    transport: paramiko.Transport
    client: str = "?"  # the peer's address (the login rate limit counts per address)
    partner_id: str | None = None  # set when a login claims its slot (gateway.transports.sftp_limits)
    last_active: float = field(default_factory=time.monotonic)
    opened: float = field(default_factory=time.monotonic)  # connected (the login must come soon)
    claimed: float = 0.0  # when its login's slot was claimed

    def touch(self) -> None:
        self.last_active = time.monotonic()


def hosted_settings(partners: Any, partner_id: str) -> Any:
    """The partner's ``[sftp]`` table when it is hosted here, else None."""
    entry = partners.entry(partner_id) if partners is not None else None
    sftp = entry.transport.sftp if entry is not None else None
    return sftp if sftp is not None and sftp.mode == "hosted" else None


def _any_password(partners: Any) -> bool:
    entries = partners.entries.values() if partners is not None else ()
    return any(
        (sftp := e.transport.sftp) is not None and sftp.mode == "hosted" and sftp.password_hash
        for e in entries
    )


class PartnerAuth(paramiko.ServerInterface):
    """Logins: a key from the profile's ``authorized_keys``, or, only for a partner
    whose profile has a ``password_hash``, the password (scrypt, compared in constant
    time; failures rate-limited per partner and client address)."""

    def __init__(self, box: DropBox, session: Session) -> None:
        self.box = box
        self.session = session

    def get_allowed_auths(self, username: str) -> str:
        """The same methods for every name, as OpenSSH offers them: a list per name
        would tell a guesser which partner ids exist and which take passwords.
        ``password`` once any hosted partner has a ``password_hash`` (then refused for
        the others after the same scrypt work as a wrong one)."""
        return "publickey,password" if _any_password(self.box.config.partners()) else "publickey"

    def check_auth_publickey(self, username: str, key: paramiko.PKey) -> int:
        sftp = hosted_settings(self.box.config.partners(), username)
        if sftp is not None and any(matches(key, line) for line in sftp.authorized_keys):
            # Beyond a connection limit: the usual failure (the log and metrics say why).
            return (
                paramiko.AUTH_SUCCESSFUL
                if self.box.admit(self.session, username, sftp)
                else paramiko.AUTH_FAILED
            )
        log.info("sftp: key refused for user %r", username)
        return paramiko.AUTH_FAILED

    def check_auth_password(self, username: str, password: str) -> int:
        """Runs in the connection's thread (scrypt releases the GIL); never logs the password."""
        sftp = hosted_settings(self.box.config.partners(), username)
        stored = sftp.password_hash if sftp is not None else None
        client, logins = self.session.client, self.box.logins
        if logins.blocked(username, client):
            self.box.login_refused(username, client, "rate_limited")
            return paramiko.AUTH_FAILED
        # Same work whether or not the partner exists or has a password: no enumeration by timing.
        right = len(password) <= MAX_PASSWORD and verify_password(password, stored or dummy_hash())
        if right and stored is not None:
            logins.succeeded(username, client)
            return (
                paramiko.AUTH_SUCCESSFUL
                if self.box.admit(self.session, username, sftp)
                else paramiko.AUTH_FAILED
            )
        logins.failed(username, client)
        self.box.login_refused(username, client, "wrong_password" if stored else "no_password")
        return paramiko.AUTH_FAILED

    def check_channel_request(self, kind: str, chanid: int) -> int:
        if kind == "session":
            return paramiko.OPEN_SUCCEEDED
        return paramiko.OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED

    def check_channel_subsystem_request(self, channel: Any, name: str) -> bool:
        return name == "sftp" and bool(super().check_channel_subsystem_request(channel, name))


class Upload(paramiko.SFTPHandle):
    """A file being uploaded to /inbound: a hidden temporary file until CLOSE."""

    def __init__(self, jailed: JailedSftp, name: str, temp: Path, fd: int) -> None:
        super().__init__()
        self.jailed, self.name, self.temp, self.fd = jailed, name, temp, fd
        self.size = 0
        self.refused: str | None = None
        self.synced = False  # fsync@openssh.com since the last write
        self._sha = hashlib.sha256()  # of the bytes written in order from offset 0
        self._hashed = 0  # how many; -1 once a write came out of order (hashed again at CLOSE)
        self._told_later: tuple[bytes | None, str] | None = None  # closed, to hand over (after_answer)

    def write_checked(self, offset: int, data: bytes) -> tuple[int, str | None]:
        self.jailed.session.touch()
        if self.refused is None and offset + len(data) > self.jailed.box.config.max_bytes:
            self.refused = f"file larger than the limit of {self.jailed.box.config.max_bytes} bytes: refused"
        if self.refused is not None:
            return SFTP_FAILURE, self.refused
        try:
            _pwrite_all(self.fd, data, offset)
        except OSError as exc:
            # The file now has a hole or a cut: refused for good, so that a CLOSE the
            # client sends anyway never hands over what is on disk.
            self.refused = f"cannot store: {os.strerror(exc.errno or errno.EIO)}: upload it again"
            return SFTP_FAILURE, self.refused
        self.size = max(self.size, offset + len(data))
        self.synced = False
        if offset == self._hashed:
            self._sha.update(data)
            self._hashed += len(data)
        else:
            self._hashed = -1
        return SFTP_OK, None

    def write(self, offset: int, data: bytes) -> int:
        return self.write_checked(offset, data)[0]

    def stat(self) -> paramiko.SFTPAttributes:
        return paramiko.SFTPAttributes.from_stat(os.fstat(self.fd))

    def chattr(self, attr: Any) -> int:
        return SFTP_OK  # times and modes of an upload do not matter to us

    def sync(self) -> tuple[int, str | None]:
        """``fsync@openssh.com``: the bytes written so far are on disk (the CLOSE
        then has no sync left to do unless more was written)."""
        self.jailed.session.touch()
        if self.refused is not None:
            return SFTP_FAILURE, self.refused
        try:
            os.fsync(self.fd)
        except OSError as exc:
            return SFTP_FAILURE, f"cannot sync: {os.strerror(exc.errno or errno.EIO)}"
        self.synced = True
        return SFTP_OK, None

    def content(self) -> tuple[bytes | None, str]:
        """(the bytes when small, else None; their SHA-256), from the open file (page
        cache: no second open, and the loop has nothing to read)."""
        data = _pread_all(self.fd, self.size) if self.size <= SMALL_FILE else None
        if self._hashed == self.size:
            return data, self._sha.hexdigest()
        if data is not None:
            return data, hashlib.sha256(data).hexdigest()
        return None, _hash_fd(self.fd, self.size)

    def finish(self) -> tuple[int, str | None]:
        """CLOSE from the client: take the file (see the module doc)."""
        box = self.jailed.box
        placed = False
        try:
            if self.refused is not None:
                return SFTP_FAILURE, self.refused
            # Asked for (sync_uploads, or the client's fsync@openssh.com): the CLOSE is
            # answered only once the file and its name in /inbound survive a power cut.
            durable = self.synced or box.config.sync_uploads
            if self.name.endswith(jail.TEMP_SUFFIX):
                if durable and not self.synced:
                    os.fsync(self.fd)
                os.replace(self.temp, self.jailed.dir / jail.HELD / self.name)
                return SFTP_OK, None  # taken when renamed to its final name
            content = self.content()
            target = self.jailed.dir / jail.INBOUND / self.name
            # Every CLOSE marks its file (a file in /inbound without a mark was not put
            # there by an answered CLOSE: gateway.transports.sftp_takes).
            if mark_file(self.fd, content[1]) and durable:
                # One journal commit instead of two: marked, renamed, then synced with
                # its name (and /inbound at the same time: without a journal that is a
                # second disk flush, merged with the file's). A crash before the sync may
                # leave the name with bytes that do not match the mark: the take
                # discards such a file (read_swept).
                if not box.place(self.temp, target):
                    return SFTP_FAILURE, "a file of this name is still being taken: upload it again"
                box.sync_file_and_folder(self.fd, target.parent)
            else:
                if durable and not self.synced:
                    os.fsync(self.fd)
                if not box.place(self.temp, target, sync=durable):
                    return SFTP_FAILURE, "a file of this name is still being taken: upload it again"
            placed = True
        except OSError as exc:
            log.error("sftp: %s/inbound/%s not placed: %s", self.jailed.partner_id, self.name, exc)
            return SFTP_FAILURE, "not stored: upload it again"
        finally:
            os.close(self.fd)
            self.fd = -1
            if not placed:
                self.temp.unlink(missing_ok=True)
        if box.config.close_after_store:
            return self.jailed.hand_over(self.name, self.size, content)
        # Told to the serve process after the answer (after_answer): the file is in
        # /inbound already, and the sweep takes it should this process die between.
        self._told_later = content
        return SFTP_OK, None

    def after_answer(self) -> None:
        """Hand a closed file over once its CLOSE is answered (off the client's wait)."""
        if self._told_later is not None:
            content, self._told_later = self._told_later, None
            self.jailed.hand_over(self.name, self.size, content)

    def abort(self) -> None:
        """The session ended with the file still open: a partial upload, never taken."""
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
            self.temp.unlink(missing_ok=True)
            log.info(
                "sftp: %s/inbound/%s: connection ended mid-upload, discarded",
                self.jailed.partner_id,
                self.name,
            )

    def close(self) -> None:
        self.abort()


class Download(paramiko.SFTPHandle):
    def __init__(self, jailed: JailedSftp, fd: int) -> None:
        super().__init__()
        self.jailed, self.fd = jailed, fd

    def read(self, offset: int, length: int) -> bytes | int:
        self.jailed.session.touch()
        return os.pread(self.fd, length, offset)

    def write(self, offset: int, data: bytes) -> int:
        return SFTP_PERMISSION_DENIED

    def stat(self) -> paramiko.SFTPAttributes:
        return paramiko.SFTPAttributes.from_stat(os.fstat(self.fd))

    def chattr(self, attr: Any) -> int:
        return SFTP_PERMISSION_DENIED

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def _refusals(method: Callable[..., Any]) -> Callable[..., Any]:
    """A jail refusal becomes its status code; an OSError its errno's code."""

    def wrapped(self: JailedSftp, *args: Any) -> Any:
        self.session.touch()
        try:
            return method(self, *args)
        except jail.Refused as exc:
            log.info("sftp: %s refused %s%r: %s", self.partner_id, method.__name__, args[:1], exc)
            return exc.code
        except OSError as exc:
            return paramiko.SFTPServer.convert_errno(exc.errno)

    wrapped.__name__ = method.__name__
    return wrapped


class JailedSftp(paramiko.SFTPServerInterface):
    """One partner's SFTP session, inside its own tree."""

    def __init__(self, server: PartnerAuth, *args: Any, **kwargs: Any) -> None:
        super().__init__(server)
        self.box: DropBox = server.box
        self.session: Session = server.session
        assert self.session.partner_id is not None
        self.partner_id: str = self.session.partner_id
        self.dir = jail.box_dir(self.box.config.root, self.partner_id)

    @property
    def archive(self) -> bool:
        sftp = hosted_settings(self.box.config.partners(), self.partner_id)
        return bool(sftp is not None and sftp.archive)

    def _place(self, path: str) -> jail.Place:
        if hosted_settings(self.box.config.partners(), self.partner_id) is None:
            raise jail.Refused(SFTP_PERMISSION_DENIED, "no hosted SFTP for this partner any more")
        return jail.resolve(self.dir, path, archive=self.archive)

    def session_started(self) -> None:
        jail.ensure_box(self.dir, archive=self.archive)

    @_refusals
    def canonicalize(self, path: str) -> str:
        return self._place(path).virtual

    @_refusals
    def list_folder(self, path: str) -> list[paramiko.SFTPAttributes] | int:
        place = self._place(path)
        if place.name:
            raise jail.Refused(SFTP_NO_SUCH_FILE, "not a folder")
        if not place.area:
            return [
                paramiko.SFTPAttributes.from_stat(os.stat(self.dir / a), filename=a)
                for a in jail.areas(self.archive)
            ]
        found = []
        for entry in os.scandir(place.path):
            if entry.name.startswith(".") or not entry.is_file(follow_symlinks=False):
                continue
            found.append(
                paramiko.SFTPAttributes.from_stat(entry.stat(follow_symlinks=False), filename=entry.name)
            )
        return found

    @_refusals
    def stat(self, path: str) -> paramiko.SFTPAttributes | int:
        place = self._place(path)
        if not place.name:
            return paramiko.SFTPAttributes.from_stat(os.stat(place.path), filename=place.area or "/")
        return paramiko.SFTPAttributes.from_stat(jail.regular_file(place.path), filename=place.name)

    lstat = stat

    @_refusals
    def open(self, path: str, flags: int, attr: Any) -> paramiko.SFTPHandle | int:
        place = self._place(path)
        if not place.name:
            raise jail.Refused(SFTP_PERMISSION_DENIED, "a folder cannot be opened as a file")
        if flags & (os.O_WRONLY | os.O_RDWR):
            if place.area != jail.INBOUND or flags & os.O_RDWR:
                raise jail.Refused(SFTP_PERMISSION_DENIED, "files are written to /inbound only")
            temp = self.dir / jail.INCOMING / f"{uuid.uuid4().hex}.part"
            # read and write: the CLOSE reads the bytes back (page cache) to hash and hand over
            fd = os.open(temp, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
            handle: paramiko.SFTPHandle = Upload(self, place.name, temp, fd)
        else:
            jail.regular_file(place.path)
            handle = Download(self, os.open(place.path, os.O_RDONLY | os.O_NOFOLLOW))
        handle.filename = place.virtual
        return handle

    def hand_over(
        self, name: str, size: int, content: tuple[bytes | None, str] | None = None
    ) -> tuple[int, str | None]:
        """A file just put in /inbound: the serve process takes it; with close_after_store
        the CLOSE waits for that."""
        future = self.box.schedule(self.partner_id, name, content)
        if future is not None:
            try:
                future.result(timeout=ACCEPT_TIMEOUT_SECONDS)
            except Exception as exc:
                log.error("sftp: %s/inbound/%s not stored yet: %s", self.partner_id, name, exc)
                return SFTP_FAILURE, "not stored yet: it stays in /inbound and is retried"
        return SFTP_OK, None

    @_refusals
    def remove(self, path: str) -> int:
        place = self._place(path)
        if place.area == jail.INBOUND and place.name.endswith(jail.TEMP_SUFFIX):
            jail.regular_file(place.path)
            os.unlink(place.path)  # the client gives up a held upload
            return SFTP_OK
        if not place.name or place.area == jail.INBOUND:
            raise jail.Refused(SFTP_PERMISSION_DENIED, "files in /inbound are ours to take")
        jail.regular_file(place.path)
        os.unlink(place.path)
        return SFTP_OK

    @_refusals
    def chattr(self, path: str, attr: Any) -> int:
        place = self._place(path)
        if place.name:
            jail.regular_file(place.path)
        return SFTP_OK  # accepted and ignored: modes and times are ours to keep

    @_refusals
    def rename(self, oldpath: str, newpath: str) -> int:
        """Only a held ``/inbound/<name>.filepart`` to ``/inbound/<name>``: the file
        is then handed over like a closed upload."""
        old, new = self._place(oldpath), self._place(newpath)
        if not (old.area == new.area == jail.INBOUND and old.name.endswith(jail.TEMP_SUFFIX)):
            raise jail.Refused(SFTP_PERMISSION_DENIED, "only /inbound/<name>.filepart -> /inbound/<name>")
        if not new.name or new.name.endswith(jail.TEMP_SUFFIX):
            raise jail.Refused(SFTP_PERMISSION_DENIED, "rename to the final name")
        size = jail.regular_file(old.path).st_size
        content = read_file(old.path)
        sync = self.box.config.sync_uploads
        fd = os.open(old.path, os.O_RDONLY | os.O_NOFOLLOW)
        try:  # marked like a closed upload (and the mark synced with it)
            if mark_file(fd, content[1]) and sync:
                os.fsync(fd)
        finally:
            os.close(fd)
        if not self.box.place(old.path, new.path, sync=sync):
            return SFTP_FAILURE
        code, _ = self.hand_over(new.name, size, content)
        return code

    posix_rename = rename

    def mkdir(self, path: str, attr: Any) -> int:
        return SFTP_PERMISSION_DENIED

    def rmdir(self, path: str) -> int:
        return SFTP_PERMISSION_DENIED

    def symlink(self, target_path: str, path: str) -> int:
        return SFTP_OP_UNSUPPORTED

    def readlink(self, path: str) -> int:
        return SFTP_OP_UNSUPPORTED


def _pwrite_all(fd: int, data: bytes, offset: int) -> None:
    """All of ``data`` at ``offset``, or OSError: a full disk may take part of a write
    (a short count, no error) and refuse the rest."""
    view, done = memoryview(data), 0
    while done < len(data):
        wrote = os.pwrite(fd, view[done:], offset + done)
        if wrote <= 0:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        done += wrote


def _pread_all(fd: int, size: int) -> bytes:
    parts, offset = [], 0
    while offset < size:
        chunk = os.pread(fd, size - offset, offset)
        if not chunk:
            break
        parts.append(chunk)
        offset += len(chunk)
    return b"".join(parts)


def _hash_fd(fd: int, size: int) -> str:
    sha, offset = hashlib.sha256(), 0
    while offset < size and (chunk := os.pread(fd, min(1 << 20, size - offset), offset)):
        sha.update(chunk)
        offset += len(chunk)
    return sha.hexdigest()


class SftpSubsystem(paramiko.SFTPServer):
    """paramiko's SFTP server with three changes: CLOSE of an upload answers with the
    result of taking the file (and a reason); a session that ends with files still
    open discards them instead of closing them; OpenSSH's ``fsync@openssh.com``
    (``sftp put -f``) syncs an upload, and it and ``posix-rename@openssh.com`` are
    advertised."""

    def _send_server_version(self) -> int:
        t, data = self._read_packet()
        if t != CMD_INIT:
            raise paramiko.SFTPError("Incompatible sftp protocol")
        msg = paramiko.Message()
        msg.add_int(SFTP_VERSION)
        for name, version in EXTENSIONS:
            msg.add_string(name)
            msg.add_string(version)
        self._send_packet(CMD_VERSION, msg)
        return int(struct.unpack(">I", data[:4])[0])

    def _fsync(self, request_number: int, msg: Any) -> None:
        handle = self.file_table.get(msg.get_binary())
        if handle is None:
            self._send_status(request_number, SFTP_BAD_MESSAGE, "Invalid handle")
            return
        code, desc = handle.sync() if isinstance(handle, Upload) else (SFTP_OK, None)
        self._send_status(request_number, code, desc)

    def _process(self, t: int, request_number: int, msg: Any) -> None:
        if t == CMD_EXTENDED:
            if msg.get_text() == "fsync@openssh.com":
                self._fsync(request_number, msg)
                return
            msg.rewind()
            msg.get_int()
        if t in (CMD_CLOSE, CMD_WRITE):
            handle = msg.get_binary()
            upload = self.file_table.get(handle)
            if isinstance(upload, Upload):
                if t == CMD_CLOSE:
                    del self.file_table[handle]
                    code, desc = upload.finish()
                    self._send_status(request_number, code, desc)
                    upload.after_answer()
                    return
                else:
                    offset = msg.get_int64()
                    code, desc = upload.write_checked(offset, msg.get_binary())
                self._send_status(request_number, code, desc)
                return
            msg.rewind()
            msg.get_int()
        super()._process(t, request_number, msg)

    def finish_subsystem(self) -> None:
        for handle in self.file_table.values():
            if isinstance(handle, Upload):
                handle.abort()
        super().finish_subsystem()
