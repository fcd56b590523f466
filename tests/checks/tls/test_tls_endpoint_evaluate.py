"""
The pure evaluate step of the TLS endpoint checks, on hand-built observations.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from hipaacheck.checks.tls.endpoint import CertificateChain, ProtocolVersions

from hipaacheck.check import Policy
from hipaacheck.clients.tls import CertificateObservation, TlsObservation, TlsVersion
from hipaacheck.model import Fact, Finding, Status, Target, TargetKind, Unknown, UnknownReason

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
TARGET = Target(TargetKind.TLS_ENDPOINT, "tls:portal", "portal")
UNREACHABLE = Unknown(UnknownReason.UNREACHABLE, "could not connect to 10.0.0.5:443",
                      needs="network reachability to 10.0.0.5:443")


def protocols(*accepted: TlsVersion, **unknown: Unknown) -> dict[TlsVersion, Fact[bool]]:
    """Every version, True for `accepted`; keyword names (`TLS_1_0=...`) make one unknown."""
    facts: dict[TlsVersion, Fact[bool]] = {v: v in accepted for v in TlsVersion}
    for name, fact in unknown.items():
        facts[TlsVersion[name]] = fact
    return facts


def cert(**changes: object) -> CertificateObservation:
    """A sound certificate deployment, with `changes` applied."""
    base = CertificateObservation(
        store="configured CA bundle", verified=True, validation_error=None,
        hostname_matches=True, not_before=NOW - timedelta(days=30),
        not_after=NOW + timedelta(days=200), issuer_cn="Internal Issuing CA", chain_length=2)
    return replace(base, **changes)  # type: ignore[arg-type]


def observation(**changes: object) -> TlsObservation:
    """A sound observation (TLS 1.2 + 1.3, one good chain), with `changes` applied."""
    base = TlsObservation(
        endpoint="10.0.0.5:443", server_name="portal.internal", observed_at=NOW,
        protocols=protocols(TlsVersion.TLS_1_2, TlsVersion.TLS_1_3), cipher_suites={},
        plaintext=False, certificates=(cert(),))
    return replace(base, **changes)  # type: ignore[arg-type]


def protocol_finding(obs: TlsObservation) -> Finding:
    """The single finding of the protocol check."""
    [finding] = ProtocolVersions().evaluate(obs, TARGET, Policy())
    assert finding.check_id == "tls.endpoint.protocols"
    return finding


def certificate_finding(obs: TlsObservation, policy: Policy | None = None) -> Finding:
    """The single finding of the certificate check."""
    policy = policy or Policy()
    [finding] = CertificateChain().evaluate(obs, TARGET, policy)
    assert finding.check_id == "tls.endpoint.certificate"
    return finding


# Protocol versions


def test_tls12_and_tls13_pass() -> None:
    finding = protocol_finding(observation())
    assert finding.status == Status.PASS
    assert finding.evidence["accepted_versions"] == ("TLS 1.2", "TLS 1.3")
    assert finding.evidence["lowest_version"] == "TLS 1.2"


def test_tls13_only_passes() -> None:
    finding = protocol_finding(observation(protocols=protocols(TlsVersion.TLS_1_3)))
    assert finding.status == Status.PASS


def test_tls12_without_tls13_warns() -> None:
    finding = protocol_finding(observation(protocols=protocols(TlsVersion.TLS_1_2)))
    assert finding.status == Status.WARN
    assert finding.evidence["highest_version"] == "TLS 1.2"


@pytest.mark.parametrize("legacy", [TlsVersion.SSL_2_0, TlsVersion.SSL_3_0, TlsVersion.TLS_1_0,
                                    TlsVersion.TLS_1_1])
def test_any_legacy_version_fails(legacy: TlsVersion) -> None:
    obs = observation(protocols=protocols(legacy, TlsVersion.TLS_1_2, TlsVersion.TLS_1_3))
    finding = protocol_finding(obs)
    assert finding.status == Status.FAIL
    assert finding.evidence["legacy_versions"] == (legacy.value,)


def test_legacy_fails_even_when_another_version_is_unknown() -> None:
    obs = observation(protocols=protocols(TlsVersion.TLS_1_0, TlsVersion.TLS_1_2,
                                          SSL_2_0=UNREACHABLE))
    finding = protocol_finding(obs)
    assert finding.status == Status.FAIL
    assert finding.evidence["unknown_versions"] == ("SSL 2.0",)


def test_plaintext_listener_fails() -> None:
    obs = observation(protocols=protocols(), plaintext=True,
                      certificates=Unknown(UnknownReason.NOT_SUPPORTED, "plaintext"))
    finding = protocol_finding(obs)
    assert finding.status == Status.FAIL
    assert finding.evidence["plaintext"] is True


def test_no_version_accepted_fails() -> None:
    assert protocol_finding(observation(protocols=protocols())).status == Status.FAIL


def test_unreachable_endpoint_is_unverified() -> None:
    obs = observation(protocols={v: UNREACHABLE for v in TlsVersion}, plaintext=UNREACHABLE,
                      certificates=UNREACHABLE)
    finding = protocol_finding(obs)
    assert finding.status == Status.UNVERIFIED
    assert finding.unknown_reason == UnknownReason.UNREACHABLE
    assert finding.needs == "network reachability to 10.0.0.5:443"


@pytest.mark.parametrize("version", list(TlsVersion))
def test_each_unknown_version_is_unverified(version: TlsVersion) -> None:
    accepted = [v for v in (TlsVersion.TLS_1_2, TlsVersion.TLS_1_3) if v != version]
    timeout = Unknown(UnknownReason.TIMEOUT, f"{version.value} support: timed out")
    obs = observation(protocols=protocols(*accepted, **{version.name: timeout}))
    finding = protocol_finding(obs)
    assert finding.status == Status.UNVERIFIED
    assert finding.unknown_reason == UnknownReason.TIMEOUT
    assert finding.evidence["unknown_versions"] == (version.value,)


def test_a_version_missing_from_the_observation_is_unverified() -> None:
    facts = protocols(TlsVersion.TLS_1_2, TlsVersion.TLS_1_3)
    del facts[TlsVersion.SSL_3_0]
    finding = protocol_finding(observation(protocols=facts))
    assert finding.status == Status.UNVERIFIED
    assert finding.unknown_reason == UnknownReason.NOT_VISIBLE


def test_client_certificate_requirement_names_what_is_needed() -> None:
    denied = Unknown(UnknownReason.ACCESS_DENIED, "the server requires a client certificate",
                     needs="a client certificate accepted by the endpoint")
    finding = protocol_finding(observation(protocols=protocols(TLS_1_2=denied, TLS_1_3=denied)))
    assert finding.status == Status.UNVERIFIED
    assert finding.unknown_reason == UnknownReason.ACCESS_DENIED
    assert finding.needs == "a client certificate accepted by the endpoint"


# Certificate chain


def test_valid_chain_passes() -> None:
    finding = certificate_finding(observation())
    assert finding.status == Status.PASS
    assert finding.evidence["store"] == "configured CA bundle"
    assert finding.evidence["days_to_expiry"] == 200
    assert finding.evidence["issuer_cn"] == "Internal Issuing CA"


def test_untrusted_chain_fails() -> None:
    obs = observation(certificates=(cert(verified=False, validation_error="untrusted_issuer"),))
    finding = certificate_finding(obs)
    assert finding.status == Status.FAIL
    assert finding.evidence["validation_error"] == "untrusted_issuer"


def test_hostname_mismatch_fails() -> None:
    obs = observation(certificates=(cert(hostname_matches=False, verified=False,
                                         validation_error="hostname_mismatch"),))
    finding = certificate_finding(obs)
    assert finding.status == Status.FAIL
    assert finding.evidence["hostname_matches"] is False


def test_hostname_mismatch_fails_even_if_a_store_accepted_it() -> None:
    finding = certificate_finding(observation(certificates=(cert(hostname_matches=False),)))
    assert finding.status == Status.FAIL


def test_expired_certificate_fails() -> None:
    obs = observation(certificates=(cert(not_after=NOW - timedelta(days=3), verified=False,
                                         validation_error="outside_validity_period"),))
    finding = certificate_finding(obs)
    assert finding.status == Status.FAIL
    assert finding.evidence["days_to_expiry"] == -3


def test_certificate_not_yet_valid_fails() -> None:
    obs = observation(certificates=(cert(not_before=NOW + timedelta(days=1)),))
    assert certificate_finding(obs).status == Status.FAIL


def test_certificate_expiring_within_the_policy_window_warns() -> None:
    obs = observation(certificates=(cert(not_after=NOW + timedelta(days=10, hours=1)),))
    finding = certificate_finding(obs, Policy(cert_expiry_warning_days=30))
    assert finding.status == Status.WARN
    assert finding.evidence["days_to_expiry"] == 10


def test_expiry_window_follows_the_policy() -> None:
    obs = observation(certificates=(cert(not_after=NOW + timedelta(days=10, hours=1)),))
    assert certificate_finding(obs, Policy(cert_expiry_warning_days=7)).status == Status.PASS


def test_worst_deployment_decides() -> None:
    bad = cert(verified=False, validation_error="untrusted_issuer")
    finding = certificate_finding(observation(certificates=(cert(), bad)))
    assert finding.status == Status.FAIL
    assert finding.evidence["deployments"] == 2


def test_no_certificate_fails() -> None:
    assert certificate_finding(observation(certificates=())).status == Status.FAIL


def test_plaintext_listener_fails_the_certificate_check() -> None:
    obs = observation(protocols=protocols(), plaintext=True,
                      certificates=Unknown(UnknownReason.NOT_SUPPORTED, "plaintext"))
    assert certificate_finding(obs).status == Status.FAIL


@pytest.mark.parametrize("reason", [UnknownReason.UNREACHABLE, UnknownReason.TIMEOUT,
                                    UnknownReason.UNPARSEABLE, UnknownReason.NOT_VISIBLE,
                                    UnknownReason.ACCESS_DENIED])
def test_unobserved_chain_is_unverified(reason: UnknownReason) -> None:
    unknown = Unknown(reason, "certificate chain: could not look", needs="something")
    finding = certificate_finding(observation(certificates=unknown))
    assert finding.status == Status.UNVERIFIED
    assert finding.unknown_reason == reason
    assert finding.needs == "something"
