"""Partner profile parsing: the documented minimal file, every default, and the exact
error lines a person gets for each kind of mistake."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import get_args

import pytest
from pydantic import BaseModel

from gateway.partner_settings import MailboxDelivery
from gateway.partners import parse_partner
from translators.mapping.rules import MappingRules
from translators.profile import (
    OurIdentity,
    PartnerProfile,
    ProfileError,
    parse_identity,
    parse_profile,
)
from translators.x12.model import Delimiters

ROOT = Path(__file__).resolve().parent.parent
KEY = "holdretail-example-key"
KEY_SHA = hashlib.sha256(KEY.encode()).hexdigest()

MINIMAL = f"""
id = "holdretail"
name = "Hold Retail"
[x12]
interchange_qualifier = "ZZ"
interchange_id = "HOLDRETAIL"
group_id = "HOLDRETAIL"
version = "004010"
functional_ack = "997"
[rest]
api_key_sha256 = "{KEY_SHA}"
[delivery]
channel = "rest"
url = "http://127.0.0.1:9001/edi"
"""

BASE = """
id = "acme"
name = "Acme"
[x12]
interchange_qualifier = "ZZ"
interchange_id = "ACME"
group_id = "ACME"
version = "{version}"
{x12_extra}
{tables}
"""


def profile_text(version: str = "004010", x12_extra: str = "", tables: str = "") -> str:
    return BASE.format(version=version, x12_extra=x12_extra, tables=tables)


def errors_of(text: str, source: str = "partners/acme/profile.toml") -> list[str]:
    with pytest.raises(ProfileError) as caught:
        parse_partner(text, source=source)
    assert str(caught.value) == "\n".join(caught.value.errors)
    return caught.value.errors


def test_minimal_profile_parses_with_documented_defaults() -> None:
    profile, transport = parse_partner(MINIMAL)
    assert isinstance(profile, PartnerProfile)
    assert profile.id == "holdretail"
    x12 = profile.x12
    assert (x12.interchange_qualifier, x12.interchange_id, x12.group_id) == ("ZZ", "HOLDRETAIL", "HOLDRETAIL")
    assert x12.functional_ack == "997"
    assert x12.ta1 == "on-error"
    assert x12.usage == "P"
    assert x12.request_ta1 is False
    assert x12.reject_duplicates is True
    assert x12.duplicate_window_days is None
    assert x12.ack_overdue_hours == 24.0
    assert x12.additional_ids == ()
    assert x12.interchange_version == "00401"
    assert x12.group_version == "004010"
    # 004010 has no repetition separator: ISA11 stays "U".
    assert x12.outbound_delimiters == Delimiters("*", ">", None, "~", "\n")
    assert transport.delivery.channel == "rest"
    assert transport.delivery.url == "http://127.0.0.1:9001/edi"
    assert profile.mapping == MappingRules()


def test_profile_is_frozen() -> None:
    profile, _ = parse_partner(MINIMAL)
    with pytest.raises(ValueError, match="frozen"):
        profile.x12.ta1 = "never"  # type: ignore[misc]


def test_functional_ack_defaults_to_auto_and_delivery_to_mailbox() -> None:
    profile, transport = parse_partner(profile_text())
    assert profile.x12.functional_ack == "auto"
    assert transport.rest is None
    assert transport.delivery == MailboxDelivery()


def test_5010_gets_a_caret_repetition_separator_and_gs08_carries_the_industry_id() -> None:
    profile = parse_profile(profile_text("005010", 'industry_id = "X231A1"'))
    assert profile.x12.outbound_delimiters.repetition == "^"
    assert profile.x12.interchange_version == "00501"
    assert profile.x12.group_version == "005010X231A1"


def test_rest_key_is_checked_against_its_sha256_and_previous_key_during_rotation() -> None:
    old = hashlib.sha256(b"old-key").hexdigest()
    _, transport = parse_partner(
        profile_text(
            tables=f'[rest]\napi_key_sha256 = "{KEY_SHA.upper()}"\nprevious_api_key_sha256 = "{old}"'
        )
    )
    rest = transport.rest
    assert rest is not None
    assert rest.api_key_sha256 == KEY_SHA  # stored lowercased
    assert rest.accepts(KEY)
    assert rest.accepts("old-key")
    assert not rest.accepts("holdretail-example-key ")
    assert not rest.accepts(KEY_SHA)


def test_example_partners_parse_and_differ() -> None:
    hold, hold_t = parse_partner((ROOT / "examples/partners/holdretail/profile.toml").read_text())
    north, north_t = parse_partner((ROOT / "examples/partners/northwind3pl/profile.toml").read_text())
    assert hold_t.rest is not None and hold_t.rest.accepts("holdretail-example-key")
    assert north_t.rest is not None and north_t.rest.accepts("northwind3pl-example-key")
    assert north_t.rest.accepts("northwind3pl-old-example-key")
    assert (hold.x12.version, hold.x12.functional_ack, hold_t.delivery.channel) == ("004010", "997", "rest")
    assert (north.x12.version, north.x12.functional_ack, north_t.delivery.channel) == (
        "005010",
        "999",
        "mailbox",
    )
    assert north.x12.outbound_delimiters == Delimiters("|", ":", "^", "~", "\r\n")
    assert [str(a) for a in north.x12.addresses] == ["01/NORTHWIND3PL", "ZZ/NW3PLTEST"]
    assert north.mapping.shipment.required_references == ("BM",)
    assert north.mapping.order.locations["NW01"] == "DC-SEATTLE"
    assert hold.mapping.order.date_qualifiers == {"requested_delivery": "002"}


@pytest.mark.parametrize(
    ("x12_extra", "expected"),
    [
        (
            "",
            None,
        ),
        (
            'interchange_id = "HOLDRETAILTOOLONG"',
            "x12.interchange_id: must be at most 15 characters (got 'HOLDRETAILTOOLONG', 17 characters)",
        ),
        (
            'interchange_qualifier = "ZZZ"',
            "x12.interchange_qualifier: must be exactly 2 characters, digits or uppercase letters, e.g. ZZ or 01 (got 'ZZZ')",
        ),
        (
            'interchange_qualifier = "zz"',
            "x12.interchange_qualifier: must be exactly 2 characters, digits or uppercase letters, e.g. ZZ or 01 (got 'zz')",
        ),
        (
            'interchange_id = " ACME"',
            "x12.interchange_id: must not start or end with spaces (padding is added when writing) (got ' ACME')",
        ),
        (
            'interchange_id = "AC\\tME"',
            "x12.interchange_id: must be printable ASCII (got 'AC\\tME')",
        ),
        (
            'interchange_id = ""',
            "x12.interchange_id: must not be empty",
        ),
        (
            'group_id = "GROUP-ID-OF-16-C"',
            "x12.group_id: must be at most 15 characters (got 'GROUP-ID-OF-16-C', 16 characters)",
        ),
        (
            "group_id = 42",
            "x12.group_id: must be a string (got 42)",
        ),
        (
            'version = "4010"',
            "x12.version: must be a six-digit X12 version/release such as 004010 or 005010, 003010 to 008070 (got '4010')",
        ),
        (
            'functional_ack = "998"',
            "x12.functional_ack: must be one of 'auto', '997', '999' or 'none' (got '998')",
        ),
        (
            'ta1 = "sometimes"',
            "x12.ta1: must be one of 'always', 'on-error' or 'never' (got 'sometimes')",
        ),
        (
            'usage = "I"',
            "x12.usage: must be one of 'P' or 'T' (got 'I')",
        ),
        (
            'reject_duplicates = "yes"',
            "x12.reject_duplicates: must be true or false (got 'yes')",
        ),
        (
            "ack_overdue_hours = 0",
            "x12.ack_overdue_hours: input should be greater than 0 (got 0)",
        ),
        (
            "duplicate_window_days = -1",
            "x12.duplicate_window_days: input should be greater than or equal to 0 (got -1)",
        ),
        (
            'industry_id = "vics"',
            "x12.industry_id: must be up to 6 uppercase letters or digits, e.g. VICS or UCS (got 'vics')",
        ),
        (
            'additional_ids = [{ qualifier = "ZZ", id = "OK" }, { qualifier = "ZZ" }]',
            "x12.additional_ids[2].id: required key is missing",
        ),
        (
            "ack_overdue = 4",
            "x12.ack_overdue: unknown key (see docs/profile-reference.md for the keys a profile may hold)",
        ),
        (
            'interchange_id = "AC~ME"',
            "x12.interchange_id: contains the segment separator '~' (got 'AC~ME')",
        ),
    ],
)
def test_each_bad_x12_key_gives_one_precise_line(x12_extra: str, expected: str | None) -> None:
    # Later keys in a TOML table cannot repeat earlier ones, so rebuild the table.
    lines = {
        "interchange_qualifier": '"ZZ"',
        "interchange_id": '"ACME"',
        "group_id": '"ACME"',
        "version": '"004010"',
    }
    if x12_extra:
        key, _, value = x12_extra.partition(" = ")
        lines[key] = value
    text = 'id = "acme"\nname = "Acme"\n[x12]\n' + "\n".join(f"{k} = {v}" for k, v in lines.items()) + "\n"
    if expected is None:
        parse_profile(text)
        return
    assert errors_of(text) == [f"partners/acme/profile.toml: {expected}"]


@pytest.mark.parametrize(
    ("version", "delimiters", "expected"),
    [
        (
            "004010",
            'repetition = "^"',
            "x12.delimiters.repetition: version 004010 has no repetition separator "
            "(ISA11 is the standards id 'U' before 004020); remove the key",
        ),
        ("005010", 'element = "^"', "x12.delimiters.repetition: '^' is already the element separator"),
        ("004010", 'component = "*"', "x12.delimiters.component: '*' is already the element separator"),
        ("004010", 'element = "**"', "x12.delimiters.element: must be exactly one character (got '**')"),
        ("004010", 'segment = "A"', "x12.delimiters.segment: must not be a letter, digit or space (got 'A')"),
        ("004010", 'suffix = "\\r"', 'x12.delimiters.suffix: must be "", "\\n" or "\\r\\n" (got \'\\r\')'),
    ],
)
def test_bad_delimiters(version: str, delimiters: str, expected: str) -> None:
    text = profile_text(version, tables=f"[x12.delimiters]\n{delimiters}")
    assert errors_of(text) == [f"partners/acme/profile.toml: {expected}"]


def test_valid_custom_delimiters() -> None:
    text = profile_text(
        "005010", tables='[x12.delimiters]\nelement = "|"\ncomponent = ":"\nrepetition = "{"\nsuffix = ""'
    )
    assert parse_profile(text).x12.outbound_delimiters == Delimiters("|", ":", "{", "~", "")


@pytest.mark.parametrize(
    ("tables", "expected"),
    [
        (
            '[rest]\napi_key_sha256 = "holdretail-example-key"',
            "rest.api_key_sha256: must be the SHA-256 of the key as 64 hex characters, never the key itself "
            "(got 22 characters)",
        ),
        ("[rest]", "rest.api_key_sha256: required key is missing"),
        ('[delivery]\nchannel = "rest"', 'delivery.url: required when channel = "rest"'),
        (
            '[delivery]\nchannel = "mailbox"\nurl = "http://x.example/edi"',
            'delivery.url: not used with channel = "mailbox" (the partner fetches); remove it',
        ),
        (
            '[delivery]\nchannel = "rest"\nurl = "ftp://x.example/edi"',
            "delivery.url: must be an http:// or https:// URL (got 'ftp://x.example/edi')",
        ),
        (
            '[delivery]\nchannel = "sftp2"',
            "delivery.channel: must be one of 'rest' or 'mailbox' or 'as2' or 'sftp' (got 'sftp2')",
        ),
        (
            '[delivery]\nchannel = "as2"',
            'delivery.channel: "as2" needs an [as2] table (id, url, certificates)',
        ),
        (
            '[as2]\nid = "THEM"\nurl = "https://x.example/as2"\ncertificates = []',
            "as2.certificates: must name at least one certificate file of the partner's (PEM or DER)",
        ),
        (
            "[mapping.order]\nlocation = {}",
            "mapping.order.location: unknown key (see docs/profile-reference.md for the keys a profile may hold)",
        ),
        (
            '[mapping.order]\nunknown_codes = "drop"',
            "mapping.order.unknown_codes: must be one of 'keep' or 'reject' (got 'drop')",
        ),
        (
            '[mapping.order_ack]\nline_count = "unique_items"',
            "mapping.order_ack.line_count: must be one of 'reject' or 'ignore' (got 'unique_items')",
        ),
    ],
)
def test_bad_sections(tables: str, expected: str) -> None:
    assert errors_of(profile_text(tables=tables)) == [f"partners/acme/profile.toml: {expected}"]


def test_every_error_is_listed_at_once() -> None:
    text = 'id = "Acme Corp"\nname = "Acme"\nwebsite = "x"\n[x12]\ninterchange_qualifier = "Z"\n'
    assert errors_of(text) == [
        "partners/acme/profile.toml: id: must be 1-63 lowercase letters, digits, '-' or '_', starting with a "
        "letter or digit (it is also the folder name) (got 'Acme Corp')",
        "partners/acme/profile.toml: x12.interchange_qualifier: must be exactly 2 characters, digits or "
        "uppercase letters, e.g. ZZ or 01 (got 'Z')",
        "partners/acme/profile.toml: x12.interchange_id: required key is missing",
        "partners/acme/profile.toml: x12.group_id: required key is missing",
        "partners/acme/profile.toml: x12.version: required key is missing",
        "partners/acme/profile.toml: website: unknown key (see docs/profile-reference.md for the keys a profile may hold)",
    ]


def test_missing_x12_table_and_name() -> None:
    assert errors_of('id = "acme"', source="p.toml") == [
        "p.toml: name: required key is missing",
        "p.toml: x12: required key is missing",
    ]


def test_toml_syntax_error_names_the_file_and_line() -> None:
    [line] = errors_of('id = "acme"\nname = "Acme\n')
    assert line.startswith("partners/acme/profile.toml: not valid TOML: ")
    assert "line 2" in line


def test_our_identity_is_validated_like_partner_ids() -> None:
    ours = parse_identity({"interchange_qualifier": "ZZ", "interchange_id": "GATEWAY", "group_id": "GATEWAY"})
    assert isinstance(ours, OurIdentity)
    assert str(ours.address) == "ZZ/GATEWAY"
    with pytest.raises(ProfileError) as caught:
        parse_identity(
            {"interchange_qualifier": "ZZ", "interchange_id": "X" * 16, "group_id": "G"},
            source="gateway.toml [identity]",
        )
    assert caught.value.errors == [
        f"gateway.toml [identity]: interchange_id: must be at most 15 characters (got '{'X' * 16}', 16 characters)"
    ]


def _keys(model: type[BaseModel], prefix: str = "") -> list[str]:
    keys: list[str] = []
    for name, info in model.model_fields.items():
        keys.append(prefix + name)
        for arg in (info.annotation, *get_args(info.annotation)):
            if isinstance(arg, type) and issubclass(arg, BaseModel):
                keys.extend(_keys(arg, f"{prefix}{name}."))
    return keys


def test_every_profile_key_is_in_the_reference() -> None:
    reference = (ROOT / "docs" / "profile-reference.md").read_text()
    keys = _keys(PartnerProfile)
    assert "x12.delimiters.repetition" in keys and "mapping.shipment.tracking_qualifier" in keys

    # Each key is documented as `name` or as a dotted tail of it (`product_ids.inbound`),
    # sections as [x12.delimiters].
    def documented(key: str) -> bool:
        parts = key.split(".")
        tails = {".".join(parts[i:]) for i in range(len(parts))}
        return f"[{key}]" in reference or any(f"`{tail}`" in reference for tail in tails)

    missing = [key for key in keys if not documented(key)]
    assert missing == []


def test_line_count_rule_per_kind() -> None:
    profile = parse_profile(profile_text(tables='[mapping.order]\nline_count = "ignore"'), source="acme")
    assert profile.mapping.order.line_count == "ignore"
    assert profile.mapping.order_ack.line_count == "reject"  # the default


def test_validation_switches() -> None:
    from translators.x12.leniency import Action, Check

    assert parse_partner(MINIMAL)[0].x12.validation.leniency() == {}
    table = '[x12.validation]\nelement_length = "note"\nsegment_order = "ignore"\nline_count = "note"'
    validation = parse_profile(profile_text(tables=table)).x12.validation
    assert validation.leniency() == {Check.ELEMENT_LENGTH: Action.NOTE, Check.SEGMENT_ORDER: Action.IGNORE}
    assert validation.line_count == "note"
    (error,) = errors_of(profile_text(tables='[x12.validation]\ncode_values = "warn"'))
    assert error.startswith("partners/acme/profile.toml: x12.validation.code_values:")
