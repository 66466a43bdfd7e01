"""[logging] format: JSON lines with the ids the code knows and escaped arguments;
text stays the default."""

from __future__ import annotations

import json
import logging

import pytest

from gateway.config import Settings
from gateway.logsetup import configure_logging


@pytest.fixture(autouse=True)
def restore_logging() -> object:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(level)


def test_json_lines_carry_the_ids_and_escape_partner_values(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("INFO", "json")
    log = logging.getLogger("gateway.test")
    log.warning(
        "ERP refused document %s: %s",
        "D1",
        "bad\nFAKE LINE",
        extra={"message_id": "M1", "partner_id": "acme", "document_id": "D1"},
    )
    try:
        raise ValueError("boom")
    except ValueError:
        log.exception("step failed")
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 2
    first, second = (json.loads(line) for line in lines)
    assert first["level"] == "WARNING" and first["logger"] == "gateway.test"
    assert first["message"] == "ERP refused document D1: bad\\x0aFAKE LINE"
    assert (first["message_id"], first["partner_id"], first["document_id"]) == ("M1", "acme", "D1")
    assert first["time"].endswith("+00:00")
    assert "ValueError: boom" in second["exception"]


def test_text_is_the_default(capsys: pytest.CaptureFixture[str]) -> None:
    assert Settings().logging.format == "text"
    configure_logging("INFO")
    logging.getLogger("gateway.test").info("hello %s", "there")
    assert capsys.readouterr().err.rstrip().endswith("INFO gateway.test: hello there")


def test_unknown_format_is_a_config_error() -> None:
    with pytest.raises(ValueError, match="format"):
        Settings.model_validate({"logging": {"format": "xml"}})
