"""
The TLS prober: one sslyze scan of one configured endpoint, turned into an observation.

A probe runs sslyze's connectivity test, then only the scan commands the transmission checks
need: the six cipher-suite scans (which say which of SSL 2.0 to TLS 1.3 the server accepts)
and `certificate_info` (the chain, validated against the endpoint's CA bundle when one is
configured, else against sslyze's bundled Mozilla store). Attack-shaped commands (Heartbleed,
ROBOT, CCS injection) are never scheduled here, whatever the endpoint's `attack_probes` says.

Every fact comes back as a value or `Unknown` with a reason: an unreachable port makes every
fact `Unknown(UNREACHABLE)`, a scan command that errored makes its own fact unknown. When a
port accepts TCP but no TLS handshake completes, one extra connection sends a ClientHello and
looks at the first bytes of the reply to tell a plaintext listener from a TLS server that
refuses us; those bytes are classified and dropped, never stored or logged.
"""

from __future__ import annotations

import ipaddress
import logging
import math
import socket
import ssl
import traceback
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.utils import CryptographyDeprecationWarning
from cryptography.x509.oid import NameOID
from sslyze import (
    CertificateInfoExtraArgument,
    ProtocolWithOpportunisticTlsEnum,
    ScanCommand,
    ScanCommandAttemptStatusEnum,
    ScanCommandErrorReasonEnum,
    ScanCommandsExtraArguments,
    Scanner,
    ServerConnectivityStatusEnum,
    ServerHostnameCouldNotBeResolved,
    ServerNetworkConfiguration,
    ServerNetworkLocation,
    ServerScanRequest,
    ServerScanResult,
)
from sslyze.plugins.certificate_info.trust_stores.trust_store_repository import (
    TrustStoresRepository,
)

from hipaacheck.config import TlsEndpointConfig
from hipaacheck.model import Fact, Unknown, UnknownReason

logger = logging.getLogger(__name__)

MOZILLA_STORE = "Mozilla"
"""The name of sslyze's bundled Mozilla NSS store, used when no CA bundle is configured."""
CUSTOM_STORE = "configured CA bundle"
"""How observations name the endpoint's own `ca_bundle` store."""


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

_VERSION_COMMANDS: dict[TlsVersion, ScanCommand] = {
    TlsVersion.SSL_2_0: ScanCommand.SSL_2_0_CIPHER_SUITES,
    TlsVersion.SSL_3_0: ScanCommand.SSL_3_0_CIPHER_SUITES,
    TlsVersion.TLS_1_0: ScanCommand.TLS_1_0_CIPHER_SUITES,
    TlsVersion.TLS_1_1: ScanCommand.TLS_1_1_CIPHER_SUITES,
    TlsVersion.TLS_1_2: ScanCommand.TLS_1_2_CIPHER_SUITES,
    TlsVersion.TLS_1_3: ScanCommand.TLS_1_3_CIPHER_SUITES,
}

ALLOWED_SCAN_COMMANDS = frozenset({*_VERSION_COMMANDS.values(), ScanCommand.CERTIFICATE_INFO})
"""Every sslyze scan command a probe may schedule: ordinary handshakes only."""

ATTACK_SCAN_COMMANDS = frozenset({ScanCommand.HEARTBLEED, ScanCommand.ROBOT,
                                  ScanCommand.OPENSSL_CCS_INJECTION})
"""Scan commands that send attack-shaped traffic; never scheduled by this prober."""

_STARTTLS = {
    "postgres": ProtocolWithOpportunisticTlsEnum.POSTGRES,
    "smtp": ProtocolWithOpportunisticTlsEnum.SMTP,
    "imap": ProtocolWithOpportunisticTlsEnum.IMAP,
    "pop3": ProtocolWithOpportunisticTlsEnum.POP3,
    "ftp": ProtocolWithOpportunisticTlsEnum.FTP,
    "ldap": ProtocolWithOpportunisticTlsEnum.LDAP,
    "xmpp": ProtocolWithOpportunisticTlsEnum.XMPP,
}

_ATTEMPT_ERRORS: dict[ScanCommandErrorReasonEnum, tuple[UnknownReason, str, str | None]] = {
    ScanCommandErrorReasonEnum.CLIENT_CERTIFICATE_NEEDED: (
        UnknownReason.ACCESS_DENIED, "the server requires a client certificate",
        "a client certificate accepted by the endpoint"),
    ScanCommandErrorReasonEnum.CONNECTIVITY_ISSUE: (
        UnknownReason.UNREACHABLE, "the connection failed during the scan", None),
    ScanCommandErrorReasonEnum.BUG_IN_SSLYZE: (
        UnknownReason.UNPARSEABLE, "sslyze failed while scanning", None),
    ScanCommandErrorReasonEnum.WRONG_USAGE: (
        UnknownReason.NOT_SUPPORTED, "sslyze refused the scan request", None),
}


@dataclass(frozen=True)
class CertificateObservation:
    """
    One certificate deployment (a distinct leaf the server sends with SNI), judged against
    one trust store.
    """

    store: str
    """`configured CA bundle` or `Mozilla`: the store whose verdict `verified` is."""
    verified: bool
    """Whether the chain verifies against `store` for the endpoint's name, now."""
    validation_error: str | None
    """A short kind when `verified` is false: `untrusted_issuer`, `hostname_mismatch`, ..."""
    hostname_matches: bool
    """Whether the leaf's subjectAltName covers the endpoint's server name."""
    not_before: datetime
    not_after: datetime
    issuer_cn: str | None
    chain_length: int


@dataclass(frozen=True)
class TlsObservation:
    """
    What one probe saw of one endpoint. Treat the mappings as read-only.
    """

    endpoint: str
    """`host:port` as probed."""
    server_name: str
    """The SNI sent and the name the certificate must match."""
    observed_at: datetime
    protocols: Mapping[TlsVersion, Fact[bool]]
    """For every `TlsVersion`: whether the server accepted it."""
    cipher_suites: Mapping[TlsVersion, tuple[str, ...]]
    """Accepted cipher suites (IANA names) for each version whose scan completed."""
    plaintext: Fact[bool]
    """True when the port answered, but in something other than TLS."""
    certificates: Fact[tuple[CertificateObservation, ...]]
    """One entry per certificate deployment; empty when the server sent no certificate."""

    def accepted_versions(self) -> tuple[TlsVersion, ...]:
        """The versions observed to be accepted, oldest first."""
        return tuple(v for v in TlsVersion if self.protocols.get(v) is True)


def _location_string(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def _uniform(unknown: Unknown) -> dict[TlsVersion, Fact[bool]]:
    return {v: unknown for v in TlsVersion}


def _error_name(trace: traceback.TracebackException | None) -> str:
    """The class name of the exception captured in a sslyze trace."""
    if trace is None:
        return ""
    exc_type = getattr(trace, "exc_type", None)
    if exc_type is not None:
        return str(exc_type.__name__)
    return str(getattr(trace, "exc_type_str", "")).rsplit(".", 1)[-1]


def _utcnow() -> datetime:
    return datetime.now(UTC)


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


def scan_request(endpoint: TlsEndpointConfig, *, timeout: float,
                 with_certificate: bool = True) -> ServerScanRequest:
    """
    The sslyze request for `endpoint`: only `ALLOWED_SCAN_COMMANDS`, never an attack probe.

    Raises sslyze's `ServerHostnameCouldNotBeResolved` when the host does not resolve.
    """
    location = ServerNetworkLocation(hostname=endpoint.host, port=endpoint.port,
                                     ip_address=endpoint.host if _is_ip(endpoint.host) else None)
    network = ServerNetworkConfiguration(
        tls_server_name_indication=endpoint.server_name or endpoint.host,
        tls_opportunistic_encryption=_STARTTLS.get(endpoint.starttls or ""),
        network_timeout=max(1, math.ceil(timeout)), network_max_retries=2)
    commands = set(_VERSION_COMMANDS.values())
    extra = ScanCommandsExtraArguments()
    if with_certificate:
        commands.add(ScanCommand.CERTIFICATE_INFO)
        if endpoint.ca_bundle is not None:
            extra = ScanCommandsExtraArguments(
                certificate_info=CertificateInfoExtraArgument(custom_ca_file=endpoint.ca_bundle))
    if not commands <= ALLOWED_SCAN_COMMANDS or commands & ATTACK_SCAN_COMMANDS:
        raise AssertionError("the TLS prober schedules ordinary handshakes only")
    return ServerScanRequest(server_location=location, network_configuration=network,
                             scan_commands=commands, scan_commands_extra_arguments=extra)


def _attempt_result(attempt: Any, what: str) -> Any:
    """The result of a scan command attempt, or `Unknown` saying why there is none."""
    if attempt.status == ScanCommandAttemptStatusEnum.COMPLETED and attempt.result is not None:
        return attempt.result
    if attempt.status == ScanCommandAttemptStatusEnum.ERROR:
        reason, detail, needs = _ATTEMPT_ERRORS.get(
            attempt.error_reason, (UnknownReason.UNPARSEABLE, "sslyze failed while scanning", None))
        logger.debug("sslyze scan of %s failed: %s (%s)", what, attempt.error_reason,
                     _error_name(attempt.error_trace))
        return Unknown(reason, f"{what}: {detail}", needs)
    return Unknown(UnknownReason.NOT_SUPPORTED, f"{what}: the scan was not run")


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


def hostname_matches(leaf: x509.Certificate, server_name: str) -> bool:
    """
    Whether `leaf`'s subjectAltName covers `server_name` (a DNS name or an IP address).

    The subject's common name is not consulted, as current clients do not. A missing or
    malformed subjectAltName covers nothing.
    """
    try:
        san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (x509.ExtensionNotFound, ValueError):
        return False
    if _is_ip(server_name):
        return ipaddress.ip_address(server_name) in san.get_values_for_type(x509.IPAddress)
    wanted = server_name.rstrip(".").lower()
    return any(_dns_match(p, wanted) for p in san.get_values_for_type(x509.DNSName))


def _validation_kind(message: str | None) -> str | None:
    """A short, value-free kind for a verifier's error message."""
    if message is None:
        return None
    text = message.lower()
    if "not valid at validation time" in text:
        return "outside_validity_period"
    if "subjectaltname" in text or ("name" in text and "match" in text):
        return "hostname_mismatch"
    if "candidates exhausted" in text:
        return "untrusted_issuer"
    return "invalid_chain"


def _issuer_cn(cert: x509.Certificate) -> str | None:
    try:
        attributes = cert.issuer.get_attributes_for_oid(NameOID.COMMON_NAME)
    except ValueError:
        return None
    return str(attributes[0].value) if attributes else None


def _deployment(deployment: Any, ca_bundle: Path | None,
                server_name: str) -> CertificateObservation | Unknown:
    """One certificate deployment, judged by the intended store only."""
    store = CUSTOM_STORE if ca_bundle is not None else MOZILLA_STORE

    def intended(result: Any) -> bool:
        if ca_bundle is not None:
            return Path(result.trust_store.path) == ca_bundle
        return bool(result.trust_store.name == MOZILLA_STORE)

    chosen = next((r for r in deployment.path_validation_results if intended(r)), None)
    if chosen is None:
        return Unknown(UnknownReason.UNPARSEABLE,
                       f"sslyze reported no validation against the {store}")
    leaf = deployment.received_certificate_chain[0]
    return CertificateObservation(
        store=store, verified=chosen.was_validation_successful,
        validation_error=_validation_kind(chosen.validation_error),
        hostname_matches=hostname_matches(leaf, server_name),
        not_before=leaf.not_valid_before_utc, not_after=leaf.not_valid_after_utc,
        issuer_cn=_issuer_cn(leaf), chain_length=len(deployment.received_certificate_chain))


def _certificates(attempt: Any, endpoint: TlsEndpointConfig,
                  server_name: str) -> Fact[tuple[CertificateObservation, ...]]:
    result = _attempt_result(attempt, "certificate chain")
    if isinstance(result, Unknown):
        return result
    observed = []
    for deployment in result.certificate_deployments:
        item = _deployment(deployment, endpoint.ca_bundle, server_name)
        if isinstance(item, Unknown):
            return item
        observed.append(item)
    return tuple(observed)


def _client_hello(server_name: str) -> bytes:
    """The bytes of a ClientHello from Python's own TLS stack, made without any network I/O."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = context.wrap_bio(incoming, outgoing,
                           server_hostname=None if _is_ip(server_name) else server_name)
    try:
        tls.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return outgoing.read()


def _looks_like_tls(head: bytes) -> bool:
    """Whether the first bytes of a reply are a TLS record (alert, handshake) or SSL 2.0."""
    if head[0] in (0x14, 0x15, 0x16, 0x17):
        return len(head) < 2 or head[1] == 0x03
    return bool(head[0] & 0x80)


def sniff_plaintext(ip: str, port: int, server_name: str, *, timeout: float) -> Fact[bool]:
    """
    Send one ClientHello and say whether the reply is something other than TLS.

    The reply's first bytes are classified and discarded; they are never kept or logged.
    """
    where = _location_string(ip, port)
    try:
        with socket.create_connection((ip, port), timeout=timeout) as sock:
            sock.sendall(_client_hello(server_name))
            head = sock.recv(5)
    except TimeoutError:
        return Unknown(UnknownReason.TIMEOUT, f"{where} did not answer a ClientHello in time")
    except OSError as exc:
        return Unknown(UnknownReason.UNREACHABLE,
                       f"{where} dropped the connection ({type(exc).__name__})",
                       needs=f"network reachability to {where}")
    if not head:
        return Unknown(UnknownReason.NOT_VISIBLE,
                       f"{where} closed the connection without answering a ClientHello")
    return not _looks_like_tls(head)


@dataclass(frozen=True)
class _Failure:
    """What a failed connectivity test leaves known: protocol support and plaintext."""

    protocols: dict[TlsVersion, Fact[bool]]
    plaintext: Fact[bool]
    certificates: Unknown


def _failure(unknown: Unknown) -> _Failure:
    return _Failure(_uniform(unknown), unknown, unknown)


def _plaintext_failure(detail: str) -> _Failure:
    """The port answered, but not in TLS: no version is accepted and there is no certificate."""
    return _Failure({v: False for v in TlsVersion}, True,
                    Unknown(UnknownReason.NOT_SUPPORTED, detail))


def _handshake_failure(endpoint: TlsEndpointConfig, result: ServerScanResult,
                       timeout: float) -> _Failure:
    """TCP connected but no handshake completed: an SSL 2.0-only server, plaintext, or neither."""
    where = _location_string(endpoint.host, endpoint.port)
    message = str(result.connectivity_error_trace or "")
    if "only supports SSL 2.0" in message:
        protocols: dict[TlsVersion, Fact[bool]] = {v: False for v in TlsVersion}
        protocols[TlsVersion.SSL_2_0] = True
        return _Failure(protocols, False, Unknown(
            UnknownReason.NOT_SUPPORTED, f"{where} speaks only SSL 2.0, which sslyze cannot "
            "retrieve a certificate chain over"))
    refused = Unknown(UnknownReason.NOT_SUPPORTED,
                      f"{where} accepted TCP but completed no TLS handshake with any version")
    if endpoint.starttls is not None:
        return _failure(refused)
    ip = result.server_location.ip_address or endpoint.host
    sniffed = sniff_plaintext(ip, endpoint.port, endpoint.server_name or endpoint.host,
                              timeout=timeout)
    if sniffed is True:
        return _plaintext_failure(f"{where} answers in plaintext, not TLS")
    failure = _failure(refused)
    return _Failure(failure.protocols, sniffed, refused)


def _connectivity_failure(endpoint: TlsEndpointConfig, result: ServerScanResult,
                          timeout: float) -> _Failure:
    """What sslyze's failed connectivity test says about the endpoint."""
    where = _location_string(endpoint.host, endpoint.port)
    name = _error_name(result.connectivity_error_trace)
    logger.debug("TLS connectivity test of %s failed: %s", where, name)
    if name in ("ServerRejectedTlsHandshake", "ServerTlsConfigurationNotSupported"):
        return _handshake_failure(endpoint, result, timeout)
    if name == "ServerRejectedOpportunisticTlsNegotiation":
        return _plaintext_failure(f"{where} answered but refused to start TLS")
    if name in ("ConnectionToServerTimedOut", "TlsHandshakeTimedOut"):
        return _failure(Unknown(UnknownReason.TIMEOUT, f"{where} did not answer in time",
                                needs=f"network reachability to {where}"))
    return _failure(Unknown(UnknownReason.UNREACHABLE, f"could not connect to {where}",
                            needs=f"network reachability to {where}"))


def _load_bundled_trust_stores() -> None:
    """
    Load sslyze's bundled trust stores (a process-wide singleton) before a scan needs them.

    NOTE: a few roots in sslyze's bundled stores carry non-positive serial numbers, which
    `cryptography` warns about on every load; the warning concerns sslyze's data, not the
    target, so it is silenced here, once, in the calling thread.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CryptographyDeprecationWarning)
        TrustStoresRepository.get_default()


def _run_scan(request: ServerScanRequest) -> ServerScanResult:
    """Run one sslyze scan request and return its single result."""
    if ScanCommand.CERTIFICATE_INFO in request.scan_commands:
        _load_bundled_trust_stores()
    scanner = Scanner(per_server_concurrent_connections_limit=5, concurrent_server_scans_limit=1)
    scanner.queue_scans([request])
    results = list(scanner.get_results())
    if len(results) != 1:
        raise RuntimeError(f"sslyze returned {len(results)} results for one request")
    return results[0]


def _observation(endpoint: TlsEndpointConfig, result: ServerScanResult, timeout: float,
                 certificate_unknown: Unknown | None, observed_at: datetime) -> TlsObservation:
    """Turn sslyze's scan result into an observation."""
    server_name = endpoint.server_name or endpoint.host
    where = _location_string(endpoint.host, endpoint.port)
    connected = result.connectivity_status == ServerConnectivityStatusEnum.COMPLETED
    if not connected or result.scan_result is None:
        failure = _connectivity_failure(endpoint, result, timeout)
        return TlsObservation(where, server_name, observed_at, failure.protocols, {},
                              failure.plaintext, failure.certificates)
    protocols: dict[TlsVersion, Fact[bool]] = {}
    suites: dict[TlsVersion, tuple[str, ...]] = {}
    for version, command in _VERSION_COMMANDS.items():
        scanned = _attempt_result(getattr(result.scan_result, command.value),
                                  f"{version.value} support")
        if isinstance(scanned, Unknown):
            protocols[version] = scanned
            continue
        suites[version] = tuple(a.cipher_suite.name for a in scanned.accepted_cipher_suites)
        protocols[version] = bool(suites[version])
    certificates = certificate_unknown or _certificates(
        result.scan_result.certificate_info, endpoint, server_name)
    return TlsObservation(where, server_name, observed_at, protocols, suites, False, certificates)


def probe_endpoint(endpoint: TlsEndpointConfig, *, timeout: float,
                   clock: Callable[[], datetime] | None = None) -> TlsObservation:
    """
    Probe one configured endpoint with sslyze and return what was observed.

    `timeout` bounds each network connection (sslyze's `network_timeout`, rounded up to whole
    seconds). `clock` stamps `observed_at`, against which expiry is judged; it defaults to the
    current UTC time. sslyze itself validates chains against the real current time.
    """
    clock = clock or _utcnow
    server_name = endpoint.server_name or endpoint.host
    where = _location_string(endpoint.host, endpoint.port)
    bundle_problem = ca_bundle_problem(endpoint.ca_bundle) if endpoint.ca_bundle else None
    try:
        request = scan_request(endpoint, timeout=timeout, with_certificate=bundle_problem is None)
    except ServerHostnameCouldNotBeResolved:
        unknown = Unknown(UnknownReason.UNREACHABLE, f"could not resolve {endpoint.host}",
                          needs=f"DNS resolution of {endpoint.host}")
        return TlsObservation(where, server_name, clock(), _uniform(unknown), {}, unknown,
                              unknown)
    logger.debug("probing TLS endpoint %s", where)
    result = _run_scan(request)
    return _observation(endpoint, result, timeout, bundle_problem, clock())
