"""
One handshake at a time: how replies are classified, how ServerHello versions are read, and
what single offers observe against real loopback servers.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from hipaacheck.clients.tls import ServiceKind, TlsVersion
from hipaacheck.clients.tls_handshake import (
    Dialer,
    Offer,
    Outcome,
    handshake,
    reply_kind,
    server_hello_version,
)
from hipaacheck.clients.tls_suites import EVERY_SUITE, MODERN_LEVEL
from hipaacheck.lab.certs import LabCertificates, mint_lab_certificates
from hipaacheck.lab.tls import RunningServer, start_server, start_tls_server
from hipaacheck.lab.tls_matrix import free_port
from hipaacheck.model import UnknownReason

TIMEOUT = 2.0
MODERN_ANY = Offer(None, False, EVERY_SUITE + MODERN_LEVEL, "any")


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, RunningServer]]:
    certs: LabCertificates = mint_lab_certificates(tmp_path_factory.mktemp("handshake-certs"))
    started = {
        "modern": start_tls_server("modern", certs.good),
        "tls12": start_tls_server("tls12", certs.good, "tls12"),
        "weak_dh": start_tls_server("weak_dh", certs.rsa, "weak_dh", certs),
        "client_auth": start_tls_server("client_auth", certs.good, "client_auth", certs),
        "hanging": start_server("hanging", None, behaviour="hang"),
    }
    yield started
    for server in started.values():
        server.stop()


def dial(server: RunningServer) -> Dialer:
    return Dialer(server.host, server.port, "localhost")


def _hello(version: bytes, extensions: bytes = b"") -> bytes:
    body = version + bytes(32) + b"\x00" + b"\x13\x01" + b"\x00"
    if extensions:
        body += len(extensions).to_bytes(2, "big") + extensions
    message = b"\x02" + len(body).to_bytes(3, "big") + body
    return b"\x16\x03\x03" + len(message).to_bytes(2, "big") + message


@pytest.mark.parametrize(("head", "kind"), [
    (b"\x16\x03\x01\x00\x2a", ServiceKind.TLS),
    (b"\x15\x03\x03\x00\x02\x02\x28", ServiceKind.TLS),
    (b"\x80\x2e\x04\x00\x01", ServiceKind.TLS),
    (b"HTTP/1.1 400 Bad Request\r\n", ServiceKind.PLAINTEXT_HTTP),
    (b"SSH-2.0-OpenSSH_9.6\r\n", ServiceKind.PLAINTEXT_OTHER),
    (b"220 mail.example ESMTP\r\n", ServiceKind.PLAINTEXT_OTHER),
    (b"\x16\x01", ServiceKind.PLAINTEXT_OTHER),
])
def test_reply_kind(head: bytes, kind: ServiceKind) -> None:
    assert reply_kind(head) == kind


def test_server_hello_version() -> None:
    assert server_hello_version(_hello(b"\x03\x03")) == TlsVersion.TLS_1_2
    assert server_hello_version(_hello(b"\x03\x01")) == TlsVersion.TLS_1_0
    supported = b"\x00\x2b\x00\x02\x03\x04"
    assert server_hello_version(_hello(b"\x03\x03", b"\x00\x17\x00\x00" + supported)) == \
        TlsVersion.TLS_1_3
    assert server_hello_version(b"\x15\x03\x03\x00\x02\x02\x28") is None
    assert server_hello_version(_hello(b"\x03\x03")[:20]) is None


def test_the_negotiating_offer_reads_the_highest_version(
        servers: dict[str, RunningServer]) -> None:
    modern = handshake(dial(servers["modern"]), MODERN_ANY, TIMEOUT)
    tls12 = handshake(dial(servers["tls12"]), MODERN_ANY, TIMEOUT)
    assert modern.outcome == Outcome.ACCEPTED and modern.version == TlsVersion.TLS_1_3
    assert tls12.outcome == Outcome.ACCEPTED and tls12.version == TlsVersion.TLS_1_2
    assert len(modern.chain) == 2 and modern.chain[0].startswith("-----BEGIN CERTIFICATE")


def test_a_refused_version_is_rejected(servers: dict[str, RunningServer]) -> None:
    offer = Offer(TlsVersion.TLS_1_0, True, EVERY_SUITE, "TLS 1.0")
    result = handshake(dial(servers["modern"]), offer, TIMEOUT)
    assert result.outcome == Outcome.REJECTED and not result.accepted


def test_the_dhe_group_size_is_read(servers: dict[str, RunningServer]) -> None:
    offer = Offer(TlsVersion.TLS_1_2, False, "kDHE" + MODERN_LEVEL, "DHE")
    result = handshake(dial(servers["weak_dh"]), offer, TIMEOUT)
    assert result.accepted and result.dh_bits == 1024


def test_a_client_certificate_request_still_shows_the_choice(
        servers: dict[str, RunningServer]) -> None:
    result = handshake(dial(servers["client_auth"]), MODERN_ANY, TIMEOUT)
    assert result.accepted and result.client_cert_requested
    assert result.version == TlsVersion.TLS_1_3 and result.chain


def test_a_silent_peer_times_out_within_the_timeout(servers: dict[str, RunningServer]) -> None:
    started = time.monotonic()
    result = handshake(dial(servers["hanging"]), MODERN_ANY, 0.5)
    assert time.monotonic() - started < 0.9
    assert result.outcome == Outcome.TIMEOUT
    assert result.unknown is not None and result.unknown.reason == UnknownReason.TIMEOUT


def test_a_closed_port_is_unreachable() -> None:
    dialer = Dialer("127.0.0.1", free_port(), "localhost")
    result = handshake(dialer, MODERN_ANY, TIMEOUT)
    assert result.outcome == Outcome.UNREACHABLE and dialer.connections == 1
    assert result.unknown is not None and result.unknown.reason == UnknownReason.UNREACHABLE
