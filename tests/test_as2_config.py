"""AS2 configuration offline: ``gateway certs new/show``, ``gateway partners check``
with ``[as2]`` tables, key paths relative to gateway.toml, certificate problems
reported with file and key."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from gateway.cli import main
from gateway.config import load_settings
from gateway.partners import PartnersError, load_partners

PROFILE = """id = "holdretail"
name = "Hold Retail"
[x12]
interchange_qualifier = "ZZ"
interchange_id = "HOLDRETAIL"
group_id = "HOLDRETAIL"
version = "004010"
[as2]
id = "HOLDRETAIL"
url = "https://as2.holdretail.example/as2"
certificates = ["{cert}"]
[delivery]
channel = "as2"
"""
CONFIG = """[as2]
id = "OURCOMPANY"
[[as2.keys]]
key = "as2/OURCOMPANY.key"
certificate = "as2/OURCOMPANY.pem"
"""


@pytest.fixture(autouse=True)
def no_gateway_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.startswith("GATEWAY_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def setup_tree(tmp_path: Path, cert: str = "as2/HOLDRETAIL.pem") -> None:
    assert main(["certs", "new", "--cn", "OURCOMPANY", "--out", "as2"]) == 0
    assert (
        main(["certs", "new", "--cn", "HOLDRETAIL", "--days", "20", "--out", "partners/holdretail/as2"]) == 0
    )
    (tmp_path / "gateway.toml").write_text(CONFIG)
    (tmp_path / "partners" / "holdretail" / "profile.toml").write_text(PROFILE.format(cert=cert))


def test_certs_new_writes_a_private_key_and_never_overwrites(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["certs", "new", "--cn", "OUR CO", "--out", "keys"]) == 0
    assert (tmp_path / "keys" / "OUR_CO.key").stat().st_mode & 0o777 == 0o600
    assert b"BEGIN CERTIFICATE" in (tmp_path / "keys" / "OUR_CO.pem").read_bytes()
    assert main(["certs", "new", "--cn", "OUR CO", "--out", "keys"]) == 2
    assert "not overwritten" in capsys.readouterr().err


def test_certs_show_and_partners_check_list_certificates_with_expiry(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    setup_tree(tmp_path)
    capsys.readouterr()
    assert main(["certs", "show"]) == 0
    out = capsys.readouterr().out
    assert "ours (OURCOMPANY): CN=OURCOMPANY" in out
    assert "holdretail (HOLDRETAIL): CN=HOLDRETAIL" in out and "(expires soon)" in out
    assert main(["partners", "check"]) == 0
    assert "certificate holdretail (HOLDRETAIL)" in capsys.readouterr().out


def test_key_paths_are_relative_to_the_config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    setup_tree(tmp_path)
    monkeypatch.chdir("/")
    settings = load_settings(tmp_path / "gateway.toml")
    assert settings.as2 is not None
    assert settings.as2.keys[0].key == tmp_path / "as2" / "OURCOMPANY.key"


def test_missing_or_bad_certificate_is_reported_with_file_and_key(tmp_path: Path) -> None:
    setup_tree(tmp_path, cert="as2/missing.pem")
    with pytest.raises(PartnersError) as missing:
        load_partners(tmp_path / "partners")
    [line] = missing.value.errors
    assert line.startswith(
        f"{tmp_path / 'partners' / 'holdretail' / 'profile.toml'}: as2.certificates[1]: cannot read"
    )
    (tmp_path / "partners" / "holdretail" / "as2" / "missing.pem").write_text("not a certificate")
    with pytest.raises(PartnersError) as bad:
        load_partners(tmp_path / "partners")
    assert "as2.certificates[1]" in bad.value.errors[0] and "cannot load certificate" in bad.value.errors[0]
    assert main(["partners", "check"]) == 1


def test_partner_with_as2_needs_our_as2_settings(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    setup_tree(tmp_path)
    (tmp_path / "gateway.toml").write_text("")
    capsys.readouterr()
    assert main(["partners", "check"]) == 1
    assert "gateway settings have no [as2] table" in capsys.readouterr().err


def test_expired_partner_certificate_refuses_the_profile(tmp_path: Path) -> None:
    import datetime as dt

    import as2

    setup_tree(tmp_path)
    old = as2.generate_self_signed(
        "HOLDRETAIL-OLD", days=10, now=dt.datetime.now(dt.UTC) - dt.timedelta(days=30)
    )
    (tmp_path / "partners" / "holdretail" / "as2" / "HOLDRETAIL.pem").write_bytes(as2.key_pair_pem(old)[1])
    with pytest.raises(PartnersError) as expired:
        load_partners(tmp_path / "partners")
    assert expired.value.errors[0].endswith("as2.certificates: none of the certificates is valid now")


def test_client_certificate_needs_its_key(tmp_path: Path) -> None:
    setup_tree(tmp_path)
    profile = tmp_path / "partners" / "holdretail" / "profile.toml"
    profile.write_text(
        profile.read_text().replace("[delivery]", 'client_certificate = "as2/x.pem"\n[delivery]')
    )
    with pytest.raises(PartnersError) as missing:
        load_partners(tmp_path / "partners")
    assert missing.value.errors[0].endswith(
        "as2.client_certificate: needs client_key as well (both or neither)"
    )


def test_send_compatibility_switches_reach_the_message(tmp_path: Path) -> None:
    import as2

    setup_tree(tmp_path)
    profile = tmp_path / "partners" / "holdretail" / "profile.toml"
    profile.write_text(
        profile.read_text().replace(
            "[delivery]",
            'compress = true\ncompression_order = "after-signing"\nmicalg_spelling = "sha256"\n'
            'content_transfer_encoding = "base64"\nquote_parameters = false\nkey_transport = "rsaes-oaep"\n'
            "[delivery]",
        )
    )
    entry = load_partners(tmp_path / "partners").entry("holdretail")
    assert entry is not None and entry.transport.as2 is not None
    options = entry.transport.as2.send_options()
    assert options == as2.SendOptions(
        micalg_spelling=as2.MicalgSpelling.RFC3851,
        compression=as2.Compression.AFTER_SIGNING,
        transfer_encoding=as2.TransferEncoding.BASE64,
        quote_parameters=False,
        key_transport="rsaes_oaep",
    )
    ours = as2.load_key_pair(
        (tmp_path / "as2" / "OURCOMPANY.key").read_bytes(), (tmp_path / "as2" / "OURCOMPANY.pem").read_bytes()
    )
    sent = as2.build_message(
        b"ISA*...",
        options=as2.SendOptions(
            encrypt=False,
            micalg_spelling=options.micalg_spelling,
            quote_parameters=False,
            transfer_encoding=options.transfer_encoding,
        ),
        our_keys=[ours],
    )
    # micalg unquoted in the RFC 3851 spelling; values with tspecials stay quoted as MIME requires
    assert "; micalg=sha256;" in sent.headers["Content-Type"]
    assert b"Content-Transfer-Encoding: base64" in sent.body
    with pytest.raises(PartnersError, match="micalg_spelling"):
        profile.write_text(
            profile.read_text().replace('micalg_spelling = "sha256"', 'micalg_spelling = "SHA256"')
        )
        load_partners(tmp_path / "partners")
