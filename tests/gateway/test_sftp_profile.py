"""The [sftp] profile table: hosted and poll modes, the key checks, the private
key resolved against the partner folder, and the delivery channel that needs it."""

from __future__ import annotations

from pathlib import Path

import pytest
from gwsamples import profile_toml
from sftp_peers import hosted_table, keygen, need_openssh, poll_table

from gateway.partners import PartnersError, load_partners, parse_partner
from gateway.passwords import hash_password
from gateway.transports.sftp import file_name
from translators.profile import ProfileError

ED25519 = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHoB0BWW/OaNApLWCDoBELjtNxYRsmemHeZd7prHbqQA comment"


def parse(extra: str) -> object:
    return parse_partner(profile_toml("acme", "ACME", "k") + extra, source="profile.toml")[1]


def problems(extra: str) -> list[str]:
    with pytest.raises(ProfileError) as caught:
        parse(extra)
    return caught.value.errors


def test_hosted_table_parses_and_keeps_type_and_key_only() -> None:
    transport = parse(hosted_table(ED25519))
    assert transport.sftp.mode == "hosted" and transport.delivery.channel == "sftp"
    assert transport.sftp.authorized_keys == [ED25519.rsplit(" ", 1)[0]]
    assert transport.sftp.filename == "{kind}_{interchange_control}_{timestamp}.edi"


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ('[delivery]\nchannel = "sftp"', 'delivery.channel = "sftp" needs an [sftp] table'),
        ('[sftp]\nmode = "drop"', "sftp.mode: must be 'hosted' or 'poll'"),
        ('[sftp]\nmode = "hosted"\nauthorized_keys = ["ssh-ed25519 !!!"]', "not valid base64"),
        (
            '[sftp]\nmode = "hosted"\nauthorized_keys = ["ssh-rsa AAAAC3NzaC1lZDI1NTE5AAAAIHoB0BWW/OaNApLWCDoBELjtNxYRsmemHeZd7prHbqQA"]',
            "not a ssh-rsa key",
        ),
        ('[sftp]\nmode = "hosted"\nauthorized_keys = []', "sftp.authorized_keys"),
        ('[sftp]\nmode = "poll"\nhost = "h"', 'sftp.username: required when mode = "poll"'),
        (
            f'[sftp]\nmode = "hosted"\nauthorized_keys = ["{ED25519}"]\nhost = "h"',
            'sftp.host: not used with mode = "hosted"',
        ),
        (
            f'[sftp]\nmode = "hosted"\nauthorized_keys = ["{ED25519}"]\nfilename = "{{isa}}.edi"',
            "unknown field",
        ),
        (f'[sftp]\nmode = "hosted"\nauthorized_keys = ["{ED25519}"]\nfilename = "../x"', "no '/'"),
        (
            '[sftp]\nmode = "hosted"\npassword_hash = "hunter2hunter2"',
            "sftp.password_hash: must be an scrypt hash",
        ),
        (
            '[sftp]\nmode = "hosted"\npassword_hash = "scrypt$16384$8$1$c2FsdA==$aGFzaA=="',
            "at least 16 bytes",
        ),
        (
            '[sftp]\nmode = "hosted"\npassword_hash = "scrypt$1048576$8$1$' + "A" * 24 + "$" + "A" * 44 + '"',
            "64 MiB",
        ),
        ('[sftp]\nmode = "hosted"', "at least one key (or a password_hash)"),
        (
            f'[sftp]\nmode = "poll"\nhost = "h"\nusername = "u"\nhost_key = "{ED25519}"\ninbound_path = "/o"\n'
            'outbound_path = "/i"\npassword = "hunter2hunter2"',
            "password: never write the secret in the profile",
        ),
        (
            f'[sftp]\nmode = "poll"\nhost = "h"\nusername = "u"\nhost_key = "{ED25519}"\ninbound_path = "/o"\n'
            'outbound_path = "/i"',
            "sftp.private_key: required",
        ),
    ],
)
def test_bad_sftp_tables_are_refused_with_the_key_named(extra: str, expected: str) -> None:
    found = problems(extra)
    assert any(expected in line for line in found), found
    assert not any("hunter2" in line for line in found), found  # a pasted password is never echoed


def test_a_hosted_partner_may_have_a_password_hash_and_no_key() -> None:
    stored = hash_password("correct horse battery")
    transport = parse(f'[sftp]\nmode = "hosted"\npassword_hash = "{stored}"\n')
    assert transport.sftp.password_hash == stored and transport.sftp.authorized_keys == []
    assert stored not in repr(transport)


def test_poll_password_file_is_resolved_and_read_at_load(tmp_path: Path) -> None:
    folder = tmp_path / "partners" / "acme"
    folder.mkdir(parents=True)
    table = poll_table(port=22, username="u", private_key="-", host_key=ED25519, inbound="/o", outbound="/i")
    table = table.replace('private_key = "-"', 'password_file = "sftp/password"')
    (folder / "profile.toml").write_text(profile_toml("acme", "ACME", "k") + table)
    with pytest.raises(PartnersError) as caught:
        load_partners(tmp_path / "partners")
    assert "sftp.password_file:" in caught.value.errors[0] and "not found" in caught.value.errors[0]
    (folder / "sftp").mkdir()
    (folder / "sftp" / "password").write_text("s3cret-enough\n")
    sftp = load_partners(tmp_path / "partners").transport("acme").sftp
    assert sftp.password_file == str((folder / "sftp" / "password").resolve())
    assert sftp.secret_value() == "s3cret-enough" and "s3cret" not in repr(sftp)


def test_poll_private_key_is_resolved_against_the_partner_folder(tmp_path: Path) -> None:
    need_openssh()
    folder = tmp_path / "partners" / "acme"
    key, _ = keygen(folder / "sftp", "id_ed25519")
    table = poll_table(
        port=22, username="u", private_key="sftp/id_ed25519", host_key=ED25519, inbound="/out", outbound="/in"
    )
    (folder / "profile.toml").write_text(profile_toml("acme", "ACME", "k") + table)
    sftp = load_partners(tmp_path / "partners").transport("acme").sftp
    assert sftp.private_key == str(key.resolve())
    key.unlink()
    with pytest.raises(PartnersError) as caught:
        load_partners(tmp_path / "partners")
    assert "sftp.private_key:" in caught.value.errors[0] and "not found" in caught.value.errors[0]


def test_file_names_come_from_the_template_and_are_safe() -> None:
    from datetime import UTC, datetime

    from gateway.ports import OutboundItem

    item = OutboundItem("01ITEM", "acme", "997", b"", 42, None, 1, datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC))
    assert (
        file_name("{kind}_{interchange_control}_{timestamp}.edi", item)
        == "997_000000042_20260102T030405000000Z.edi"
    )
    assert file_name("{partner} {id}/x.edi", item) == "acme_01ITEM_x.edi"


async def test_hosted_partners_without_a_drop_box_are_reported(
    aiohttp_client: object, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    import logging

    from conftest import make_settings

    from gateway.app import build_app

    folder = tmp_path / "partners" / "acme"
    folder.mkdir(parents=True)
    (folder / "profile.toml").write_text(profile_toml("acme", "ACME", "k") + hosted_table(ED25519))
    with caplog.at_level(logging.WARNING, logger="gateway.transports.sftp_poll"):
        await aiohttp_client(build_app(make_settings(tmp_path, tmp_path / "partners")))  # type: ignore[operator]
    assert any("acme" in r.getMessage() and "no [sftp] table" in r.getMessage() for r in caplog.records)
