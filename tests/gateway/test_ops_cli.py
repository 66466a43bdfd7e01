"""The operator commands (gateway.ops_cli) against a real ``gateway serve`` process:
search, show, replay, dead letters, and a clear exit 2 when nothing listens."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from fakes.erp_server import FakeErp, free_port
from test_reliability import Gateway, po_numbers, post_orders, wait_until, write_config
from test_reliability import erp as erp  # the fixture

from gateway.cli import main

pytestmark = pytest.mark.slow


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_search_show_replay_and_dead_letters(
    tmp_path: Path, partners_dir: Path, erp: FakeErp, capsys: pytest.CaptureFixture[str]
) -> None:
    erp.start_in_thread()
    erp.refuse("PO-1-1", 422, body="unknown store")
    config = write_config(tmp_path, partners_dir, erp)
    gateway = Gateway(tmp_path, config)
    try:
        url = ["--config", str(config), "--url", gateway.url]
        assert set(asyncio.run(post_orders([gateway.url], range(3))).values()) == {202}
        wait_until(lambda: len(po_numbers(erp)) == 2, 60, "two orders in the ERP")

        code, out, _ = cli(capsys, "messages", "search", "PO-2-1", *url)
        assert code == 0
        [line] = out.splitlines()
        message_id = line.split()[0]
        assert " in " in line and "acme" in line

        code, out, _ = cli(capsys, "messages", "show", message_id, "--json", *url)
        assert code == 0
        shown = json.loads(out)
        assert shown["id"] == message_id and shown["documents"][0]["business_number"] == "PO-2-1"
        code, out, _ = cli(capsys, "messages", "show", message_id, "--documents", "0", *url)
        assert code == 0 and out.startswith(message_id) and "documents (0 of 1):" in out
        assert "PO-2-1" not in out and "timeline (" in out

        wait_until(
            lambda: cli(capsys, "dead-letters", "list", "--json", *url)[1].count('"erp_document"') == 1,
            60,
            "the refused order dead-lettered",
        )
        code, out, _ = cli(capsys, "dead-letters", "list", "--partner", "acme", *url)
        assert code == 0 and "unknown store" in out
        code, out, _ = cli(capsys, "dead-letters", "list", "--partner", "nobody", *url)
        assert (code, out) == (0, "")
        code, out, _ = cli(capsys, "dead-letters", "list", "--kind", "850", "--type", "erp_document", *url)
        assert code == 0 and "unknown store" in out
        for narrower in (["--type", "partner_delivery"], ["--kind", "856"], ["--older-than-hours", "1"]):
            code, out, _ = cli(capsys, "dead-letters", "list", *narrower, *url)
            assert (code, out) == (0, ""), narrower

        erp.recover()
        code, out, _ = cli(capsys, "dead-letters", "replay", "--partner", "acme", "--from", "deliver", *url)
        assert code == 0 and "replaying" in out
        wait_until(lambda: len(po_numbers(erp)) == 3, 60, "the replayed order in the ERP")

        code, out, _ = cli(capsys, "replay", message_id, *url)
        assert code == 0 and out.strip() == f"{message_id}: replaying"
        # from deliver: every document is with the ERP already, so nothing is posted twice
        wait_until(
            lambda: "with the ERP already" in cli(capsys, "replay", message_id, "--from", "deliver", *url)[2],
            60,
            "a replay from deliver refused once the replay from translate settled",
        )
        code, _, err = cli(capsys, "replay", message_id, "--redeliver", *url)
        assert code == 2 and "--redeliver goes with --from deliver" in err
        code, _, err = cli(capsys, "replay", "01HZZZZZZZZZZZZZZZZZZZZZZZ", *url)
        assert code == 1 and "HTTP 4" in err
    finally:
        gateway.stop()
    assert erp.duplicates == {}


def test_no_gateway_listening_is_exit_2(
    tmp_path: Path, partners_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "gateway.toml"
    config.write_text(f'data_dir = "{tmp_path / "var"}"\n[api]\ntoken = "t"\n')
    code, _, err = cli(
        capsys, "messages", "search", "--config", str(config), "--url", f"http://127.0.0.1:{free_port()}"
    )
    assert code == 2
    assert "no gateway answers at" in err
