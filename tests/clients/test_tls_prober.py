"""
The TLS prober against real loopback servers: what it observes and what it never schedules.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from hipaacheck.clients.tls import (
    ALLOWED_SCAN_COMMANDS,
    ATTACK_SCAN_COMMANDS,
    CertificateObservation,
    TlsVersion,
    ca_bundle_problem,
    hostname_matches,
    probe_endpoint,
    scan_request,
    sniff_plaintext,
)
from hipaacheck.config import TlsEndpointConfig
from hipaacheck.lab.certs import LabCertificates, mint_lab_certificates
from hipaacheck.lab.tls import RunningServer, start_server, start_tls_server
from hipaacheck.model import Unknown, UnknownReason

TIMEOUT = 5.0


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
    }
    yield started
    for server in started.values():
        server.stop()


@pytest.fixture(scope="module")
def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def endpoint(port: int, ca_bundle: Path | None = None, **extra: object) -> TlsEndpointConfig:
    return TlsEndpointConfig(name="probe", host="127.0.0.1", port=port, zone="internal",
                             ca_bundle=ca_bundle, **extra)  # type: ignore[arg-type]


def only_certificate(fact: object) -> CertificateObservation:
    assert isinstance(fact, tuple) and len(fact) == 1
    assert isinstance(fact[0], CertificateObservation)
    return fact[0]


def test_modern_server_against_the_configured_bundle(
        servers: dict[str, RunningServer], certs: LabCertificates) -> None:
    stamp = datetime(2026, 1, 2, tzinfo=UTC)
    obs = probe_endpoint(endpoint(servers["modern"].port, certs.ca_bundle), timeout=TIMEOUT,
                         clock=lambda: stamp)
    assert obs.accepted_versions() == (TlsVersion.TLS_1_2, TlsVersion.TLS_1_3)
    assert all(obs.protocols[v] is False for v in TlsVersion
               if v not in (TlsVersion.TLS_1_2, TlsVersion.TLS_1_3))
    assert obs.cipher_suites[TlsVersion.TLS_1_3]
    assert obs.plaintext is False
    assert obs.observed_at == stamp
    leaf = only_certificate(obs.certificates)
    assert leaf.store == "configured CA bundle"
    assert leaf.verified and leaf.hostname_matches and leaf.validation_error is None
    assert leaf.not_after == certs.good.not_after
    assert leaf.issuer_cn == "hipaacheck lab intermediate CA"
    assert leaf.chain_length == 2


def test_without_a_bundle_the_mozilla_store_judges(
        servers: dict[str, RunningServer]) -> None:
    obs = probe_endpoint(endpoint(servers["modern"].port), timeout=TIMEOUT)
    leaf = only_certificate(obs.certificates)
    assert leaf.store == "Mozilla"
    assert not leaf.verified
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
    assert obs.protocols[TlsVersion.TLS_1_0] is True
    assert obs.protocols[TlsVersion.TLS_1_1] is True
    assert obs.protocols[TlsVersion.SSL_2_0] is False


def test_wrong_host_certificate(servers: dict[str, RunningServer],
                                certs: LabCertificates) -> None:
    obs = probe_endpoint(endpoint(servers["wrong_host"].port, certs.ca_bundle), timeout=TIMEOUT)
    leaf = only_certificate(obs.certificates)
    assert not leaf.hostname_matches
    assert not leaf.verified
    assert leaf.validation_error == "hostname_mismatch"


def test_self_signed_certificate(servers: dict[str, RunningServer],
                                 certs: LabCertificates) -> None:
    obs = probe_endpoint(endpoint(servers["self_signed"].port, certs.ca_bundle),
                         timeout=TIMEOUT)
    leaf = only_certificate(obs.certificates)
    assert not leaf.verified
    assert leaf.validation_error == "untrusted_issuer"
    assert leaf.chain_length == 1


def test_plaintext_listener_is_recognised(servers: dict[str, RunningServer],
                                          certs: LabCertificates) -> None:
    obs = probe_endpoint(endpoint(servers["plaintext"].port, certs.ca_bundle), timeout=TIMEOUT)
    assert obs.plaintext is True
    assert obs.accepted_versions() == ()
    assert isinstance(obs.certificates, Unknown)
    assert obs.certificates.reason == UnknownReason.NOT_SUPPORTED


def test_closed_port_makes_every_fact_unreachable(closed_port: int) -> None:
    obs = probe_endpoint(endpoint(closed_port), timeout=TIMEOUT)
    facts = [*obs.protocols.values(), obs.plaintext, obs.certificates]
    assert len(facts) == len(TlsVersion) + 2
    for fact in facts:
        assert isinstance(fact, Unknown)
        assert fact.reason == UnknownReason.UNREACHABLE
        assert fact.needs == f"network reachability to 127.0.0.1:{closed_port}"


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


@pytest.mark.parametrize("attack_probes", [False, True])
def test_scan_request_schedules_ordinary_handshakes_only(
        certs: LabCertificates, attack_probes: bool) -> None:
    config = endpoint(443, certs.ca_bundle, attack_probes=attack_probes)
    request = scan_request(config, timeout=2.5)
    assert request.scan_commands == set(ALLOWED_SCAN_COMMANDS)
    assert not request.scan_commands & ATTACK_SCAN_COMMANDS
    assert request.network_configuration.network_timeout == 3


def test_sniff_tells_plaintext_from_tls(servers: dict[str, RunningServer],
                                        closed_port: int) -> None:
    assert sniff_plaintext("127.0.0.1", servers["plaintext"].port, "127.0.0.1",
                           timeout=TIMEOUT) is True
    assert sniff_plaintext("127.0.0.1", servers["modern"].port, "localhost",
                           timeout=TIMEOUT) is False
    closed = sniff_plaintext("127.0.0.1", closed_port, "127.0.0.1", timeout=TIMEOUT)
    assert isinstance(closed, Unknown) and closed.reason == UnknownReason.UNREACHABLE


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
