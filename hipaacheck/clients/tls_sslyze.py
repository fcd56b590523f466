"""
The reference prober: sslyze's own scan commands, turned into the same `TlsObservation`.

It runs sslyze's connectivity test, the six cipher-suite scans (one handshake per suite per
version, some 540 connections per endpoint) and `certificate_info`. It exists to measure the
fast prober against (`benchmarks/tls_probe.py`) and to check that both reach the same verdicts;
scans use `hipaacheck.clients.tls.probe_endpoint`. Attack-shaped scan commands (Heartbleed,
ROBOT, CCS injection) are scheduled only by tls.endpoint.attack_probes, for endpoints that opt in.

Chains are judged by sslyze's own path validation against the intended store; the facts the
certificate checks read beyond that (keys, signatures, usages) come from the same code as the
fast prober's.
"""

from __future__ import annotations

import logging
import math
import socket
import ssl
import traceback
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from nassl.ephemeral_key_info import DhEphemeralKeyInfo
from sslyze import (
    CertificateInfoExtraArgument,
    ClientAuthRequirementEnum,
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

from hipaacheck.clients.tls_certs import (
    ca_bundle_problem,
    certificate_observation,
    is_ip,
    mozilla_store,
)
from hipaacheck.clients.tls_handshake import location, reply_kind
from hipaacheck.clients.tls_model import (
    CUSTOM_STORE,
    DH_TOO_SMALL_TO_MEASURE,
    MOZILLA_STORE,
    CertificateObservation,
    ServiceKind,
    SuiteClass,
    TlsObservation,
    TlsVersion,
)
from hipaacheck.clients.tls_suites import is_aead, is_dhe, suite_classes
from hipaacheck.config import TlsEndpointConfig
from hipaacheck.model import Fact, Unknown, UnknownReason

logger = logging.getLogger(__name__)

VERSION_COMMANDS: dict[TlsVersion, ScanCommand] = {
    TlsVersion.SSL_2_0: ScanCommand.SSL_2_0_CIPHER_SUITES,
    TlsVersion.SSL_3_0: ScanCommand.SSL_3_0_CIPHER_SUITES,
    TlsVersion.TLS_1_0: ScanCommand.TLS_1_0_CIPHER_SUITES,
    TlsVersion.TLS_1_1: ScanCommand.TLS_1_1_CIPHER_SUITES,
    TlsVersion.TLS_1_2: ScanCommand.TLS_1_2_CIPHER_SUITES,
    TlsVersion.TLS_1_3: ScanCommand.TLS_1_3_CIPHER_SUITES,
}
ALLOWED_SCAN_COMMANDS = frozenset({*VERSION_COMMANDS.values(), ScanCommand.CERTIFICATE_INFO})
"""sslyze's minimal command set for the transmission checks: ordinary handshakes only."""
ATTACK_SCAN_COMMANDS = frozenset({ScanCommand.HEARTBLEED, ScanCommand.ROBOT,
                                  ScanCommand.OPENSSL_CCS_INJECTION})
"""Scan commands that send attack-shaped traffic: only `tls.endpoint.attack_probes` sends them,
and only to endpoints that opt in."""
CERTIFICATE_JOBS = 4
"""Handshakes sslyze's certificate_info makes (TLS 1.3, RSA, non-RSA, no SNI)."""

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


def scan_request(endpoint: TlsEndpointConfig, *, timeout: float,
                 with_certificate: bool = True) -> ServerScanRequest:
    """
    The sslyze request for `endpoint`: only `ALLOWED_SCAN_COMMANDS`, never an attack probe.

    Raises sslyze's `ServerHostnameCouldNotBeResolved` when the host does not resolve.
    """
    location_ = ServerNetworkLocation(hostname=endpoint.host, port=endpoint.port,
                                      ip_address=endpoint.host if is_ip(endpoint.host) else None)
    network = ServerNetworkConfiguration(
        tls_server_name_indication=endpoint.server_name or endpoint.host,
        tls_opportunistic_encryption=_STARTTLS.get(endpoint.starttls or ""),
        network_timeout=max(1, math.ceil(timeout)), network_max_retries=2)
    commands = set(VERSION_COMMANDS.values())
    extra = ScanCommandsExtraArguments()
    if with_certificate:
        commands.add(ScanCommand.CERTIFICATE_INFO)
        if endpoint.ca_bundle is not None:
            extra = ScanCommandsExtraArguments(
                certificate_info=CertificateInfoExtraArgument(custom_ca_file=endpoint.ca_bundle))
    if not commands <= ALLOWED_SCAN_COMMANDS or commands & ATTACK_SCAN_COMMANDS:
        raise AssertionError("the TLS prober schedules ordinary handshakes only")
    return ServerScanRequest(server_location=location_, network_configuration=network,
                             scan_commands=commands, scan_commands_extra_arguments=extra)


def _error_name(trace: traceback.TracebackException | None) -> str:
    """The class name of the exception captured in a sslyze trace."""
    if trace is None:
        return ""
    exc_type = getattr(trace, "exc_type", None)
    if exc_type is not None:
        return str(exc_type.__name__)
    return str(getattr(trace, "exc_type_str", "")).rsplit(".", 1)[-1]


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


def _client_hello(server_name: str) -> bytes:
    """The bytes of a ClientHello from Python's own TLS stack, made without any network I/O."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = context.wrap_bio(incoming, outgoing,
                           server_hostname=None if is_ip(server_name) else server_name)
    try:
        tls.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return outgoing.read()


def sniff_service(ip: str, port: int, server_name: str, *, timeout: float) -> Fact[ServiceKind]:
    """
    Send one ClientHello and classify the first bytes of the reply (then forget them).
    """
    where = location(ip, port)
    try:
        with socket.create_connection((ip, port), timeout=timeout) as sock:
            sock.sendall(_client_hello(server_name))
            head = sock.recv(16)
    except TimeoutError:
        return Unknown(UnknownReason.TIMEOUT, f"{where} did not answer a ClientHello in time")
    except OSError as exc:
        return Unknown(UnknownReason.UNREACHABLE,
                       f"{where} dropped the connection ({type(exc).__name__})",
                       needs=f"network reachability to {where}")
    if not head:
        return Unknown(UnknownReason.NOT_VISIBLE,
                       f"{where} closed the connection without answering a ClientHello")
    return reply_kind(head)


def _utcnow() -> datetime:
    return datetime.now(UTC)


class _Reader:
    """Turns one sslyze scan result into an observation."""

    def __init__(self, endpoint: TlsEndpointConfig, timeout: float, observed_at: datetime,
                 certificate_unknown: Unknown | None) -> None:
        self.endpoint = endpoint
        self.timeout = timeout
        self.observed_at = observed_at
        self.certificate_unknown = certificate_unknown
        self.where = location(endpoint.host, endpoint.port)
        self.server_name = endpoint.server_name or endpoint.host

    def uniform(self, unknown: Unknown, service: Fact[ServiceKind] | None = None,
                plaintext: Fact[bool] | None = None,
                protocols: dict[TlsVersion, Fact[bool]] | None = None) -> TlsObservation:
        """An observation whose facts are all `unknown`, but for those given."""
        return TlsObservation(
            endpoint=self.where, server_name=self.server_name, observed_at=self.observed_at,
            service=service if service is not None else unknown,
            protocols=protocols or {v: unknown for v in TlsVersion}, cipher_suites={},
            plaintext=plaintext if plaintext is not None else unknown,
            suite_classes={c: unknown for c in SuiteClass}, dh_group_bits=unknown,
            tls12_aead=unknown, certificates=unknown, client_certificate_requested=False,
            connections=0)

    def read(self, result: ServerScanResult) -> TlsObservation:
        """The observation of a completed (or failed) scan."""
        if (result.connectivity_status != ServerConnectivityStatusEnum.COMPLETED
                or result.scan_result is None):
            return self._connectivity_failure(result)
        scanned = {v: _attempt_result(getattr(result.scan_result, c.value), f"{v.value} support")
                   for v, c in VERSION_COMMANDS.items()}
        protocols: dict[TlsVersion, Fact[bool]] = {}
        suites: dict[TlsVersion, tuple[Any, ...]] = {}
        for version, outcome in scanned.items():
            if isinstance(outcome, Unknown):
                protocols[version] = outcome
                continue
            suites[version] = tuple(outcome.accepted_cipher_suites)
            protocols[version] = bool(suites[version])
        probing = result.connectivity_result
        requested = bool(probing and probing.client_auth_requirement
                         != ClientAuthRequirementEnum.DISABLED)
        jobs = sum(len(o.accepted_cipher_suites) + len(o.rejected_cipher_suites)
                   for o in scanned.values() if not isinstance(o, Unknown))
        return TlsObservation(
            endpoint=self.where, server_name=self.server_name, observed_at=self.observed_at,
            service=ServiceKind.TLS, protocols=protocols,
            cipher_suites={v: tuple(sorted(a.cipher_suite.name for a in s))
                           for v, s in suites.items()},
            plaintext=False, suite_classes=_classes(protocols, suites),
            dh_group_bits=_dh_group(protocols, suites), tls12_aead=_aead(protocols, suites),
            certificates=self.certificate_unknown or self._certificates(result),
            client_certificate_requested=requested, connections=jobs + CERTIFICATE_JOBS)

    def _certificates(self, result: ServerScanResult) -> Fact[tuple[CertificateObservation, ...]]:
        assert result.scan_result is not None
        outcome = _attempt_result(result.scan_result.certificate_info, "certificate chain")
        if isinstance(outcome, Unknown):
            return outcome
        observed = []
        for deployment in outcome.certificate_deployments:
            item = self._deployment(deployment)
            if isinstance(item, Unknown):
                return item
            observed.append(item)
        return tuple(observed)

    def _deployment(self, deployment: Any) -> CertificateObservation | Unknown:
        """One deployment, judged by the intended store's own result."""
        bundle = self.endpoint.ca_bundle
        store = CUSTOM_STORE if bundle is not None else MOZILLA_STORE

        def intended(item: Any) -> bool:
            if bundle is not None:
                return Path(item.trust_store.path) == bundle
            return bool(item.trust_store.name == MOZILLA_STORE)

        chosen = next((r for r in deployment.path_validation_results if intended(r)), None)
        public = next((r for r in deployment.path_validation_results
                       if r.trust_store.path == mozilla_store().path), None)
        if chosen is None:
            return Unknown(UnknownReason.UNPARSEABLE,
                           f"sslyze reported no validation against the {store}")
        return certificate_observation(
            deployment.received_certificate_chain, self.server_name, store, chosen,
            bool(public and public.was_validation_successful))

    def _connectivity_failure(self, result: ServerScanResult) -> TlsObservation:
        """What sslyze's failed connectivity test says about the endpoint."""
        name = _error_name(result.connectivity_error_trace)
        logger.debug("TLS connectivity test of %s failed: %s", self.where, name)
        if name in ("ServerRejectedTlsHandshake", "ServerTlsConfigurationNotSupported"):
            return self._handshake_failure(result)
        if name == "ServerRejectedOpportunisticTlsNegotiation":
            kind = (ServiceKind.POSTGRES_NO_TLS if self.endpoint.starttls == "postgres"
                    else ServiceKind.STARTTLS_REFUSED)
            return self._plaintext(kind)
        needs = f"network reachability to {self.where}"
        if name in ("ConnectionToServerTimedOut", "TlsHandshakeTimedOut"):
            return self.uniform(Unknown(UnknownReason.TIMEOUT, f"{self.where} did not answer "
                                        "in time", needs=needs))
        return self.uniform(Unknown(UnknownReason.UNREACHABLE, f"could not connect to "
                                    f"{self.where}", needs=needs))

    def _plaintext(self, kind: ServiceKind) -> TlsObservation:
        none = Unknown(UnknownReason.NOT_SUPPORTED, f"{self.where} speaks no TLS")
        return self.uniform(none, service=kind, plaintext=True,
                            protocols={v: False for v in TlsVersion})

    def _handshake_failure(self, result: ServerScanResult) -> TlsObservation:
        """TCP connected but no handshake completed: plaintext, or a TLS server we cannot use."""
        refused = Unknown(UnknownReason.NOT_SUPPORTED, f"{self.where} accepted TCP but "
                          "completed no TLS handshake with any version")
        if self.endpoint.starttls is not None:
            return self.uniform(refused)
        ip = result.server_location.ip_address or self.endpoint.host
        sniffed = sniff_service(ip, self.endpoint.port, self.server_name, timeout=self.timeout)
        if isinstance(sniffed, ServiceKind) and sniffed != ServiceKind.TLS:
            return self._plaintext(sniffed)
        if isinstance(sniffed, Unknown):
            return self.uniform(sniffed)
        return self.uniform(refused, service=ServiceKind.TLS, plaintext=False)


def _classes(protocols: dict[TlsVersion, Fact[bool]],
             suites: dict[TlsVersion, tuple[Any, ...]]) -> dict[SuiteClass, Fact[bool]]:
    found = {c for accepted in suites.values() for a in accepted
             for c in suite_classes(a.cipher_suite.name)}
    problem = next((f for f in protocols.values() if isinstance(f, Unknown)), None)
    return {c: True if c in found else (problem or False) for c in SuiteClass}


def _dh_group(protocols: dict[TlsVersion, Fact[bool]],
              suites: dict[TlsVersion, tuple[Any, ...]]) -> Fact[int | None]:
    sizes = []
    for accepted in suites.values():
        for item in accepted:
            if not is_dhe(item.cipher_suite.name):
                continue
            key = item.ephemeral_key
            sizes.append(key.size if isinstance(key, DhEphemeralKeyInfo)
                         else DH_TOO_SMALL_TO_MEASURE)
    if sizes:
        return min(sizes)
    return next((f for f in protocols.values() if isinstance(f, Unknown)), None)


def _aead(protocols: dict[TlsVersion, Fact[bool]],
          suites: dict[TlsVersion, tuple[Any, ...]]) -> Fact[bool | None]:
    fact = protocols[TlsVersion.TLS_1_2]
    if fact is not True:
        return fact if isinstance(fact, Unknown) else None
    return any(is_aead(a.cipher_suite.name) for a in suites[TlsVersion.TLS_1_2])


def _prepare(endpoint: TlsEndpointConfig, timeout: float,
             observed_at: datetime) -> tuple[_Reader, ServerScanRequest | TlsObservation]:
    """The reader for `endpoint` and its scan request, or the observation when none can run."""
    bundle_problem = ca_bundle_problem(endpoint.ca_bundle) if endpoint.ca_bundle else None
    reader = _Reader(endpoint, timeout, observed_at, bundle_problem)
    try:
        return reader, scan_request(endpoint, timeout=timeout,
                                    with_certificate=bundle_problem is None)
    except ServerHostnameCouldNotBeResolved:
        unknown = Unknown(UnknownReason.UNREACHABLE, f"could not resolve {endpoint.host}",
                          needs=f"DNS resolution of {endpoint.host}")
        return reader, reader.uniform(unknown)


def scan_endpoints(endpoints: Sequence[TlsEndpointConfig], *, timeout: float,
                   clock: Callable[[], datetime] | None = None) -> list[TlsObservation]:
    """
    Scan every endpoint with one sslyze `Scanner` (sslyze's default concurrency: ten servers
    at once, five connections each) and return the observations in the same order.
    """
    observed_at = (clock or _utcnow)()
    mozilla_store()  # load sslyze's bundled stores once, with their warnings silenced
    prepared = [_prepare(e, timeout, observed_at) for e in endpoints]
    observations: dict[int, TlsObservation] = {
        i: r for i, (_, r) in enumerate(prepared) if isinstance(r, TlsObservation)}
    pending = {r.uuid: i for i, (_, r) in enumerate(prepared) if isinstance(r, ServerScanRequest)}
    scanner = Scanner()
    scanner.queue_scans([r for _, r in prepared if isinstance(r, ServerScanRequest)])
    for result in scanner.get_results():
        index = pending.pop(result.uuid)
        observations[index] = prepared[index][0].read(result)
    if pending:
        raise RuntimeError("sslyze returned fewer results than requests")
    return [observations[i] for i in range(len(endpoints))]


def probe_endpoint_sslyze(endpoint: TlsEndpointConfig, *, timeout: float,
                          clock: Callable[[], datetime] | None = None) -> TlsObservation:
    """Probe one endpoint with sslyze's minimal command set (see `scan_endpoints`)."""
    return scan_endpoints([endpoint], timeout=timeout, clock=clock)[0]
