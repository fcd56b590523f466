"""
Certificates for the lab and the tests, minted with `cryptography` at start-up.

One private root CA signs an intermediate, and the intermediate signs the server leaves; the
root alone goes into the CA bundle that lab endpoints are configured with. Every leaf is an
ECDSA P-256 key with a non-critical subjectAltName for `localhost` and `127.0.0.1` and the
serverAuth extended key usage, which is the profile sslyze 6's verifier (the one in
`cryptography.x509.verification`) accepts. The broken variants each break exactly one thing:

- `good`: verifies against the bundle, valid for a year;
- `expiring`: verifies, but expires in ten days;
- `expired`: expired yesterday;
- `self_signed`: a leaf that signs itself;
- `wrong_host`: verifies, but names only `wrong-host.invalid`;
- `untrusted`: a well-formed chain up to a root that is not in the bundle.

Private keys are throwaway lab keys, written with owner-only permissions and never logged.
"""

from __future__ import annotations

import ipaddress
import logging
import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

logger = logging.getLogger(__name__)

LAB_HOSTNAMES = ("localhost",)
LAB_ADDRESSES = ("127.0.0.1",)
WRONG_HOSTNAME = "wrong-host.invalid"


@dataclass(frozen=True)
class ServerCert:
    """
    A server's certificate chain (leaf first, root left out) and its private key, as PEM files.
    """

    name: str
    chain: Path
    key: Path
    not_after: datetime


@dataclass(frozen=True)
class LabCertificates:
    """
    The CA bundle lab endpoints trust, and one server certificate per variant.
    """

    ca_bundle: Path
    good: ServerCert
    expiring: ServerCert
    expired: ServerCert
    self_signed: ServerCert
    wrong_host: ServerCert
    untrusted: ServerCert


@dataclass(frozen=True)
class _Issuer:
    """A CA certificate with its key, able to sign the next certificate down."""

    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey


def _name(common_name: str) -> x509.Name:
    return x509.Name([
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "hipaacheck lab"),
        x509.NameAttribute(NameOID.COMMON_NAME, common_name),
    ])


def _new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _ca_usage() -> x509.KeyUsage:
    return x509.KeyUsage(digital_signature=True, content_commitment=False,
                         key_encipherment=False, data_encipherment=False, key_agreement=False,
                         key_cert_sign=True, crl_sign=True, encipher_only=False,
                         decipher_only=False)


def _leaf_usage() -> x509.KeyUsage:
    return x509.KeyUsage(digital_signature=True, content_commitment=False,
                         key_encipherment=False, data_encipherment=False, key_agreement=False,
                         key_cert_sign=False, crl_sign=False, encipher_only=False,
                         decipher_only=False)


def _builder(subject: x509.Name, issuer: x509.Name, key: ec.EllipticCurvePrivateKey,
             not_before: datetime, not_after: datetime) -> x509.CertificateBuilder:
    public = key.public_key()
    return (x509.CertificateBuilder()
            .subject_name(subject).issuer_name(issuer).public_key(public)
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before).not_valid_after(not_after)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False))


def _make_ca(common_name: str, now: datetime, parent: _Issuer | None = None) -> _Issuer:
    """A root CA (no parent) or an intermediate signed by `parent`."""
    key = _new_key()
    issuer_name = parent.cert.subject if parent else _name(common_name)
    signing_key = parent.key if parent else key
    builder = _builder(_name(common_name), issuer_name, key,
                       now - timedelta(days=30), now + timedelta(days=3650))
    builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=None),
                                    critical=True)
    builder = builder.add_extension(_ca_usage(), critical=True)
    authority = parent.key.public_key() if parent else key.public_key()
    builder = builder.add_extension(
        x509.AuthorityKeyIdentifier.from_issuer_public_key(authority), critical=False)
    return _Issuer(builder.sign(signing_key, hashes.SHA256()), key)


def _make_leaf(issuer: _Issuer | None, names: tuple[str, ...], addresses: tuple[str, ...],
               not_before: datetime, not_after: datetime
               ) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """A serverAuth leaf signed by `issuer`, or by itself when `issuer` is None."""
    key = _new_key()
    common_name = names[0] if names else addresses[0]
    subject = _name(common_name)
    sans: list[x509.GeneralName] = [x509.DNSName(n) for n in names]
    sans += [x509.IPAddress(ipaddress.ip_address(a)) for a in addresses]
    builder = _builder(subject, issuer.cert.subject if issuer else subject, key,
                       not_before, not_after)
    builder = builder.add_extension(x509.BasicConstraints(ca=False, path_length=None),
                                    critical=True)
    builder = builder.add_extension(_leaf_usage(), critical=True)
    builder = builder.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]),
                                    critical=False)
    builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    authority = issuer.key.public_key() if issuer else key.public_key()
    builder = builder.add_extension(
        x509.AuthorityKeyIdentifier.from_issuer_public_key(authority), critical=False)
    return builder.sign(issuer.key if issuer else key, hashes.SHA256()), key


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _write_private(path: Path, data: bytes) -> None:
    """Write `data` to `path` readable by the owner only."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def _write_server(directory: Path, name: str, leaf: x509.Certificate,
                  key: ec.EllipticCurvePrivateKey, chain: tuple[x509.Certificate, ...]
                  ) -> ServerCert:
    """Write a leaf with its chain (root excluded) and its key as `<name>.pem`/`<name>.key`."""
    chain_path = directory / f"{name}.pem"
    key_path = directory / f"{name}.key"
    chain_path.write_bytes(b"".join(_pem(c) for c in (leaf, *chain)))
    _write_private(key_path, key.private_bytes(serialization.Encoding.PEM,
                                               serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))
    return ServerCert(name, chain_path, key_path, leaf.not_valid_after_utc)


def mint_lab_certificates(directory: Path, *, now: datetime | None = None) -> LabCertificates:
    """
    Mint the lab's CA and every server certificate variant into `directory` as PEM files.

    `now` fixes the validity windows (tests of expiry pass their own clock); it defaults to
    the current UTC time. The directory is created when missing.
    """
    now = now or datetime.now(UTC)
    directory.mkdir(parents=True, exist_ok=True)
    root = _make_ca("hipaacheck lab root CA", now)
    intermediate = _make_ca("hipaacheck lab intermediate CA", now, root)
    stranger_root = _make_ca("untrusted root CA", now)
    stranger = _make_ca("untrusted intermediate CA", now, stranger_root)
    year, ago = now + timedelta(days=365), now - timedelta(days=1)

    def leaf(name: str, issuer: _Issuer | None, names: tuple[str, ...] = LAB_HOSTNAMES,
             addresses: tuple[str, ...] = LAB_ADDRESSES, not_after: datetime = year,
             not_before: datetime = ago) -> ServerCert:
        cert, key = _make_leaf(issuer, names, addresses, not_before, not_after)
        chain = (issuer.cert,) if issuer else ()
        return _write_server(directory, name, cert, key, chain)

    bundle = directory / "ca-bundle.pem"
    bundle.write_bytes(_pem(root.cert))
    certs = LabCertificates(
        ca_bundle=bundle,
        good=leaf("good", intermediate),
        expiring=leaf("expiring", intermediate, not_after=now + timedelta(days=10)),
        expired=leaf("expired", intermediate, not_after=ago,
                     not_before=now - timedelta(days=90)),
        self_signed=leaf("self-signed", None),
        wrong_host=leaf("wrong-host", intermediate, names=(WRONG_HOSTNAME,), addresses=()),
        untrusted=leaf("untrusted", stranger),
    )
    logger.debug("minted lab certificates in %s", directory)
    return certs
