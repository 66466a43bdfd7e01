"""Settings loading and the raw store, on real files."""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from gateway.config import ConfigError, ensure_api_token, load_settings
from gateway.rawstore import PayloadTooLarge, RawStore

CONTRACT = """
data_dir = "var"
partners_dir = "partners"
[server]
host = "127.0.0.1"
port = 8080
[identity]
interchange_qualifier = "ZZ"
interchange_id = "OURCOMPANY"
group_id = "OURCOMPANY"
[api]
token = "change-me"
[erp]
mode = "webhook"
url = "http://127.0.0.1:9000/erp"
secret = "hmac-key"
"""


def test_contract_file_loads_and_env_overrides(tmp_path: Path) -> None:
    path = tmp_path / "gateway.toml"
    path.write_text(CONTRACT)
    settings = load_settings(
        path, environ={"GATEWAY_SERVER__PORT": "9090", "GATEWAY_DATABASE_URL": "postgresql+asyncpg://x/y"}
    )
    assert settings.server.port == 9090
    assert settings.effective_database_url == "postgresql+asyncpg://x/y"
    assert settings.erp.mode == "webhook" and settings.erp.secret is not None
    assert "hmac-key" not in repr(settings) and "change-me" not in repr(settings)


def test_configuration_reference_is_complete_and_loads_to_the_defaults(tmp_path: Path) -> None:
    from pydantic import BaseModel

    from gateway.config import Settings

    text = (Path(__file__).resolve().parents[2] / "docs" / "configuration.md").read_text()
    example = re.search(r"```toml\n(.*?)```", text, re.S)
    assert example is not None
    path = tmp_path / "gateway.toml"
    path.write_text(example.group(1))
    assert load_settings(path, environ={}) == load_settings(None, environ={})
    sections = re.split(r"^\[(\w+)\]$", example.group(1), flags=re.M)
    written = {"": sections[0], **dict(zip(sections[1::2], sections[2::2], strict=True))}
    missing = []
    for name, field in Settings.model_fields.items():
        if isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel):
            keys = [(name, key) for key in field.annotation.model_fields]
        elif field.default is None and any(
            isinstance(a, type) and issubclass(a, BaseModel)
            for a in getattr(field.annotation, "__args__", ())
        ):  # an optional table (``[as2]``): shown commented out, as it is off by default
            if not re.search(rf"^# \[+{name}[.\]]", example.group(1), re.M):
                missing.append(f"[{name}]")
            continue
        else:
            keys = [("", name)]
        missing += [f"{s}.{k}" for s, k in keys if not re.search(rf"^#? ?{k} = ", written.get(s, ""), re.M)]
    assert missing == []


def test_variables_that_are_not_settings_are_ignored() -> None:
    env = {
        "GATEWAY_CONFIG": "x.toml",
        "GATEWAY_TEST_DATABASE_URL": "postgresql+asyncpg://postgres@127.0.0.1:5432",
        "GATEWAY_TEST_ARTEFACTS": "/tmp/screenshots",  # the browser test's (docs/console.md)
    }
    assert load_settings(None, environ=env) == load_settings(None, environ={})


def test_defaults_without_a_file() -> None:
    settings = load_settings(None, environ={})
    assert (settings.server.host, settings.server.port) == ("127.0.0.1", 8080)
    assert settings.effective_database_url.endswith("/var/gateway.db")
    assert settings.erp.mode == "feed"


@pytest.mark.parametrize(
    ("text", "env", "message"),
    [
        ("[server]\nprot = 1\n", {}, "{file}: server.prot: unknown key (did you mean server.port?)"),
        ("[servr]\nport = 1\n", {}, "{file}: servr: unknown section (did you mean server?)"),
        (
            "[server]\nzzz = 1\n",
            {},
            "{file}: server.zzz: unknown key (known here: host, port, access_log, shutdown_timeout_seconds)",
        ),
        (
            "",
            {"GATEWAY_SERVR__PORT": "1"},
            "GATEWAY_SERVR__PORT: servr: unknown section (did you mean GATEWAY_SERVER__PORT?)",
        ),
        (
            "",
            {"GATEWAY_PIPELINE__BATCHSIZE": "9"},
            "GATEWAY_PIPELINE__BATCHSIZE: pipeline.batchsize: unknown key (did you mean GATEWAY_PIPELINE__BATCH_SIZE?)",
        ),
        (
            "[server]\nport = 1\n",
            {"GATEWAY_SERVER__PORT": "abc"},
            "GATEWAY_SERVER__PORT: server.port: must be an integer (got 'abc')",
        ),
        (
            "[server]\nport = 99999\n",
            {},
            "{file}: server.port: must be less than or equal to 65535 (got 99999)",
        ),
        ('[erp]\nmode = "hook"\n', {}, "{file}: erp.mode: must be one of 'feed' or 'webhook' (got 'hook')"),
        (
            "",
            {"GATEWAY_ERP__MODE": "webhook"},
            'GATEWAY_ERP__MODE: erp.url is required when erp.mode = "webhook"',
        ),
        ("[api]\ntoken = 12345\n", {}, "{file}: api.token: must be a string"),  # a secret is never echoed
        (
            "[pipeline]\nbatch_size = 0\nheartbeat = 3\n",
            {},
            "2 configuration problems:\n  {file}: pipeline.batch_size: must be greater than or equal to 1 (got 0)"
            "\n  {file}: pipeline.heartbeat: unknown key (did you mean pipeline.heartbeat_seconds?)",
        ),
    ],
)
def test_errors_name_the_file_or_variable_the_key_and_a_near_key(
    tmp_path: Path, text: str, env: dict[str, str], message: str
) -> None:
    path = tmp_path / "gateway.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as raised:
        load_settings(path, environ=env)
    assert str(raised.value) == message.format(file=path)


@pytest.mark.parametrize(
    ("text", "env"), [("[server]\nprot = 1\n", {}), ("", {"GATEWAY_SERVR__PORT": "1"}), ("data_dir = [", {})]
)
def test_unknown_keys_and_bad_toml_are_errors(tmp_path: Path, text: str, env: dict[str, str]) -> None:
    path = tmp_path / "gateway.toml"
    path.write_text(text)
    with pytest.raises(ConfigError):
        load_settings(path, environ=env)


@pytest.mark.parametrize(
    ("erp", "key"),
    [
        ('mode = "webhook"', "erp.url is required"),
        ('mode = "webhook"\nurl = "erp.example/in"', "erp.url must be an http"),
        ('mode = "webhook"\nurl = "https://erp.example/in"', "erp.secret is required"),
        ('mode = "webhook"\nurl = "https://erp.example/in"\nsecret = ""', "erp.secret is required"),
    ],
)
def test_webhook_without_url_or_secret_is_a_config_error(tmp_path: Path, erp: str, key: str) -> None:
    path = tmp_path / "gateway.toml"
    path.write_text(f"[erp]\n{erp}\n")
    with pytest.raises(ConfigError) as raised:
        load_settings(path, environ={})
    assert key in str(raised.value) and "Value error" not in str(raised.value)


def test_unsigned_webhook_only_when_allowed_explicitly(tmp_path: Path) -> None:
    path = tmp_path / "gateway.toml"
    path.write_text('[erp]\nmode = "webhook"\nurl = "https://erp.example/in"\nallow_unsigned = true\n')
    settings = load_settings(path, environ={})
    assert settings.erp.allow_unsigned and settings.erp.secret is None
    assert load_settings(None, environ={}).erp.allow_unsigned is False
    env = {
        "GATEWAY_ERP__MODE": "webhook",
        "GATEWAY_ERP__URL": "http://erp/in",
        "GATEWAY_ERP__ALLOW_UNSIGNED": "true",
    }
    assert load_settings(None, environ=env).erp.allow_unsigned
    # Feed mode needs neither; the new keys have their defaults.
    defaults = load_settings(None, environ={})
    assert defaults.storage.min_free_mb == 64 and defaults.server.access_log is False


def test_generated_token_is_private_and_stable(tmp_path: Path) -> None:
    settings = load_settings(None, environ={"GATEWAY_DATA_DIR": str(tmp_path / "var")})
    token, generated = ensure_api_token(settings)
    assert generated and len(token) >= 40
    assert ((tmp_path / "var" / "api-token").stat().st_mode & 0o777) == 0o600
    assert ensure_api_token(settings) == (token, False)


@pytest.mark.parametrize("use_syncfs", [True, False])
async def test_raw_store_small_large_duplicate_and_limit(tmp_path: Path, use_syncfs: bool) -> None:
    store = RawStore(tmp_path / "raw", spill_bytes=1024, use_syncfs=use_syncfs)
    store.open_store()
    try:
        small = await store.write_bytes(b"ISA*small", limit=10_000)
        big_body = bytes(range(256)) * 20

        async def chunks():  # type: ignore[no-untyped-def]
            for i in range(0, len(big_body), 100):
                yield big_body[i : i + 100]

        big = await store.write(chunks(), limit=10_000)
        assert big.path.read_bytes() == big_body and big.sha256 == hashlib.sha256(big_body).hexdigest()
        assert small.path == tmp_path / "raw" / small.sha256[:2] / small.sha256
        again = await store.write_bytes(b"ISA*small", limit=10_000)
        assert again.path == small.path
        with pytest.raises(PayloadTooLarge):
            await store.write(chunks(), limit=1000)
        assert list((tmp_path / "raw" / "tmp").iterdir()) == []  # nothing half-written left behind
        future = datetime.now(UTC) + timedelta(days=1)
        assert store.prune(future, keep={big.sha256}) == 1
        assert not store.exists(small.sha256) and store.exists(big.sha256)
    finally:
        store.close()
