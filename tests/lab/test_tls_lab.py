"""
The TLS part of the lab: it starts quickly, its inventory fragment validates, its servers
behave as staged (checked with Python's own TLS client), and it stops cleanly.
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
from hipaacheck.lab.certs import mint_lab_certificates
from hipaacheck.lab.tls import start_tls_lab


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
