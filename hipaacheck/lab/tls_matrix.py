"""
The transmission-security case matrix: one local endpoint per misconfiguration the TLS checks
must recognise, started together on 127.0.0.1.

Each `Case` names the lab certificate variant it serves, the server profile it runs (see
`hipaacheck.lab.tls`), how a non-TLS port behaves, or which real PostgreSQL server it is. The
tests assert each case's verdicts; `benchmarks/tls_probe.py` probes the same cases with both
the fast prober and sslyze's own scan commands. Cases Debian's OpenSSL 3 cannot serve (SSL 2.0,
SSL 3.0, RC4, DES, 3DES, EXPORT) are not here; evaluate tests cover them.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from hipaacheck.config import TlsEndpointConfig
from hipaacheck.errors import LabError
from hipaacheck.lab.certs import LabCertificates, ServerCert, mint_lab_certificates
from hipaacheck.lab.tls import Behaviour, RunningServer, start_server, start_tls_server

logger = logging.getLogger(__name__)

_HOST = "127.0.0.1"


@dataclass(frozen=True)
class Case:
    """
    One staged endpoint.

    `cert` is a `LabCertificates` attribute (None for a port without TLS); `behaviour` None
    means nothing listens at all; `postgres` stages a real PostgreSQL server with TLS off or on.
    """

    name: str
    cert: str | None = "good"
    profile: str = "modern"
    behaviour: Behaviour | None = "answer"
    postgres: Literal["off", "on"] | None = None


CASES: tuple[Case, ...] = (
    Case("good"),
    Case("expired", "expired"),
    Case("not_yet_valid", "not_yet_valid"),
    Case("self_signed", "self_signed"),
    Case("wrong_host", "wrong_host"),
    Case("untrusted_root", "untrusted"),
    Case("incomplete_chain", "incomplete"),
    Case("sha1_signed", "sha1", "weak_key"),
    Case("rsa_1024", "rsa1024", "weak_key"),
    Case("no_san", "no_san"),
    Case("long_lifetime", "long_lifetime"),
    Case("no_eku", "no_eku"),
    Case("client_eku", "client_eku"),
    Case("expiring", "expiring"),
    Case("tls10_only", profile="tls10_only"),
    Case("tls11_only", profile="tls11_only"),
    Case("tls12_only", profile="tls12"),
    Case("legacy", profile="legacy"),
    Case("static_rsa_only", "rsa", "static_rsa"),
    Case("null_ciphers", profile="null"),
    Case("anonymous_suites", profile="anonymous"),
    Case("weak_dh", "rsa", "weak_dh"),
    Case("cbc_only", profile="cbc_only"),
    Case("client_cert_required", profile="client_auth"),
    Case("plaintext_http", None),
    Case("ssh_banner", None, behaviour="banner"),
    Case("closes_at_once", None, behaviour="close"),
    Case("closed_port", None, behaviour=None),
    Case("hanging_port", None, behaviour="hang"),
    Case("postgres_ssl_off", None, postgres="off"),
    Case("postgres_ssl_on", None, postgres="on"),
)
"""Every case of the matrix, in the order reports list them."""
CASE_NAMES = tuple(c.name for c in CASES)


@dataclass
class Matrix:
    """
    The started cases: an endpoint configuration per case, and the servers behind them.
    """

    certs: LabCertificates
    endpoints: dict[str, TlsEndpointConfig] = field(default_factory=dict)
    servers: dict[str, RunningServer] = field(default_factory=dict)
    _stops: list[Callable[[], None]] = field(default_factory=list, repr=False)

    def stop(self) -> None:
        """Stop every server, all at once; safe to call twice."""
        stops, self._stops = self._stops, []
        if not stops:
            return
        with ThreadPoolExecutor(max_workers=min(16, len(stops))) as pool:
            for future in [pool.submit(stop) for stop in stops]:
                try:
                    future.result()
                except Exception as exc:  # noqa: BLE001 - stop the rest regardless
                    logger.warning("a matrix server did not stop cleanly (%s)",
                                   type(exc).__name__)


def free_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind((_HOST, 0))
        return int(sock.getsockname()[1])


def _endpoint(name: str, port: int, ca_bundle: Path | None,
              starttls: Literal["postgres"] | None = None) -> TlsEndpointConfig:
    return TlsEndpointConfig(name=name, host=_HOST, port=port, zone="internal",
                             ca_bundle=ca_bundle, starttls=starttls)


def _start_plain(matrix: Matrix, case: Case) -> None:
    """A TLS or plaintext case served by a lab server, or a closed port."""
    if case.behaviour is None:
        matrix.endpoints[case.name] = _endpoint(case.name, free_port(), matrix.certs.ca_bundle)
        return
    if case.cert is None:
        server = start_server(case.name, None, behaviour=case.behaviour)
    else:
        cert = getattr(matrix.certs, case.cert)
        if not isinstance(cert, ServerCert):
            raise LabError(f"matrix case {case.name} names no certificate variant")
        server = start_tls_server(case.name, cert, case.profile, matrix.certs)
    matrix.servers[case.name] = server
    matrix._stops.append(server.stop)
    matrix.endpoints[case.name] = _endpoint(case.name, server.port, matrix.certs.ca_bundle)


def _start_postgres(matrix: Matrix, cases: list[Case], workdir: Path) -> None:
    """The PostgreSQL cases: real servers, started concurrently."""
    from hipaacheck.lab.postgres import PostgresServer

    def start(case: Case) -> tuple[Case, PostgresServer]:
        server = PostgresServer(workdir / case.name, ssl=case.postgres == "on")
        return case, server.start()

    with ThreadPoolExecutor(max_workers=max(1, len(cases))) as pool:
        futures = [pool.submit(start, c) for c in cases]
        started = []
        for future in futures:
            try:
                started.append(future.result())
            except Exception:
                for _, server in started:
                    server.stop()
                raise
    for case, server in started:
        matrix._stops.append(server.stop)
        bundle = server.cert_path if case.postgres == "on" else None
        matrix.endpoints[case.name] = _endpoint(case.name, server.port, bundle, "postgres")


def start_matrix(workdir: Path, cases: Iterable[Case] = CASES,
                 certs: LabCertificates | None = None) -> Matrix:
    """
    Start `cases` (all by default) under `workdir`; certificates are minted there unless given.

    If any case fails to start, the ones already started are stopped and the error raised.
    """
    chosen = list(cases)
    matrix = Matrix(certs or mint_lab_certificates(workdir / "certs"))
    try:
        for case in (c for c in chosen if c.postgres is None):
            _start_plain(matrix, case)
        postgres = [c for c in chosen if c.postgres is not None]
        if postgres:
            _start_postgres(matrix, postgres, workdir)
    except BaseException:
        matrix.stop()
        raise
    return matrix
