"""The deliverer connects to the address it vetted (no DNS-rebinding window): a real Runtime on a SQLite file, a
real deliverer, a real HTTPS receiver on 127.0.0.1 with a certificate for a test name from a test CA, and a real
listener on 127.0.0.2 that must never be reached.

Loopback is what the tests can listen on, so the address rule is the test's: it refuses 127.0.0.2 only, standing
for an internal address a rebinding name would answer at connect time."""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import ssl
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import anthropic
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from loophost import wire
from loophost.runtime import Runtime, RuntimeConfig
from loophost.runtime._webhook_delivery import WebhookDeliverer
from loophost.runtime._webhooks import IPAddress

from .._webhook_receiver import Receiver, running_receiver
from .conftest import WS

NAME = "hook.test"
CHECKED = "127.0.0.1"
INTERNAL = "127.0.0.2"
SDK = anthropic.Anthropic(api_key="unused")


@dataclass
class PKI:
    server: ssl.SSLContext
    """Serves a certificate for `NAME` only (no IP address): a TLS check against the address would fail."""
    client: ssl.SSLContext
    """Trusts the test CA only."""


def _cert(
    subject: str, key: ec.EllipticCurvePrivateKey, issuer: x509.Name, signer: ec.EllipticCurvePrivateKey, ca: bool
) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if not ca:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(NAME)]), critical=False)
    return builder.sign(signer, hashes.SHA256())


@pytest.fixture
def pki(tmp_path: Path) -> PKI:
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "loophost webhook tests CA")])
    ca_cert = _cert("loophost webhook tests CA", ca_key, ca_name, ca_key, True)
    key = ec.generate_private_key(ec.SECP256R1())
    cert = _cert(NAME, key, ca_cert.subject, ca_key, False)
    chain = tmp_path / "server.pem"
    chain.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        + cert.public_bytes(serialization.Encoding.PEM)
    )
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(chain)
    client = ssl.create_default_context(cadata=ca_cert.public_bytes(serialization.Encoding.PEM).decode())
    return PKI(server, client)


@pytest.fixture
def receiver(pki: PKI) -> Iterator[Receiver]:
    with running_receiver(pki.server, keep_alive=True) as r:  # so a client could reuse a connection
        yield r


@dataclass
class Internal:
    """A listener on `INTERNAL` at the receiver's port: what a rebound connect would reach."""

    peers: list[tuple[str, int]] = field(default_factory=list)

    async def accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.peers.append(writer.get_extra_info("peername"))
        writer.close()


@pytest.fixture
async def internal(receiver: Receiver) -> AsyncIterator[Internal]:
    found = Internal()
    server = await asyncio.start_server(found.accept, INTERNAL, receiver.port)
    async with server:
        yield found


@dataclass
class Rebinding:
    """A name that answers the first lookup with `CHECKED` and every later one with `INTERNAL`."""

    lookups: list[tuple[str, int]] = field(default_factory=list)

    async def __call__(self, host: str, port: int) -> list[str]:
        self.lookups.append((host, port))
        return [CHECKED if len(self.lookups) == 1 else INTERNAL]


def refuses_internal(address: IPAddress) -> bool:
    return address == ipaddress.ip_address(INTERNAL)


@pytest.fixture
async def rt(tmp_path: Path) -> AsyncIterator[Runtime]:
    async with Runtime.from_url(tmp_path / "runtime.db", config=RuntimeConfig(webhooks_allow_private=True)) as runtime:
        await runtime.webhook_delivery.close()  # the test's deliverer sends instead
        yield runtime


async def test_the_connect_goes_to_the_vetted_address_not_a_rebound_one(
    rt: Runtime, receiver: Receiver, internal: Internal, pki: PKI
) -> None:
    url = f"https://{NAME}:{receiver.port}/hook"
    params = wire.WebhookCreateParams(url=url, enabled_events=["agent.created"])
    endpoint = await rt.webhooks.create(WS, params)  # made while private addresses were allowed (no lookup)
    rt.webhooks.allow_private = False
    resolver = Rebinding()
    deliverer = WebhookDeliverer(rt.store, rt.webhooks, resolve=resolver, refused=refuses_internal, verify=pki.client)
    try:
        agent = await rt.create_agent(WS, wire.AgentCreateParams.model_validate({"name": "a", "model": "scripted"}))
        assert await deliverer.run_once() == 1
        got = receiver.snapshot()
        assert len(got) == 1 and got[0].status == 200
        assert got[0].headers["host"] == f"{NAME}:{receiver.port}"  # the name's Host, sent to the vetted address
        event = SDK.beta.webhooks.unwrap(got[0].body, headers=got[0].headers, key=endpoint.signing_secret)
        assert event.data.type == "agent.created" and event.data.id == agent.id
        assert resolver.lookups == [(NAME, receiver.port)]  # one lookup per send: the vetted one
        assert await rt.store.webhooks.delivery_state(endpoint.id, got[0].id) == ("delivered", 1, None)

        # the name now answers the internal address to the check itself: refused, the endpoint disabled
        await rt.create_agent(WS, wire.AgentCreateParams.model_validate({"name": "b", "model": "scripted"}))
        assert await deliverer.run_once() == 1
        found = await rt.webhooks.get(WS, endpoint.id)
        assert found.state == "disabled" and INTERNAL in found.disabled_reason
        assert len(receiver.snapshot()) == 1
    finally:
        await deliverer.close()
    assert internal.peers == []


async def test_a_connection_checked_for_one_name_is_not_reused_for_another_at_the_same_address(
    rt: Runtime, receiver: Receiver, pki: PKI
) -> None:
    """The receiver's certificate is for `NAME` only: a send for another name resolving to the same address must
    check TLS for that name on its own connection (and fail), not ride the one made for `NAME`."""

    async def both_checked(host: str, port: int) -> list[str]:
        return [CHECKED]

    ours = await rt.webhooks.create(
        WS, wire.WebhookCreateParams(url=f"https://{NAME}:{receiver.port}/hook", enabled_events=["agent.created"])
    )
    other = await rt.webhooks.create(
        WS, wire.WebhookCreateParams(url=f"https://other.test:{receiver.port}/hook", enabled_events=["agent.archived"])
    )
    rt.webhooks.allow_private = False
    deliverer = WebhookDeliverer(
        rt.store, rt.webhooks, resolve=both_checked, refused=refuses_internal, verify=pki.client
    )
    try:
        agent = await rt.create_agent(WS, wire.AgentCreateParams.model_validate({"name": "a", "model": "scripted"}))
        assert await deliverer.run_once() == 1
        assert len(receiver.snapshot()) == 1
        await rt.archive_agent(WS, agent.id)
        assert await deliverer.run_once() == 1
    finally:
        await deliverer.close()
    assert len(receiver.snapshot()) == 1
    [delivery] = (await rt.webhooks.deliveries(WS, other.id)).data
    assert delivery.state == "pending" and "certificate" in (delivery.last_error or "").lower()
    [delivery] = (await rt.webhooks.deliveries(WS, ours.id)).data
    assert delivery.state == "delivered"
