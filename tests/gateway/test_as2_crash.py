"""AS2 across a real crash: a ``gateway serve`` process on PostgreSQL is killed with
SIGKILL after it stored a message and before it answered the MDN; the partner
(pyas2lib) posts the same message again (same Message-ID) to the restarted
gateway: it gets a processed MDN that pyas2lib verifies, the message is stored
once, and the ERP gets the document once.

The window is made with the database, not with a seam in our code: a trigger on
``message_events`` stalls the insert of the ``mdn_sent`` event (the MDN's record,
written after the intake's commit and before the answer), so the kill lands exactly
between the two.
"""

from __future__ import annotations

import asyncio
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


def test_sigkill_between_store_and_mdn_then_the_partner_retries(
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
        wait_until(
            lambda: sql(name, "SELECT count(*) AS n FROM messages WHERE channel = 'as2'")[0]["n"] == 1,
            30, "the message stored",
        )  # fmt: skip
        time.sleep(0.3)  # the handler is now stalled writing the MDN's record
        assert outcome == []  # stored, and no MDN answered yet
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
    assert po_numbers(erp) == {"PO-CRASH-1": [k for k in erp.accepted]}
    assert sum(erp.accepted.values()) == 1
