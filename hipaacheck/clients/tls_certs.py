"""
Certificate chains as the TLS prober sees them: path validation, name matching and the facts
the certificate checks judge.

Path validation is sslyze's: its `TrustStore` (which wraps `cryptography.x509.verification`)
validates a received chain for a server name against one store, and the prober reads that
store's own result, never "any store". Everything else (key sizes, signature hashes, usages,
lifetime) is read from the certificates here, because sslyze's verifier accepts RSA-1024 keys
and says nothing about lifetime or usages.
"""

from __future__ import annotations

import ipaddress
import logging
import threading
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa
from cryptography.utils import CryptographyDeprecationWarning
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from sslyze.plugins.certificate_info.trust_stores.trust_store import (
    PathValidationResult,
    TrustStore,
)
from sslyze.plugins.certificate_info.trust_stores.trust_store_repository import (
    TrustStoresRepository,
)

from hipaacheck.clients.tls_model import (
    CUSTOM_STORE,
    MOZILLA_STORE,
    CertificateObservation,
    ChainCertificate,
)
from hipaacheck.model import Unknown, UnknownReason

logger = logging.getLogger(__name__)

_REPOSITORY_LOCK = threading.Lock()
"""sslyze's default store repository is a lazily built singleton that is not thread-safe."""


def is_ip(value: str) -> bool:
    """Whether `value` is an IPv4 or IPv6 address literal."""
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def ca_bundle_problem(path: Path) -> Unknown | None:
    """
    Why the CA bundle at `path` cannot serve as a trust store, or None when it can.
    """
    try:
        data = path.read_bytes()
    except OSError:
        return Unknown(UnknownReason.NOT_VISIBLE, f"the configured CA bundle {path} cannot be read",
                       needs=f"read access to {path}")
    try:
        x509.load_pem_x509_certificates(data)
    except ValueError:
        return Unknown(UnknownReason.UNPARSEABLE,
                       f"the configured CA bundle {path} holds no PEM certificate")
    return None


def mozilla_store() -> TrustStore:
    """
    sslyze's bundled Mozilla NSS store.

    NOTE: a few roots in sslyze's bundled stores carry non-positive serial numbers, which
    `cryptography` warns about on every load; the warning concerns sslyze's data, not the
    target, so it is silenced while the stores load.
    """
    with _REPOSITORY_LOCK, warnings.catch_warnings():
        warnings.simplefilter("ignore", CryptographyDeprecationWarning)
        return TrustStoresRepository.get_default().get_main_store()


@dataclass(frozen=True)
class TrustStores:
    """
    The store an endpoint's chain must verify against, and the public store that says whether
    its CA is publicly trusted.
    """

    intended: TrustStore
    intended_label: str
    public: TrustStore

    @classmethod
    def for_endpoint(cls, ca_bundle: Path | None, public_roots: Path | None = None) -> TrustStores:
        """
        The configured CA bundle when there is one, else the public store; `public_roots`
        replaces the Mozilla store (the tests use it to stand in a public CA).
        """
        public = (TrustStore(public_roots, MOZILLA_STORE, "supplied") if public_roots
                  else mozilla_store())
        if ca_bundle is None:
            return cls(public, MOZILLA_STORE, public)
        return cls(TrustStore(ca_bundle, CUSTOM_STORE, "N/A"), CUSTOM_STORE, public)


def server_subject(server_name: str) -> x509.IPAddress | x509.DNSName:
    """The subject a chain is validated for: an IP address or a DNS name."""
    if is_ip(server_name):
        return x509.IPAddress(ipaddress.ip_address(server_name))
    return x509.DNSName(server_name.rstrip("."))


def _dns_match(pattern: str, name: str) -> bool:
    """RFC 6125 matching of one DNS name against one SAN entry (left-most wildcard only)."""
    pattern = pattern.rstrip(".").lower()
    if pattern == name:
        return True
    if pattern.startswith("*."):
        suffix = pattern[1:]
        head = name[: -len(suffix)]
        return name.endswith(suffix) and bool(head) and "." not in head
    return False


def _san(leaf: x509.Certificate) -> x509.SubjectAlternativeName | None:
    try:
        return leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (x509.ExtensionNotFound, ValueError):
        return None


def hostname_matches(leaf: x509.Certificate, server_name: str) -> bool:
    """
    Whether `leaf`'s subjectAltName covers `server_name` (a DNS name or an IP address).

    The subject's common name is not consulted, as current clients do not. A missing or
    malformed subjectAltName covers nothing.
    """
    san = _san(leaf)
    if san is None:
        return False
    if is_ip(server_name):
        return ipaddress.ip_address(server_name) in san.get_values_for_type(x509.IPAddress)
    wanted = server_name.rstrip(".").lower()
    return any(_dns_match(p, wanted) for p in san.get_values_for_type(x509.DNSName))


def _self_signed(cert: x509.Certificate) -> bool:
    return cert.issuer == cert.subject


def validation_kind(message: str | None, chain: Sequence[x509.Certificate]) -> str | None:
    """A short, value-free kind for a verifier's error message about `chain`."""
    if message is None:
        return None
    if len(chain) == 1 and _self_signed(chain[0]):
        # A self-signed CA certificate served as the leaf is refused for being a CA, not for
        # being self-signed: say which, so the fix is plain.
        return "ca_certificate_as_leaf" if _is_ca(chain[0]) else "self_signed"
    text = message.lower()
    if "not valid at validation time" in text or "expired" in text:
        return "outside_validity_period"
    if "has no subjectaltname" in text:
        return "missing_subject_alt_name"
    if "subjectaltname" in text or ("name" in text and "match" in text):
        return "hostname_mismatch"
    if "signature" in text and ("algorithm" in text or "unsupported" in text):
        return "weak_signature"
    if "candidates exhausted" in text:
        if len(chain) == 1:
            # The server sent the leaf alone and the store does not hold its issuer: the
            # usual cause is a missing intermediate, though an unknown issuer looks the same.
            return "incomplete_chain"
        return "untrusted_issuer"
    return "invalid_chain"


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return False


def _key_facts(cert: x509.Certificate) -> tuple[str, int]:
    try:
        key = cert.public_key()
    except (ValueError, UnsupportedAlgorithm):
        return "unknown", 0
    if isinstance(key, rsa.RSAPublicKey):
        return "RSA", key.key_size
    if isinstance(key, ec.EllipticCurvePublicKey):
        return "EC", key.curve.key_size
    if isinstance(key, dsa.DSAPublicKey):
        return "DSA", key.key_size
    if isinstance(key, ed25519.Ed25519PublicKey):
        return "Ed25519", 256
    if isinstance(key, ed448.Ed448PublicKey):
        return "Ed448", 456
    return "unknown", 0


def _signature_hash(cert: x509.Certificate) -> str | None:
    try:
        algorithm = cert.signature_hash_algorithm
    except UnsupportedAlgorithm:
        return "unknown"
    return algorithm.name if algorithm is not None else None


def chain_facts(chain: Sequence[x509.Certificate]) -> tuple[ChainCertificate, ...]:
    """The key and signature facts of every certificate in a received chain, leaf first."""
    facts = []
    for position, cert in enumerate(chain):
        key_type, key_bits = _key_facts(cert)
        facts.append(ChainCertificate(position, _self_signed(cert), key_type, key_bits,
                                      _signature_hash(cert)))
    return tuple(facts)


def _server_auth(leaf: x509.Certificate) -> bool | None:
    try:
        usages = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        return None
    except ValueError:
        return False
    allowed = {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE}
    return any(usage in allowed for usage in usages)


def _issuer_cn(cert: x509.Certificate) -> str | None:
    try:
        attributes = cert.issuer.get_attributes_for_oid(NameOID.COMMON_NAME)
    except ValueError:
        return None
    return str(attributes[0].value) if attributes else None


def certificate_observation(chain: Sequence[x509.Certificate], server_name: str, store: str,
                            verification: PathValidationResult,
                            public_ca: bool) -> CertificateObservation:
    """
    One deployment's observation from its received chain and the intended store's verdict.
    """
    leaf = chain[0]
    return CertificateObservation(
        store=store, verified=verification.was_validation_successful,
        validation_error=validation_kind(verification.validation_error, chain),
        hostname_matches=hostname_matches(leaf, server_name),
        not_before=leaf.not_valid_before_utc, not_after=leaf.not_valid_after_utc,
        issuer_cn=_issuer_cn(leaf), chain_length=len(chain), has_san=_san(leaf) is not None,
        server_auth_eku=_server_auth(leaf), public_ca=public_ca, chain=chain_facts(chain))


def observe_chain(chain_pem: Sequence[str], server_name: str, stores: TrustStores,
                  at: datetime) -> CertificateObservation | Unknown:
    """
    Validate a received chain (PEM, leaf first) against the intended store at `at`, and read
    its facts; `Unknown` when the server's certificates cannot be parsed.
    """
    try:
        chain = [x509.load_pem_x509_certificate(pem.encode("ascii")) for pem in chain_pem]
    except ValueError:
        return Unknown(UnknownReason.UNPARSEABLE, "the server's certificate could not be parsed")
    subject = server_subject(server_name)
    try:
        verification = stores.intended.verify_certificate_chain(list(chain_pem), subject, at)
        public_ca = verification.was_validation_successful
        if stores.public is not stores.intended:
            public_ca = stores.public.verify_certificate_chain(
                list(chain_pem), subject, at).was_validation_successful
    except (ValueError, TypeError) as exc:
        logger.debug("path validation raised %s", type(exc).__name__)
        return Unknown(UnknownReason.UNPARSEABLE, "the server's chain could not be validated")
    return certificate_observation(chain, server_name, stores.intended_label, verification,
                                   public_ca)
