"""
The TLS endpoint checks end to end: collect against real loopback servers, then evaluate.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import pytest
from hipaacheck.checks.tls.endpoint import CertificateChain, ProtocolVersions

from hipaacheck.check import CheckContext, Policy
from hipaacheck.clients import Clients
from hipaacheck.model import Finding, Status, Target, UnknownReason


@pytest.fixture(scope="module")
def ctx() -> CheckContext:
    """One scan's context: its memo is shared by every test in this module."""
    return CheckContext(clients=Clients(timeout=5), policy=Policy(),
                        logger=logging.getLogger("test.tls"),
                        clock=lambda: datetime.now(UTC), timeout=5)


def run(check: ProtocolVersions | CertificateChain, ctx: CheckContext,
        target: Target) -> Finding:
    """Collect and evaluate one check against one target, as the runner does."""
    [finding] = check.evaluate(check.collect(ctx, target), target, ctx.policy)
    assert finding.target == target.id
    return finding


@pytest.mark.parametrize(("name", "protocols", "certificate"), [
    ("modern", Status.PASS, Status.PASS),
    ("tls12", Status.WARN, Status.PASS),
    ("legacy", Status.FAIL, Status.PASS),
    ("badcert", Status.PASS, Status.FAIL),
    ("expired", Status.PASS, Status.FAIL),
    ("expiring", Status.PASS, Status.WARN),
    ("plaintext", Status.FAIL, Status.FAIL),
])
def test_statuses_against_real_servers(ctx: CheckContext, tls_targets: dict[str, Target],
                                       name: str, protocols: Status,
                                       certificate: Status) -> None:
    # Given a loopback server staged for one case, when both checks run against it
    target = tls_targets[name]
    # Then each check reaches the status that case calls for
    assert run(ProtocolVersions(), ctx, target).status == protocols
    assert run(CertificateChain(), ctx, target).status == certificate


def test_legacy_server_evidence_names_the_legacy_versions(
        ctx: CheckContext, tls_targets: dict[str, Target]) -> None:
    finding = run(ProtocolVersions(), ctx, tls_targets["legacy"])
    assert finding.evidence["legacy_versions"] == ("TLS 1.0", "TLS 1.1")
    assert finding.evidence["accepted_versions"] == ("TLS 1.0", "TLS 1.1", "TLS 1.2", "TLS 1.3")


def test_badcert_is_judged_by_the_configured_bundle(
        ctx: CheckContext, tls_targets: dict[str, Target]) -> None:
    finding = run(CertificateChain(), ctx, tls_targets["badcert"])
    assert finding.evidence["store"] == "configured CA bundle"
    assert finding.evidence["validation_error"] == "untrusted_issuer"


def test_expired_evidence_counts_negative_days(
        ctx: CheckContext, tls_targets: dict[str, Target]) -> None:
    finding = run(CertificateChain(), ctx, tls_targets["expired"])
    assert isinstance(finding.evidence["days_to_expiry"], int)
    assert finding.evidence["days_to_expiry"] < 0


def test_closed_port_is_unverified_for_both_checks(
        ctx: CheckContext, tls_targets: dict[str, Target]) -> None:
    for check in (ProtocolVersions(), CertificateChain()):
        finding = run(check, ctx, tls_targets["closed"])
        assert finding.status == Status.UNVERIFIED
        assert finding.unknown_reason == UnknownReason.UNREACHABLE
        assert finding.needs is not None and "reachability" in finding.needs


def test_both_checks_share_one_probe(ctx: CheckContext, tls_targets: dict[str, Target]) -> None:
    target = tls_targets["modern"]
    first = ProtocolVersions().collect(ctx, target)
    second = CertificateChain().collect(ctx, target)
    assert first is second
