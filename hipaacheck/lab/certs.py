"""
Certificates for the lab and the tests, minted with `cryptography` at start-up.

One private root CA signs two intermediates (one ECDSA, one RSA), and the intermediates sign
the server leaves; the root alone goes into the CA bundle that lab endpoints are configured
with. Unless a variant says otherwise, a leaf is an ECDSA P-256 key with a non-critical
subjectAltName for `localhost` and `127.0.0.1` and the serverAuth extended key usage, which is
the profile sslyze 6's verifier (the one in `cryptography.x509.verification`) accepts. The
trustme package is not used: it marks the subjectAltName critical, which that verifier refuses.
The broken variants each break exactly one thing:

- `good`: verifies against the bundle, valid for a year;
- `expiring`: verifies, but expires in ten days;
- `expired`: expired yesterday;
- `not_yet_valid`: valid only from tomorrow;
- `self_signed`: a leaf that signs itself;
- `wrong_host`: verifies, but names only `wrong-host.invalid`;
- `untrusted`: a well-formed chain up to a root that is not in the bundle;
- `incomplete`: a good leaf served without its intermediate;
- `sha1`: signed with SHA-1 (by the RSA intermediate);
- `rsa`: a sound RSA-2048 leaf, for servers that need RSA suites (static RSA, DHE-RSA);
- `rsa1024`: an RSA-1024 leaf, which the verifier accepts;
- `no_san`: no subjectAltName at all;
- `long_lifetime`: valid for 800 days;
- `no_eku`: no extended key usage extension;
- `client_eku`: an extended key usage of clientAuth only.

`weak_dh_params` is the 1024-bit MODP group of RFC 2409 (Oakley group 2) as PKCS#3 PEM, for a
server that offers a small DHE group. Private keys are throwaway lab keys, written with
owner-only permissions and never logged.
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
from cryptography.hazmat.primitives.asymmetric import dh, ec, padding, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

logger = logging.getLogger(__name__)

LAB_HOSTNAMES = ("localhost",)
LAB_ADDRESSES = ("127.0.0.1",)
WRONG_HOSTNAME = "wrong-host.invalid"
LONG_LIFETIME_DAYS = 800

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey

_OAKLEY_GROUP_2 = int(
    "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74020BBEA63B139B22514A0879"
    "8E3404DDEF9519B3CD3A431B302B0A6DF25F14374FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B"
    "0BFF5CB6F406B7EDEE386BFB5A899FA5AE9F24117C4B1FE649286651ECE65381FFFFFFFFFFFFFFFF", 16)
"""The 1024-bit MODP prime of RFC 2409, section 6.2 (generator 2)."""
_SHA256_WITH_RSA = bytes.fromhex("06092a864886f70d01010b")
_SHA1_WITH_RSA = bytes.fromhex("06092a864886f70d010105")


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
    not_yet_valid: ServerCert
    self_signed: ServerCert
    wrong_host: ServerCert
    untrusted: ServerCert
    incomplete: ServerCert
    sha1: ServerCert
    rsa: ServerCert
    rsa1024: ServerCert
    no_san: ServerCert
    long_lifetime: ServerCert
    no_eku: ServerCert
    client_eku: ServerCert
    weak_dh_params: Path


@dataclass(frozen=True)
class _Issuer:
    """A CA certificate with its key, able to sign the next certificate down."""

    cert: x509.Certificate
    key: PrivateKey


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


def _leaf_usage(key_transport: bool = False) -> x509.KeyUsage:
    """A leaf's key usage; RSA leaves may also carry the key exchange (static RSA suites)."""
    return x509.KeyUsage(digital_signature=True, content_commitment=False,
                         key_encipherment=key_transport, data_encipherment=False,
                         key_agreement=False,
                         key_cert_sign=False, crl_sign=False, encipher_only=False,
                         decipher_only=False)


def _builder(subject: x509.Name, issuer: x509.Name, key: PrivateKey,
             not_before: datetime, not_after: datetime) -> x509.CertificateBuilder:
    public = key.public_key()
    return (x509.CertificateBuilder()
            .subject_name(subject).issuer_name(issuer).public_key(public)
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before).not_valid_after(not_after)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False))


def _make_ca(common_name: str, now: datetime, parent: _Issuer | None = None,
             key: PrivateKey | None = None) -> _Issuer:
    """A root CA (no parent) or an intermediate signed by `parent`, with an ECDSA key by default."""
    key = key or _new_key()
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


@dataclass(frozen=True)
class LeafSpec:
    """
    How one leaf departs from the sound profile.
    """

    names: tuple[str, ...] = LAB_HOSTNAMES
    addresses: tuple[str, ...] = LAB_ADDRESSES
    san: bool = True
    usages: tuple[x509.ObjectIdentifier, ...] | None = (ExtendedKeyUsageOID.SERVER_AUTH,)
    """The extended key usages; None leaves the extension out."""
    key: PrivateKey | None = None
    """The leaf's key; a fresh ECDSA P-256 key by default."""
    sha1: bool = False
    """Sign with SHA-1 (the issuer must hold an RSA key)."""


def _make_leaf(issuer: _Issuer | None, spec: LeafSpec, not_before: datetime,
               not_after: datetime) -> tuple[x509.Certificate, PrivateKey]:
    """A leaf signed by `issuer`, or by itself when `issuer` is None."""
    key = spec.key or _new_key()
    subject = _name(spec.names[0] if spec.names else spec.addresses[0])
    builder = _builder(subject, issuer.cert.subject if issuer else subject, key,
                       not_before, not_after)
    builder = builder.add_extension(x509.BasicConstraints(ca=False, path_length=None),
                                    critical=True)
    builder = builder.add_extension(_leaf_usage(isinstance(key, rsa.RSAPrivateKey)),
                                    critical=True)
    if spec.usages is not None:
        builder = builder.add_extension(x509.ExtendedKeyUsage(list(spec.usages)), critical=False)
    if spec.san:
        sans: list[x509.GeneralName] = [x509.DNSName(n) for n in spec.names]
        sans += [x509.IPAddress(ipaddress.ip_address(a)) for a in spec.addresses]
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    signer = issuer.key if issuer else key
    builder = builder.add_extension(
        x509.AuthorityKeyIdentifier.from_issuer_public_key(signer.public_key()), critical=False)
    cert = builder.sign(signer, hashes.SHA256())
    if spec.sha1:
        if not isinstance(signer, rsa.RSAPrivateKey):
            raise ValueError("a SHA-1 signature needs an RSA issuer")
        cert = _resign_with_sha1(cert, signer)
    return cert, key


def _resign_with_sha1(cert: x509.Certificate, key: rsa.RSAPrivateKey) -> x509.Certificate:
    """
    The same certificate signed with sha1WithRSAEncryption.

    NOTE: `cryptography` no longer signs certificates with SHA-1, but still signs raw data with
    it. The two algorithm identifiers have DER encodings of the same length, so swapping them in
    the encoded certificate and replacing the signature (the same length for the same RSA key)
    leaves every length field intact.
    """
    der = cert.public_bytes(serialization.Encoding.DER)
    tbs = cert.tbs_certificate_bytes
    if tbs.count(_SHA256_WITH_RSA) != 1 or der.count(_SHA256_WITH_RSA) != 2:
        raise ValueError("unexpected certificate layout")
    new_tbs = tbs.replace(_SHA256_WITH_RSA, _SHA1_WITH_RSA)
    signature = key.sign(new_tbs, padding.PKCS1v15(), hashes.SHA1())
    new_der = der.replace(tbs, new_tbs).replace(_SHA256_WITH_RSA, _SHA1_WITH_RSA)
    new_der = new_der.replace(cert.signature, signature)
    return x509.load_der_x509_certificate(new_der)


def _write_dh_params(path: Path) -> Path:
    """Write RFC 2409's 1024-bit group as PKCS#3 PEM (a public constant, not a secret)."""
    params = dh.DHParameterNumbers(_OAKLEY_GROUP_2, 2).parameters()
    path.write_bytes(params.parameter_bytes(serialization.Encoding.PEM,
                                            serialization.ParameterFormat.PKCS3))
    return path


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _write_private(path: Path, data: bytes) -> None:
    """Write `data` to `path` readable by the owner only."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def _write_server(directory: Path, name: str, leaf: x509.Certificate, key: PrivateKey,
                  chain: tuple[x509.Certificate, ...]) -> ServerCert:
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
    rsa_intermediate = _make_ca("hipaacheck lab RSA intermediate CA", now, root,
                                key=rsa.generate_private_key(65537, 2048))
    stranger_root = _make_ca("untrusted root CA", now)
    stranger = _make_ca("untrusted intermediate CA", now, stranger_root)
    year, ago = now + timedelta(days=365), now - timedelta(days=1)

    def leaf(name: str, issuer: _Issuer | None, spec: LeafSpec = LeafSpec(),
             not_after: datetime = year, not_before: datetime = ago,
             send_issuer: bool = True) -> ServerCert:
        cert, key = _make_leaf(issuer, spec, not_before, not_after)
        chain = (issuer.cert,) if issuer and send_issuer else ()
        return _write_server(directory, name, cert, key, chain)

    bundle = directory / "ca-bundle.pem"
    bundle.write_bytes(_pem(root.cert))
    certs = LabCertificates(
        ca_bundle=bundle,
        good=leaf("good", intermediate),
        expiring=leaf("expiring", intermediate, not_after=now + timedelta(days=10)),
        expired=leaf("expired", intermediate, not_after=ago,
                     not_before=now - timedelta(days=90)),
        not_yet_valid=leaf("not-yet-valid", intermediate, not_before=now + timedelta(days=1)),
        self_signed=leaf("self-signed", None),
        wrong_host=leaf("wrong-host", intermediate,
                        LeafSpec(names=(WRONG_HOSTNAME,), addresses=())),
        untrusted=leaf("untrusted", stranger),
        incomplete=leaf("incomplete", intermediate, send_issuer=False),
        sha1=leaf("sha1", rsa_intermediate, LeafSpec(sha1=True)),
        rsa=leaf("rsa", intermediate, LeafSpec(key=rsa.generate_private_key(65537, 2048))),
        rsa1024=leaf("rsa1024", intermediate,
                     LeafSpec(key=rsa.generate_private_key(65537, 1024))),
        no_san=leaf("no-san", intermediate, LeafSpec(san=False)),
        long_lifetime=leaf("long-lifetime", intermediate,
                           not_after=ago + timedelta(days=LONG_LIFETIME_DAYS)),
        no_eku=leaf("no-eku", intermediate, LeafSpec(usages=None)),
        client_eku=leaf("client-eku", intermediate,
                        LeafSpec(usages=(ExtendedKeyUsageOID.CLIENT_AUTH,))),
        weak_dh_params=_write_dh_params(directory / "dh1024.pem"),
    )
    logger.debug("minted lab certificates in %s", directory)
    return certs


def mint_named_certificate(directory: Path, name: str, hosts: tuple[str, ...], *,
                           now: datetime | None = None) -> tuple[ServerCert, Path]:
    """
    Mint a CA of its own and one sound leaf for `hosts` into `directory`: the server
    certificate and the CA bundle that verifies it.
    """
    now = now or datetime.now(UTC)
    directory.mkdir(parents=True, exist_ok=True)
    root = _make_ca(f"hipaacheck lab {name} root CA", now)
    issuer = _make_ca(f"hipaacheck lab {name} intermediate CA", now, root)
    # The subject's common name is the first name, and a CN holds at most 64 characters.
    names = tuple(sorted(hosts, key=len))
    cert, key = _make_leaf(issuer, LeafSpec(names=names, addresses=()),
                           now - timedelta(days=1), now + timedelta(days=365))
    bundle = directory / f"{name}-ca-bundle.pem"
    bundle.write_bytes(_pem(root.cert))
    return _write_server(directory, name, cert, key, (issuer.cert,)), bundle
