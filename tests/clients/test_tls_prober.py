"""
The TLS prober against real loopback servers: the pre-probe's classification, what the
handshakes observe, how few connections they take, and how a hung port is bounded.
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from hipaacheck.clients.tls import (
    CertificateObservation,
    ServiceKind,
    SuiteClass,
    TlsObservation,
    TlsVersion,
    ca_bundle_problem,
    hostname_matches,
    probe_endpoint,
)
from hipaacheck.config import TlsEndpointConfig
from hipaacheck.lab.certs import LabCertificates, mint_lab_certificates
from hipaacheck.lab.tls import RunningServer, start_server, start_tls_server
from hipaacheck.lab.tls_matrix import free_port
from hipaacheck.model import Unknown, UnknownReason

TIMEOUT = 2.0


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> LabCertificates:
    return mint_lab_certificates(tmp_path_factory.mktemp("prober-certs"))


@pytest.fixture(scope="module")
def servers(certs: LabCertificates) -> Iterator[dict[str, RunningServer]]:
    started = {
        "modern": start_tls_server("modern", certs.good),
        "legacy": start_tls_server("legacy", certs.good, "legacy"),
        "wrong_host": start_tls_server("wrong_host", certs.wrong_host),
        "self_signed": start_tls_server("self_signed", certs.self_signed),
        "plaintext": start_server("plaintext", None),
        "banner": start_server("banner", None, behaviour="banner"),
        "closing": start_server("closing", None, behaviour="close"),
        "hanging": start_server("hanging", None, behaviour="hang"),
    }
    yield started
    for server in started.values():
        server.stop()


def endpoint(port: int, ca_bundle: Path | None = None, **extra: object) -> TlsEndpointConfig:
    return TlsEndpointConfig(name="probe", host="127.0.0.1", port=port, zone="internal",
                             ca_bundle=ca_bundle, **extra)  # type: ignore[arg-type]


def only_certificate(fact: object) -> CertificateObservation:
    assert isinstance(fact, tuple) and len(fact) == 1
    assert isinstance(fact[0], CertificateObservation)
    return fact[0]


def every_fact(obs: TlsObservation) -> list[object]:
    return [obs.service, *obs.protocols.values(), obs.plaintext, *obs.suite_classes.values(),
            obs.dh_group_bits, obs.tls12_aead, obs.certificates]


def test_modern_server_against_the_configured_bundle(
        servers: dict[str, RunningServer], certs: LabCertificates) -> None:
    stamp = datetime.now(UTC) + timedelta(hours=1)
    obs = probe_endpoint(endpoint(servers["modern"].port, certs.ca_bundle), timeout=TIMEOUT,
                         clock=lambda: stamp)
    assert obs.service == ServiceKind.TLS and obs.plaintext is False
    assert obs.accepted_versions() == (TlsVersion.TLS_1_2, TlsVersion.TLS_1_3)
    assert all(obs.protocols[v] is False for v in TlsVersion
               if v not in (TlsVersion.TLS_1_2, TlsVersion.TLS_1_3))
    assert obs.suite_classes == {c: False for c in SuiteClass}
    assert obs.dh_group_bits is None and obs.tls12_aead is True
    assert obs.cipher_suites[TlsVersion.TLS_1_3]
    assert obs.observed_at == stamp
    leaf = only_certificate(obs.certificates)
    assert leaf.store == "configured CA bundle"
    assert leaf.verified and leaf.hostname_matches and leaf.validation_error is None
    assert leaf.not_after == certs.good.not_after
    assert leaf.issuer_cn == "hipaacheck lab intermediate CA"
    assert leaf.chain_length == 2 and leaf.has_san and leaf.server_auth_eku is True
    assert [(c.key_type, c.key_bits, c.signature_hash) for c in leaf.chain] == [
        ("EC", 256, "sha256"), ("EC", 256, "sha256")]


def test_modern_server_takes_few_connections(servers: dict[str, RunningServer],
                                             certs: LabCertificates) -> None:
    server = servers["modern"]
    before = server.connections
    obs = probe_endpoint(endpoint(server.port, certs.ca_bundle), timeout=TIMEOUT)
    assert obs.connections <= 10
    assert server.connections - before == obs.connections


def test_chains_are_validated_at_the_probe_clock(servers: dict[str, RunningServer],
                                                 certs: LabCertificates) -> None:
    later = datetime.now(UTC) + timedelta(days=400)
    obs = probe_endpoint(endpoint(servers["modern"].port, certs.ca_bundle), timeout=TIMEOUT,
                         clock=lambda: later)
    leaf = only_certificate(obs.certificates)
    assert not leaf.verified and leaf.validation_error == "outside_validity_period"


def test_without_a_bundle_the_mozilla_store_judges(servers: dict[str, RunningServer]) -> None:
    obs = probe_endpoint(endpoint(servers["modern"].port), timeout=TIMEOUT)
    leaf = only_certificate(obs.certificates)
    assert leaf.store == "Mozilla"
    assert not leaf.verified and not leaf.public_ca
    assert leaf.validation_error == "untrusted_issuer"


def test_dns_server_name_is_sent_and_matched(
        servers: dict[str, RunningServer], certs: LabCertificates) -> None:
    config = endpoint(servers["modern"].port, certs.ca_bundle, server_name="localhost")
    obs = probe_endpoint(config, timeout=TIMEOUT)
    assert obs.server_name == "localhost"
    leaf = only_certificate(obs.certificates)
    assert leaf.verified and leaf.hostname_matches


def test_legacy_server_accepts_tls10_and_tls11(
        servers: dict[str, RunningServer], certs: LabCertificates) -> None:
    obs = probe_endpoint(endpoint(servers["legacy"].port, certs.ca_bundle), timeout=TIMEOUT)
    assert obs.accepted_versions() == (TlsVersion.TLS_1_0, TlsVersion.TLS_1_1,
                                       TlsVersion.TLS_1_2, TlsVersion.TLS_1_3)
    assert obs.protocols[TlsVersion.SSL_2_0] is False
    assert obs.protocols[TlsVersion.SSL_3_0] is False
    assert obs.cipher_suites[TlsVersion.TLS_1_0]
    assert obs.connections <= 12


def test_wrong_host_certificate(servers: dict[str, RunningServer],
                                certs: LabCertificates) -> None:
    obs = probe_endpoint(endpoint(servers["wrong_host"].port, certs.ca_bundle), timeout=TIMEOUT)
    leaf = only_certificate(obs.certificates)
    assert not leaf.hostname_matches and not leaf.verified
    assert leaf.validation_error == "hostname_mismatch"


def test_self_signed_certificate(servers: dict[str, RunningServer],
                                 certs: LabCertificates) -> None:
    obs = probe_endpoint(endpoint(servers["self_signed"].port, certs.ca_bundle),
                         timeout=TIMEOUT)
    leaf = only_certificate(obs.certificates)
    assert not leaf.verified
    assert leaf.validation_error == "self_signed"
    assert leaf.chain_length == 1 and leaf.chain[0].self_signed


def test_http_listener_is_recognised_after_one_connection(
        servers: dict[str, RunningServer], certs: LabCertificates) -> None:
    # The lab's HTTP server waits for the end of a request, as real ones do: the pre-probe
    # nudges it after a second of silence
    obs = probe_endpoint(endpoint(servers["plaintext"].port, certs.ca_bundle), timeout=TIMEOUT)
    assert obs.service == ServiceKind.PLAINTEXT_HTTP and obs.plaintext is True
    assert obs.accepted_versions() == ()
    assert isinstance(obs.certificates, Unknown)
    assert obs.certificates.reason == UnknownReason.NOT_SUPPORTED
    assert obs.connections == 1


def test_a_banner_is_plaintext(servers: dict[str, RunningServer]) -> None:
    obs = probe_endpoint(endpoint(servers["banner"].port), timeout=TIMEOUT)
    assert obs.service == ServiceKind.PLAINTEXT_OTHER and obs.plaintext is True
    assert obs.connections == 1


def test_a_port_that_closes_at_once_is_not_visible(servers: dict[str, RunningServer]) -> None:
    obs = probe_endpoint(endpoint(servers["closing"].port), timeout=TIMEOUT)
    facts = every_fact(obs)
    assert all(isinstance(f, Unknown) and f.reason == UnknownReason.NOT_VISIBLE for f in facts)
    assert obs.connections == 2 + len(TlsVersion)  # TLS 1.2 is offered by both builds


def test_closed_port_makes_every_fact_unreachable() -> None:
    port = free_port()
    obs = probe_endpoint(endpoint(port), timeout=TIMEOUT)
    for fact in every_fact(obs):
        assert isinstance(fact, Unknown)
        assert fact.reason == UnknownReason.UNREACHABLE
        assert fact.needs == f"network reachability to 127.0.0.1:{port}"
    assert obs.connections == 1


def test_a_hung_port_costs_one_timeout_and_one_connection(
        servers: dict[str, RunningServer]) -> None:
    started = time.monotonic()
    obs = probe_endpoint(endpoint(servers["hanging"].port), timeout=1.0)
    elapsed = time.monotonic() - started
    assert 0.9 <= elapsed < 1.5
    assert obs.connections == 1
    for fact in every_fact(obs):
        assert isinstance(fact, Unknown) and fact.reason == UnknownReason.TIMEOUT
    assert isinstance(obs.service, Unknown)
    assert "never answered" in obs.service.detail


def test_the_deadline_bounds_the_whole_probe(servers: dict[str, RunningServer]) -> None:
    obs = probe_endpoint(endpoint(servers["modern"].port), timeout=TIMEOUT, deadline=1e-9)
    assert obs.connections == 0
    assert all(isinstance(f, Unknown) and f.reason == UnknownReason.TIMEOUT
               for f in every_fact(obs))


def test_unreadable_bundle_leaves_protocols_known(servers: dict[str, RunningServer],
                                                  tmp_path: Path) -> None:
    missing = tmp_path / "no-such-bundle.pem"
    obs = probe_endpoint(endpoint(servers["modern"].port, missing), timeout=TIMEOUT)
    assert obs.accepted_versions() == (TlsVersion.TLS_1_2, TlsVersion.TLS_1_3)
    assert isinstance(obs.certificates, Unknown)
    assert obs.certificates.reason == UnknownReason.NOT_VISIBLE
    assert obs.certificates.needs == f"read access to {missing}"


def test_bundle_without_certificates_is_unparseable(tmp_path: Path) -> None:
    bundle = tmp_path / "garbage.pem"
    bundle.write_text("not a certificate\n")
    problem = ca_bundle_problem(bundle)
    assert problem is not None and problem.reason == UnknownReason.UNPARSEABLE


def test_lab_bundle_is_usable(certs: LabCertificates) -> None:
    assert ca_bundle_problem(certs.ca_bundle) is None


def _leaf_with(names: list[x509.GeneralName] | None) -> x509.Certificate:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "portal.example.test")])
    now = datetime.now(UTC)
    builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now).not_valid_after(now + timedelta(days=1)))
    if names is not None:
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    return builder.sign(key, hashes.SHA256())


@pytest.mark.parametrize(("server_name", "expected"), [
    ("api.example.test", True),
    ("API.Example.Test.", True),
    ("example.test", False),
    ("a.b.example.test", False),
    ("portal.example.test", True),
    ("10.1.2.3", True),
    ("10.1.2.4", False),
    ("other.test", False),
])
def test_hostname_matching(server_name: str, expected: bool) -> None:
    leaf = _leaf_with([x509.DNSName("*.example.test"), x509.DNSName("portal.example.test"),
                       x509.IPAddress(ipaddress.ip_address("10.1.2.3"))])
    assert hostname_matches(leaf, server_name) is expected


def test_common_name_alone_matches_nothing() -> None:
    assert hostname_matches(_leaf_with(None), "portal.example.test") is False
