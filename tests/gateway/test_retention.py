"""Retention (gateway.retention): which raw files and message rows a prune deletes
and which it must keep, on SQLite and PostgreSQL with real payload files; the
``gateway prune`` command and the service's periodic prune."""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import time
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from aiohttp import web
from conftest import make_settings
from sqlalchemy import func, select

from gateway import retention
from gateway.app import DATABASE, GATEWAY, PARTNERS, RAWSTORE, build_app
from gateway.cli import main as cli_main
from gateway.config import Settings
from gateway.db.engine import Database
from gateway.db.ids import new_id
from gateway.db.models import Document, InterchangeSeen, Job, Message, MessageEvent, OutboxItem, utcnow
from gateway.db.models_delivery import DeliveryAttempt
from gateway.rawstore import RawStore
from gateway.transports.sftp_child import HostedPartners
from gateway.transports.sftp_takes import Takes

TOKEN = {"Authorization": "Bearer internal-test-token"}
DAY = 86400.0


def storage(**values: Any) -> dict[str, Any]:
    return {"storage": {"prune_interval_minutes": 0, **values}}


async def add_message(
    db: Database,
    store: RawStore,
    body: bytes,
    *,
    status: str,
    age_days: float,
    direction: str = "in",
    partner: str = "acme",
    file_age_days: float | None = None,
    documents: tuple[str, ...] = (),
    outbox: tuple[str, ...] = (),
    jobs: tuple[str, ...] = (),
    events: int = 2,
    attempts: int = 0,
) -> str:
    """A message row (and children) last changed ``age_days`` ago, over a real raw file
    last written ``file_age_days`` (default: the same) ago."""
    ref = await store.write_bytes(body, limit=1 << 20)
    when = time.time() - DAY * (age_days if file_age_days is None else file_age_days)
    os.utime(ref.path, (when, when))
    at = utcnow() - timedelta(days=age_days)
    message_id = new_id()
    async with db.begin() as session:
        session.add(
            Message(
                id=message_id,
                direction=direction,
                partner_id=partner,
                channel="rest",
                kind="x12",
                status=status,
                raw_sha256=ref.sha256,
                raw_size=ref.size,
                received_at=at,
                updated_at=at,
            )
        )
        await session.flush()
        for seq, doc_status in enumerate(documents, 1):
            session.add(
                Document(
                    id=new_id(),
                    message_id=message_id,
                    seq=seq,
                    partner_id=partner,
                    direction=direction,
                    kind="order",
                    canonical={},
                    idempotency_key=secrets.token_hex(16),
                    status=doc_status,
                    attempts=0,
                    created_at=at,
                )
            )
        for item_status in outbox:
            session.add(
                OutboxItem(
                    id=new_id(),
                    partner_id=partner,
                    message_id=message_id,
                    kind="997",
                    channel="rest",
                    payload="ISA...",
                    status=item_status,
                    attempts=0,
                    next_attempt_at=at,
                    created_at=at,
                )
            )
        for state in jobs:
            session.add(
                Job(
                    message_id=message_id,
                    step="translate",
                    state=state,
                    attempts=1,
                    next_attempt_at=at,
                    created_at=at,
                    updated_at=at,
                )
            )
        for n in range(events):
            session.add(MessageEvent(message_id=message_id, at=at, state=f"step{n}", detail=None))
        for _ in range(attempts):
            session.add(
                DeliveryAttempt(
                    message_id=message_id, target="erp", at=at, outcome="delivered", duration_ms=1.0
                )
            )
    return message_id


async def sha_of(db: Database, message_id: str) -> str:
    async with db.read() as conn:
        return str(
            (await conn.execute(select(Message.raw_sha256).where(Message.id == message_id))).scalar_one()
        )


async def count(db: Database, table: Any, **where: Any) -> int:
    query = select(func.count()).select_from(table)
    for name, value in where.items():
        query = query.where(getattr(table, name) == value)
    async with db.read() as conn:
        return int((await conn.execute(query)).scalar_one())


async def test_raw_retention_deletes_only_files_no_live_message_needs(
    aiohttp_client: Any, tmp_path: Path, partners_dir: Path, database_url: str | None
) -> None:
    settings = make_settings(tmp_path, partners_dir, database_url, **storage(raw_retention_days=30))
    client = await aiohttp_client(build_app(settings))
    db, store = client.app[DATABASE], client.app[RAWSTORE]
    ids: dict[str, str] = {}
    ids["acked"] = await add_message(db, store, b"ISA*acked", status="acknowledged", age_days=40)
    ids["received"] = await add_message(db, store, b"ISA*received", status="received", age_days=40)
    # one payload, two messages: the newer one keeps it
    ids["shared_old"] = await add_message(db, store, b"ISA*shared", status="acknowledged", age_days=40)
    ids["shared_new"] = await add_message(
        db, store, b"ISA*shared", status="duplicate", age_days=2, file_age_days=40
    )
    # one payload, two old final messages: goes
    ids["pair_failed"] = await add_message(db, store, b"ISA*pair", status="failed", age_days=50)
    ids["pair_dup"] = await add_message(db, store, b"ISA*pair", status="duplicate", age_days=45)
    ids["dead_letter"] = await add_message(
        db, store, b"ISA*dead", status="failed", age_days=40, documents=("pending",)
    )
    ids["ack_unsent"] = await add_message(
        db,
        store,
        b"ISA*unsent",
        status="acknowledged",
        age_days=40,
        documents=("delivered",),
        outbox=("sent", "pending"),
    )
    ids["job_ready"] = await add_message(
        db, store, b"ISA*job", status="quarantined", age_days=40, jobs=("ready",)
    )
    ids["out_accepted"] = await add_message(
        db,
        store,
        b"ISA*out-ok",
        status="accepted",
        direction="out",
        age_days=40,
        documents=("accepted",),
        outbox=("sent",),
    )
    ids["out_sent"] = await add_message(
        db,
        store,
        b"ISA*out-sent",
        status="sent",
        direction="out",
        age_days=40,
        documents=("sent",),
        outbox=("sent",),
    )
    ids["out_overdue"] = await add_message(
        db, store, b"ISA*out-late", status="overdue", direction="out", age_days=40
    )
    ids["recent"] = await add_message(db, store, b"ISA*recent", status="acknowledged", age_days=10)
    ids["touched"] = await add_message(
        db, store, b"ISA*touched", status="acknowledged", age_days=40, file_age_days=1
    )
    orphan_old = await store.write_bytes(b"ISA*orphan-old", limit=100)
    os.utime(orphan_old.path, (time.time() - 40 * DAY,) * 2)
    orphan_new = await store.write_bytes(b"ISA*orphan-new", limit=100)
    shas = {name: await sha_of(db, mid) for name, mid in ids.items()}
    files_before = sorted(p.name for p in store.root.glob("??/*"))

    preview = await retention.prune(db, store, settings, partners=client.app[PARTNERS](), dry_run=True)
    assert sorted(p.name for p in store.root.glob("??/*")) == files_before
    gone = {"acked", "pair_failed", "out_accepted"}
    expected_bytes = sum(len(b) for b in (b"ISA*acked", b"ISA*pair", b"ISA*out-ok", b"ISA*orphan-old"))
    assert (preview.raw_files, preview.raw_bytes) == (4, expected_bytes)
    # still needed: received, shared (newer message), dead letter, unsent ack, ready job, sent, overdue
    assert preview.raw_in_use == 7
    assert preview.messages == 0 and not preview.messages_enabled

    report = await retention.prune(db, store, settings, partners=client.app[PARTNERS]())
    assert (report.raw_files, report.raw_bytes, report.raw_in_use) == (4, expected_bytes, 7)
    for name, sha in shas.items():
        assert store.exists(sha) == (name not in gone and name != "pair_dup"), name
    assert not orphan_old.path.exists() and orphan_new.path.exists()
    assert await count(db, Message) == len(ids)  # message rows are kept without message retention

    resp = await client.get(f"/api/v1/messages/{ids['acked']}/raw", headers=TOKEN)
    assert resp.status == 410
    resp = await client.get(f"/api/v1/messages/{ids['shared_new']}/raw", headers=TOKEN)
    assert resp.status == 200 and await resp.read() == b"ISA*shared"
    again = await retention.prune(db, store, settings, partners=client.app[PARTNERS]())
    assert again.raw_files == 0

    # A partner that expects no 997: its outbound "sent" is final.
    no_ack = [
        SimpleNamespace(
            id="acme", x12=SimpleNamespace(expect_functional_ack=False, duplicate_window_days=None)
        )
    ]
    report = await retention.prune(db, store, settings, partners=no_ack)
    assert report.raw_files == 1 and not store.exists(shas["out_sent"]) and store.exists(shas["out_overdue"])


async def test_message_retention_deletes_settled_messages_with_their_rows(
    aiohttp_client: Any, tmp_path: Path, partners_dir: Path, database_url: str | None
) -> None:
    settings = make_settings(
        tmp_path, partners_dir, database_url, **storage(raw_retention_days=365, message_retention_days=90)
    )
    client = await aiohttp_client(build_app(settings))
    db, store = client.app[DATABASE], client.app[RAWSTORE]
    old = [
        await add_message(
            db,
            store,
            b"ISA*old-%d" % n,
            status="acknowledged",
            age_days=100 + n,
            documents=("delivered", "delivered"),
            outbox=("sent",),
            jobs=("done", "cancelled"),
            events=3,
            attempts=2,
        )
        for n in range(25)
    ]
    old_out = await add_message(
        db,
        store,
        b"ISA*old-out",
        status="rejected",
        direction="out",
        age_days=120,
        documents=("rejected",),
        outbox=("sent",),
        attempts=1,
    )
    dead = await add_message(db, store, b"ISA*dead", status="failed", age_days=100, documents=("pending",))
    unsent = await add_message(db, store, b"ISA*unsent", status="duplicate", age_days=100, outbox=("failed",))
    young = await add_message(
        db, store, b"ISA*young", status="acknowledged", age_days=30, documents=("delivered",)
    )
    shas = {mid: await sha_of(db, mid) for mid in [*old, old_out, dead, unsent, young]}
    now = utcnow()
    async with db.begin() as session:
        for control, days in (("1", 100), ("2", 20)):
            session.add(
                InterchangeSeen(
                    partner_id="acme",
                    sender="ZZ/ACME",
                    control_number=control,
                    first_message_id=old[0],
                    seen_at=now - timedelta(days=days),
                )
            )

    preview = await retention.prune(db, store, settings, partners=client.app[PARTNERS](), dry_run=True)
    assert (
        preview.messages,
        preview.events,
        preview.documents,
        preview.outbox,
        preview.jobs,
        preview.delivery_attempts,
        preview.interchanges_seen,
    ) == (26, 77, 51, 26, 50, 51, 1)
    assert await count(db, Message) == 29

    # A profile with a longer duplicate window keeps the 100-day-old interchange.
    long_window = [
        SimpleNamespace(id="acme", x12=SimpleNamespace(expect_functional_ack=True, duplicate_window_days=200))
    ]
    report = await retention.prune(db, store, settings, partners=long_window)
    assert (
        report.messages,
        report.events,
        report.documents,
        report.outbox,
        report.jobs,
        report.delivery_attempts,
        report.interchanges_seen,
    ) == (26, 77, 51, 26, 50, 51, 0)
    # message retention is shorter than raw retention: their payloads go with them
    assert report.raw_files == 26
    assert all(not store.exists(shas[m]) for m in [*old, old_out])
    assert all(store.exists(shas[m]) for m in (dead, unsent, young))
    for message_id in (dead, unsent, young):
        assert await count(db, Message, id=message_id) == 1
    assert await count(db, Document, message_id=dead) == 1
    assert await count(db, OutboxItem, message_id=unsent) == 1
    for table in (MessageEvent, Document, OutboxItem, Job, DeliveryAttempt):
        assert await count(db, table, message_id=old[0]) == 0
    assert await count(db, InterchangeSeen) == 2
    assert (await client.get(f"/api/v1/messages/{old[0]}", headers=TOKEN)).status == 404
    assert (await client.get(f"/api/v1/messages/{old[0]}/raw", headers=TOKEN)).status == 404

    report = await retention.prune(db, store, settings, partners=client.app[PARTNERS]())
    assert report.messages == 0 and report.interchanges_seen == 1  # the global 30-day window
    assert await count(db, InterchangeSeen) == 1
    without_profiles = await retention.prune(db, store, settings, partners=None)
    assert without_profiles.seen_skipped


async def test_sftp_uploads_set_aside_unconfirmed_go_after_the_raw_retention(
    aiohttp_client: Any, tmp_path: Path, partners_dir: Path, database_url: str | None
) -> None:
    """A file the drop box set aside (no mark of an answered CLOSE) is kept for an
    operator to look at as long as a raw payload, then pruned; what an operator put
    beside it (a link, a folder) and the partner's /inbound stay."""
    settings = make_settings(tmp_path, partners_dir, database_url, **storage(raw_retention_days=30))
    client = await aiohttp_client(build_app(settings))
    db, store = client.app[DATABASE], client.app[RAWSTORE]
    root = settings.data_dir / "sftp"
    hosted = {"authorized_keys": [], "password_hash": None, "archive": False, "max_connections": None}
    takes = Takes(root, 60.0, lambda: HostedPartners({"acme": hosted}), None, sync_uploads=True)
    inbound = root / "acme" / "inbound"
    inbound.mkdir(parents=True)
    (inbound / "cut.edi").write_bytes(b"ISA*cut")  # no mark: its CLOSE was never answered
    await takes.schedule("acme", "cut.edi")
    aside = root / "acme" / ".unconfirmed" / "cut.edi"
    if not aside.exists():
        pytest.skip("no user extended attributes under tmp_path: nothing is set aside")
    (aside.parent / "link").symlink_to(aside)
    (aside.parent / "folder").mkdir()
    (inbound / "waiting.edi").write_bytes(b"ISA*waiting")

    report = await retention.prune(db, store, settings, partners=None, now=utcnow() + timedelta(days=29))
    assert aside.exists() and report.unconfirmed == (0, 0)
    later = utcnow() + timedelta(days=31)
    report = await retention.prune(db, store, settings, partners=None, now=later, dry_run=True)
    assert aside.exists() and report.unconfirmed == (1, 7)
    report = await retention.prune(db, store, settings, partners=None, now=later)
    assert not aside.exists() and report.unconfirmed == (1, 7)
    assert "1 unconfirmed SFTP upload(s) (7 B)" in report.summary()
    assert sorted(os.listdir(aside.parent)) == ["folder", "link"] and os.listdir(inbound) == ["waiting.edi"]


async def test_a_payload_received_again_during_a_prune_is_kept(tmp_path: Path) -> None:
    store = RawStore(tmp_path / "raw", spill_bytes=16)
    store.open_store()
    try:
        old = time.time() - 40 * DAY
        small = await store.write_bytes(b"ISA*small", limit=100)
        big = await store.write_bytes(b"ISA*" + b"x" * 100, limit=1000)  # spilled to a temp file
        for ref in (small, big):
            os.utime(ref.path, (old, old))
            again = await store.write_bytes(ref.path.read_bytes(), limit=1000)  # dedupe refreshes the mtime
            assert again.path == ref.path and ref.path.stat().st_mtime > old + DAY
            assert store.remove_unused(ref.sha256, untouched_since=old + DAY) is None
            assert ref.path.read_bytes() and list((store.root / "pruning").iterdir()) == []
        assert store.remove_unused(small.sha256, untouched_since=time.time() + 1) == len(b"ISA*small")
        assert not small.path.exists()
        assert store.remove_unused(small.sha256, untouched_since=time.time() + 1) is None  # already gone
        # A prune that crashed after moving a file aside: the next start puts it back.
        os.rename(big.path, store.root / "pruning" / f"{big.sha256}.1.1")
    finally:
        store.close()
    store = RawStore(tmp_path / "raw")
    store.open_store()
    try:
        assert store.exists(big.sha256) and list((store.root / "pruning").iterdir()) == []
    finally:
        store.close()


async def test_the_service_prunes_periodically_and_logs_one_line(
    aiohttp_client: Any, tmp_path: Path, partners_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="gateway.retention")
    settings = make_settings(
        tmp_path, partners_dir, None, storage={"raw_retention_days": 30, "prune_interval_minutes": 0.005}
    )
    client = await aiohttp_client(build_app(settings))
    db, store = client.app[DATABASE], client.app[RAWSTORE]
    message_id = await add_message(db, store, b"ISA*periodic", status="acknowledged", age_days=40)
    sha = await sha_of(db, message_id)
    for _ in range(100):
        if not store.exists(sha):
            break
        await asyncio.sleep(0.05)
    assert not store.exists(sha)
    lines = [r.getMessage() for r in caplog.records if r.name == "gateway.retention"]
    assert any(line.startswith("prune deleted 1 raw file(s) (12 B)") for line in lines), lines


async def test_no_periodic_prune_when_the_interval_is_zero(
    aiohttp_client: Any, tmp_path: Path, partners_dir: Path
) -> None:
    client = await aiohttp_client(build_app(make_settings(tmp_path, partners_dir, None, **storage())))
    assert "retention" not in client.app[GATEWAY].scheduler.tasks
    assert "overdue-acks" in client.app[GATEWAY].scheduler.tasks


def test_prune_command_dry_run_then_real_and_refused_while_locked(
    tmp_path: Path, partners_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "gateway.toml"
    config.write_text(
        f'data_dir = "{tmp_path / "var"}"\npartners_dir = "{partners_dir}"\n'
        "[storage]\nraw_retention_days = 30\nmessage_retention_days = 60\n"
    )
    assert cli_main(["prune", "--config", str(config)]) == 0
    assert "nothing to prune: no database" in capsys.readouterr().out

    settings = Settings.model_validate({"data_dir": str(tmp_path / "var"), "partners_dir": str(partners_dir)})

    async def setup() -> tuple[str, str]:
        app = build_app(settings)
        runner = web.AppRunner(app)
        await runner.setup()
        try:
            gone = await add_message(
                app[DATABASE], app[RAWSTORE], b"ISA*cli-gone", status="acknowledged", age_days=70, events=2
            )
            raw_only = await add_message(
                app[DATABASE], app[RAWSTORE], b"ISA*cli-raw", status="failed", age_days=40
            )
            return await sha_of(app[DATABASE], gone), await sha_of(app[DATABASE], raw_only)
        finally:
            await runner.cleanup()

    gone_sha, raw_sha = asyncio.run(setup())
    raw = tmp_path / "var" / "raw"
    (tmp_path / "var" / "sftp" / "acme" / ".unconfirmed").mkdir(parents=True)
    (tmp_path / "var" / "sftp" / "acme" / ".unconfirmed" / "new.edi").write_bytes(b"ISA*new")
    assert cli_main(["prune", "--config", str(config), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "dry run: nothing deleted" in out
    assert "raw payloads: 2 file(s), 23 bytes (23 B) would be deleted" in out
    assert "messages: 1 would be deleted, with 2 event(s), 0 document(s)" in out
    assert "sftp uploads set aside (.unconfirmed): 0 file(s), 0 bytes would be deleted" in out
    assert (raw / gone_sha[:2] / gone_sha).exists()

    with retention.DataDirLock.acquire(settings):
        assert cli_main(["prune", "--config", str(config)]) == 2
        err = capsys.readouterr().err
        assert (
            f"another gateway process (pid {os.getpid()}) is using data dir {(tmp_path / 'var').resolve()}"
            in err
        )
        assert cli_main(["prune", "--config", str(config), "--dry-run"]) == 0  # reading needs no lock
        capsys.readouterr()

    assert cli_main(["prune", "--config", str(config)]) == 0
    out = capsys.readouterr().out
    assert "raw payloads: 2 file(s), 23 bytes (23 B) deleted" in out
    assert "messages: 1 deleted, with 2 event(s)" in out and "interchanges_seen: 0 row(s) deleted" in out
    assert not (raw / gone_sha[:2] / gone_sha).exists() and not (raw / raw_sha[:2] / raw_sha).exists()
