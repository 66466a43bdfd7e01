"""An independent AS2 peer for the service tests: pyas2lib (test-only, GPL) on the
partner's side, our key files and the partner folder written per test, and a small
real AS2 server (aiohttp on loopback) that opens what we send with pyas2lib and
answers the synchronous MDN pyas2lib builds."""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from fakes.erp_server import free_port
from gwsamples import profile_toml

from as2 import KeyPair, key_pair_pem

pyas2 = pytest.importorskip("pyas2lib.as2")

OUR_AS2 = "OURCOMPANY"
THEIR_AS2 = "HOLDRETAIL"
PARTNER = "holdretail"


def as2_settings(tmp_path: Path, us: KeyPair) -> dict[str, Any]:
    """The ``as2`` section of the gateway settings, our key files written under tmp_path."""
    folder = tmp_path / "as2keys"
    folder.mkdir(exist_ok=True)
    key, cert = key_pair_pem(us)
    (folder / "our.key").write_bytes(key)
    (folder / "our.pem").write_bytes(cert)
    return {
        "id": OUR_AS2,
        "public_url": "http://127.0.0.1:1/as2",
        "keys": [{"key": str(folder / "our.key"), "certificate": str(folder / "our.pem")}],
    }


def add_as2_partner(
    partners_dir: Path,
    them: KeyPair,
    *,
    url: str = "http://127.0.0.1:1/as2",
    delivery: bool = False,
    **as2: Any,
) -> Path:
    folder = partners_dir / PARTNER
    (folder / "as2").mkdir(parents=True, exist_ok=True)
    (folder / "as2" / "holdretail.pem").write_bytes(key_pair_pem(them)[1])
    lines = [f'id = "{THEIR_AS2}"', f'url = "{url}"', 'certificates = ["as2/holdretail.pem"]']
    lines += [f"{k} = {_toml(v)}" for k, v in as2.items()]
    text = profile_toml(PARTNER, THEIR_AS2, "holdretail-rest-key") + "[as2]\n" + "\n".join(lines) + "\n"
    if delivery:
        text += '[delivery]\nchannel = "as2"\n'
    (folder / "profile.toml").write_text(text)
    return folder


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return f'"{value}"'


def pyas2_key(pair: KeyPair) -> bytes:
    key, cert = key_pair_pem(pair, b"test")
    return key + cert


def their_org(them: KeyPair) -> Any:
    return pyas2.Organization(
        as2_name=THEIR_AS2,
        sign_key=pyas2_key(them),
        sign_key_pass="test",
        decrypt_key=pyas2_key(them),
        decrypt_key_pass="test",
        domain="holdretail.test",
    )


def us_as_partner(us: KeyPair, encrypt_to: KeyPair | None = None, **kw: Any) -> Any:
    cert = key_pair_pem(us)[1]
    encrypt = key_pair_pem(encrypt_to)[1] if encrypt_to is not None else cert
    return pyas2.Partner(as2_name=OUR_AS2, verify_cert=cert, encrypt_cert=encrypt, validate_certs=False, **kw)


def http_bytes(headers: Any, body: bytes) -> bytes:
    return "".join(f"{k}: {v}\r\n" for k, v in headers.items()).encode() + b"\r\n" + body


@dataclass
class FakeAs2Partner:
    """A partner's AS2 server: parses with pyas2lib, answers its synchronous MDN.
    ``refuse_with``: answer an MDN for a message pyas2lib could not open (sign the
    request with ``wrong_key`` to get one); ``status``: HTTP status to answer instead."""

    us: KeyPair
    them: KeyPair
    port: int = field(default_factory=free_port)
    received: list[bytes] = field(default_factory=list)
    statuses: list[str] = field(default_factory=list)
    message_ids: list[str] = field(default_factory=list)
    fail_with: list[int] = field(default_factory=list)
    verify_with: KeyPair | None = None  # a different certificate to verify our signature with
    async_mdns: list[Any] = field(default_factory=list)
    tls: ssl.SSLContext | None = None  # serve https with this context
    _runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}/as2"

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        if self.fail_with:
            return web.Response(status=self.fail_with.pop(0), text="partner trouble")
        raw = http_bytes(request.headers, body)
        verify = self.verify_with or self.us
        incoming = pyas2.Message()
        status, (_exc, _tb), mdn = incoming.parse(
            raw,
            find_org_cb=lambda name: their_org(self.them),
            find_partner_cb=lambda name: us_as_partner(verify, sign=True, encrypt=True),
        )
        self.statuses.append(status)
        self.message_ids.append(request.headers.get("Message-ID", ""))
        if status == "processed":
            self.received.append(incoming.content)
        if mdn is None:
            return web.Response(status=200)
        if mdn.mdn_mode == "ASYNC":  # the test posts it to mdn.mdn_url
            self.async_mdns.append(mdn)
            return web.Response(status=200)
        return web.Response(status=200, body=mdn.content, headers=dict(mdn.headers))

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/as2", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port, ssl_context=self.tls).start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


def tls_server(folder: Path) -> tuple[ssl.SSLContext, Path]:
    """A server TLS context for 127.0.0.1 and the CA file a client needs to trust it."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    folder.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = folder / "tls.pem", folder / "tls.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_path, key_path)
    return context, cert_path
