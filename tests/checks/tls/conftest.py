"""
Shared fixtures for the TLS checks: lab certificates and loopback servers, started once per
module.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from hipaacheck.config import TlsEndpointConfig
from hipaacheck.lab.certs import LabCertificates, mint_lab_certificates
from hipaacheck.lab.tls import RunningServer, start_server, start_tls_server
from hipaacheck.model import Target, TargetKind


@pytest.fixture(scope="module")
def tls_certs(tmp_path_factory: pytest.TempPathFactory) -> LabCertificates:
    """The lab CA bundle and every certificate variant, minted for this module."""
    return mint_lab_certificates(tmp_path_factory.mktemp("tls-certs"))


@pytest.fixture(scope="module")
def tls_servers(tls_certs: LabCertificates) -> Iterator[dict[str, RunningServer]]:
    """One loopback server per case the checks must tell apart."""
    servers = {
        "modern": start_tls_server("modern", tls_certs.good),
        "tls12": start_tls_server("tls12", tls_certs.good, "tls12"),
        "legacy": start_tls_server("legacy", tls_certs.good, "legacy"),
        "badcert": start_tls_server("badcert", tls_certs.untrusted),
        "expired": start_tls_server("expired", tls_certs.expired),
        "expiring": start_tls_server("expiring", tls_certs.expiring),
        "plaintext": start_server("plaintext", None),
    }
    yield servers
    for server in servers.values():
        server.stop()


@pytest.fixture(scope="module")
def closed_port() -> int:
    """A loopback port that nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _target(name: str, port: int, ca_bundle: Path | None) -> Target:
    config = TlsEndpointConfig(name=name, host="127.0.0.1", port=port, zone="internal",
                               ca_bundle=ca_bundle)
    return Target(TargetKind.TLS_ENDPOINT, f"tls:{name}", name, config)


@pytest.fixture(scope="module")
def tls_targets(tls_servers: dict[str, RunningServer], tls_certs: LabCertificates,
                closed_port: int) -> dict[str, Target]:
    """A target per server, verifying against the lab CA bundle, plus a closed port."""
    targets = {name: _target(name, s.port, tls_certs.ca_bundle)
               for name, s in tls_servers.items()}
    targets["closed"] = _target("closed", closed_port, tls_certs.ca_bundle)
    return targets
