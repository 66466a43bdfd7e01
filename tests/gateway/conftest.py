"""Fixtures for the service tests: real SQLite files in tmp_path, real PostgreSQL
databases (one throwaway database per test) when the server of
``$GATEWAY_TEST_DATABASE_URL`` (default ``postgresql+asyncpg://postgres@127.0.0.1:5432/test``)
answers, partner folders written per test, and the real app from ``build_app``."""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import socket
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from gwsamples import profile_toml
from sqlalchemy.engine import make_url

from gateway.app import Overrides, build_app
from gateway.config import Settings

# The server the PostgreSQL tests use; its database is the one connected to while
# creating and dropping a throwaway database per test (default: "test").
PG_URL = make_url(
    os.environ.get("GATEWAY_TEST_DATABASE_URL") or "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
)
PG_HOST, PG_PORT = PG_URL.host or "127.0.0.1", PG_URL.port or 5432
PG_ABSENT = (
    f"PostgreSQL does not answer at {PG_HOST}:{PG_PORT} (set GATEWAY_TEST_DATABASE_URL, "
    "e.g. postgresql+asyncpg://postgres@127.0.0.1:5432, to use another server)"
)
ACME_KEY = "acme-secret-key"
GLOBEX_KEY = "globex-secret-key"


def postgres_available() -> bool:
    with contextlib.suppress(OSError), socket.create_connection((PG_HOST, PG_PORT), timeout=0.5):
        return True
    return False


def _pg(sql: str) -> None:
    import asyncpg

    async def run() -> None:
        conn = await asyncpg.connect(
            host=PG_HOST,
            port=PG_PORT,
            user=PG_URL.username or "postgres",
            password=PG_URL.password,
            database=PG_URL.database or "postgres",
        )
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
        yield (
            PG_URL.set(drivername="postgresql+asyncpg", database=name).render_as_string(hide_password=False),
            name,
        )
    finally:
        _pg(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str | None]:
    """Each test using this runs on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        yield None
        return
    if not postgres_available():
        pytest.skip(PG_ABSENT)
    with throwaway_postgres() as (url, _name):
        yield url


@pytest.fixture
def pg_database() -> Iterator[tuple[str, str]]:
    if not postgres_available():
        pytest.skip(PG_ABSENT)
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


# AS2 keys and a partner AS2 server (pyas2lib, tests/gateway/as2peer.py) shared by the
# AS2 send/receive and console tests; one key pair per side per module.
@pytest.fixture(scope="module")
def us() -> Any:
    import as2

    return as2.generate_self_signed("ourcompany-test")


@pytest.fixture(scope="module")
def them() -> Any:
    import as2

    return as2.generate_self_signed("holdretail-test")


@pytest.fixture
async def peer(us: Any, them: Any) -> AsyncIterator[Any]:
    from as2peer import FakeAs2Partner  # skips when pyas2lib is not installed

    server = FakeAs2Partner(us, them)
    await server.start()
    yield server
    await server.stop()
