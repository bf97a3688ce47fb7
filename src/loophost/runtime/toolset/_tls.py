"""The egress proxy's certificate authority: what lets it read HTTPS requests to hosts that have a credential.

To substitute an `environment_variable` credential in an `https://` request the proxy must see the request, so
for a `CONNECT` to a host one of the session's credentials applies to, it answers the TLS handshake itself with a
leaf certificate for that host name signed by this CA (`_intercept.py`). The sandbox trusts the CA through a
bundle file (the system's trusted roots + this CA's certificate) bound read-only into it, named by the usual
variables (`CA_ENV_NAMES`). Every other `CONNECT` stays a blind tunnel, checked by the client against the real
certificate.

One CA per toolset root (the server's `--workspaces` directory), generated on first use and kept in
`<root>/.egress-ca/`: `ca.pem` (private key + certificate, mode 0600, created exclusively so two processes
starting at once agree on one CA) and `bundle.pem` (certificates only, mode 0644). Neither file is in any
session's tree; bwrap binds `bundle.pem` alone. Upstream connections verify the real server against the system
trust store, plus the PEM file named by `LOOPHOST_EGRESS_EXTRA_CA` (an operator's private CA; the tests' CA).
"""

from __future__ import annotations

import contextlib
import datetime
import ipaddress
import os
import secrets
import ssl
import tempfile
import threading
import time
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_DIR = ".egress-ca"
EXTRA_CA_ENV = "LOOPHOST_EGRESS_EXTRA_CA"
CA_ENV_NAMES = ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "NODE_EXTRA_CA_CERTS", "PIP_CERT")
"""Variables naming the bundle for the sandbox's programs (OpenSSL and Python, requests, curl, Node, pip)."""
ALPN = ["http/1.1"]
"""Both sides of an intercepted tunnel speak HTTP/1.1 only (the proxy reads HTTP/1.1 requests)."""

_CA_DAYS = 3650
_LEAF_DAYS = 30
_MAX_LEAVES = 1024


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "loophost"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _new_ca() -> bytes:
    """A fresh CA, as one PEM text: private key then self-signed certificate."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    name = _name(f"loophost egress CA {secrets.token_hex(4)}")
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=_CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return key_pem + cert.public_bytes(serialization.Encoding.PEM)


def _write_exclusive(path: Path, data: bytes, mode: int) -> bool:
    """Write `path` whole or not at all; False when it already exists (another process won)."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as file:
            file.write(data)
        try:
            os.link(tmp, path)
        except FileExistsError:
            return False
        return True
    finally:
        os.unlink(tmp)


def system_bundle() -> bytes:
    """The host's trusted roots as PEM: OpenSSL's default CA file, else certifi's, else none."""
    paths = ssl.get_default_verify_paths()
    candidates = [os.environ.get(paths.openssl_cafile_env), paths.cafile, paths.openssl_cafile]
    with contextlib.suppress(ImportError):
        import certifi

        candidates.append(certifi.where())
    for candidate in candidates:
        if candidate and os.path.isfile(candidate):
            with contextlib.suppress(OSError):
                return Path(candidate).read_bytes()
    return b""


def upstream_context(extra_ca: str | None = None) -> ssl.SSLContext:
    """How the proxy checks the real server of an intercepted tunnel: the system trust store, host name checked,
    HTTP/1.1 offered; plus `extra_ca` (a PEM file) when given."""
    context = ssl.create_default_context()
    if extra_ca:
        context.load_verify_locations(cafile=extra_ca)
    context.set_alpn_protocols(ALPN)
    return context


class EgressCA:
    """The CA of one toolset root, with the leaf server contexts it issued (one per host name, cached)."""

    def __init__(self, directory: Path, pem: bytes, extra_ca: str | None) -> None:
        self.directory = directory
        self._key = serialization.load_pem_private_key(pem, password=None)
        if not isinstance(self._key, ec.EllipticCurvePrivateKey):
            raise ValueError(f"{directory / 'ca.pem'} does not hold an EC private key")
        self.cert = x509.load_pem_x509_certificate(pem)
        self.bundle_path = directory / "bundle.pem"
        self.upstream = upstream_context(extra_ca)
        self._leaves: dict[str, tuple[ssl.SSLContext, float]] = {}
        self._lock = threading.Lock()

    @classmethod
    def load_or_create(cls, root: Path) -> EgressCA:
        """The CA under `root` (created on first use), with its bundle written afresh (the system's roots may have
        changed since). Blocking: call it in a thread."""
        directory = root / CA_DIR
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(directory, 0o700)
        path = directory / "ca.pem"
        if not path.exists():
            _write_exclusive(path, _new_ca(), 0o600)
        ca = cls(directory, path.read_bytes(), os.environ.get(EXTRA_CA_ENV) or None)
        bundle = system_bundle().rstrip(b"\n") + b"\n" + ca.cert.public_bytes(serialization.Encoding.PEM)
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-")
        with os.fdopen(fd, "wb") as file:
            file.write(bundle)
        os.chmod(tmp, 0o644)
        os.replace(tmp, ca.bundle_path)
        return ca

    def server_context(self, host: str) -> ssl.SSLContext:
        """A TLS server context presenting a certificate for `host` signed by this CA. Blocking (key generation,
        a short-lived 0600 file to load the chain from): call it in a thread."""
        host = host.strip("[]").lower().rstrip(".")
        with self._lock:
            cached = self._leaves.get(host)
            if cached is not None and cached[1] > time.time() + 86400:
                return cached[0]
        context, expires = self._issue(host)
        with self._lock:
            if len(self._leaves) >= _MAX_LEAVES:
                self._leaves.pop(next(iter(self._leaves)))
            self._leaves[host] = (context, expires)
        return context

    def _issue(self, host: str) -> tuple[ssl.SSLContext, float]:
        key = ec.generate_private_key(ec.SECP256R1())
        try:
            alt: x509.GeneralName = x509.IPAddress(ipaddress.ip_address(host))
        except ValueError:
            alt = x509.DNSName(host)
        now = datetime.datetime.now(datetime.UTC)
        expires = now + datetime.timedelta(days=_LEAF_DAYS)
        ca_key = self._key
        assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
        cert = (
            x509.CertificateBuilder()
            .subject_name(_name(host[:64]))
            .issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(expires)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.SubjectAlternativeName([alt]), critical=False)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                critical=False,
            )
            .sign(ca_key, hashes.SHA256())
        )
        chain = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ) + cert.public_bytes(serialization.Encoding.PEM)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.set_alpn_protocols(ALPN)
        fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=".leaf-")  # mkstemp: mode 0600
        try:
            with os.fdopen(fd, "wb") as file:
                file.write(chain)
            context.load_cert_chain(tmp)
        finally:
            os.unlink(tmp)
        return context, expires.timestamp()
