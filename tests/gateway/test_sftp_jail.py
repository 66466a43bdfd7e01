"""The drop box jail as a pure function: SFTP paths in, places or refusals out."""

from __future__ import annotations

from pathlib import Path

import pytest
from paramiko.sftp import SFTP_PERMISSION_DENIED

from gateway.transports import sftp_jail as jail

BOX = Path("/data/sftp/acme")


@pytest.mark.parametrize(
    ("path", "area", "name", "on_disk"),
    [
        ("/", "", "", BOX),
        ("", "", "", BOX),
        (".", "", "", BOX),
        ("/inbound", "inbound", "", BOX / "inbound"),
        ("inbound/po.edi", "inbound", "po.edi", BOX / "inbound" / "po.edi"),
        ("//outbound/./997.edi", "outbound", "997.edi", BOX / "outbound" / "997.edi"),
        ("/inbound/po.edi.filepart", "inbound", "po.edi.filepart", BOX / ".held" / "po.edi.filepart"),
    ],
)
def test_paths_inside_the_tree(path: str, area: str, name: str, on_disk: Path) -> None:
    place = jail.resolve(BOX, path, archive=False)
    assert (place.area, place.name, place.path) == (area, name, on_disk)


@pytest.mark.parametrize(
    "path",
    [
        "/inbound/../outbound/x",
        "/../globex/outbound/x",
        "..",
        "/etc/passwd",
        "/globex/inbound/x",
        "/inbound/sub/x",
        "/.incoming/x",
        "/inbound/.hidden",
        "/inbound/a\x00b",
        "/inbound/a\\..\\b",
        "/archive/x",  # only with archive = true
    ],
)
def test_everything_else_is_refused(path: str) -> None:
    with pytest.raises(jail.Refused) as refused:
        jail.resolve(BOX, path, archive=False)
    assert refused.value.code == SFTP_PERMISSION_DENIED


def test_archive_exists_only_when_configured() -> None:
    assert jail.resolve(BOX, "/archive/x", archive=True).path == BOX / "archive" / "x"
    assert jail.areas(True) == ("inbound", "outbound", "archive")
