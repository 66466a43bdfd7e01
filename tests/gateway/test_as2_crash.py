"""AS2 across a real crash of a ``gateway serve`` process (SIGKILL), then a restart
and the partner (pyas2lib) posting the same message again (same Message-ID):

- killed while the message is being committed (held there by a PostgreSQL trigger
  on the insert of its ``mdn_sent`` record, which the intake commits in the same
  transaction as the message): nothing was stored, no MDN was answered; the retry
  is stored and answered, the ERP gets the document once;
- killed after the commit, before the partner read its MDN: the retry gets the
  very MDN recorded at the commit, nothing is stored or processed twice.

The windows are made with the database and the partner's socket, not with a seam
in our code.
"""

from __future__ import annotations

import asyncio
import base64
import json
import socket
import sqlite3
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from as2peer import THEIR_AS2, add_as2_partner, as2_settings, http_bytes, pyas2
from conftest import PG_HOST, PG_PORT, PG_URL
from fakes.erp_server import FakeErp
from gwsamples import order_850
from test_as2_receive import outgoing
from test_reliability import SECRET, Gateway, po_numbers, wait_until, write_config

import as2

pytestmark = pytest.mark.slow

STALL = """
CREATE FUNCTION stall_mdn_sent() RETURNS trigger AS $$
BEGIN
    PERFORM pg_sleep(600);
    RETURN NEW;
END $$ LANGUAGE plpgsql;
CREATE TRIGGER stall_mdn_sent BEFORE INSERT ON message_events
    FOR EACH ROW WHEN (NEW.state = 'mdn_sent') EXECUTE FUNCTION stall_mdn_sent();
"""


def sql(database: str, statement: str) -> list[Any]:
    import asyncpg

    async def run() -> list[Any]:
        conn = await asyncpg.connect(
            host=PG_HOST, port=PG_PORT, user=PG_URL.username or "postgres",
            password=PG_URL.password, database=database,
        )  # fmt: skip
        try:
            if ";" in statement.rstrip().rstrip(";"):  # several commands: no rows
                await conn.execute(statement)
                return []
            return list(await conn.fetch(statement))
        finally:
            await conn.close()

    return asyncio.run(run())


@pytest.fixture
def erp() -> Iterator[FakeErp]:
    server = FakeErp(secret=SECRET)
    server.start_in_thread()
    yield server
    server.stop_thread()


def as2_config(tmp_path: Path, us: as2.KeyPair) -> str:
    section = as2_settings(tmp_path, us)
    [keys] = section["keys"]
    return (
        f'[as2]\nid = "{section["id"]}"\n'
        f'[[as2.keys]]\nkey = "{keys["key"]}"\ncertificate = "{keys["certificate"]}"\n'
    )


def post(url: str, message: Any) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, data=message.content, headers=dict(message.headers), method="POST")
    with urllib.request.urlopen(request, timeout=60) as resp:
        return resp.status, dict(resp.headers), resp.read()


def test_sigkill_while_committing_then_the_partner_retries(
    tmp_path: Path, partners_dir: Path, erp: FakeErp, pg_database: tuple[str, str]
) -> None:
    url, name = pg_database
    us, them = as2.generate_self_signed("ourcompany-crash"), as2.generate_self_signed("holdretail-crash")
    add_as2_partner(partners_dir, them)
    config = write_config(tmp_path, partners_dir, erp, url)
    config.write_text(config.read_text() + as2_config(tmp_path, us))
    message = outgoing(them, us, order_850(THEIR_AS2, 21, po="PO-CRASH"))

    gateway = Gateway(tmp_path, config)  # creates the schema
    outcome: list[BaseException | tuple[int, dict[str, str], bytes]] = []
    try:
        sql(name, STALL)

        def first_attempt() -> None:
            try:
                outcome.append(post(f"{gateway.url}/as2", message))
            except (urllib.error.URLError, ConnectionError) as exc:
                outcome.append(exc)

        sender = threading.Thread(target=first_attempt)
        sender.start()
        # pg_sleep in the trigger: the transaction with the message is open, not committed.
        stalled = (
            f"SELECT count(*) AS n FROM pg_stat_activity WHERE datname = '{name}' AND wait_event = 'PgSleep'"
        )
        wait_until(lambda: sql(name, stalled)[0]["n"] >= 1, 30, "the commit held by the trigger")
        assert outcome == []
        gateway.kill()
        sender.join(30)
        assert len(outcome) == 1 and isinstance(outcome[0], BaseException)  # the partner got no MDN
    finally:
        gateway.stop()
    # The killed process's database session still sleeps in the trigger: end it,
    # then remove the stall.
    sql(name, f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}' "
        "AND pid <> pg_backend_pid()")  # fmt: skip
    sql(name, "DROP TRIGGER stall_mdn_sent ON message_events")
    assert sql(name, "SELECT count(*) AS n FROM messages")[0]["n"] == 0  # all or nothing: nothing

    gateway = Gateway(tmp_path, config, name="gw2")
    try:
        status, headers, body = post(f"{gateway.url}/as2", message)  # the partner's retry
        assert status == 200
        mdn_status, detail = pyas2.Mdn().parse(
            http_bytes(headers, body), find_message_cb=lambda mid, rcpt: message
        )
        assert (mdn_status, detail) == ("processed", None)
        again = post(f"{gateway.url}/as2", message)  # and once more: the very same MDN
        assert again[2] == body
        wait_until(lambda: "PO-CRASH-1" in po_numbers(erp), 60, "the order in the ERP")
        time.sleep(1.0)  # room for a second delivery, were there one
    finally:
        gateway.stop()
    assert sql(name, "SELECT count(*) AS n FROM messages WHERE channel = 'as2'")[0]["n"] == 1
    assert list(po_numbers(erp)) == ["PO-CRASH-1"] and sum(erp.accepted.values()) == 1


def stored_mdns(tmp_path: Path) -> list[tuple[str, dict[str, Any]]]:
    with sqlite3.connect(f"file:{tmp_path / 'var' / 'gateway.db'}?mode=ro", uri=True, timeout=5) as conn:
        try:
            rows = conn.execute(
                "SELECT m.id, e.detail FROM messages m JOIN message_events e ON e.message_id = m.id "
                "WHERE m.channel = 'as2' AND e.state = 'mdn_sent'"
            ).fetchall()
        except sqlite3.OperationalError:
            return []
    return [(row[0], json.loads(row[1])) for row in rows]


def test_sigkill_after_the_commit_before_the_partner_read_its_mdn(
    tmp_path: Path, partners_dir: Path, erp: FakeErp
) -> None:
    us, them = as2.generate_self_signed("ourcompany-crash2"), as2.generate_self_signed("holdretail-crash2")
    add_as2_partner(partners_dir, them)
    config = write_config(tmp_path, partners_dir, erp)
    config.write_text(config.read_text() + as2_config(tmp_path, us))
    message = outgoing(them, us, order_850(THEIR_AS2, 22, po="PO-LOST"))

    gateway = Gateway(tmp_path, config)
    try:
        # The partner sends and never reads the answer: as if the MDN were lost.
        with socket.create_connection(("127.0.0.1", gateway.port)) as partner:
            head = f"POST /as2 HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {len(message.content)}\r\n"
            head += "".join(f"{k}: {v}\r\n" for k, v in dict(message.headers).items())
            partner.sendall(head.encode() + b"\r\n" + message.content)
            wait_until(lambda: len(stored_mdns(tmp_path)) == 1, 30, "the message and its MDN committed")
            gateway.kill()
    finally:
        gateway.stop()
    [(message_row, recorded)] = stored_mdns(tmp_path)

    gateway = Gateway(tmp_path, config, name="gw2")
    try:
        status, headers, body = post(f"{gateway.url}/as2", message)  # the partner's retry
        assert status == 200 and body == base64.b64decode(recorded["mdn_body"])
        mdn_status, detail = pyas2.Mdn().parse(
            http_bytes(headers, body), find_message_cb=lambda mid, rcpt: message
        )
        assert (mdn_status, detail) == ("processed", None)
        wait_until(lambda: "PO-LOST-1" in po_numbers(erp), 60, "the order in the ERP")
        time.sleep(1.0)  # room for a second delivery, were there one
    finally:
        gateway.stop()
    assert [m for m, _ in stored_mdns(tmp_path)] == [message_row]
    assert list(po_numbers(erp)) == ["PO-LOST-1"] and sum(erp.accepted.values()) == 1
