"""The MIME layer: exact bytes, tolerant parsing, strict building, AS2 headers."""

from __future__ import annotations

import pytest

from as2 import as2_headers, disposition_options, parse_disposition_options, quote_as2_name, unquote_as2_name
from as2.mime import (
    MimeError,
    build_multipart,
    format_params,
    parse_content_type,
    parse_entity,
    parse_headers,
    split_multipart,
    to_crlf,
)


def test_content_type_parameters():
    ct = parse_content_type(
        'Multipart/Signed; protocol="application/pkcs7-signature";micalg=SHA-256 ; boundary="a;b \\"c\\""'
    )
    assert ct.media_type == "multipart/signed"
    assert ct.param("MICALG") == "SHA-256"
    assert ct.param("boundary") == 'a;b "c"'
    assert parse_content_type("text/plain").params == ()
    assert (
        format_params("a/b", [("x", "tok"), ("y", "has space")], quote=False) == 'a/b; x=tok; y="has space"'
    )


def test_headers_fold_and_case():
    headers = parse_headers(b"Content-Type: a/b;\r\n\tboundary=x\nX-A:  1 \r\n")
    assert headers.get("content-type") == "a/b; boundary=x"
    assert headers.get("x-a") == "1"
    with pytest.raises(MimeError):
        parse_headers(b"no colon here\r\n")


@pytest.mark.parametrize("eol", [b"\r\n", b"\n"])
def test_multipart_parts_keep_exact_bytes(eol):
    first = b"Content-Type: application/octet-stream" + eol + eol + b"\x00bin\rary\n\r\n"
    second = b"Content-Type: text/plain" + eol + eol + b"two"
    body = (
        b"preamble"
        + eol
        + b"--B"
        + eol
        + first
        + eol
        + b"--B  "
        + eol
        + second
        + eol
        + b"--B--"
        + eol
        + b"epilogue"
    )
    parts = split_multipart(body, "B")
    assert [p.raw for p in parts] == [first, second]
    assert parts[0].body == b"\x00bin\rary\n\r\n"


def test_boundary_inside_a_line_is_not_a_delimiter():
    body = b"--B\r\n\r\nx --B y\r\n--B--\r\n"
    assert split_multipart(body, "B")[0].body == b"x --B y"


def test_multipart_errors():
    with pytest.raises(MimeError):
        split_multipart(b"--B\r\n\r\nno end", "B")
    with pytest.raises(MimeError):
        split_multipart(b"whatever", "")
    with pytest.raises(MimeError):
        parse_entity(b"Content-Type: x/y")


def test_build_multipart_round_trips():
    parts = [b"A: 1\r\n\r\none", b"B: 2\r\n\r\ntwo\r\n"]
    assert [p.raw for p in split_multipart(build_multipart(parts, "zz"), "zz")] == parts


def test_to_crlf():
    assert to_crlf(b"a\nb\r\nc\n") == b"a\r\nb\r\nc\r\n"


def test_as2_names_and_headers():
    assert quote_as2_name("ACME") == "ACME"
    assert quote_as2_name('ACME "EU" Corp') == '"ACME \\"EU\\" Corp"'
    assert unquote_as2_name('"ACME \\"EU\\" Corp"') == 'ACME "EU" Corp'
    with pytest.raises(ValueError):
        quote_as2_name("x" * 129)
    headers = as2_headers(
        as2_from="GW",
        as2_to="Big Partner",
        message_id="id@gw",
        receipt_to="as2@gw",
        signed_receipt_micalg="sha-256",
        async_receipt_url="https://gw/mdn",
    )
    assert headers["AS2-Version"] == "1.2"
    assert headers["AS2-To"] == '"Big Partner"'
    assert headers["Message-ID"] == "<id@gw>"
    assert headers["Receipt-Delivery-Option"] == "https://gw/mdn"
    request = parse_disposition_options(headers["Disposition-Notification-Options"])
    assert request.signed and request.micalgs == ("sha-256",)
    assert "Disposition-Notification-Options" not in as2_headers(as2_from="a", as2_to="b", message_id="<m@x>")


def test_disposition_options_parsing():
    assert parse_disposition_options(None).chosen_micalg() == "sha-256"
    request = parse_disposition_options(disposition_options("sha1"))
    assert request.chosen_micalg() == "sha1"
    odd = parse_disposition_options(
        "signed-receipt-protocol=required,pkcs7-signature;signed-receipt-micalg=required,md2,SHA-512"
    )
    assert odd.required and odd.chosen_micalg() == "SHA-512"


def test_http_date_is_imf_fixdate():
    import datetime as dt

    from as2.build import http_date

    assert http_date(dt.datetime(2026, 12, 7, 6, 5, 9, tzinfo=dt.UTC)) == "Mon, 07 Dec 2026 06:05:09 GMT"
