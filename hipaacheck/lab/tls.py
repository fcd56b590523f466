"""
Loopback TLS servers for the lab and the tests, each in its own thread.

Each server binds 127.0.0.1 on an ephemeral port, counts the connections it accepts, and
answers every completed handshake with a tiny HTTP response. The profiles (`PROFILES`) are the
cases the transmission-security checks must tell apart:

- `modern`: TLS 1.2 and 1.3 with Python's default (forward-secret, AEAD) suites;
- `tls12`: TLS 1.2 only (sound, but below current good practice);
- `legacy`: also accepts TLS 1.0 and 1.1;
- `tls10_only`, `tls11_only`: one legacy version and nothing else;
- `weak_key`: modern protocols and suites at security level 0, so that RSA-1024 and SHA-1
  certificates load at all;
- `static_rsa`: TLS 1.2 with RSA key transport suites only (serve an RSA certificate);
- `null`: TLS 1.2 with NULL (unencrypted) suites only;
- `anonymous`: modern, plus an anonymous ECDH suite;
- `weak_dh`: modern, plus a DHE suite over a 1024-bit group (serve an RSA certificate);
- `cbc_only`: TLS 1.3, and TLS 1.2 with CBC suites only;
- `client_auth`: modern, but a client certificate from the lab CA is required.

`start_server(name, None)` is a plaintext HTTP listener (it reads a request up to the end of
its headers before answering, as real HTTP servers do); its `behaviour` argument also stages a
port that accepts and never answers (`hang`, or `start_hanging_server`), an SSH-style banner
(`banner`) and a port that closes every connection at once (`close`).

Debian's OpenSSL 3 needs security level 0 (`@SECLEVEL=0`) to serve TLS 1.0/1.1, NULL and
anonymous suites, small DH groups and weak keys; it cannot serve SSL 2.0, SSL 3.0, RC4, DES,
3DES or EXPORT suites at all, so those cases are covered by evaluate tests on hand-built
observations only.

`start_tls_lab` starts the lab's set and returns a `LabPart` whose inventory fragment points at
them.
"""

from __future__ import annotations

import logging
import socket
import socketserver
import ssl
import threading
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from hipaacheck.errors import LabError
from hipaacheck.lab.base import LabPart
from hipaacheck.lab.certs import LabCertificates, ServerCert, mint_lab_certificates

logger = logging.getLogger(__name__)

_HOST = "127.0.0.1"
_CONNECTION_TIMEOUT = 5.0
_HANG_SECONDS = 60.0
_RESPONSE = (b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 15\r\n"
             b"Connection: close\r\n\r\nhipaacheck lab\n")
_V = ssl.TLSVersion
BANNER = b"SSH-2.0-hipaacheck-lab\r\n"
"""What a `banner` server sends first."""
Behaviour = Literal["answer", "hang", "banner", "close"]


@dataclass(frozen=True)
class ServerProfile:
    """
    What one lab server accepts: protocol versions, TLS 1.2 suites, DH group, client auth.
    """

    minimum: ssl.TLSVersion = _V.TLSv1_2
    maximum: ssl.TLSVersion = _V.TLSv1_3
    ciphers: str | None = None
    """An OpenSSL cipher string for TLS 1.2 and below; None keeps Python's default."""
    security_level_0: bool = False
    """Lower OpenSSL's security level to 0, without which it refuses the weak cases."""
    weak_dh: bool = False
    """Offer DHE over the lab's 1024-bit group."""
    client_auth: bool = False
    """Require a client certificate issued by the lab CA."""


PROFILES: dict[str, ServerProfile] = {
    "modern": ServerProfile(),
    "tls12": ServerProfile(maximum=_V.TLSv1_2),
    "legacy": ServerProfile(minimum=_V.TLSv1, ciphers="DEFAULT", security_level_0=True),
    "tls10_only": ServerProfile(_V.TLSv1, _V.TLSv1, "DEFAULT", True),
    "tls11_only": ServerProfile(_V.TLSv1_1, _V.TLSv1_1, "DEFAULT", True),
    "weak_key": ServerProfile(ciphers="ECDHE+AESGCM", security_level_0=True),
    "static_rsa": ServerProfile(maximum=_V.TLSv1_2, ciphers="AES128-GCM-SHA256:AES256-GCM-SHA384"),
    "null": ServerProfile(maximum=_V.TLSv1_2, ciphers="eNULL", security_level_0=True),
    "anonymous": ServerProfile(ciphers="ECDHE+AESGCM:AECDH-AES128-SHA", security_level_0=True),
    "weak_dh": ServerProfile(ciphers="ECDHE+AESGCM:DHE-RSA-AES128-GCM-SHA256",
                             security_level_0=True, weak_dh=True),
    "cbc_only": ServerProfile(ciphers="ECDHE-ECDSA-AES128-SHA256:ECDHE-ECDSA-AES256-SHA"),
    "client_auth": ServerProfile(client_auth=True),
}
"""The named server profiles; see the module docstring."""


def server_context(cert: ServerCert, profile: str | ServerProfile,
                   certs: LabCertificates | None = None) -> ssl.SSLContext:
    """
    A server-side `SSLContext` serving `cert` with `profile` (a `PROFILES` name or a profile).

    `certs` supplies the DH group and the client CA for profiles that need them.
    """
    spec = PROFILES[profile] if isinstance(profile, str) else profile
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    if spec.ciphers or spec.security_level_0:
        # NOTE: the security level must drop before the certificate loads: at Debian's default
        # level OpenSSL 3 refuses RSA-1024 keys and SHA-1 signatures outright.
        level = ":@SECLEVEL=0" if spec.security_level_0 else ""
        context.set_ciphers((spec.ciphers or "DEFAULT") + level)
    context.load_cert_chain(cert.chain, cert.key)
    with warnings.catch_warnings():
        # Python deprecates naming TLS 1.0 and 1.1 at all; legacy profiles must name them.
        warnings.simplefilter("ignore", DeprecationWarning)
        context.maximum_version = spec.maximum
        context.minimum_version = spec.minimum
    if spec.weak_dh or spec.client_auth:
        if certs is None:
            raise LabError("this server profile needs the lab certificates")
        if spec.weak_dh:
            context.load_dh_params(str(certs.weak_dh_params))
        if spec.client_auth:
            context.verify_mode = ssl.CERT_REQUIRED
            context.load_verify_locations(cafile=str(certs.ca_bundle))
    return context


class _Handler(socketserver.BaseRequestHandler):
    """
    Completes the TLS handshake (if any), reads a request and answers it. Plaintext requests
    are read up to the end of their headers, as an HTTP server does, before the answer.
    """

    server: _LabServer

    def handle(self) -> None:
        conn: socket.socket = self.request
        conn.settimeout(_CONNECTION_TIMEOUT)
        try:
            if self.server.context is not None:
                conn = self.server.context.wrap_socket(conn, server_side=True)
                conn.recv(4096)
            else:
                _read_headers(conn)
            conn.sendall(_RESPONSE)
        except (OSError, ssl.SSLError):
            # Rejected handshakes are what the probes provoke on purpose.
            pass
        finally:
            conn.close()


def _read_headers(conn: socket.socket) -> None:
    """Read until a blank line ends the request headers (or 16 KiB, or the peer closes)."""
    received = b""
    while b"\r\n\r\n" not in received and len(received) < 16384:
        chunk = conn.recv(4096)
        if not chunk:
            return
        received += chunk


class _HangingHandler(socketserver.BaseRequestHandler):
    """Holds the connection open without reading or writing, until the server stops."""

    server: _LabServer

    def handle(self) -> None:
        self.server.stopping.wait(_HANG_SECONDS)


class _BannerHandler(socketserver.BaseRequestHandler):
    """Greets first with a plaintext banner, as SSH and SMTP servers do, then reads."""

    server: _LabServer

    def handle(self) -> None:
        conn: socket.socket = self.request
        conn.settimeout(_CONNECTION_TIMEOUT)
        try:
            conn.sendall(BANNER)
            conn.recv(4096)
        except OSError:
            pass


class _ClosingHandler(socketserver.BaseRequestHandler):
    """Closes every connection at once without sending a byte."""

    def handle(self) -> None:
        self.request.close()


_BEHAVIOURS: dict[str, type[socketserver.BaseRequestHandler]] = {
    "answer": _Handler, "hang": _HangingHandler, "banner": _BannerHandler,
    "close": _ClosingHandler,
}


class _LabServer(socketserver.ThreadingTCPServer):
    """A threading TCP server that counts connections and hands each to its handler."""

    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, context: ssl.SSLContext | None,
                 handler: type[socketserver.BaseRequestHandler] = _Handler) -> None:
        self.context = context
        self.accepted = 0
        self.stopping = threading.Event()
        self._count_lock = threading.Lock()
        super().__init__((_HOST, 0), handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._count_lock:
            self.accepted += 1
        super().process_request(request, client_address)

    def handle_error(self, request: Any, client_address: Any) -> None:
        logger.debug("lab server connection from %s ended with an error", client_address)


@dataclass
class RunningServer:
    """
    One started loopback server. `stop()` shuts it down and is safe to call twice.
    """

    name: str
    host: str
    port: int
    _server: _LabServer = field(repr=False)
    _thread: threading.Thread = field(repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _stopped: bool = field(default=False, repr=False)

    @property
    def connections(self) -> int:
        """How many TCP connections the server has accepted so far."""
        return self._server.accepted

    def stop(self) -> None:
        """Stop accepting connections and close the listening socket."""
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
        self._server.stopping.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def start_server(name: str, context: ssl.SSLContext | None, *,
                 behaviour: Behaviour = "answer") -> RunningServer:
    """
    Start a loopback server on an ephemeral port: TLS with `context`, plaintext HTTP when None.

    `behaviour` stages the other cases: `hang` accepts and never answers, `banner` greets with
    an SSH banner, `close` closes every connection at once.
    """
    server = _LabServer(context, _BEHAVIOURS[behaviour])
    port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02},
                              name=f"lab-tls-{name}", daemon=True)
    thread.start()
    logger.debug("lab server %s listening on %s:%d", name, _HOST, port)
    return RunningServer(name, _HOST, port, server, thread)


def start_tls_server(name: str, cert: ServerCert, profile: str | ServerProfile = "modern",
                     certs: LabCertificates | None = None) -> RunningServer:
    """Start a loopback TLS server serving `cert` with `profile` (see `server_context`)."""
    return start_server(name, server_context(cert, profile, certs))


def start_hanging_server(name: str) -> RunningServer:
    """Start a loopback server that accepts every connection and never sends a byte."""
    return start_server(name, None, behaviour="hang")


def endpoint_entry(server: RunningServer, ca_bundle: Path | None,
                   server_name: str | None = None) -> dict[str, Any]:
    """The inventory entry (a `TlsEndpointConfig` as plain data) for a started server."""
    entry: dict[str, Any] = {"name": server.name, "host": server.host, "port": server.port,
                             "zone": "internal"}
    if ca_bundle is not None:
        entry["ca_bundle"] = str(ca_bundle)
    if server_name is not None:
        entry["server_name"] = server_name
    return entry


def _start_lab_servers(certs: LabCertificates) -> list[RunningServer]:
    """The lab's servers; if one cannot start, the others are stopped and `LabError` raised."""
    plan: list[tuple[str, ssl.SSLContext | None]] = [
        ("tls-modern", server_context(certs.good, "modern")),
        ("tls-legacy", server_context(certs.good, "legacy")),
        ("tls-badcert", server_context(certs.untrusted, "modern")),
        ("tls-plaintext", None),
    ]
    started: list[RunningServer] = []
    for name, context in plan:
        try:
            started.append(start_server(name, context))
        except OSError as exc:
            for server in started:
                server.stop()
            raise LabError(f"could not start the lab TLS server {name} "
                           f"({type(exc).__name__})") from exc
    return started


def start_tls_lab(workdir: Path) -> LabPart:
    """
    Mint certificates under `workdir/certs` and start the lab's loopback servers.

    The inventory fragment lists every server as an internal endpoint that must verify against
    the lab CA bundle: `tls-modern` is sound, `tls-legacy` accepts TLS 1.0/1.1, `tls-badcert`
    presents an untrusted chain and `tls-plaintext` speaks no TLS.
    """
    certs = mint_lab_certificates((workdir / "certs").resolve())
    servers = _start_lab_servers(certs)

    def stop() -> None:
        for server in servers:
            server.stop()

    endpoints = [endpoint_entry(s, certs.ca_bundle) for s in servers]
    notes = [f"{s.name}: {s.host}:{s.port}" for s in servers]
    return LabPart(name="tls", inventory={"tls": {"endpoints": endpoints}}, stop=stop,
                   notes=notes)
