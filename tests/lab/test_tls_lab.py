"""
The TLS part of the lab: it starts quickly, its inventory fragment validates, its servers and
certificates are what they claim (checked with Python's own TLS client and `cryptography`), and
it stops cleanly.
"""

from __future__ import annotations

import socket
import ssl
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509

from hipaacheck.config import Inventory
from hipaacheck.lab.base import LabPart
from hipaacheck.lab.certs import LabCertificates, mint_lab_certificates
from hipaacheck.lab.tls import (
    BANNER,
    PROFILES,
    RunningServer,
    server_context,
    start_hanging_server,
    start_server,
    start_tls_lab,
    start_tls_server,
)
from hipaacheck.lab.tls_matrix import CASES, start_matrix


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabPart]:
    part = start_tls_lab(tmp_path_factory.mktemp("tls-lab"))
    yield part
    part.stop()


def endpoints(part: LabPart) -> dict[str, dict[str, Any]]:
    return {e["name"]: e for e in part.inventory["tls"]["endpoints"]}


def client_context(ca_bundle: str | None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=ca_bundle)
    if ca_bundle is None:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def fetch(entry: dict[str, Any], context: ssl.SSLContext, server_name: str = "localhost") -> str:
    """Complete a handshake with a lab endpoint and return the negotiated version."""
    with (socket.create_connection((entry["host"], entry["port"]), timeout=5) as raw,
          context.wrap_socket(raw, server_hostname=server_name) as tls):
        tls.sendall(b"GET / HTTP/1.0\r\n\r\n")
        assert tls.recv(64).startswith(b"HTTP/1.1 200")
        return str(tls.version())


def test_inventory_fragment_validates(lab: LabPart) -> None:
    inventory = Inventory.model_validate(lab.inventory)
    names = [e.name for e in inventory.tls.endpoints]
    assert names == ["tls-modern", "tls-legacy", "tls-badcert", "tls-plaintext"]
    for config in inventory.tls.endpoints:
        assert config.host == "127.0.0.1"
        assert config.zone == "internal"
        assert config.ca_bundle is not None and config.ca_bundle.is_file()
    assert [t.id for t in inventory.targets()] == [f"tls:{name}" for name in names]


def test_modern_endpoint_verifies_against_the_bundle(lab: LabPart) -> None:
    entry = endpoints(lab)["tls-modern"]
    assert fetch(entry, client_context(entry["ca_bundle"])) == "TLSv1.3"
    assert fetch(entry, client_context(entry["ca_bundle"]), "127.0.0.1") == "TLSv1.3"


def test_modern_endpoint_refuses_tls11(lab: LabPart) -> None:
    entry = endpoints(lab)["tls-modern"]
    context = _tls11_client()
    with pytest.raises(ssl.SSLError):
        fetch(entry, context)


def test_legacy_endpoint_accepts_tls11(lab: LabPart) -> None:
    entry = endpoints(lab)["tls-legacy"]
    assert fetch(entry, _tls11_client()) == "TLSv1.1"


def test_badcert_endpoint_does_not_verify(lab: LabPart) -> None:
    entry = endpoints(lab)["tls-badcert"]
    with pytest.raises(ssl.SSLCertVerificationError):
        fetch(entry, client_context(entry["ca_bundle"]))
    assert fetch(entry, client_context(None)) == "TLSv1.3"


def test_plaintext_endpoint_speaks_http(lab: LabPart) -> None:
    entry = endpoints(lab)["tls-plaintext"]
    with socket.create_connection((entry["host"], entry["port"]), timeout=5) as raw:
        raw.sendall(b"GET / HTTP/1.0\r\n\r\n")
        assert raw.recv(64).startswith(b"HTTP/1.1 200")


def test_starts_quickly_and_stop_closes_every_port(tmp_path: Path) -> None:
    started = time.monotonic()
    part = start_tls_lab(tmp_path)
    assert time.monotonic() - started < 5
    ports = [e["port"] for e in part.inventory["tls"]["endpoints"]]
    part.stop()
    part.stop()
    for port in ports:
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", port), timeout=2).close()


def test_certificate_variants(tmp_path: Path) -> None:
    certs = mint_lab_certificates(tmp_path)
    root = x509.load_pem_x509_certificate(certs.ca_bundle.read_bytes())
    good = x509.load_pem_x509_certificates(certs.good.chain.read_bytes())
    assert len(good) == 2 and good[1].issuer == root.subject
    san = good[0].extensions.get_extension_for_class(x509.SubjectAlternativeName)
    assert not san.critical
    assert san.value.get_values_for_type(x509.DNSName) == ["localhost"]
    eku = good[0].extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert x509.oid.ExtendedKeyUsageOID.SERVER_AUTH in eku
    assert certs.expired.not_after < certs.good.not_after
    assert (certs.good.key.stat().st_mode & 0o077) == 0


def _tls11_client() -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.set_ciphers("DEFAULT:@SECLEVEL=0")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        context.minimum_version = ssl.TLSVersion.TLSv1_1
        context.maximum_version = ssl.TLSVersion.TLSv1_1
    return context


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> LabCertificates:
    return mint_lab_certificates(tmp_path_factory.mktemp("lab-certs"))


def _any_client(maximum: ssl.TLSVersion = ssl.TLSVersion.TLSv1_3,
                ciphers: str = "ALL:COMPLEMENTOFALL:@SECLEVEL=0") -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.set_ciphers(ciphers)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        context.minimum_version = ssl.TLSVersion.TLSv1
        context.maximum_version = maximum
    return context


def _negotiate(server: RunningServer, context: ssl.SSLContext) -> tuple[str, str]:
    """The version and suite a handshake with `server` settles on."""
    with (socket.create_connection((server.host, server.port), timeout=5) as raw,
          context.wrap_socket(raw, server_hostname="localhost") as tls):
        cipher = tls.cipher()
        assert cipher is not None
        return str(tls.version()), cipher[0]


@pytest.mark.parametrize(("profile", "cert", "version", "suite"), [
    ("tls10_only", "good", "TLSv1", "ECDHE-ECDSA-AES256-SHA"),
    ("tls11_only", "good", "TLSv1.1", "ECDHE-ECDSA-AES256-SHA"),
    ("static_rsa", "rsa", "TLSv1.2", "AES128-GCM-SHA256"),
    ("null", "good", "TLSv1.2", "ECDHE-ECDSA-NULL-SHA"),
    ("weak_key", "rsa1024", "TLSv1.3", "TLS_AES_256_GCM_SHA384"),
    ("weak_key", "sha1", "TLSv1.3", "TLS_AES_256_GCM_SHA384"),
])
def test_profiles_serve_what_they_stage(certs: LabCertificates, profile: str, cert: str,
                                        version: str, suite: str) -> None:
    server = start_tls_server(profile, getattr(certs, cert), profile, certs)
    try:
        assert _negotiate(server, _any_client()) == (version, suite)
    finally:
        server.stop()


def test_weak_dh_profile_offers_a_1024_bit_group(certs: LabCertificates) -> None:
    server = start_tls_server("weak_dh", certs.rsa, "weak_dh", certs)
    try:
        client = _any_client(ssl.TLSVersion.TLSv1_2, "DHE-RSA-AES128-GCM-SHA256:@SECLEVEL=0")
        assert _negotiate(server, client) == ("TLSv1.2", "DHE-RSA-AES128-GCM-SHA256")
    finally:
        server.stop()
    assert b"BEGIN DH PARAMETERS" in certs.weak_dh_params.read_bytes()


def test_client_auth_profile_requires_a_certificate(certs: LabCertificates) -> None:
    server = start_tls_server("client_auth", certs.good, "client_auth", certs)
    try:
        with (pytest.raises((ssl.SSLError, OSError)),
              socket.create_connection((server.host, server.port), timeout=5) as raw,
              _any_client().wrap_socket(raw, server_hostname="localhost") as tls):
            tls.sendall(b"GET / HTTP/1.0\r\n\r\n")
            tls.recv(64)
    finally:
        server.stop()


def test_every_named_profile_builds(certs: LabCertificates) -> None:
    for name in PROFILES:
        cert = certs.rsa if name in ("static_rsa", "weak_dh") else certs.good
        assert isinstance(server_context(cert, name, certs), ssl.SSLContext)


def test_servers_count_their_connections(certs: LabCertificates) -> None:
    server = start_server("counted", None)
    try:
        for _ in range(3):
            socket.create_connection((server.host, server.port), timeout=5).close()
        deadline = time.monotonic() + 2
        while server.connections < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert server.connections == 3
    finally:
        server.stop()


def test_hanging_server_never_answers() -> None:
    server = start_hanging_server("hang")
    try:
        with socket.create_connection((server.host, server.port), timeout=5) as raw:
            raw.sendall(b"GET / HTTP/1.0\r\n\r\n")
            raw.settimeout(0.3)
            with pytest.raises(TimeoutError):
                raw.recv(1)
    finally:
        server.stop()


def test_banner_and_closing_servers() -> None:
    banner = start_server("banner", None, behaviour="banner")
    closing = start_server("closing", None, behaviour="close")
    try:
        with socket.create_connection((banner.host, banner.port), timeout=5) as raw:
            assert raw.recv(64) == BANNER
        with socket.create_connection((closing.host, closing.port), timeout=5) as raw:
            assert raw.recv(64) == b""
    finally:
        banner.stop()
        closing.stop()


def test_broken_certificate_variants(certs: LabCertificates) -> None:
    def leaf(name: str) -> x509.Certificate:
        return x509.load_pem_x509_certificates(getattr(certs, name).chain.read_bytes())[0]

    assert leaf("sha1").signature_hash_algorithm is not None
    assert leaf("sha1").signature_hash_algorithm.name == "sha1"
    assert leaf("rsa1024").public_key().key_size == 1024  # type: ignore[union-attr]
    assert leaf("rsa").public_key().key_size == 2048  # type: ignore[union-attr]
    with pytest.raises(x509.ExtensionNotFound):
        leaf("no_san").extensions.get_extension_for_class(x509.SubjectAlternativeName)
    with pytest.raises(x509.ExtensionNotFound):
        leaf("no_eku").extensions.get_extension_for_class(x509.ExtendedKeyUsage)
    long_lived = leaf("long_lifetime")
    assert (long_lived.not_valid_after_utc - long_lived.not_valid_before_utc).days == 800
    assert leaf("not_yet_valid").not_valid_before_utc > leaf("good").not_valid_before_utc
    assert len(x509.load_pem_x509_certificates(certs.incomplete.chain.read_bytes())) == 1


def test_the_matrix_starts_and_stops(tmp_path: Path, certs: LabCertificates) -> None:
    cases = [c for c in CASES if c.postgres is None]
    matrix = start_matrix(tmp_path, cases, certs)
    ports = [e.port for e in matrix.endpoints.values()]
    assert sorted(matrix.endpoints) == sorted(c.name for c in cases)
    assert len(set(ports)) == len(ports)
    matrix.stop()
    matrix.stop()
    for port in ports:
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", port), timeout=2).close()
