"""gateway.offline_settings: `gateway translate` and `gateway ack` skip building the
service's settings models when nothing configures them, and read the full settings
(validated, failing the same way) as soon as a file or a GATEWAY_* variable does."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.cli import main
from gateway.config import load_settings
from gateway.offline_settings import DefaultSettings, unconfigured

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples" / "partners"
SOURCE = ROOT / "fixtures" / "engine" / "850_4010_holdretail_valid.edi"


def test_nothing_configured_gives_the_settings_defaults(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    environ = {"GATEWAY_CONFIG": "", "GATEWAY_TEST_DATABASE_URL": "x", "HOME": "/nowhere"}
    light = unconfigured(None, environ)
    full = load_settings(None, {})
    assert isinstance(light, DefaultSettings)
    assert light.identity.ours == full.identity.ours
    assert light.identity.check_receiver is full.identity.check_receiver
    assert light.partners_dir == full.partners_dir


def test_a_variable_or_a_file_means_the_full_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert unconfigured(None, {"GATEWAY_IDENTITY__INTERCHANGE_ID": "OURS"}) is None
    assert unconfigured(tmp_path / "elsewhere.toml", {}) is None
    (tmp_path / "gateway.toml").write_text('[identity]\ngroup_id = "FROMFILE"\n')
    assert unconfigured(None, {}) is None


def test_translate_takes_the_partners_folder_from_a_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)  # no ./partners here: by default no profile matches
    assert main(["translate", str(SOURCE)]) == 1
    assert capsys.readouterr().out == ""
    monkeypatch.setenv("GATEWAY_PARTNERS_DIR", str(EXAMPLES))
    assert main(["translate", str(SOURCE)]) == 0
    assert '"partner_id":"holdretail"' in capsys.readouterr().out


def test_translate_rejects_a_bad_variable_as_the_service_would(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GATEWAY_SERVER__PORTT", "80")  # a typo in a section translate does not read
    code = main(["translate", str(SOURCE), "--partners", str(EXAMPLES)])
    out, err = capsys.readouterr()
    assert code == 2
    assert out == ""
    assert "portt" in err
