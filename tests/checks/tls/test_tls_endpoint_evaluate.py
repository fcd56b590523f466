"""
The pure evaluate step of the protocol and certificate-chain checks, on hand-built observations
(the `built` fixture's builders: sound unless a test breaks one thing).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from hipaacheck.check import Policy
from hipaacheck.checks.tls.endpoint import CertificateChain, ProtocolVersions
from hipaacheck.clients.tls import ServiceKind, TlsObservation, TlsVersion
from hipaacheck.model import Finding, Status, Target, TargetKind, Unknown, UnknownReason

TARGET = Target(TargetKind.TLS_ENDPOINT, "tls:portal", "portal")
UNREACHABLE = Unknown(UnknownReason.UNREACHABLE, "could not connect to 10.0.0.5:443",
                      needs="network reachability to 10.0.0.5:443")


def protocol_finding(obs: TlsObservation) -> Finding:
    """The single finding of the protocol check."""
    [finding] = ProtocolVersions().evaluate(obs, TARGET, Policy())
    assert finding.check_id == "tls.endpoint.protocols"
    return finding


def certificate_finding(obs: TlsObservation, policy: Policy | None = None) -> Finding:
    """The single finding of the certificate check."""
    [finding] = CertificateChain().evaluate(obs, TARGET, policy or Policy())
    assert finding.check_id == "tls.endpoint.certificate"
    return finding


# Protocol versions


def test_tls12_and_tls13_pass(built: Any) -> None:
    finding = protocol_finding(built.observation())
    assert finding.status == Status.PASS
    assert finding.evidence["accepted_versions"] == ("TLS 1.2", "TLS 1.3")
    assert finding.evidence["lowest_version"] == "TLS 1.2"


def test_tls13_only_passes(built: Any) -> None:
    finding = protocol_finding(built.observation(protocols=built.protocols(TlsVersion.TLS_1_3)))
    assert finding.status == Status.PASS


def test_tls12_without_tls13_warns(built: Any) -> None:
    finding = protocol_finding(built.observation(protocols=built.protocols(TlsVersion.TLS_1_2)))
    assert finding.status == Status.WARN
    assert finding.evidence["highest_version"] == "TLS 1.2"


@pytest.mark.parametrize("legacy", [TlsVersion.SSL_2_0, TlsVersion.SSL_3_0, TlsVersion.TLS_1_0,
                                    TlsVersion.TLS_1_1])
def test_any_legacy_version_fails(legacy: TlsVersion, built: Any) -> None:
    obs = built.observation(
        protocols=built.protocols(legacy, TlsVersion.TLS_1_2, TlsVersion.TLS_1_3))
    finding = protocol_finding(obs)
    assert finding.status == Status.FAIL
    assert finding.evidence["legacy_versions"] == (legacy.value,)


def test_legacy_fails_even_when_another_version_is_unknown(built: Any) -> None:
    obs = built.observation(protocols=built.protocols(TlsVersion.TLS_1_0, TlsVersion.TLS_1_2,
                                                      SSL_2_0=UNREACHABLE))
    finding = protocol_finding(obs)
    assert finding.status == Status.FAIL
    assert finding.evidence["unknown_versions"] == ("SSL 2.0",)


@pytest.mark.parametrize("service", [ServiceKind.PLAINTEXT_HTTP, ServiceKind.PLAINTEXT_OTHER,
                                     ServiceKind.POSTGRES_NO_TLS, ServiceKind.STARTTLS_REFUSED])
def test_plaintext_listener_fails(service: ServiceKind, built: Any) -> None:
    finding = protocol_finding(built.plaintext(service))
    assert finding.status == Status.FAIL
    assert finding.evidence["plaintext"] is True
    assert finding.evidence["service"] == service.value


def test_no_version_accepted_fails(built: Any) -> None:
    assert protocol_finding(built.observation(protocols=built.protocols())).status == Status.FAIL


def test_unreachable_endpoint_is_unverified(built: Any) -> None:
    finding = protocol_finding(built.unreachable(UNREACHABLE))
    assert finding.status == Status.UNVERIFIED
    assert finding.unknown_reason == UnknownReason.UNREACHABLE
    assert finding.needs == "network reachability to 10.0.0.5:443"


@pytest.mark.parametrize("version", list(TlsVersion))
def test_each_unknown_version_is_unverified(version: TlsVersion, built: Any) -> None:
    accepted = [v for v in (TlsVersion.TLS_1_2, TlsVersion.TLS_1_3) if v != version]
    timeout = Unknown(UnknownReason.TIMEOUT, f"{version.value} support: timed out")
    obs = built.observation(protocols=built.protocols(*accepted, **{version.name: timeout}))
    finding = protocol_finding(obs)
    assert finding.status == Status.UNVERIFIED
    assert finding.unknown_reason == UnknownReason.TIMEOUT
    assert finding.evidence["unknown_versions"] == (version.value,)


def test_a_version_missing_from_the_observation_is_unverified(built: Any) -> None:
    facts = built.protocols(TlsVersion.TLS_1_2, TlsVersion.TLS_1_3)
    del facts[TlsVersion.SSL_3_0]
    finding = protocol_finding(built.observation(protocols=facts))
    assert finding.status == Status.UNVERIFIED
    assert finding.unknown_reason == UnknownReason.NOT_VISIBLE


def test_client_certificate_request_is_evidence_not_a_verdict(built: Any) -> None:
    finding = protocol_finding(built.observation(client_certificate_requested=True))
    assert finding.status == Status.PASS
    assert finding.evidence["client_certificate_requested"] is True


def test_connections_are_evidence(built: Any) -> None:
    assert protocol_finding(built.observation()).evidence["connections"] == 9


def test_client_certificate_requirement_names_what_is_needed(built: Any) -> None:
    denied = Unknown(UnknownReason.ACCESS_DENIED, "the server requires a client certificate",
                     needs="a client certificate accepted by the endpoint")
    obs = built.observation(protocols=built.protocols(TLS_1_2=denied, TLS_1_3=denied))
    finding = protocol_finding(obs)
    assert finding.status == Status.UNVERIFIED
    assert finding.unknown_reason == UnknownReason.ACCESS_DENIED
    assert finding.needs == "a client certificate accepted by the endpoint"


# Certificate chain


def test_valid_chain_passes(built: Any) -> None:
    finding = certificate_finding(built.observation())
    assert finding.status == Status.PASS
    assert finding.evidence["store"] == "configured CA bundle"
    assert finding.evidence["days_to_expiry"] == 200
    assert finding.evidence["issuer_cn"] == "Internal Issuing CA"


def test_untrusted_chain_fails(built: Any) -> None:
    bad = built.cert(verified=False, validation_error="untrusted_issuer")
    obs = built.observation(certificates=(bad,))
    finding = certificate_finding(obs)
    assert finding.status == Status.FAIL
    assert finding.evidence["validation_error"] == "untrusted_issuer"


def test_hostname_mismatch_fails(built: Any) -> None:
    leaf = built.cert(hostname_matches=False, verified=False,
                      validation_error="hostname_mismatch")
    obs = built.observation(certificates=(leaf,))
    finding = certificate_finding(obs)
    assert finding.status == Status.FAIL
    assert finding.evidence["hostname_matches"] is False


def test_hostname_mismatch_fails_even_if_a_store_accepted_it(built: Any) -> None:
    obs = built.observation(certificates=(built.cert(hostname_matches=False),))
    finding = certificate_finding(obs)
    assert finding.status == Status.FAIL


def test_expired_certificate_fails(built: Any) -> None:
    expired = built.now - timedelta(days=3)
    obs = built.observation(certificates=(built.cert(
        not_after=expired, verified=False, validation_error="outside_validity_period"),))
    finding = certificate_finding(obs)
    assert finding.status == Status.FAIL
    assert finding.evidence["days_to_expiry"] == -3


def test_certificate_not_yet_valid_fails(built: Any) -> None:
    tomorrow = built.now + timedelta(days=1)
    obs = built.observation(certificates=(built.cert(not_before=tomorrow),))
    assert certificate_finding(obs).status == Status.FAIL


def test_certificate_expiring_within_the_policy_window_warns(built: Any) -> None:
    soon = built.now + timedelta(days=10, hours=1)
    obs = built.observation(certificates=(built.cert(not_after=soon),))
    finding = certificate_finding(obs, Policy(cert_expiry_warning_days=30))
    assert finding.status == Status.WARN
    assert finding.evidence["days_to_expiry"] == 10


def test_expiry_window_follows_the_policy(built: Any) -> None:
    soon = built.now + timedelta(days=10, hours=1)
    obs = built.observation(certificates=(built.cert(not_after=soon),))
    assert certificate_finding(obs, Policy(cert_expiry_warning_days=7)).status == Status.PASS


def test_worst_deployment_decides(built: Any) -> None:
    bad = built.cert(verified=False, validation_error="untrusted_issuer")
    finding = certificate_finding(built.observation(certificates=(built.cert(), bad)))
    assert finding.status == Status.FAIL
    assert finding.evidence["deployments"] == 2


def test_no_certificate_fails(built: Any) -> None:
    assert certificate_finding(built.observation(certificates=())).status == Status.FAIL


def test_plaintext_listener_fails_the_certificate_check(built: Any) -> None:
    assert certificate_finding(built.plaintext()).status == Status.FAIL


def test_a_leaf_without_subject_alt_name_fails(built: Any) -> None:
    leaf = built.cert(has_san=False, hostname_matches=False, verified=False,
                      validation_error="missing_subject_alt_name")
    finding = certificate_finding(built.observation(certificates=(leaf,)))
    assert finding.status == Status.FAIL
    assert finding.evidence["has_san"] is False


@pytest.mark.parametrize("reason", [UnknownReason.UNREACHABLE, UnknownReason.TIMEOUT,
                                    UnknownReason.UNPARSEABLE, UnknownReason.NOT_VISIBLE,
                                    UnknownReason.ACCESS_DENIED])
def test_unobserved_chain_is_unverified(reason: UnknownReason, built: Any) -> None:
    unknown = Unknown(reason, "certificate chain: could not look", needs="something")
    finding = certificate_finding(built.observation(certificates=unknown))
    assert finding.status == Status.UNVERIFIED
    assert finding.unknown_reason == reason
    assert finding.needs == "something"
