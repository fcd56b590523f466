"""
The sslyze reference prober: it schedules ordinary handshakes only, and on the same servers it
observes what the fast prober observes, with some fifty times the connections.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from hipaacheck.clients.tls import TlsObservation, probe_endpoint
from hipaacheck.clients.tls_sslyze import (
    ALLOWED_SCAN_COMMANDS,
    ATTACK_SCAN_COMMANDS,
    scan_endpoints,
    scan_request,
)
from hipaacheck.config import TlsEndpointConfig
from hipaacheck.lab.tls_matrix import CASES, Matrix, start_matrix

TIMEOUT = 2.0
PARITY_CASES = ("legacy", "static_rsa_only", "weak_dh", "cbc_only", "expired")
"""Cases both probers see alike. Where they differ (a NULL-only server, which sslyze's
connectivity test cannot reach; an HTTP server that waits for a whole request, which sslyze
cannot tell from a hung port), `benchmarks/tls_probe.py` shows it."""


@pytest.fixture(scope="module")
def matrix(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Matrix]:
    started = start_matrix(tmp_path_factory.mktemp("sslyze-matrix"),
                           [c for c in CASES if c.name in PARITY_CASES])
    yield started
    started.stop()


@pytest.fixture(scope="module")
def both(matrix: Matrix) -> dict[str, tuple[TlsObservation, TlsObservation]]:
    """Each parity case observed by sslyze (all at once, as sslyze scans) and by hipaacheck."""
    endpoints = [matrix.endpoints[n] for n in PARITY_CASES]
    reference = scan_endpoints(endpoints, timeout=TIMEOUT)
    fast = [probe_endpoint(e, timeout=TIMEOUT) for e in endpoints]
    return {n: (r, f) for n, r, f in zip(PARITY_CASES, reference, fast)}


def comparable(obs: TlsObservation) -> tuple[object, ...]:
    """The facts both probers must agree on (samples and counts aside)."""
    certificates = obs.certificates
    if isinstance(certificates, tuple):
        certificates = tuple((c.verified, c.validation_error, c.hostname_matches, c.chain,
                              c.server_auth_eku, c.public_ca) for c in certificates)
    return (obs.service, dict(obs.protocols), obs.plaintext, dict(obs.suite_classes),
            obs.dh_group_bits, obs.tls12_aead, certificates)


def test_both_probers_observe_the_same_facts_with_far_fewer_connections(
        matrix: Matrix, both: dict[str, tuple[TlsObservation, TlsObservation]]) -> None:
    # One test for every case, so that one worker alone runs the (slow) sslyze scans
    for name in PARITY_CASES:
        reference, fast = both[name]
        assert comparable(fast) == comparable(reference), name
        # Server-side counts cover both probers: sslyze's share is all the fast one did not make
        server = matrix.servers[name]
        assert fast.connections <= 15, name
        assert server.connections - fast.connections >= 20 * fast.connections, name


@pytest.mark.parametrize("attack_probes", [False, True])
def test_scan_request_schedules_ordinary_handshakes_only(tmp_path: Path,
                                                        attack_probes: bool) -> None:
    bundle = tmp_path / "bundle.pem"
    bundle.write_text("")
    config = TlsEndpointConfig(name="portal", host="127.0.0.1", port=443, ca_bundle=bundle,
                               attack_probes=attack_probes)
    request = scan_request(config, timeout=2.5)
    assert request.scan_commands == set(ALLOWED_SCAN_COMMANDS)
    assert not request.scan_commands & ATTACK_SCAN_COMMANDS
    assert request.network_configuration.network_timeout == 3
