"""
The attack-probe check: evaluate on hand-built observations for every branch, and collect
against real loopback servers, including proof that an endpoint without the opt-in flag
receives no connection from it.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator

import pytest
from sslyze import RobotScanResultEnum, ScanCommand

from hipaacheck.check import CheckContext, Policy
from hipaacheck.checks.tls.attacks import (
    AttackObservation,
    AttackProbe,
    AttackProbes,
    attack_request,
)
from hipaacheck.clients.tls_sslyze import ATTACK_SCAN_COMMANDS
from hipaacheck.config import TlsEndpointConfig
from hipaacheck.errors import ProbeUnavailable
from hipaacheck.lab.certs import LabCertificates
from hipaacheck.lab.tls import RunningServer, start_server, start_tls_server
from hipaacheck.model import Fact, Status, System, Target, TargetKind, Unknown, UnknownReason
from hipaacheck.registry import Registry
from hipaacheck.runner import Runner, Task, plan, run_task

CHECK = AttackProbes()
TARGET = Target(TargetKind.TLS_ENDPOINT, "tls:portal", "portal")
UNREACHABLE = Unknown(UnknownReason.UNREACHABLE, "could not connect to 10.0.0.5:443",
                      needs="network reachability to 10.0.0.5:443")
ERRORED = Unknown(UnknownReason.UNPARSEABLE, "robot: sslyze failed while probing")
Targets = Callable[[TlsEndpointConfig], Target]


def observation(heartbleed: Fact[bool] = False, ccs_injection: Fact[bool] = False,
                robot: Fact[RobotScanResultEnum] = RobotScanResultEnum.NOT_VULNERABLE_NO_ORACLE,
                ) -> AttackObservation:
    """A sound observation, with one or more probes changed."""
    return AttackObservation(endpoint="10.0.0.5:443", heartbleed=heartbleed,
                             ccs_injection=ccs_injection, robot=robot)


def judge(obs: AttackObservation) -> tuple[Status, UnknownReason | None, dict[str, object]]:
    [finding] = CHECK.evaluate(obs, TARGET, Policy())
    assert finding.check_id == "tls.endpoint.attack_probes"
    assert finding.target == TARGET.id and finding.resource == obs.endpoint
    return finding.status, finding.unknown_reason, dict(finding.evidence)


# --- metadata and scope ----------------------------------------------------------------------

def test_metadata_is_complete_and_names_every_probe() -> None:
    registry = Registry.from_checks([CHECK])
    meta = registry.checks["tls.endpoint.attack_probes"].meta
    assert meta.citations == ("164.312(e)(1)", "164.312(e)(2)(ii)")
    assert meta.severity.value == "critical" and meta.target_kind == TargetKind.TLS_ENDPOINT
    assert all(op.system == System.TLS for op in meta.operations)
    actions = " ".join(op.action for op in meta.operations)
    assert all(name in actions for name in ("HEARTBLEED", "OPENSSL_CCS_INJECTION", "ROBOT"))
    probes = [op for op in meta.operations if " probe (sslyze " in op.action]
    assert len(probes) == 3 and all("authorisation" in op.why for op in probes)


@pytest.mark.parametrize(("kind", "flag", "applies"), [
    (TargetKind.TLS_ENDPOINT, True, True),
    (TargetKind.TLS_ENDPOINT, False, False),
    (TargetKind.POSTGRES, True, False),
])
def test_applies_only_to_opted_in_tls_endpoints(kind: TargetKind, flag: bool,
                                                applies: bool) -> None:
    endpoint = TlsEndpointConfig(name="portal", host="10.0.0.5", port=443, attack_probes=flag)
    assert CHECK.applies_to(Target(kind, "t", "portal", endpoint)) is applies


def test_applies_not_to_a_target_without_configuration() -> None:
    assert CHECK.applies_to(TARGET) is False


def test_request_schedules_exactly_the_three_attack_probes() -> None:
    endpoint = TlsEndpointConfig(name="p", host="127.0.0.1", port=443, attack_probes=True)
    request = attack_request(endpoint, timeout=2.5)
    assert request.scan_commands == set(ATTACK_SCAN_COMMANDS) == {
        ScanCommand.HEARTBLEED, ScanCommand.OPENSSL_CCS_INJECTION, ScanCommand.ROBOT}
    assert request.network_configuration.network_timeout == 3


def test_request_is_refused_without_the_flag() -> None:
    endpoint = TlsEndpointConfig(name="p", host="127.0.0.1", port=443)
    with pytest.raises(ProbeUnavailable) as raised:
        attack_request(endpoint, timeout=1.0)
    assert raised.value.unknown.reason == UnknownReason.NOT_SUPPORTED


# --- evaluate --------------------------------------------------------------------------------

@pytest.mark.parametrize("robot", [RobotScanResultEnum.NOT_VULNERABLE_NO_ORACLE,
                                   RobotScanResultEnum.NOT_VULNERABLE_RSA_NOT_SUPPORTED])
def test_pass_when_every_probe_completed_clean(robot: RobotScanResultEnum) -> None:
    status, reason, evidence = judge(observation(robot=robot))
    assert (status, reason) == (Status.PASS, None)
    assert evidence["vulnerable_to"] == () and evidence["unverified_probes"] == ()
    assert evidence["robot_result"] == robot.value


@pytest.mark.parametrize(("obs", "names"), [
    (observation(heartbleed=True), ("heartbleed",)),
    (observation(ccs_injection=True), ("openssl_ccs_injection",)),
    (observation(robot=RobotScanResultEnum.VULNERABLE_STRONG_ORACLE), ("robot",)),
    (observation(robot=RobotScanResultEnum.VULNERABLE_WEAK_ORACLE), ("robot",)),
    (observation(heartbleed=True, ccs_injection=True), ("heartbleed", "openssl_ccs_injection")),
])
def test_fail_when_vulnerable_to_any(obs: AttackObservation, names: tuple[str, ...]) -> None:
    status, _, evidence = judge(obs)
    assert status == Status.FAIL and evidence["vulnerable_to"] == names


def test_fail_wins_over_a_probe_that_errored() -> None:
    # A definite vulnerability is a failure even though another probe could not finish
    status, _, evidence = judge(observation(heartbleed=True, robot=ERRORED))
    assert status == Status.FAIL
    assert evidence["vulnerable_to"] == ("heartbleed",)
    assert evidence["unverified_probes"] == ("robot",)


@pytest.mark.parametrize("probe", list(AttackProbe))
def test_a_probe_that_errored_is_unverified(probe: AttackProbe) -> None:
    changes = {AttackProbe.HEARTBLEED: {"heartbleed": ERRORED},
               AttackProbe.CCS_INJECTION: {"ccs_injection": ERRORED},
               AttackProbe.ROBOT: {"robot": ERRORED}}[probe]
    status, reason, evidence = judge(observation(**changes))
    assert (status, reason) == (Status.UNVERIFIED, UnknownReason.UNPARSEABLE)
    assert evidence["unverified_probes"] == (probe.value,)


def test_a_probe_not_run_is_unverified() -> None:
    not_run = Unknown(UnknownReason.NOT_SUPPORTED, "heartbleed: the probe was not run")
    status, reason, _ = judge(observation(heartbleed=not_run))
    assert (status, reason) == (Status.UNVERIFIED, UnknownReason.NOT_SUPPORTED)


def test_robot_inconsistent_results_are_unverified() -> None:
    status, reason, evidence = judge(
        observation(robot=RobotScanResultEnum.UNKNOWN_INCONSISTENT_RESULTS))
    assert (status, reason) == (Status.UNVERIFIED, UnknownReason.NOT_VISIBLE)
    assert evidence["unverified_probes"] == ("robot",)
    assert evidence["robot_result"] == "UNKNOWN_INCONSISTENT_RESULTS"


def test_unreachable_endpoint_is_unverified_with_what_it_needs() -> None:
    [finding] = CHECK.evaluate(observation(UNREACHABLE, UNREACHABLE, UNREACHABLE), TARGET,
                               Policy())
    assert finding.status == Status.UNVERIFIED
    assert finding.unknown_reason == UnknownReason.UNREACHABLE
    assert finding.needs == "network reachability to 10.0.0.5:443"
    assert finding.evidence["unverified_probes"] == tuple(p.value for p in AttackProbe)


# --- collect against real loopback servers ---------------------------------------------------

@pytest.fixture(scope="module")
def modern(tls_certs: LabCertificates) -> Iterator[RunningServer]:
    """A sound loopback server (TLS 1.2 and 1.3, ECDSA certificate)."""
    server = start_tls_server("attack-modern", tls_certs.good, "modern")
    yield server
    server.stop()


def endpoint_of(server: RunningServer, *, attack_probes: bool) -> TlsEndpointConfig:
    return TlsEndpointConfig(name=f"{server.name}-{attack_probes}", host=server.host,
                             port=server.port, zone="internal", attack_probes=attack_probes)


def test_modern_server_opted_in_passes(ctx: CheckContext, modern: RunningServer,
                                       target: Targets) -> None:
    # Given a sound server whose entry opts in, when the runner runs only this check
    tgt = target(endpoint_of(modern, attack_probes=True))
    before = modern.connections
    results, interrupted = Runner(ctx, workers=1).run(
        plan(Registry.from_checks([CHECK]), [tgt]))
    # Then every probe completed and none found a vulnerability
    [finding] = results[("tls.endpoint.attack_probes", tgt.id)]
    assert not interrupted and finding.status == Status.PASS
    assert finding.evidence["robot_result"] == "NOT_VULNERABLE_RSA_NOT_SUPPORTED"
    # And the probes did reach the server (the counter below is a working witness)
    assert modern.connections > before


def test_endpoint_without_the_flag_gets_no_connection(ctx: CheckContext, modern: RunningServer,
                                                      target: Targets) -> None:
    # Given the same server, listed without the opt-in flag
    tgt = target(endpoint_of(modern, attack_probes=False))
    before = modern.connections
    # When a scan with only this check selected is planned and run
    tasks = plan(Registry.from_checks([CHECK]), [tgt])
    results, _ = Runner(ctx, workers=1).run(tasks)
    # Then nothing was scheduled and the server accepted no connection
    assert tasks == [] and results == {}
    # And even a task forced past applies_to is refused before any connection
    [finding] = run_task(Task(CHECK, tgt), ctx)
    assert finding.status == Status.UNVERIFIED
    assert finding.unknown_reason == UnknownReason.NOT_SUPPORTED
    assert modern.connections == before


def _closed_port() -> int:
    """A loopback port that was just free: bound, then released."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_closed_port_is_unverified(ctx: CheckContext, target: Targets) -> None:
    endpoint = TlsEndpointConfig(name="closed", host="127.0.0.1", port=_closed_port(),
                                 attack_probes=True)
    tgt = target(endpoint)
    [finding] = CHECK.evaluate(CHECK.collect(ctx, tgt), tgt, ctx.policy)
    assert finding.status == Status.UNVERIFIED
    assert finding.unknown_reason == UnknownReason.UNREACHABLE
    assert finding.needs == f"network reachability to 127.0.0.1:{endpoint.port}"


def test_port_that_speaks_no_tls_is_unverified(ctx: CheckContext, target: Targets) -> None:
    # Given a port that greets with an SSH banner instead of TLS
    server = start_server("attack-banner", None, behaviour="banner")
    try:
        tgt = target(endpoint_of(server, attack_probes=True))
        [finding] = CHECK.evaluate(CHECK.collect(ctx, tgt), tgt, ctx.policy)
    finally:
        server.stop()
    assert finding.status == Status.UNVERIFIED
    assert finding.unknown_reason == UnknownReason.NOT_SUPPORTED
