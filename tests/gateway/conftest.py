"""Fixtures for the service tests: real SQLite files in tmp_path, real PostgreSQL
databases (one throwaway database per test) when something listens on 5432,
partner folders written per test, and the real app from ``build_app``."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from gwsamples import profile_toml

from gateway.app import Overrides, build_app
from gateway.config import Settings

PG_HOST, PG_PORT = "127.0.0.1", 5432
ACME_KEY = "acme-secret-key"
GLOBEX_KEY = "globex-secret-key"


def postgres_available() -> bool:
    with contextlib.suppress(OSError), socket.create_connection((PG_HOST, PG_PORT), timeout=0.5):
        return True
    return False


def _pg(sql: str) -> None:
    import asyncpg

    async def run() -> None:
        conn = await asyncpg.connect(host=PG_HOST, port=PG_PORT, user="postgres", database="test")
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(run())


@contextlib.contextmanager
def throwaway_postgres() -> Iterator[tuple[str, str]]:
    """A fresh PostgreSQL database (url, name), dropped afterwards."""
    name = f"gw_test_{secrets.token_hex(6)}"
    _pg(f"CREATE DATABASE {name}")
    try:
        yield f"postgresql+asyncpg://postgres@{PG_HOST}:{PG_PORT}/{name}", name
    finally:
        _pg(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str | None]:
    """Each test using this runs on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        yield None
        return
    if not postgres_available():
        pytest.skip("nothing listens on 127.0.0.1:5432")
    with throwaway_postgres() as (url, _name):
        yield url


@pytest.fixture
def pg_database() -> Iterator[tuple[str, str]]:
    if not postgres_available():
        pytest.skip("nothing listens on 127.0.0.1:5432")
    with throwaway_postgres() as found:
        yield found


@pytest.fixture
def partners_dir(tmp_path: Path) -> Path:
    root = tmp_path / "partners"
    for partner_id, isa_id, key, ta1 in (
        ("acme", "ACME", ACME_KEY, "on-error"),
        ("globex", "GLOBEX", GLOBEX_KEY, "always"),
    ):
        (root / partner_id).mkdir(parents=True)
        (root / partner_id / "profile.toml").write_text(profile_toml(partner_id, isa_id, key, ta1=ta1))
    return root


def make_settings(
    tmp_path: Path, partners_dir: Path, database_url: str | None = None, **sections: Any
) -> Settings:
    data: dict[str, Any] = {
        "data_dir": str(tmp_path / "var"),
        "partners_dir": str(partners_dir),
        "identity": {"interchange_qualifier": "ZZ", "interchange_id": "OURCOMPANY", "group_id": "OURCOMPANY"},
        "api": {"token": "internal-test-token"},
        # Workers off by default: tests drive the pipeline with run_until_idle, deterministically.
        "pipeline": {"workers": 0, "retry_base_seconds": 0.01, "poll_seconds": 0.05},
    }
    if database_url:
        data["database_url"] = database_url
    for key, value in sections.items():
        data[key] = {**data.get(key, {}), **value}
    return Settings.model_validate(data)


@pytest.fixture
def settings(tmp_path: Path, partners_dir: Path, database_url: str | None) -> Settings:
    return make_settings(tmp_path, partners_dir, database_url)


@pytest.fixture
def overrides() -> Overrides:
    return Overrides()


@pytest.fixture
async def client(aiohttp_client: Any, settings: Settings, overrides: Overrides) -> Any:
    return await aiohttp_client(build_app(settings, overrides=overrides))


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}", "Content-Type": "application/edi-x12"}
