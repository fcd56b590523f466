"""
One TCP connection and at most one TLS handshake, with nassl: the prober's only network I/O.

`Dialer` opens connections to one endpoint (and runs PostgreSQL's SSLRequest or another
STARTTLS upgrade when the endpoint is configured for one) and counts them. `handshake` offers
one `Offer` (a protocol version, a nassl build and a cipher string), and reports what came
back as a `Handshake`: accepted (with the version, suite, ephemeral key size and certificate
chain), rejected, silent, timed out, unreachable, or answered in plaintext.

The first bytes of a reply are kept only long enough to classify them (TLS, HTTP, another
banner) and to read the ServerHello's version; they are never stored or logged. Every blocking
call is bounded by the handshake's own deadline, so a peer that drips bytes slowly cannot hold
a probe past it.
"""

from __future__ import annotations

import enum
import logging
import socket
import struct
import threading
import time
from dataclasses import dataclass, field

from nassl import _nassl
from nassl.ephemeral_key_info import DhEphemeralKeyInfo
from nassl.legacy_ssl_client import LegacySslClient
from nassl.ssl_client import (
    BaseSslClient,
    ClientCertificateRequested,
    OpenSslVerifyEnum,
    OpenSslVersionEnum,
    SslClient,
)
from sslyze.connection_helpers.opportunistic_tls_helpers import (
    OpportunisticTlsError,
    ProtocolWithOpportunisticTlsEnum,
    get_opportunistic_tls_helper,
)

from hipaacheck.clients.tls_certs import is_ip
from hipaacheck.clients.tls_model import DH_TOO_SMALL_TO_MEASURE, ServiceKind, TlsVersion
from hipaacheck.clients.tls_suites import NASSL_VERSIONS, TLS13_SUITES
from hipaacheck.model import Unknown, UnknownReason

logger = logging.getLogger(__name__)

POSTGRES_SSL_REQUEST = struct.pack("!II", 8, 80877103)
"""PostgreSQL's SSLRequest message: length 8, then the magic request code 1234.5679."""
HTTP_NUDGE = b"\r\n\r\n"
"""Sent to a peer that stays silent after a ClientHello: it ends an HTTP request's headers, so
an HTTP server that waits for a full line answers (400) instead of looking hung."""
NUDGE_AFTER = 1.0
"""Seconds of silence after a ClientHello before the pre-probe nudges the peer: far more than
any TLS server needs to answer, little enough to keep an HTTP listener's probe short."""
_HEAD_BYTES = 512
_STARTTLS = {
    "smtp": ProtocolWithOpportunisticTlsEnum.SMTP,
    "imap": ProtocolWithOpportunisticTlsEnum.IMAP,
    "pop3": ProtocolWithOpportunisticTlsEnum.POP3,
    "ftp": ProtocolWithOpportunisticTlsEnum.FTP,
    "ldap": ProtocolWithOpportunisticTlsEnum.LDAP,
    "xmpp": ProtocolWithOpportunisticTlsEnum.XMPP,
}
_WIRE_VERSIONS = {0x0300: TlsVersion.SSL_3_0, 0x0301: TlsVersion.TLS_1_0,
                  0x0302: TlsVersion.TLS_1_1, 0x0303: TlsVersion.TLS_1_2,
                  0x0304: TlsVersion.TLS_1_3}


class Outcome(str, enum.Enum):
    """How one handshake attempt ended."""

    ACCEPTED = "accepted"
    """The server chose a version and suite (the handshake completed, or it asked for a client
    certificate, which it does only after choosing both)."""
    REJECTED = "rejected"
    """The server answered in TLS and refused the offer."""
    SILENT = "silent"
    """The server closed the connection without sending a byte."""
    TIMEOUT = "timeout"
    UNREACHABLE = "unreachable"
    PLAINTEXT = "plaintext"
    """The server answered in something other than TLS."""
    UNSUPPORTED = "unsupported"
    """nassl could not make the offer at all (nothing was sent)."""


@dataclass(frozen=True)
class Offer:
    """
    What one ClientHello offers.

    `version` None lets the build negotiate: the modern build offers TLS 1.0 to 1.3.
    """

    version: TlsVersion | None
    legacy: bool
    ciphers: str
    label: str


@dataclass(frozen=True)
class Handshake:
    """What came back from one offer."""

    offer: Offer
    outcome: Outcome
    version: TlsVersion | None = None
    cipher: str | None = None
    """The OpenSSL name of the negotiated suite, when the build reports it."""
    chain: tuple[str, ...] = ()
    """The server's certificates as PEM, leaf first."""
    dh_bits: int | None = None
    """The size of a finite-field DH ephemeral key, when the key exchange used one."""
    client_cert_requested: bool = False
    service: ServiceKind | None = None
    """For `PLAINTEXT`: what answered."""
    unknown: Unknown | None = None
    """For `TIMEOUT`, `UNREACHABLE` and `UNSUPPORTED`: why nothing could be observed."""

    @property
    def accepted(self) -> bool:
        """Whether the server accepted the offer."""
        return self.outcome == Outcome.ACCEPTED


class Unreachable(Exception):
    """The connection (or its STARTTLS upgrade) could not be made; carries the `Unknown`."""

    def __init__(self, unknown: Unknown) -> None:
        super().__init__(unknown.detail)
        self.unknown = unknown


class NotTls(Exception):
    """The server answered, but will not speak TLS on this connection."""

    def __init__(self, service: ServiceKind) -> None:
        super().__init__(service.value)
        self.service = service


def location(host: str, port: int) -> str:
    """`host:port`, with IPv6 addresses in brackets."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


@dataclass
class Dialer:
    """
    Opens TCP connections to one endpoint, runs its STARTTLS upgrade, and counts them.
    """

    ip: str
    port: int
    server_name: str
    starttls: str | None = None
    connections: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def where(self) -> str:
        """The endpoint as `ip:port`."""
        return location(self.ip, self.port)

    def open(self, deadline: float) -> socket.socket:
        """A connected socket ready for a ClientHello; raises `Unreachable` or `NotTls`."""
        with self._lock:
            self.connections += 1
        try:
            sock = socket.create_connection((self.ip, self.port), timeout=_left(deadline))
        except TimeoutError:
            raise Unreachable(Unknown(UnknownReason.TIMEOUT, f"{self.where} did not accept a "
                                      "connection in time",
                                      needs=f"network reachability to {self.where}")) from None
        except OSError as exc:
            raise Unreachable(Unknown(UnknownReason.UNREACHABLE, f"could not connect to "
                                      f"{self.where} ({type(exc).__name__})",
                                      needs=f"network reachability to {self.where}")) from None
        try:
            self._upgrade(sock, deadline)
        except BaseException:
            sock.close()
            raise
        return sock

    def _upgrade(self, sock: socket.socket, deadline: float) -> None:
        """Ask for TLS on a plaintext protocol, when the endpoint is configured for it."""
        if self.starttls is None:
            return
        try:
            if self.starttls == "postgres":
                self._ssl_request(sock, deadline)
                return
            helper = get_opportunistic_tls_helper(_STARTTLS[self.starttls], self.server_name,
                                                  "hipaacheck")
            sock.settimeout(_left(deadline))
            helper.prepare_socket_for_tls_handshake(sock)
        except OpportunisticTlsError:
            raise NotTls(ServiceKind.STARTTLS_REFUSED) from None
        except TimeoutError:
            raise Unreachable(_hung(self.where, "a STARTTLS request")) from None
        except OSError as exc:
            raise Unreachable(Unknown(UnknownReason.UNREACHABLE, f"{self.where} dropped the "
                                      f"connection during STARTTLS ({type(exc).__name__})",
                                      needs=f"network reachability to {self.where}")) from None

    def _ssl_request(self, sock: socket.socket, deadline: float) -> None:
        """PostgreSQL's upgrade: SSLRequest, answered by one byte, `S` (TLS) or `N` (no TLS)."""
        sock.settimeout(_left(deadline))
        sock.sendall(POSTGRES_SSL_REQUEST)
        answer = sock.recv(1)
        if answer == b"S":
            return
        if not answer:
            raise Unreachable(Unknown(UnknownReason.NOT_VISIBLE, f"{self.where} closed the "
                                      "connection without answering SSLRequest"))
        raise NotTls(ServiceKind.POSTGRES_NO_TLS if answer == b"N" else ServiceKind.PLAINTEXT_OTHER)


def _left(deadline: float) -> float:
    """Seconds until `deadline`; raises `TimeoutError` once it has passed."""
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise TimeoutError("deadline passed")
    return remaining


def _hung(where: str, what: str) -> Unknown:
    return Unknown(UnknownReason.TIMEOUT, f"{where} accepted the connection but never "
                   f"answered {what}", needs=f"a responsive service at {where}")


class _Wire:
    """
    The socket as nassl sees it: every read is bounded by the handshake's deadline, the first
    bytes received are kept for classification, and a silent peer can be nudged once.
    """

    def __init__(self, sock: socket.socket, deadline: float, nudge_after: float | None) -> None:
        self.sock = sock
        self.deadline = deadline
        self.nudge_after = nudge_after
        self.head = b""
        self.nudged = False

    def recv(self, size: int) -> bytes:
        """Read what the peer sent, within the deadline."""
        if not self.head and self.nudge_after is not None and not self.nudged:
            self.sock.settimeout(min(self.nudge_after, _left(self.deadline)))
            try:
                return self._keep(self.sock.recv(size))
            except TimeoutError:
                self.nudged = True
                self.sock.settimeout(_left(self.deadline))
                self.sock.sendall(HTTP_NUDGE)
        self.sock.settimeout(_left(self.deadline))
        return self._keep(self.sock.recv(size))

    def send(self, data: bytes) -> int:
        """Send handshake bytes, within the deadline."""
        self.sock.settimeout(_left(self.deadline))
        return self.sock.send(data)

    def close(self) -> None:
        """Close the connection."""
        self.sock.close()

    def _keep(self, data: bytes) -> bytes:
        if len(self.head) < _HEAD_BYTES:
            self.head += data[: _HEAD_BYTES - len(self.head)]
        return data


def reply_kind(head: bytes) -> ServiceKind:
    """What the first bytes of a reply are: a TLS (or SSL 2.0) record, HTTP, or else."""
    if head[0] in (0x14, 0x15, 0x16, 0x17) and (len(head) < 2 or head[1] == 0x03):
        return ServiceKind.TLS
    if head[0] & 0x80:
        return ServiceKind.TLS
    if head.startswith(b"HTTP/"):
        return ServiceKind.PLAINTEXT_HTTP
    return ServiceKind.PLAINTEXT_OTHER


def server_hello_version(head: bytes) -> TlsVersion | None:
    """
    The version a ServerHello at the start of `head` selects (supported_versions first), or
    None when `head` does not start with a complete ServerHello.
    """
    if len(head) < 44 or head[0] != 0x16 or head[5] != 0x02:
        return None
    body = head[9:]
    legacy = _WIRE_VERSIONS.get(int.from_bytes(body[0:2], "big"))
    offset = 34 + 1 + body[34] + 3
    if offset + 2 > len(body):
        return legacy
    end = min(len(body), offset + 2 + int.from_bytes(body[offset:offset + 2], "big"))
    offset += 2
    while offset + 4 <= end:
        kind = int.from_bytes(body[offset:offset + 2], "big")
        size = int.from_bytes(body[offset + 2:offset + 4], "big")
        if kind == 0x002B and size == 2 and offset + 6 <= end:
            return _WIRE_VERSIONS.get(int.from_bytes(body[offset + 4:offset + 6], "big"), legacy)
        offset += 4 + size
    return legacy


def _client(offer: Offer, wire: _Wire, server_name: str) -> BaseSslClient:
    """A nassl client for `offer`, reading and writing through `wire`."""
    # SSLV23 lets the build negotiate the highest version both sides support.
    method = NASSL_VERSIONS[offer.version] if offer.version else OpenSslVersionEnum.SSLV23
    client: BaseSslClient
    if offer.legacy:
        client = LegacySslClient(underlying_socket=wire,  # type: ignore[arg-type]
                                 ssl_version=method, ssl_verify=OpenSslVerifyEnum.NONE)
    else:
        client = SslClient(underlying_socket=wire,  # type: ignore[arg-type]
                           ssl_version=method, ssl_verify=OpenSslVerifyEnum.NONE)
        if offer.version in (None, TlsVersion.TLS_1_3):
            client.set_ciphersuites(TLS13_SUITES)
    if offer.version != TlsVersion.TLS_1_3:
        client.set_cipher_list(offer.ciphers)
    if offer.version != TlsVersion.SSL_2_0 and not is_ip(server_name):
        client.set_tlsext_host_name(server_name)
    return client


_REJECTIONS = ("alert", "wrong version number", "wrong ssl version", "no cipher",
               "unsupported protocol", "unknown protocol", "version too low",
               "insufficient security", "bad record mac", "decode error", "illegal parameter",
               "excessive message size", "digest check failed", "bad mac decode",
               "block type is not 01", "illegal padding", "invalid padding",
               "wrong certificate type", "invalid encoding", "unexpected message",
               "record layer failure", "packet length too long", "shut down by peer",
               "unexpected eof", "bad decompression", "unknown cipher returned",
               "wrong cipher returned", "unsupported elliptic curve", "bad ecpoint",
               "tlsv1 unrecognized name")


def _accepted(offer: Offer, client: BaseSslClient, wire: _Wire, requested: bool,
              dh_refused: bool = False) -> Handshake:
    """The facts of an accepted handshake."""
    cipher = client.get_current_cipher_name() or None
    version = offer.version
    if version is None:
        version = (TlsVersion.TLS_1_3 if cipher and cipher.startswith("TLS_")
                   else server_hello_version(wire.head))
    dh_bits: int | None = DH_TOO_SMALL_TO_MEASURE if dh_refused else None
    if not dh_refused:
        key = client.get_ephemeral_key()
        if isinstance(key, DhEphemeralKeyInfo):
            dh_bits = key.size
    try:
        chain = tuple(client.get_received_chain())
    except ValueError:
        chain = ()  # an anonymous suite: the server sent no certificate
    return Handshake(offer, Outcome.ACCEPTED, version, cipher, chain, dh_bits, requested)


def _failed(offer: Offer, wire: _Wire, error: Exception) -> Handshake:
    """
    A handshake that raised: plaintext, rejected, or silent, read from what came back.

    Once the server has answered in TLS, any failure counts as its refusal of the offer (as
    sslyze counts it); an OpenSSL error outside the usual refusals is logged by class only.
    """
    if wire.head and reply_kind(wire.head) != ServiceKind.TLS:
        return Handshake(offer, Outcome.PLAINTEXT, service=reply_kind(wire.head))
    if not wire.head:
        return Handshake(offer, Outcome.SILENT)
    message = str(error.args[0] if error.args else error).lower()
    if isinstance(error, _nassl.OpenSSLError) and not any(m in message for m in _REJECTIONS):
        logger.debug("unclassified TLS error during %s: %s", offer.label, type(error).__name__)
    return Handshake(offer, Outcome.REJECTED)


def handshake(dialer: Dialer, offer: Offer, timeout: float, *, sniff: bool = False) -> Handshake:
    """
    Open one connection and try one handshake with `offer`, within `timeout` seconds.

    With `sniff`, a peer that stays silent for `NUDGE_AFTER` seconds (at most half the timeout)
    after the ClientHello is nudged once (`HTTP_NUDGE`), so that an HTTP server waiting for the
    end of a request answers instead of looking hung.
    """
    deadline = time.monotonic() + timeout
    try:
        sock = dialer.open(deadline)
    except Unreachable as exc:
        return Handshake(offer, Outcome.UNREACHABLE, unknown=exc.unknown)
    except NotTls as exc:
        return Handshake(offer, Outcome.PLAINTEXT, service=exc.service)
    nudge = min(NUDGE_AFTER, timeout / 2) if sniff and dialer.starttls is None else None
    wire = _Wire(sock, deadline, nudge)
    try:
        client = _client(offer, wire, dialer.server_name)
    except _nassl.OpenSSLError:
        wire.close()
        return Handshake(offer, Outcome.UNSUPPORTED, unknown=Unknown(
            UnknownReason.NOT_SUPPORTED, f"nassl cannot make the offer `{offer.label}`"))
    try:
        return _run(offer, client, wire, dialer.where)
    finally:
        _close(client, wire)


def _run(offer: Offer, client: BaseSslClient, wire: _Wire, where: str) -> Handshake:
    """Drive the handshake and classify how it ended."""
    try:
        client.do_handshake()
    except ClientCertificateRequested:
        return _accepted(offer, client, wire, requested=True)
    except TimeoutError:
        if wire.head:
            kind = reply_kind(wire.head)
            if kind != ServiceKind.TLS:
                return Handshake(offer, Outcome.PLAINTEXT, service=kind)
            return Handshake(offer, Outcome.TIMEOUT, unknown=Unknown(
                UnknownReason.TIMEOUT, f"{where} stalled during a TLS handshake"))
        return Handshake(offer, Outcome.TIMEOUT, unknown=_hung(where, "a ClientHello"))
    except _nassl.OpenSSLError as exc:
        if "dh key too small" in str(exc):
            return _accepted(offer, client, wire, requested=False, dh_refused=True)
        return _failed(offer, wire, exc)
    except OSError as exc:
        return _failed(offer, wire, exc)
    return _accepted(offer, client, wire, requested=False)


def _close(client: BaseSslClient, wire: _Wire) -> None:
    """Shut the connection down without ever raising."""
    try:
        client.shutdown()
    except (OSError, _nassl.OpenSSLError):
        pass
    finally:
        wire.close()
