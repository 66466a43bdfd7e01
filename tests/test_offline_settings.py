"""gateway.offline_settings: `gateway translate` and `gateway ack` skip building the
service's settings models when nothing configures them, and read the full settings
(validated, failing the same way) as soon as a file or a GATEWAY_* variable does."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.cli import main
from gateway.config import ConfigError, Settings, load_settings
from gateway.offline_settings import DefaultSettings, offline_settings

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples" / "partners"
SOURCE = ROOT / "fixtures" / "engine" / "850_4010_holdretail_valid.edi"


def test_nothing_configured_gives_the_settings_defaults(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    environ = {"GATEWAY_CONFIG": "", "GATEWAY_TEST_DATABASE_URL": "x", "HOME": "/nowhere"}
    light = offline_settings(None, environ)
    full = load_settings(None, {})
    assert isinstance(light, DefaultSettings)
    assert light.identity.ours == full.identity.ours
    assert light.identity.check_receiver is full.identity.check_receiver
    assert light.partners_dir == full.partners_dir


def test_a_variable_or_a_file_means_the_full_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    by_variable = offline_settings(None, {"GATEWAY_IDENTITY__INTERCHANGE_ID": "OURS"})
    assert isinstance(by_variable, Settings)
    assert by_variable.identity.interchange_id == "OURS"
    with pytest.raises(ConfigError, match="interchange_qualifier"):
        offline_settings(None, {"GATEWAY_IDENTITY__INTERCHANGE_QUALIFIER": "TOOLONG"})
    (tmp_path / "gateway.toml").write_text('[identity]\ngroup_id = "FROMFILE"\n')
    by_file = offline_settings(None, {})
    assert isinstance(by_file, Settings)
    assert by_file.identity.group_id == "FROMFILE"


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
