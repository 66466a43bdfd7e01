"""What the drop-box process tells the serve process is data the serve process checks
(decision 0017, review #9): the child parses untrusted network input, so a message
from it never runs code here, never names a file outside a hosted partner's
/inbound, never makes up counter labels or log lines; and a take removes only the
file it took. The serve process's half runs for real (its socket, its takes, files
on disk); the "child" is the test writing frames."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import pickle
import socket
from pathlib import Path
from typing import Any

import pytest
from gwsamples import order_850

from gateway.db import schema
from gateway.db.engine import open_database
from gateway.metrics import Metrics, render
from gateway.transports import sftp_jail as jail
from gateway.transports import sftp_limits, sftp_log_relay
from gateway.transports.sftp_child import HostedPartners
from gateway.transports.sftp_marks import MARK
from gateway.transports.sftp_process import ChildSettings, DropBoxProcess
from gateway.transports.sftp_takes import Takes
from gateway.transports.sftp_wire import MAX_FROM_CHILD, frame

HOSTED = {
    "authorized_keys": ["ssh-ed25519 AAAA"],
    "password_hash": None,
    "archive": False,
    "max_connections": None,
}


class Accepted:
    """The intake's stand-in: records what would be stored (an outside system here).
    ``held``: each accept waits until :attr:`release` is set (a slow commit)."""

    def __init__(self, held: bool = False) -> None:
        self.calls: list[tuple[str, str, bytes]] = []
        self.release = asyncio.Event()
        if not held:
            self.release.set()

    async def __call__(self, partner_id: str, name: str, body: Any, key: str) -> None:
        await self.release.wait()
        self.calls.append((partner_id, name, b"".join([chunk async for chunk in body])))


def closed_in_inbound(inbound: Path, n: int, ask: int = 0) -> tuple[list[Any], bytes]:
    """Put ``po-<n>.edi`` (an 850 of ACME) in /inbound as a CLOSE would, and return
    the child's message telling it (with ``ask``), and its bytes."""
    body = order_850("ACME", n)
    path = inbound / f"po-{n}.edi"
    path.write_bytes(body)
    return ["closed", ask, "acme", path.name, hashlib.sha256(body).hexdigest(), os.lstat(path).st_ino], body


def drop_box(tmp_path: Path, accepted: Accepted) -> DropBoxProcess:
    partners = HostedPartners({"acme": HOSTED, "globex": None})
    for pid in ("acme", "globex"):
        jail.ensure_box(jail.box_dir(tmp_path / "sftp", pid), archive=False)
    settings = ChildSettings(
        host="127.0.0.1", port=0, root=tmp_path / "sftp", max_bytes=1 << 20, idle_timeout=60.0,
        close_after_store=False, sync_uploads=True, limits=sftp_limits.Limits(),
    )  # fmt: skip
    return DropBoxProcess(settings, lambda: partners, accepted, Metrics())


async def read_frames(box: DropBoxProcess, data: bytes) -> bytes:
    """The serve process reads ``data`` as the child's messages until end of file;
    then its takes finish. Returns what the serve process answered."""
    ours, theirs = socket.socketpair()
    reader, box._writer = await asyncio.open_unix_connection(sock=ours, limit=MAX_FROM_CHILD)
    box._reader = reader
    theirs.sendall(data)
    theirs.shutdown(socket.SHUT_WR)
    await box._read(reader)
    box._take_held()
    while box.takes.pending():
        await asyncio.sleep(0.01)
    await box._writer.drain()
    box._writer.close()
    await box._writer.wait_closed()
    answered = b""
    while chunk := theirs.recv(1 << 16):
        answered += chunk
    theirs.close()
    return answered


async def test_a_pickle_from_the_child_is_never_unpickled(tmp_path: Path) -> None:
    planted = tmp_path / "planted"

    class Exploit:
        def __reduce__(self) -> Any:
            return (os.mkdir, (str(planted),))

    body = pickle.dumps(("log", "gateway.transports.sftp_session", 20, Exploit()))
    box = drop_box(tmp_path, Accepted())
    await read_frames(box, len(body).to_bytes(4, "big") + body)
    assert not planted.exists()


async def test_a_closed_file_must_name_a_hosted_partner_and_a_plain_name(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    accepted = Accepted()
    box = drop_box(tmp_path, accepted)
    secret = tmp_path / "sftp" / "acme" / "outbound" / "theirs.edi"
    secret.write_bytes(b"acme's outbound file")
    body = order_850("ACME", 1)
    sha = hashlib.sha256(body).hexdigest()
    told = [
        ["closed", 0, "globex", "po.edi", sha, None],  # not hosted
        ["closed", 0, "nobody", "po.edi", sha, None],  # no such partner
        ["closed", 0, "acme", "../outbound/theirs.edi", None, None],  # out of /inbound
        ["closed", 0, "acme", ".hidden", sha, None],
        ["closed", 0, "acme", "po.edi", "not a hash", None],
        ["closed", 0, ["acme"], "po.edi", sha, None],
    ]
    data = b"".join(frame(m, body) for m in told[:2] + told[3:]) + frame(told[2])
    (tmp_path / "sftp" / "acme" / "inbound" / "ok.edi").write_bytes(body)
    inode = os.lstat(tmp_path / "sftp" / "acme" / "inbound" / "ok.edi").st_ino
    await read_frames(box, data + frame(["closed", 0, "acme", "ok.edi", sha, inode], body))
    assert accepted.calls == [("acme", "ok.edi", body)]
    assert secret.exists()
    assert sum("ignored" in r.getMessage() for r in caplog.records) == len(told)


async def test_a_frame_too_long_or_not_json_ends_the_link(tmp_path: Path) -> None:
    """The child is then killed and started again (tests/gateway/test_sftp_process.py):
    nothing after such a frame is read."""
    accepted = Accepted()
    box = drop_box(tmp_path, accepted)
    body = order_850("ACME", 1)
    then = frame(["closed", 0, "acme", "ok.edi", hashlib.sha256(body).hexdigest(), None], body)
    for bad in ((MAX_FROM_CHILD + 1).to_bytes(4, "big"), (3).to_bytes(4, "big") + b"{{{"):
        await read_frames(box, bad + then)
    assert accepted.calls == []


async def test_log_records_of_the_child_are_one_line_under_its_own_loggers(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    box = drop_box(tmp_path, Accepted())
    forged = "refused\n2026-12-07 12:00:00 INFO gateway.intake stored 1000 messages"
    await read_frames(
        box,
        frame(["log", "gateway.transports.sftp_session", logging.INFO, forged])
        + frame(["log", "made.up.name", 99, "x"])
        + frame(["log", "paramiko.transport", "loud", "y"]),
    )
    records = [r for r in caplog.records if r.getMessage() in ("x", "y") or "refused" in r.getMessage()]
    assert [(r.name, r.levelno) for r in records] == [
        ("gateway.transports.sftp_session", logging.INFO),
        ("gateway.transports.sftp_child", logging.CRITICAL),
        ("paramiko.transport", logging.WARNING),
    ]
    assert "\n" not in records[0].getMessage() and "\\x0a" in records[0].getMessage()
    assert "made.up.name" not in logging.Logger.manager.loggerDict


async def test_a_flood_of_log_lines_of_the_child_is_bounded_and_summarized(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A client that makes the child log without end (a refused request, again and
    again) gets at most a burst of lines into our log, then a few a second, and one
    line saying how many went; other loggers keep their own allowance."""
    caplog.set_level(logging.DEBUG)
    monkeypatch.setattr(sftp_log_relay, "SUMMARY_SECONDS", 0.05)
    box = drop_box(tmp_path, Accepted())
    now = [1000.0]
    box.logs.clock = lambda: now[0]  # no refill while the flood is read
    refused = "gateway.transports.sftp_session"

    def flood(count: int) -> bytes:
        return b"".join(frame(["log", refused, logging.INFO, f"refused open {n}"]) for n in range(count))

    await read_frames(
        box, flood(1000) + frame(["log", "gateway.transports.sftp_server", logging.WARNING, "a limit"])
    )
    await asyncio.sleep(0.2)  # the summary's timer
    messages = [(r.name, r.levelno, r.getMessage()) for r in caplog.records]
    assert sum(m.startswith("refused open") for _, _, m in messages) == sftp_log_relay.BURST
    assert ("gateway.transports.sftp_server", logging.WARNING, "a limit") in messages
    summaries = [m for m in messages if "suppressed" in m[2]]
    assert len(summaries) == 1, summaries
    assert summaries[0][:2] == (refused, logging.WARNING) and "900 INFO line(s)" in summaries[0][2]
    assert box.metrics.sftp_log_suppressed == {"info": 900}

    caplog.clear()
    now[0] += 2.0  # two seconds later: RATE lines a second again
    await read_frames(box, flood(100))
    await box.aclose()  # the stop writes what is still to summarize
    messages = [(r.name, r.levelno, r.getMessage()) for r in caplog.records]
    assert sum(m.startswith("refused open") for _, _, m in messages) == 2 * sftp_log_relay.RATE
    assert [m for _, _, m in messages if "suppressed" in m] == [
        "sftp: 80 INFO line(s) of the drop-box process suppressed (more than 100 at once or 10 a "
        "second of one logger and level)"
    ]
    db = open_database(f"sqlite+aiosqlite:///{tmp_path / 'gateway.db'}")
    try:
        await schema.upgrade(db)
        text = await render(db, box.metrics)
    finally:
        await db.close()
    assert '\ngateway_sftp_log_lines_suppressed_total{level="info"} 980\n' in text


def test_the_log_buckets_stay_few() -> None:
    """Past MAX_BUCKETS logger names, new ones share one bucket and one logger: a
    child making up names cannot grow the serve process's state or its loggers."""
    relay = sftp_log_relay.LogRelay(clock=lambda: 0.0)
    names = [f"gateway.transports.made_up_{n}" for n in range(3 * sftp_log_relay.MAX_BUCKETS)]
    admitted = [relay.admit(name, logging.INFO) for name in names]
    assert admitted[: sftp_log_relay.MAX_BUCKETS] == names[: sftp_log_relay.MAX_BUCKETS]
    rest = admitted[sftp_log_relay.MAX_BUCKETS :]
    assert rest[: sftp_log_relay.BURST] == [sftp_log_relay.SHARED] * sftp_log_relay.BURST
    assert set(rest[sftp_log_relay.BURST :]) == {None}
    assert (
        relay.admit("paramiko.transport", 25) is None
    )  # a new name, level 25: the shared INFO bucket, empty
    assert relay.dropped() == len(rest) - sftp_log_relay.BURST + 1


async def test_counters_of_the_child_take_only_known_labels(tmp_path: Path) -> None:
    box = drop_box(tmp_path, Accepted())
    await read_frames(
        box,
        frame(["count", "sftp_login_refused", ["acme", "wrong_password"]])
        + frame(["count", "sftp_login_refused", ["guess-1", "wrong_password"]])
        + frame(["count", "sftp_login_refused", ["acme", "made up"]])
        + frame(["count", "sftp_connections_refused", "max_startups"])
        + frame(["count", "sftp_connections_refused", "x" * 50])
        + frame(["count", "as2_refused", ["acme", "x"]]),
    )
    assert box.metrics.sftp_login_refused == {("acme", "wrong_password"): 1}
    assert box.metrics.sftp_connections_refused == {"max_startups": 1}
    assert not box.metrics.as2_refused


async def test_a_take_removes_only_the_file_it_took(tmp_path: Path) -> None:
    """The sweep took po.edi and removed it; the partner uploaded a new po.edi; then
    the child's late message about the first arrives: the first is stored again (its
    key finds it), the new file stays for its own take."""
    accepted = Accepted()
    takes = Takes(tmp_path, 60.0, lambda: HostedPartners({"acme": HOSTED}), accepted)
    inbound = tmp_path / "acme" / jail.INBOUND
    inbound.mkdir(parents=True)
    first, second = order_850("ACME", 1), order_850("ACME", 2)
    (inbound / "po.edi").write_bytes(first)
    os.link(inbound / "po.edi", tmp_path / "keep")  # its inode is not reused
    inode = os.lstat(inbound / "po.edi").st_ino
    os.unlink(inbound / "po.edi")  # taken by the sweep
    (inbound / "po.edi").write_bytes(second)  # uploaded again (and marked by its CLOSE)
    os.setxattr(inbound / "po.edi", MARK, hashlib.sha256(second).hexdigest().encode())
    await takes.schedule("acme", "po.edi", (first, hashlib.sha256(first).hexdigest()), inode)
    assert (inbound / "po.edi").read_bytes() == second
    await takes.schedule("acme", "po.edi")  # its own take (the sweep)
    assert not (inbound / "po.edi").exists()
    assert [body for _, _, body in accepted.calls] == [first, second]


async def test_a_take_cancelled_is_not_told_stored(tmp_path: Path) -> None:
    box = drop_box(tmp_path, Accepted())
    ours, theirs = socket.socketpair()
    box._reader, box._writer = await asyncio.open_unix_connection(sock=ours)
    task = asyncio.create_task(asyncio.sleep(10))
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    box._stored(box._writer, 7, task)
    await box._writer.drain()
    box._writer.close()
    await box._writer.wait_closed()
    data = theirs.recv(1000)
    theirs.close()
    assert b'["stored",7,null]' not in data and b'"stored",7,' in data


async def test_the_stop_reads_the_last_messages_of_the_child_and_takes_their_files(tmp_path: Path) -> None:
    """The stop ends the child's socket for writing only: what the child tells after
    (files its sessions closed while it stopped) is still read, and taken."""
    import threading

    accepted = Accepted()
    box = drop_box(tmp_path, accepted)
    inbound = tmp_path / "sftp" / "acme" / "inbound"
    ours, theirs = socket.socketpair()
    box._reader, box._writer = await asyncio.open_unix_connection(sock=ours, limit=MAX_FROM_CHILD)

    def child() -> None:  # at end of file: its last closed files, then it exits
        while theirs.recv(1 << 16):
            pass
        with contextlib.suppress(OSError):
            for n in range(5):
                theirs.sendall(frame(*closed_in_inbound(inbound, n)))
        theirs.close()

    thread = threading.Thread(target=child)
    thread.start()
    box._runner = asyncio.create_task(box._run())
    await box.aclose()
    thread.join()
    assert sorted(name for _, name, _ in accepted.calls) == [f"po-{n}.edi" for n in range(5)]
    assert os.listdir(inbound) == []


async def test_a_flood_of_closed_files_stops_the_reading_until_takes_finish(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Takes waiting are bounded: beyond them the serve process reads no more (the
    child's socket fills and its sessions wait), so memory stays bounded."""
    import threading

    from gateway.transports import sftp_process

    monkeypatch.setattr(sftp_process, "MAX_PENDING", 10)
    accepted = Accepted(held=True)
    box = drop_box(tmp_path, accepted)
    inbound = tmp_path / "sftp" / "acme" / "inbound"
    ours, theirs = socket.socketpair()
    box._reader, box._writer = await asyncio.open_unix_connection(sock=ours, limit=MAX_FROM_CHILD)
    frames = [frame(*closed_in_inbound(inbound, n, ask=1 + n)) for n in range(40)]
    thread = threading.Thread(
        target=lambda: (theirs.sendall(b"".join(frames)), theirs.shutdown(socket.SHUT_WR))
    )
    thread.start()
    reading = asyncio.create_task(box._read(box._reader))
    await asyncio.sleep(0.3)
    assert 10 <= box.takes.pending() <= 11 and not reading.done()
    accepted.release.set()
    await asyncio.wait_for(reading, 10)
    while box.takes.pending():
        await asyncio.sleep(0.01)
    thread.join()
    assert len(accepted.calls) == 40 and os.listdir(inbound) == []
    box._writer.close()
    await box._writer.wait_closed()
    theirs.close()


async def test_a_take_answers_only_the_child_that_asked(tmp_path: Path) -> None:
    """close_after_store: a take that ends after its child died and another started
    must not answer the new child, whose ask of the same number is another file (its
    CLOSE would hear "stored" before that file's commit)."""
    accepted = Accepted(held=True)
    box = drop_box(tmp_path, accepted)
    told, body = closed_in_inbound(tmp_path / "sftp" / "acme" / "inbound", 1, ask=1)
    old, old_child = socket.socketpair()
    box._reader, box._writer = await asyncio.open_unix_connection(sock=old)
    box._handle(told, body)
    box._writer.close()  # that child died
    await box._writer.wait_closed()
    old_child.close()
    new, new_child = socket.socketpair()
    box._reader, box._writer = await asyncio.open_unix_connection(sock=new)  # and another started
    accepted.release.set()
    while box.takes.pending():
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.05)
    box._writer.close()
    await box._writer.wait_closed()
    assert new_child.recv(1000) == b""  # nothing answered to it
    new_child.close()
    assert len(accepted.calls) == 1
