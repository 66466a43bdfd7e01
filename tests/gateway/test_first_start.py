"""What a new user meets first: a service that refuses to run without partners
unless asked (gateway.bootstrap.load_partner_directory), and a start-up log without
alembic's chatter."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from conftest import make_settings

from gateway.bootstrap import load_partner_directory
from gateway.db.engine import open_database
from gateway.db.schema import prepare_schema
from gateway.partners import PartnersError


def test_missing_or_empty_partners_dir_is_refused_unless_allowed(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, tmp_path / "partners")
    with pytest.raises(PartnersError) as missing:
        load_partner_directory(settings)
    assert missing.value.errors == [f"partners directory {tmp_path / 'partners'} does not exist"]
    assert len(load_partner_directory(settings, allow_empty=True)) == 0

    (tmp_path / "partners" / ".git").mkdir(parents=True)  # not a partner folder
    with pytest.raises(PartnersError) as empty:
        load_partner_directory(settings)
    assert empty.value.errors == [f"partners directory {tmp_path / 'partners'} has no partner folders"]
    assert len(load_partner_directory(settings, allow_empty=True)) == 0


def test_partners_load(tmp_path: Path, partners_dir: Path) -> None:
    assert sorted(p.id for p in load_partner_directory(make_settings(tmp_path, partners_dir))) == [
        "acme",
        "globex",
    ]


async def test_creating_the_schema_logs_the_revisions_not_the_dialect(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    db = open_database(f"sqlite+aiosqlite:///{tmp_path / 'gateway.db'}")
    try:
        with caplog.at_level(logging.INFO):
            assert (await prepare_schema(db)).startswith("empty database: created schema")
            await prepare_schema(db)
    finally:
        await db.close()
    lines = [r.getMessage() for r in caplog.records if r.name.startswith("alembic")]
    assert any(line.startswith("Running upgrade  -> 0001") for line in lines)
    assert not [line for line in lines if line.startswith(("Context impl", "Will assume"))]


def test_worker_without_partners_is_refused_before_touching_the_data_dir(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    run = subprocess.run(
        [sys.executable, "-m", "gateway.service_cli", "worker"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert run.returncode == 2, run.stderr
    assert run.stderr.startswith(f"gateway: partners directory {tmp_path / 'partners'} does not exist")
    assert not (tmp_path / "var").exists()
