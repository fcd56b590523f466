"""
What a TLS probe observes of one endpoint: plain, frozen data that the transmission checks judge.

Every fact is a value or `Unknown` with the reason it could not be observed. The prober
(`hipaacheck.clients.tls`) and the sslyze reference prober (`hipaacheck.clients.tls_sslyze`)
both produce these types, so the checks cannot tell which engine looked.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import Enum

from hipaacheck.model import Fact

MOZILLA_STORE = "Mozilla"
"""The name of sslyze's bundled Mozilla NSS store, used when no CA bundle is configured."""
CUSTOM_STORE = "configured CA bundle"
"""How observations name the endpoint's own `ca_bundle` store."""

DH_TOO_SMALL_TO_MEASURE = 0
"""`dh_group_bits` when the probe's own client refused the server's group as too small to use."""


class TlsVersion(str, Enum):
    """
    The protocol versions a probe asks about, oldest first.
    """

    SSL_2_0 = "SSL 2.0"
    SSL_3_0 = "SSL 3.0"
    TLS_1_0 = "TLS 1.0"
    TLS_1_1 = "TLS 1.1"
    TLS_1_2 = "TLS 1.2"
    TLS_1_3 = "TLS 1.3"


LEGACY_VERSIONS = (TlsVersion.SSL_2_0, TlsVersion.SSL_3_0, TlsVersion.TLS_1_0, TlsVersion.TLS_1_1)
"""Versions that must not be accepted for ePHI in transit (NIST SP 800-52r2)."""


class SuiteClass(str, Enum):
    """
    A class of cipher suites the transmission checks ask about, by what makes it weak.

    A suite can belong to several classes (`TLS_RSA_WITH_RC4_128_SHA` is RC4 and static RSA).
    """

    NULL = "NULL"
    """No encryption at all."""
    ANONYMOUS = "anonymous"
    """No server authentication (anonymous Diffie-Hellman)."""
    EXPORT = "EXPORT"
    """Export-grade (40 to 56 bit) keys."""
    RC4 = "RC4"
    DES = "DES"
    """Single DES (56-bit keys)."""
    TRIPLE_DES = "3DES"
    """Triple DES: a 64-bit block, open to Sweet32."""
    STATIC_RSA = "static RSA"
    """RSA key transport: no forward secrecy."""


WEAK_SUITE_CLASSES = (SuiteClass.NULL, SuiteClass.ANONYMOUS, SuiteClass.EXPORT, SuiteClass.RC4,
                      SuiteClass.DES, SuiteClass.TRIPLE_DES)
"""Classes whose acceptance fails an endpoint; static RSA only warns."""


class ServiceKind(str, Enum):
    """
    What answered on the port, as the pre-probe classified it.
    """

    TLS = "tls"
    PLAINTEXT_HTTP = "plaintext_http"
    PLAINTEXT_OTHER = "plaintext_other"
    """Another plaintext protocol: a banner (SSH, SMTP, ...) or a reply that is not TLS."""
    POSTGRES_NO_TLS = "postgres_no_tls"
    """PostgreSQL answered `N` to SSLRequest: the server has no TLS."""
    STARTTLS_REFUSED = "starttls_refused"
    """The server answered the protocol but refused to upgrade to TLS."""


@dataclass(frozen=True)
class ChainCertificate:
    """
    One certificate as the server sent it: the facts the strength check judges.
    """

    position: int
    """0 for the leaf, then each certificate the server sent after it."""
    self_signed: bool
    """Issuer and subject are the same name (a root; its own signature does not matter)."""
    key_type: str
    """`RSA`, `EC`, `DSA`, `Ed25519`, `Ed448` or `unknown`."""
    key_bits: int
    """The RSA or DSA modulus size, or the EC curve's size; 0 when unknown."""
    signature_hash: str | None
    """The hash of the certificate's signature (`sha256`, `sha1`, ...), None when it has none."""


@dataclass(frozen=True)
class CertificateObservation:
    """
    One certificate deployment (a distinct leaf the server sends with SNI), judged against
    one trust store.
    """

    store: str
    """`configured CA bundle` or `Mozilla`: the store whose verdict `verified` is."""
    verified: bool
    """Whether the chain verifies against `store` for the endpoint's name, at `observed_at`."""
    validation_error: str | None
    """A short kind when `verified` is false: `untrusted_issuer`, `hostname_mismatch`, ..."""
    hostname_matches: bool
    """Whether the leaf's subjectAltName covers the endpoint's server name."""
    not_before: datetime
    not_after: datetime
    issuer_cn: str | None
    chain_length: int
    has_san: bool
    """Whether the leaf carries a subjectAltName extension at all."""
    server_auth_eku: bool | None
    """True when the leaf's extended key usage allows serverAuth, False when it excludes it,
    None when the leaf has no extended key usage extension."""
    public_ca: bool
    """Whether the chain verifies against the Mozilla store (a publicly trusted CA)."""
    chain: tuple[ChainCertificate, ...]
    """Every certificate the server sent, leaf first."""

    @property
    def lifetime_days(self) -> int:
        """The leaf's validity period in whole days."""
        return int((self.not_after - self.not_before).total_seconds() // 86400)


@dataclass(frozen=True)
class TlsObservation:
    """
    What one probe saw of one endpoint. Treat the mappings as read-only.
    """

    endpoint: str
    """`host:port` as probed."""
    server_name: str
    """The SNI sent (for DNS names) and the name the certificate must match."""
    observed_at: datetime
    service: Fact[ServiceKind]
    """What answered on the port."""
    protocols: Mapping[TlsVersion, Fact[bool]]
    """For every `TlsVersion`: whether the server accepted it."""
    cipher_suites: Mapping[TlsVersion, tuple[str, ...]]
    """IANA names of suites seen negotiated per version: a sample, not an enumeration."""
    plaintext: Fact[bool]
    """True when the port answered, but in something other than TLS."""
    suite_classes: Mapping[SuiteClass, Fact[bool]]
    """For every `SuiteClass`: whether the server accepted a suite of that class."""
    dh_group_bits: Fact[int | None]
    """The smallest finite-field Diffie-Hellman group seen, in bits; None when the server
    accepts no DHE suite; `DH_TOO_SMALL_TO_MEASURE` when our client refused it as too small."""
    tls12_aead: Fact[bool | None]
    """Whether TLS 1.2 offers an AEAD suite (GCM, CCM, ChaCha20); None without TLS 1.2."""
    certificates: Fact[tuple[CertificateObservation, ...]]
    """One entry per certificate deployment; empty when the server sent no certificate."""
    client_certificate_requested: bool
    """Whether the server asked for a client certificate during a handshake."""
    connections: int
    """TCP connections the probe opened (each carries at most one handshake)."""

    def accepted_versions(self) -> tuple[TlsVersion, ...]:
        """The versions observed to be accepted, oldest first."""
        return tuple(v for v in TlsVersion if self.protocols.get(v) is True)
