"""
Loopback TLS servers for the lab and the tests, each in its own thread.

Each server binds 127.0.0.1 on an ephemeral port and answers every completed handshake with a
tiny HTTP response. The profiles are the cases the transmission-security checks must tell
apart:

- `modern`: TLS 1.2 and 1.3 with a chain that verifies against the lab CA bundle;
- `tls12`: TLS 1.2 only (sound, but below current good practice);
- `legacy`: also accepts TLS 1.0 and 1.1 (Debian's OpenSSL 3 needs `@SECLEVEL=0` for them);
- `badcert`: modern protocols, but a chain up to a root that is not in the bundle;
- `plaintext`: an HTTP listener that speaks no TLS at all.

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

Profile = Literal["modern", "tls12", "legacy"]
_HOST = "127.0.0.1"
_CONNECTION_TIMEOUT = 5.0
_RESPONSE = (b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 15\r\n"
             b"Connection: close\r\n\r\nhipaacheck lab\n")


def server_context(cert: ServerCert, profile: Profile) -> ssl.SSLContext:
    """
    A server-side `SSLContext` serving `cert` with the protocol versions of `profile`.
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert.chain, cert.key)
    context.maximum_version = ssl.TLSVersion.TLSv1_3
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if profile == "tls12":
        context.maximum_version = ssl.TLSVersion.TLSv1_2
    elif profile == "legacy":
        # NOTE: OpenSSL 3 refuses TLS 1.0/1.1 (SHA-1 handshake signatures) above security
        # level 0, whatever minimum_version says; this is exactly the weakness being staged.
        context.set_ciphers("DEFAULT:@SECLEVEL=0")
        with warnings.catch_warnings():
            # Python deprecates naming TLS 1.0 at all; the legacy profile must name it.
            warnings.simplefilter("ignore", DeprecationWarning)
            context.minimum_version = ssl.TLSVersion.TLSv1
    return context


class _Handler(socketserver.BaseRequestHandler):
    """Completes the TLS handshake (if any), reads a request and answers it."""

    server: _LabServer

    def handle(self) -> None:
        conn: socket.socket = self.request
        conn.settimeout(_CONNECTION_TIMEOUT)
        try:
            if self.server.context is not None:
                conn = self.server.context.wrap_socket(conn, server_side=True)
            conn.recv(4096)
            conn.sendall(_RESPONSE)
        except (OSError, ssl.SSLError):
            # Rejected handshakes are what the probes provoke on purpose.
            pass
        finally:
            conn.close()


class _LabServer(socketserver.ThreadingTCPServer):
    """A threading TCP server that hands each connection to `_Handler`."""

    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    request_queue_size = 64

    def __init__(self, context: ssl.SSLContext | None) -> None:
        self.context = context
        super().__init__((_HOST, 0), _Handler)

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

    def stop(self) -> None:
        """Stop accepting connections and close the listening socket."""
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def start_server(name: str, context: ssl.SSLContext | None) -> RunningServer:
    """
    Start a loopback server on an ephemeral port; TLS with `context`, plaintext when None.
    """
    server = _LabServer(context)
    port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1},
                              name=f"lab-tls-{name}", daemon=True)
    thread.start()
    logger.debug("lab server %s listening on %s:%d", name, _HOST, port)
    return RunningServer(name, _HOST, port, server, thread)


def start_tls_server(name: str, cert: ServerCert, profile: Profile = "modern") -> RunningServer:
    """Start a loopback TLS server serving `cert` with the protocol versions of `profile`."""
    return start_server(name, server_context(cert, profile))


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
