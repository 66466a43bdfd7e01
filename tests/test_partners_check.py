"""The partners directory: loading, exact ISA-address lookup, cross-partner rules, and
``gateway partners check`` through main() and through a real subprocess."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.cli import main
from gateway.partners import PartnersError, check_partners, load_partners
from translators.profile import OurIdentity

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples" / "partners"
US = OurIdentity(interchange_qualifier="ZZ", interchange_id="GATEWAY", group_id="GATEWAY")


def write_partner(
    root: Path,
    folder: str,
    *,
    pid: str | None = None,
    qualifier: str = "ZZ",
    isa_id: str | None = None,
    extra: str = "",
) -> Path:
    directory = root / folder
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "profile.toml").write_text(
        f'id = "{pid or folder}"\nname = "{folder.title()}"\n{extra}\n[x12]\n'
        f'interchange_qualifier = "{qualifier}"\ninterchange_id = "{isa_id or folder.upper()}"\n'
        f'group_id = "{folder.upper()}"\nversion = "004010"\n'
    )
    return directory


@pytest.fixture(autouse=True)
def no_gateway_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Settings come from GATEWAY_* variables and ./gateway.toml: keep both out."""
    for name in list(os.environ):
        if name.startswith("GATEWAY_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


# --------------------------------------------------------------------------- loading


def test_example_partners_load() -> None:
    partners = load_partners(EXAMPLES, identity=US)
    assert len(partners) == 2
    assert sorted(p.id for p in partners) == ["holdretail", "northwind3pl"]
    assert "holdretail" in partners
    hold = partners.get("holdretail")
    assert hold is not None and hold.name == "Hold Retail"
    assert partners.get("nobody") is None
    assert check_partners(EXAMPLES, identity=US) == []


def test_by_interchange_matches_qualifier_and_id_exactly() -> None:
    partners = load_partners(EXAMPLES)
    hold = partners.by_interchange("ZZ", "HOLDRETAIL     ")  # ISA06 as read, padded
    assert hold is not None and hold.id == "holdretail"
    north = partners.by_interchange("01", "NORTHWIND3PL")
    assert north is not None and north.id == "northwind3pl"
    test_id = partners.by_interchange("ZZ", "NW3PLTEST")  # an additional id
    assert test_id is not None and test_id.id == "northwind3pl"
    # Same id, other qualifier; other case; a prefix: never a match.
    assert partners.by_interchange("01", "HOLDRETAIL") is None
    assert partners.by_interchange("ZZ", "NORTHWIND3PL") is None
    assert partners.by_interchange("ZZ", "holdretail") is None
    assert partners.by_interchange("ZZ", "HOLDRETAI") is None
    assert partners.by_interchange("ZZ", "HOLDRETAIL2") is None


def test_same_id_under_two_qualifiers_is_two_partners(tmp_path: Path) -> None:
    write_partner(tmp_path / "p", "alpha", qualifier="01", isa_id="123456789")
    write_partner(tmp_path / "p", "beta", qualifier="ZZ", isa_id="123456789")
    partners = load_partners(tmp_path / "p")
    assert partners.by_interchange("01", "123456789").id == "alpha"  # type: ignore[union-attr]
    assert partners.by_interchange("ZZ", "123456789").id == "beta"  # type: ignore[union-attr]


def test_hooks_file_is_recorded_not_imported(tmp_path: Path) -> None:
    folder = write_partner(tmp_path / "p", "alpha")
    # Importing this would raise: the loader must only note that it is there.
    (folder / "hooks.py").write_text("raise RuntimeError('imported!')\n")
    write_partner(tmp_path / "p", "beta")
    partners = load_partners(tmp_path / "p")
    alpha, beta = partners.entry("alpha"), partners.entry("beta")
    assert alpha is not None and alpha.hooks == folder / "hooks.py"
    assert beta is not None and beta.hooks is None
    assert alpha.folder == folder


def test_a_hooks_file_that_does_not_compile_is_a_partner_error(tmp_path: Path) -> None:
    folder = write_partner(tmp_path / "p", "alpha")
    (folder / "hooks.py").write_text("def inbound(document, context)\n    return document\n")
    write_partner(tmp_path / "p", "beta")
    [problem] = check_partners(tmp_path / "p")
    assert problem.startswith(f"{folder / 'hooks.py'}:1: hooks.py does not compile:")


def test_folder_name_must_equal_id(tmp_path: Path) -> None:
    write_partner(tmp_path / "p", "alpha", pid="alfa")
    source = tmp_path / "p" / "alpha" / "profile.toml"
    assert check_partners(tmp_path / "p") == [
        f"{source}: id: must equal the folder name 'alpha' (got 'alfa')"
    ]


def test_duplicate_interchange_address_across_partners(tmp_path: Path) -> None:
    write_partner(tmp_path / "p", "alpha", isa_id="SHARED")
    write_partner(tmp_path / "p", "beta", isa_id="OWN", extra="")
    (tmp_path / "p" / "beta" / "profile.toml").write_text(
        (tmp_path / "p" / "beta" / "profile.toml").read_text()
        + 'additional_ids = [{ qualifier = "ZZ", id = "SHARED" }]\n'
    )
    a = tmp_path / "p" / "alpha" / "profile.toml"
    b = tmp_path / "p" / "beta" / "profile.toml"
    assert check_partners(tmp_path / "p") == [
        f"{b}: x12: interchange address ZZ/SHARED is already used by partner 'alpha' ({a})"
    ]
    with pytest.raises(PartnersError) as caught:
        load_partners(tmp_path / "p")
    assert len(caught.value.errors) == 1


def test_a_partner_may_not_use_our_identity(tmp_path: Path) -> None:
    write_partner(tmp_path / "p", "alpha", isa_id="GATEWAY")
    source = tmp_path / "p" / "alpha" / "profile.toml"
    assert check_partners(tmp_path / "p", identity=US) == [
        f"{source}: x12: interchange address ZZ/GATEWAY is already used by our own identity (gateway settings)"
    ]
    assert check_partners(tmp_path / "p") == []


def test_folder_without_profile_and_bad_profile_are_both_reported(tmp_path: Path) -> None:
    (tmp_path / "p" / "empty").mkdir(parents=True)
    (tmp_path / "p" / ".git").mkdir()  # hidden folders are not partners
    (tmp_path / "p" / "README.md").write_text("not a partner\n")
    write_partner(tmp_path / "p", "alpha", isa_id="WAY-TOO-LONG-FOR-ISA")
    write_partner(tmp_path / "p", "good")
    assert check_partners(tmp_path / "p") == [
        f"{tmp_path / 'p' / 'alpha' / 'profile.toml'}: x12.interchange_id: must be at most 15 characters "
        "(got 'WAY-TOO-LONG-FOR-ISA', 20 characters)",
        f"{tmp_path / 'p' / 'empty'}: no profile.toml in this partner folder",
    ]


def test_missing_directory_and_file_instead_of_directory(tmp_path: Path) -> None:
    assert check_partners(tmp_path / "nope") == [f"{tmp_path / 'nope'}: partners directory not found"]
    (tmp_path / "file").write_text("x")
    assert check_partners(tmp_path / "file") == [
        f"{tmp_path / 'file'}: partners directory is not a directory"
    ]


def test_profile_that_is_not_utf8(tmp_path: Path) -> None:
    folder = tmp_path / "p" / "alpha"
    folder.mkdir(parents=True)
    (folder / "profile.toml").write_bytes(b'name = "\xff"\n')
    [line] = check_partners(tmp_path / "p")
    assert line.startswith(f"{folder / 'profile.toml'}: cannot read: ")


# --------------------------------------------------------------------------- the command


def test_check_command_ok(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["partners", "check", str(EXAMPLES)]) == 0
    out, err = capsys.readouterr()
    assert out == f"{EXAMPLES}: 2 partner profile(s) OK (holdretail, northwind3pl)\n"
    assert err == ""


def test_check_command_defaults_to_settings_partners_dir(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shutil.copytree(EXAMPLES, tmp_path / "partners")
    assert main(["partners", "check"]) == 0
    assert capsys.readouterr().out == "partners: 2 partner profile(s) OK (holdretail, northwind3pl)\n"
    (tmp_path / "gateway.toml").write_text('partners_dir = "elsewhere"\n')
    write_partner(tmp_path / "elsewhere", "alpha")
    assert main(["partners", "check", "--config", "gateway.toml"]) == 0
    assert capsys.readouterr().out == "elsewhere: 1 partner profile(s) OK (alpha)\n"


def test_check_command_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_partner(tmp_path / "p", "alpha", qualifier="Z")
    write_partner(tmp_path / "p", "beta", pid="gamma")
    assert main(["partners", "check", str(tmp_path / "p")]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err.splitlines() == [
        f"{tmp_path / 'p' / 'alpha' / 'profile.toml'}: x12.interchange_qualifier: must be exactly 2 characters, "
        "digits or uppercase letters, e.g. ZZ or 01 (got 'Z')",
        f"{tmp_path / 'p' / 'beta' / 'profile.toml'}: id: must equal the folder name 'beta' (got 'gamma')",
        f"2 error(s) in {tmp_path / 'p'}",
    ]


def test_check_command_uses_our_identity_from_config(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_partner(tmp_path / "p", "alpha", isa_id="US")
    (tmp_path / "gateway.toml").write_text(
        '[identity]\ninterchange_qualifier = "ZZ"\ninterchange_id = "US"\ngroup_id = "US"\n'
    )
    assert main(["partners", "check", "p", "--config", "gateway.toml"]) == 1
    assert "interchange address ZZ/US is already used by our own identity" in capsys.readouterr().err


def test_check_command_bad_config_is_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["partners", "check", str(EXAMPLES), "--config", "missing.toml"]) == 2
    assert capsys.readouterr().err == "gateway: configuration file missing.toml not found\n"


def test_check_subprocess(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    ok = subprocess.run(
        [sys.executable, "-m", "gateway", "partners", "check", str(EXAMPLES)],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=60,
        check=False,
    )
    assert (ok.returncode, ok.stderr) == (0, "")
    assert ok.stdout.endswith("2 partner profile(s) OK (holdretail, northwind3pl)\n")

    write_partner(tmp_path / "p", "alpha", extra='colour = "blue"')
    bad = subprocess.run(
        [sys.executable, "-m", "gateway", "partners", "check", "p"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=60,
        check=False,
    )
    assert bad.returncode == 1
    assert bad.stdout == ""
    assert bad.stderr.splitlines() == [
        "p/alpha/profile.toml: colour: unknown key (see docs/profile-reference.md for the keys a profile may hold)",
        "1 error(s) in p",
    ]
    assert "Traceback" not in bad.stderr
