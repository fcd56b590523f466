"""
The case matrix end to end: every TLS endpoint check collects against real loopback servers
(and real PostgreSQL servers), then evaluates, and each case reaches its expected verdicts.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta

import pytest

from hipaacheck.check import Check, CheckContext, Policy
from hipaacheck.checks.tls.certificate import CertificateProfile, CertificateStrength
from hipaacheck.checks.tls.endpoint import CertificateChain, ProtocolVersions
from hipaacheck.checks.tls.suites import CipherSuites
from hipaacheck.clients import Clients
from hipaacheck.clients.tls import TlsObservation, probe_endpoint
from hipaacheck.config import TlsEndpointConfig
from hipaacheck.lab.certs import LabCertificates
from hipaacheck.lab.tls_matrix import CASE_NAMES, Matrix
from hipaacheck.model import Finding, Status, Target, UnknownReason
from hipaacheck.registry import Registry
from hipaacheck.runner import Runner, plan

TIMEOUT = 1.0
"""The probe timeout of the `ctx` fixture: what the hung port costs."""
P, F, W, U = Status.PASS, Status.FAIL, Status.WARN, Status.UNVERIFIED
CHECKS: tuple[Check[TlsObservation], ...] = (
    ProtocolVersions(), CipherSuites(), CertificateChain(), CertificateStrength(),
    CertificateProfile())

# protocols, cipher suites, certificate chain, certificate strength, certificate profile
EXPECTED: dict[str, tuple[Status, Status, Status, Status, Status]] = {
    "good": (P, P, P, P, P),
    "expired": (P, P, F, P, P),
    "not_yet_valid": (P, P, F, P, P),
    "self_signed": (P, P, F, P, P),
    "wrong_host": (P, P, F, P, P),
    "untrusted_root": (P, P, F, P, P),
    "incomplete_chain": (P, P, F, P, P),
    "sha1_signed": (P, P, F, F, P),
    "rsa_1024": (P, P, P, F, P),
    "no_san": (P, P, F, P, P),
    "long_lifetime": (P, P, P, P, P),  # a private CA: the 398-day limit is the public CAs'
    "no_eku": (P, P, P, P, W),
    "client_eku": (P, P, F, P, F),
    "expiring": (P, P, W, P, P),
    "tls10_only": (F, P, P, P, P),
    "tls11_only": (F, P, P, P, P),
    "tls12_only": (W, P, P, P, P),
    "legacy": (F, P, P, P, P),
    "static_rsa_only": (W, W, P, P, P),
    "null_ciphers": (W, F, P, P, P),
    "anonymous_suites": (P, F, P, P, P),
    "weak_dh": (P, F, P, P, P),
    "cbc_only": (P, W, P, P, P),
    "client_cert_required": (P, P, P, P, P),
    "plaintext_http": (F, F, F, F, F),
    "ssh_banner": (F, F, F, F, F),
    "closes_at_once": (U, U, U, U, U),
    "closed_port": (U, U, U, U, U),
    "hanging_port": (U, U, U, U, U),
    "postgres_ssl_off": (F, F, F, F, F),
    "postgres_ssl_on": (P, P, F, P, W),  # self-signed, no AKI, no EKU, 30-day lifetime
}
UNKNOWN_REASONS = {"closes_at_once": UnknownReason.NOT_VISIBLE,
                   "closed_port": UnknownReason.UNREACHABLE,
                   "hanging_port": UnknownReason.TIMEOUT}
POSTGRES = ("postgres_ssl_off", "postgres_ssl_on")
Targets = Callable[[TlsEndpointConfig], Target]


def run_all(ctx: CheckContext, tgt: Target) -> list[Finding]:
    """Collect and evaluate every TLS check against one target, as the runner does."""
    findings = []
    for check in CHECKS:
        [finding] = check.evaluate(check.collect(ctx, tgt), tgt, ctx.policy)
        assert finding.check_id == check.meta.id and finding.target == tgt.id
        findings.append(finding)
    return findings


def statuses(findings: Sequence[Finding]) -> tuple[Status, ...]:
    return tuple(f.status for f in findings)


def test_the_matrix_covers_every_case() -> None:
    assert set(EXPECTED) == set(CASE_NAMES)


def test_every_check_has_complete_metadata() -> None:
    registry = Registry.from_checks(CHECKS)  # type: ignore[arg-type]
    assert registry.ids == ("tls.endpoint.certificate", "tls.endpoint.certificate_profile",
                            "tls.endpoint.certificate_strength", "tls.endpoint.cipher_suites",
                            "tls.endpoint.protocols")
    assert all(type(c)().meta == c.meta for c in CHECKS)


@pytest.mark.parametrize("name", [n for n in EXPECTED if n not in POSTGRES])
def test_verdicts_against_real_servers(ctx: CheckContext, tls_matrix: Matrix,
                                       name: str, target: Targets) -> None:
    # Given a loopback server staged for one case, when every TLS check runs against it
    findings = run_all(ctx, target(tls_matrix.endpoints[name]))
    # Then each check reaches the verdict that case calls for
    assert statuses(findings) == EXPECTED[name]
    if name in UNKNOWN_REASONS:
        assert {f.unknown_reason for f in findings} == {UNKNOWN_REASONS[name]}
    # And the one probe they share took few connections (as the server counted too)
    obs = CHECKS[0].collect(ctx, target(tls_matrix.endpoints[name]))
    assert 1 <= obs.connections <= 15
    server = tls_matrix.servers.get(name)
    if server is not None:
        assert server.connections >= obs.connections


def test_real_postgres_without_and_with_tls(ctx: CheckContext, pg_matrix: Matrix,
                                            target: Targets) -> None:
    # One test for both servers, so that one worker alone starts them
    # Given real PostgreSQL servers probed through STARTTLS (SSLRequest first)
    off, on = (target(pg_matrix.endpoints[name]) for name in POSTGRES)
    off_findings, on_findings = run_all(ctx, off), run_all(ctx, on)
    # Then each reaches its verdicts
    assert statuses(off_findings) == EXPECTED["postgres_ssl_off"]
    assert statuses(on_findings) == EXPECTED["postgres_ssl_on"]
    # And the one without TLS is named as such, after a single connection
    assert off_findings[0].evidence["service"] == "postgres_no_tls"
    assert ProtocolVersions().collect(ctx, off).connections == 1
    # And the one with TLS accepts only modern versions, over a self-signed certificate
    assert on_findings[0].evidence["accepted_versions"] == ("TLS 1.2", "TLS 1.3")
    assert on_findings[2].evidence["validation_error"] == "self_signed"
    assert 1 < ProtocolVersions().collect(ctx, on).connections <= 15


@pytest.mark.parametrize(("name", "kind"), [
    ("expired", "outside_validity_period"), ("not_yet_valid", "outside_validity_period"),
    ("self_signed", "self_signed"), ("wrong_host", "hostname_mismatch"),
    ("untrusted_root", "untrusted_issuer"), ("incomplete_chain", "incomplete_chain"),
    ("sha1_signed", "weak_signature"), ("no_san", "missing_subject_alt_name"),
])
def test_chain_failures_name_their_kind(ctx: CheckContext, tls_matrix: Matrix, name: str,
                                        kind: str, target: Targets) -> None:
    tgt = target(tls_matrix.endpoints[name])
    [finding] = CertificateChain().evaluate(CertificateChain().collect(ctx, tgt), tgt, Policy())
    assert finding.evidence["validation_error"] == kind
    assert finding.evidence["store"] == "configured CA bundle"


@pytest.mark.parametrize(("name", "weak"), [
    ("null_ciphers", ("NULL", "anonymous")), ("anonymous_suites", ("anonymous",)),
])
def test_weak_classes_are_named(ctx: CheckContext, tls_matrix: Matrix, name: str,
                                weak: tuple[str, ...], target: Targets) -> None:
    tgt = target(tls_matrix.endpoints[name])
    [finding] = CipherSuites().evaluate(CipherSuites().collect(ctx, tgt), tgt, Policy())
    assert finding.evidence["weak_classes"] == weak


def test_weak_dh_reports_the_group_size(ctx: CheckContext, tls_matrix: Matrix,
                                        target: Targets) -> None:
    tgt = target(tls_matrix.endpoints["weak_dh"])
    [finding] = CipherSuites().evaluate(CipherSuites().collect(ctx, tgt), tgt, Policy())
    assert finding.evidence["dh_group_bits"] == 1024


def test_strength_names_the_weak_key(ctx: CheckContext, tls_matrix: Matrix,
                                     target: Targets) -> None:
    tgt = target(tls_matrix.endpoints["rsa_1024"])
    check = CertificateStrength()
    [finding] = check.evaluate(check.collect(ctx, tgt), tgt, Policy())
    assert finding.evidence["leaf_key"] == "RSA-1024"


def test_client_certificate_request_is_evidence(ctx: CheckContext, tls_matrix: Matrix,
                                                target: Targets) -> None:
    tgt = target(tls_matrix.endpoints["client_cert_required"])
    [finding] = ProtocolVersions().evaluate(ProtocolVersions().collect(ctx, tgt), tgt, Policy())
    assert finding.evidence["client_certificate_requested"] is True


def test_every_check_shares_one_probe(ctx: CheckContext, tls_matrix: Matrix,
                                      target: Targets) -> None:
    tgt = target(tls_matrix.endpoints["good"])
    first, *others = [check.collect(ctx, tgt) for check in CHECKS]
    assert all(other is first for other in others)


def test_long_lifetime_from_a_public_ca_warns(tls_matrix: Matrix,
                                              tls_certs: LabCertificates, target: Targets) -> None:
    # Given the lab root standing in for the public store, and no CA bundle configured
    endpoint = tls_matrix.endpoints["long_lifetime"].model_copy(update={"ca_bundle": None})
    obs = probe_endpoint(endpoint, timeout=TIMEOUT, public_roots=tls_certs.ca_bundle)
    tgt = target(endpoint)
    # Then the chain verifies against that "public" store, and the lifetime warns
    [chain] = CertificateChain().evaluate(obs, tgt, Policy())
    [profile] = CertificateProfile().evaluate(obs, tgt, Policy())
    assert chain.status == P and chain.evidence["store"] == "Mozilla"
    assert profile.status == W and profile.evidence["public_ca"] is True
    assert profile.evidence["lifetime_days"] == 800


def test_expiry_is_judged_at_the_scan_clock(tls_matrix: Matrix, target: Targets) -> None:
    # Given a clock 400 days ahead, when the good endpoint is probed
    later = datetime.now(UTC) + timedelta(days=400)
    ctx = CheckContext(clients=Clients(timeout=TIMEOUT), policy=Policy(),
                       logger=__import__("logging").getLogger("test"), clock=lambda: later,
                       timeout=TIMEOUT)
    tgt = target(tls_matrix.endpoints["good"])
    [finding] = CertificateChain().evaluate(CertificateChain().collect(ctx, tgt), tgt, ctx.policy)
    # Then the certificate has expired by then
    assert finding.status == F
    assert isinstance(finding.evidence["days_to_expiry"], int)
    assert finding.evidence["days_to_expiry"] < 0


class _Recorder:
    """A scan observer that notes when each task finished."""

    def __init__(self) -> None:
        self.done: dict[str, float] = {}

    def on_start(self, total: int) -> None:
        self.started = time.monotonic()

    def on_task_done(self, check_id: str, target_id: str, findings: Sequence[Finding]) -> None:
        self.done[target_id] = time.monotonic() - self.started


def test_a_hung_endpoint_holds_back_no_other(ctx: CheckContext, tls_matrix: Matrix,
                                             target: Targets) -> None:
    # Given a scan of a hung port and three sound ones, on two workers, with a fresh memo
    names = ["hanging_port", "good", "legacy", "tls12_only"]
    targets = [target(tls_matrix.endpoints[n]) for n in names]
    fresh = CheckContext(clients=ctx.clients, policy=Policy(), logger=ctx.logger,
                         clock=ctx.clock, timeout=TIMEOUT)
    recorder = _Recorder()
    tasks = plan(Registry.from_checks([ProtocolVersions()]), targets)
    results, interrupted = Runner(fresh, workers=2, deadline=30,
                                  observer=recorder).run(tasks)
    # Then the sound endpoints finish while the hung one still waits for its answer
    assert not interrupted
    hung = recorder.done["tls:hanging_port"]
    assert all(recorder.done[t.id] < hung for t in targets[1:])
    # And the hung one costs about one probe timeout, no more
    assert TIMEOUT * 0.9 <= hung < TIMEOUT + 1.0
    [finding] = results[("tls.endpoint.protocols", "tls:hanging_port")]
    assert finding.status == U and finding.unknown_reason == UnknownReason.TIMEOUT
