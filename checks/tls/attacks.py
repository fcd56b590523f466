"""
Known TLS implementation attacks against an endpoint (45 CFR 164.312(e)(1), (e)(2)(ii)).

Heartbleed (CVE-2014-0160) leaks server memory, keys included; OpenSSL CCS injection
(CVE-2014-0224) lets a man in the middle force weak keys; ROBOT (Bleichenbacher's RSA padding
oracle) lets an attacker decrypt recorded RSA key-exchange traffic or sign with the server's key.
Each is tested with sslyze's own scan command, which sends attack-shaped traffic. So the check
runs only against endpoints whose inventory entry sets `attack_probes: true` (issue 3), which
states that the system owner authorised it; every other endpoint gets no connection at all.
"""

from __future__ import annotations

import enum
import logging
import math
import traceback
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sslyze import (
    RobotScanResultEnum,
    ScanCommand,
    ScanCommandAttemptStatusEnum,
    ScanCommandErrorReasonEnum,
    Scanner,
    ServerConnectivityStatusEnum,
    ServerHostnameCouldNotBeResolved,
    ServerNetworkConfiguration,
    ServerScanRequest,
    ServerScanResult,
)

from hipaacheck.check import Check, CheckContext, Policy
from hipaacheck.clients.tls_handshake import location
from hipaacheck.clients.tls_sslyze import ATTACK_SCAN_COMMANDS, scan_request
from hipaacheck.config import TlsEndpointConfig
from hipaacheck.errors import ProbeUnavailable
from hipaacheck.model import (
    CheckMeta,
    EvidenceValue,
    Fact,
    Family,
    Finding,
    Operation,
    Severity,
    Standard,
    Status,
    System,
    Target,
    TargetKind,
    Unknown,
    UnknownReason,
)

__all__ = ["AttackObservation", "AttackProbe", "AttackProbes", "collect_attacks"]

logger = logging.getLogger(__name__)


class AttackProbe(str, enum.Enum):
    """The attack-shaped probes this check runs, named as in the evidence."""

    HEARTBLEED = "heartbleed"
    CCS_INJECTION = "openssl_ccs_injection"
    ROBOT = "robot"


PROBE_COMMANDS: dict[AttackProbe, ScanCommand] = {
    AttackProbe.HEARTBLEED: ScanCommand.HEARTBLEED,
    AttackProbe.CCS_INJECTION: ScanCommand.OPENSSL_CCS_INJECTION,
    AttackProbe.ROBOT: ScanCommand.ROBOT,
}
"""The only sslyze scan commands this check schedules."""

_ROBOT_VULNERABLE = frozenset({RobotScanResultEnum.VULNERABLE_STRONG_ORACLE,
                               RobotScanResultEnum.VULNERABLE_WEAK_ORACLE})
_ROBOT_SAFE = frozenset({RobotScanResultEnum.NOT_VULNERABLE_NO_ORACLE,
                         RobotScanResultEnum.NOT_VULNERABLE_RSA_NOT_SUPPORTED})
_ATTEMPT_ERRORS: dict[ScanCommandErrorReasonEnum, tuple[UnknownReason, str, str | None]] = {
    ScanCommandErrorReasonEnum.CLIENT_CERTIFICATE_NEEDED: (
        UnknownReason.ACCESS_DENIED, "the server requires a client certificate",
        "a client certificate accepted by the endpoint"),
    ScanCommandErrorReasonEnum.CONNECTIVITY_ISSUE: (
        UnknownReason.UNREACHABLE, "the connection failed during the probe", None),
    ScanCommandErrorReasonEnum.WRONG_USAGE: (
        UnknownReason.NOT_SUPPORTED, "sslyze refused the probe", None),
}
_TIMEOUTS = ("ConnectionToServerTimedOut", "TlsHandshakeTimedOut")
_NO_TLS = ("ServerRejectedTlsHandshake", "ServerTlsConfigurationNotSupported",
           "ServerRejectedOpportunisticTlsNegotiation")
_AUTHORISED = ("attack-shaped traffic: sent only to endpoints whose inventory entry sets "
               "`attack_probes: true`, which needs the system owner's authorisation")
OPERATIONS = (
    Operation(System.TLS, "TLS handshake (sslyze connectivity test before the probes)",
              "finds a TLS version and suite the endpoint accepts; only when the endpoint "
              "opts in to attack probes"),
    Operation(System.TLS, "Heartbleed probe (sslyze HEARTBLEED: a malformed heartbeat request)",
              "asks for more heartbeat bytes than it sends (CVE-2014-0160); " + _AUTHORISED),
    Operation(System.TLS, "OpenSSL CCS injection probe (sslyze OPENSSL_CCS_INJECTION: an "
              "early ChangeCipherSpec)", "CVE-2014-0224; " + _AUTHORISED),
    Operation(System.TLS, "ROBOT probe (sslyze ROBOT: RSA key exchanges with malformed "
              "PKCS#1 v1.5 padding)",
              "a Bleichenbacher padding-oracle test, several handshakes per payload; "
              + _AUTHORISED),
)


@dataclass(frozen=True)
class AttackObservation:
    """
    What the attack probes found on one endpoint; each fact is a result or `Unknown`.

    `heartbleed` and `ccs_injection` are True when the endpoint is vulnerable; `robot` is
    sslyze's ROBOT verdict as it stands (inconsistent results are judged by the check).
    """

    endpoint: str
    heartbleed: Fact[bool]
    ccs_injection: Fact[bool]
    robot: Fact[RobotScanResultEnum]


def _error_name(trace: traceback.TracebackException | None) -> str:
    """The class name of the exception captured in a sslyze trace."""
    if trace is None:
        return ""
    exc_type = getattr(trace, "exc_type", None)
    if exc_type is not None:
        return str(exc_type.__name__)
    return str(getattr(trace, "exc_type_str", "")).rsplit(".", 1)[-1]


def _attempt(result: Any, probe: AttackProbe) -> Any:
    """The result of one probe's scan attempt, or `Unknown` saying why there is none."""
    attempt = getattr(result, PROBE_COMMANDS[probe].value)
    if attempt.status == ScanCommandAttemptStatusEnum.COMPLETED and attempt.result is not None:
        return attempt.result
    if attempt.status == ScanCommandAttemptStatusEnum.ERROR:
        reason, detail, needs = _ATTEMPT_ERRORS.get(
            attempt.error_reason, (UnknownReason.UNPARSEABLE, "sslyze failed while probing", None))
        logger.debug("%s probe failed: %s (%s)", probe.value, attempt.error_reason,
                     _error_name(attempt.error_trace))
        return Unknown(reason, f"{probe.value}: {detail}", needs)
    return Unknown(UnknownReason.NOT_SUPPORTED, f"{probe.value}: the probe was not run")


def _uniform(where: str, unknown: Unknown) -> AttackObservation:
    """An observation in which no probe ran, each for the same reason."""
    return AttackObservation(endpoint=where, heartbleed=unknown, ccs_injection=unknown,
                             robot=unknown)


def _connectivity_failure(where: str, result: ServerScanResult) -> AttackObservation:
    """Why sslyze's connectivity test stopped the probes before any was sent."""
    name = _error_name(result.connectivity_error_trace)
    logger.debug("TLS connectivity test of %s failed: %s", where, name)
    needs = f"network reachability to {where}"
    if name in _TIMEOUTS:
        return _uniform(where, Unknown(UnknownReason.TIMEOUT, f"{where} did not answer in time",
                                       needs=needs))
    if name in _NO_TLS:
        return _uniform(where, Unknown(UnknownReason.NOT_SUPPORTED,
                                       f"{where} completed no TLS handshake"))
    return _uniform(where, Unknown(UnknownReason.UNREACHABLE, f"could not connect to {where}",
                                   needs=needs))


def _read(where: str, result: ServerScanResult) -> AttackObservation:
    """The observation of one completed (or failed) sslyze scan."""
    if (result.connectivity_status != ServerConnectivityStatusEnum.COMPLETED
            or result.scan_result is None):
        return _connectivity_failure(where, result)
    heartbleed = _attempt(result.scan_result, AttackProbe.HEARTBLEED)
    ccs = _attempt(result.scan_result, AttackProbe.CCS_INJECTION)
    robot = _attempt(result.scan_result, AttackProbe.ROBOT)
    return AttackObservation(
        endpoint=where,
        heartbleed=heartbleed if isinstance(heartbleed, Unknown)
        else bool(heartbleed.is_vulnerable_to_heartbleed),
        ccs_injection=ccs if isinstance(ccs, Unknown)
        else bool(ccs.is_vulnerable_to_ccs_injection),
        robot=robot if isinstance(robot, Unknown) else robot.robot_result)


def attack_request(endpoint: TlsEndpointConfig, *, timeout: float) -> ServerScanRequest:
    """
    The sslyze request for `endpoint`: exactly the three attack probes, nothing else.

    Refuses (`ProbeUnavailable`) an endpoint that has not opted in, so no caller can send
    attack-shaped traffic without the flag. Raises `ServerHostnameCouldNotBeResolved` when the
    host does not resolve.
    """
    if endpoint.attack_probes is not True:
        raise ProbeUnavailable(UnknownReason.NOT_SUPPORTED,
                               "attack probes are off for this endpoint",
                               needs="`attack_probes: true`, with the system owner's "
                                     "authorisation")
    base = scan_request(endpoint, timeout=timeout, with_certificate=False)
    network: ServerNetworkConfiguration = base.network_configuration
    network = ServerNetworkConfiguration(
        tls_server_name_indication=network.tls_server_name_indication,
        tls_opportunistic_encryption=network.tls_opportunistic_encryption,
        network_timeout=max(1, math.ceil(timeout)), network_max_retries=1)
    commands = set(PROBE_COMMANDS.values())
    if commands != set(ATTACK_SCAN_COMMANDS):
        raise AssertionError("the attack check schedules the three attack probes only")
    return ServerScanRequest(server_location=base.server_location,
                             network_configuration=network, scan_commands=commands)


def collect_attacks(endpoint: TlsEndpointConfig, *, timeout: float) -> AttackObservation:
    """Run the three attack probes against one opted-in endpoint with one sslyze `Scanner`."""
    where = location(endpoint.host, endpoint.port)
    try:
        request = attack_request(endpoint, timeout=timeout)
    except ServerHostnameCouldNotBeResolved:
        return _uniform(where, Unknown(UnknownReason.UNREACHABLE,
                                       f"could not resolve {endpoint.host}",
                                       needs=f"DNS resolution of {endpoint.host}"))
    scanner = Scanner()
    scanner.queue_scans([request])
    results = list(scanner.get_results())
    if len(results) != 1 or results[0].uuid != request.uuid:
        raise RuntimeError("sslyze returned an unexpected set of results")
    return _read(where, results[0])


def _verdicts(obs: AttackObservation) -> dict[AttackProbe, Fact[bool]]:
    """Vulnerable (True), not vulnerable (False) or `Unknown`, per probe."""
    robot: Fact[bool]
    if isinstance(obs.robot, Unknown):
        robot = obs.robot
    elif obs.robot in _ROBOT_VULNERABLE:
        robot = True
    elif obs.robot in _ROBOT_SAFE:
        robot = False
    else:
        robot = Unknown(UnknownReason.NOT_VISIBLE, "robot: the server's answers to the padding "
                        "probes were inconsistent, so sslyze could not tell")
    return {AttackProbe.HEARTBLEED: obs.heartbleed, AttackProbe.CCS_INJECTION: obs.ccs_injection,
            AttackProbe.ROBOT: robot}


class AttackProbes(Check[AttackObservation]):
    """
    Fails an endpoint vulnerable to Heartbleed, CCS injection or ROBOT; opt-in per endpoint.
    """

    meta = CheckMeta(
        id="tls.endpoint.attack_probes",
        title="TLS endpoint is not vulnerable to Heartbleed, CCS injection or ROBOT",
        family=Family.TRANSMISSION,
        standard=Standard.TRANSMISSION,
        citations=("164.312(e)(1)", "164.312(e)(2)(ii)"),
        severity=Severity.CRITICAL,
        target_kind=TargetKind.TLS_ENDPOINT,
        description=(
            "Runs sslyze's Heartbleed, OpenSSL CCS injection and ROBOT probes against endpoints "
            "that opt in with `attack_probes: true`. Any of the three lets an attacker read or "
            "decrypt protected traffic (Heartbleed can leak the private key). The probes send "
            "attack-shaped traffic, so they need the system owner's authorisation; endpoints "
            "without the flag are never probed by this check."),
        remediation=(
            "Upgrade the TLS library (OpenSSL 1.0.1g / 1.0.1h or later fixes Heartbleed and CCS "
            "injection; all current releases do), then rotate the private key and certificate "
            "of an endpoint that was vulnerable to Heartbleed. For ROBOT, disable RSA key "
            "exchange suites (keep ECDHE) or patch the implementation named in the ROBOT "
            "advisories (robotattack.org)."),
        operations=OPERATIONS,
    )

    def applies_to(self, target: Target) -> bool:
        """Only TLS endpoints whose inventory entry opts in to attack probes."""
        config = target.config
        return (target.kind == TargetKind.TLS_ENDPOINT
                and isinstance(config, TlsEndpointConfig) and config.attack_probes is True)

    def collect(self, ctx: CheckContext, target: Target) -> AttackObservation:
        """Probe the one endpoint (refused unless it opted in), with the scan's timeout."""
        endpoint = target.config
        if not isinstance(endpoint, TlsEndpointConfig):
            raise TypeError(f"target {target.id} carries no TLS endpoint configuration")
        # NOTE: sslyze is called here rather than through ctx.clients because the attack probes
        # are this check's alone; hipaacheck.clients.tls_sslyze never schedules them (issue 3).
        return collect_attacks(endpoint, timeout=ctx.timeout)

    def evaluate(self, obs: AttackObservation, target: Target,
                 policy: Policy) -> Sequence[Finding]:
        """Any vulnerability fails; any probe without a clear answer is unverified; else PASS."""
        build = self.findings(target)
        verdicts = _verdicts(obs)
        vulnerable = tuple(p.value for p, v in verdicts.items() if v is True)
        unknowns = [v for v in verdicts.values() if isinstance(v, Unknown)]
        evidence: dict[str, EvidenceValue] = {
            "endpoint": obs.endpoint,
            "vulnerable_to": vulnerable,
            "unverified_probes": tuple(p.value for p, v in verdicts.items()
                                       if isinstance(v, Unknown)),
            "robot_result": obs.robot.value if isinstance(obs.robot, RobotScanResultEnum)
            else None,
        }
        if vulnerable:
            return [build.failed(obs.endpoint, f"The endpoint is vulnerable to "
                                 f"{', '.join(vulnerable)}.", evidence=evidence)]
        if unknowns:
            unknown = unknowns[0]
            return [build.make(Status.UNVERIFIED, obs.endpoint,
                               f"Could not complete the attack probes: {unknown.detail}",
                               evidence=evidence, needs=unknown.needs,
                               unknown_reason=unknown.reason)]
        return [build.passed(obs.endpoint, "The endpoint is not vulnerable to Heartbleed, "
                             "OpenSSL CCS injection or ROBOT.", evidence=evidence)]
