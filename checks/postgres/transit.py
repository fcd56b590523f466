"""
Transmission security of PostgreSQL, from the server's own catalogs and the inventory's
connection strings: whether TLS is on and at what minimum version, which `pg_hba.conf` lines
admit plaintext from other hosts, which live sessions are plaintext, and whether the
configured clients verify the server (`sslmode`).

The server checks read `pg_catalog.pg_settings`, `pg_catalog.pg_hba_file_rules`,
`pg_catalog.pg_stat_activity` and `pg_catalog.pg_stat_ssl` through read-only sessions, once per
distinct server of a target (the application's, and the audit store's when it is elsewhere).
Evidence holds counts, line numbers, setting values and `user@host:port/db` labels, never a
conninfo, a password or a client's address. No check here makes a TLS handshake: the server
check offers each server's `host:port` to the scan (`Check.endpoints`), and the TLS checks
probe it live, through PostgreSQL's STARTTLS, only for targets whose inventory entry sets
`probe_endpoints`.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

import psycopg
from psycopg.conninfo import conninfo_to_dict

from hipaacheck.check import Check, CheckContext, Policy
from hipaacheck.clients.postgres import (
    PostgresUnavailable,
    catalog_query,
    describe,
    same_server,
)
from hipaacheck.config import PostgresConfig, PostgresConnection
from hipaacheck.model import (
    CheckMeta,
    Endpoint,
    EvidenceValue,
    Fact,
    Family,
    Finding,
    FindingBuilder,
    Operation,
    Severity,
    Standard,
    Status,
    System,
    Target,
    TargetKind,
    Unknown,
    UnknownReason,
)

logger = logging.getLogger(__name__)

CITATIONS = ("164.312(e)(1)", "164.312(e)(2)(i)", "164.312(e)(2)(ii)")
PROBE_NOTE = "listed; probed only where the inventory sets probe_endpoints"
"""The `probe` evidence of the server findings: the endpoint is offered for live probing."""
NO_ADDRESS_NOTE = "listed, not probed: no TCP address (a Unix socket or libpq's default host)"
"""The `probe` evidence of a server reached by no `host:port` that could be probed."""
WEAK_PROTOCOLS = frozenset({"TLSv1", "TLSv1.1"})
SETTINGS_VIEW = "pg_catalog.pg_settings"
HBA_VIEW = "pg_catalog.pg_hba_file_rules"
ACTIVITY_VIEW = "pg_catalog.pg_stat_activity"
SSL_VIEW = "pg_catalog.pg_stat_ssl"
HBA_NEEDS = ("SELECT on pg_catalog.pg_hba_file_rules and EXECUTE on "
             "pg_catalog.pg_hba_file_rules() (superuser only by default)")
STATS_NEEDS = "pg_read_all_stats (or pg_monitor), to see other roles' sessions"
SETTINGS_NEEDS = "pg_read_all_settings (or pg_monitor), to see the TLS settings"


# --- client-side verification: sslmode -------------------------------------------------------

PLAINTEXT_SSLMODES = frozenset({"disable", "allow", "prefer"})
"""sslmodes that connect in plaintext, or fall back to it when the server offers no TLS."""
KNOWN_SSLMODES = PLAINTEXT_SSLMODES | {"require", "verify-ca", "verify-full"}


def judge_sslmode(sslmode: str | None, root_cert: bool) -> tuple[Status, str]:
    """
    The verdict on a libpq client's `sslmode`: FAIL for disable, allow and prefer (plaintext,
    or a silent fallback to it) and for require without a root certificate (encrypted, but any
    server is believed); WARN for verify-ca, or require with a root certificate (which libpq
    then treats as verify-ca): the chain is checked, the host name is not; PASS for verify-full.
    UNVERIFIED (with the reason as text) for no sslmode or an unknown one.
    """
    mode = (sslmode or "").strip().lower()
    if mode in PLAINTEXT_SSLMODES:
        return Status.FAIL, f"sslmode={mode} connects in plaintext or falls back to it"
    if mode == "require" and not root_cert:
        return Status.FAIL, ("sslmode=require without a root certificate encrypts but accepts "
                             "any server's certificate")
    if mode in ("require", "verify-ca"):
        return Status.WARN, (f"sslmode={mode} verifies the server's certificate chain but not "
                             "its host name")
    if mode == "verify-full":
        return Status.PASS, "sslmode=verify-full verifies the server's chain and host name"
    if not mode:
        return Status.UNVERIFIED, ("no sslmode is set: libpq's default, prefer, applies unless "
                                   "PGSSLMODE is set where the client runs")
    return Status.UNVERIFIED, f"sslmode={sslmode!r} is not a value libpq knows"


@dataclass(frozen=True)
class ClientConnection:
    """One configured connection: its safe label and the TLS keywords of its conninfo."""

    role: Literal["application", "audit"]
    label: str
    """`user@host:port/dbname`, never the password."""
    sslmode: Fact[str | None]
    root_cert: bool
    service: bool
    """Whether it names a service, whose file may set sslmode out of sight."""


def client_connection(role: Literal["application", "audit"],
                      conn: PostgresConnection) -> ClientConnection:
    """The TLS keywords of one inventory connection (the conninfo is parsed, never kept)."""
    try:
        params = conninfo_to_dict(conn.libpq_conninfo())
    except psycopg.Error:
        unknown = Unknown(UnknownReason.UNPARSEABLE, "the configured conninfo could not be parsed")
        return ClientConnection(role, describe(conn), unknown, False, bool(conn.service))
    sslmode = params.get("sslmode")
    return ClientConnection(role, describe(conn), None if sslmode is None else str(sslmode),
                            bool(params.get("sslrootcert")), bool(params.get("service")))


def _postgres_config(target: Target) -> PostgresConfig:
    if not isinstance(target.config, PostgresConfig):
        raise TypeError(f"target {target.id} carries no PostgreSQL configuration")
    return target.config


def _connections(config: PostgresConfig) -> list[tuple[Literal["application", "audit"],
                                                       PostgresConnection]]:
    found: list[tuple[Literal["application", "audit"], PostgresConnection]] = [
        ("application", config.application)]
    if config.audit is not None:
        found.append(("audit", config.audit))
    return found


def _meta(id_: str, title: str, severity: Severity, description: str, remediation: str,
          *operations: Operation) -> CheckMeta:
    return CheckMeta(
        id=id_, title=title, family=Family.TRANSMISSION, standard=Standard.TRANSMISSION,
        citations=CITATIONS, severity=severity, target_kind=TargetKind.POSTGRES,
        description=description, remediation=remediation, operations=operations)


class ClientSslmode(Check[tuple[ClientConnection, ...]]):
    """
    Every configured PostgreSQL connection verifies the server: sslmode=verify-full.
    """

    meta = _meta(
        "postgres.transit.client_sslmode", "PostgreSQL clients verify the server (sslmode)",
        Severity.HIGH,
        "Reads the sslmode and sslrootcert keywords of the target's application and audit "
        "connection strings in the inventory. disable, allow and prefer fail (plaintext, or a "
        "silent fallback to it), as does require without a root certificate (any server is "
        "believed); verify-ca warns (no host name check); verify-full passes. A conninfo "
        "without sslmode is UNVERIFIED: libpq's default, prefer, applies unless PGSSLMODE or a "
        "service file sets another. Nothing is connected to.",
        "Connect with sslmode=verify-full and sslrootcert naming the CA that issued the "
        "server's certificate (the RDS bundle, your internal CA, or sslrootcert=system for a "
        "public CA).",
        Operation(System.FILE, "read the inventory's connection strings",
                  "the libpq keywords sslmode, sslrootcert and service"))

    def collect(self, ctx: CheckContext, target: Target) -> tuple[ClientConnection, ...]:
        """Parse the target's connection strings; no connection is made."""
        return tuple(client_connection(role, conn)
                     for role, conn in _connections(_postgres_config(target)))

    def evaluate(self, obs: tuple[ClientConnection, ...], target: Target,
                 policy: Policy) -> Sequence[Finding]:
        """One finding per configured connection."""
        make = self.findings(target)
        return [_judge_client(make, conn) for conn in obs]


def _judge_client(make: FindingBuilder[Any], conn: ClientConnection) -> Finding:
    resource = f"connection:{conn.role}"
    evidence: dict[str, EvidenceValue] = {
        "connection": conn.label, "sslmode": None if isinstance(conn.sslmode, Unknown)
        else conn.sslmode, "root_certificate": conn.root_cert, "service": conn.service}
    if isinstance(conn.sslmode, Unknown):
        return replace(make.unverified(resource, conn.sslmode, "the connection's sslmode"),
                       evidence=evidence)
    status, reason = judge_sslmode(conn.sslmode, conn.root_cert)
    subject = f"The {conn.role} connection ({conn.label})"
    if status is Status.UNVERIFIED:
        where = " or the service file" if conn.service else ""
        unknown = Unknown(UnknownReason.NOT_VISIBLE, f"{reason}{where}",
                          needs="sslmode=verify-full in the inventory's conninfo")
        return replace(make.unverified(resource, unknown, f"the sslmode of {subject}"),
                       evidence=evidence)
    return make.make(status, resource, f"{subject}: {reason}.", evidence=evidence)


# --- the servers: settings, pg_hba.conf and live sessions ------------------------------------

@dataclass(frozen=True)
class HbaLine:
    """One line of pg_hba.conf as `pg_hba_file_rules` reads it from disk."""

    line: int
    type: str
    address: str | None
    netmask: str | None
    method: str | None
    error: str | None


@dataclass(frozen=True)
class Sessions:
    """Live client sessions other than hipaacheck's own, counted by how they travel."""

    tls: int
    plaintext_remote: int
    plaintext_local: int
    """Plaintext over a unix socket or loopback: it never leaves the host."""
    hidden: int
    """Other roles' backends whose details the scanning role may not see."""
    weak_tls: int
    """TLS sessions on TLS 1.0 or 1.1."""
    versions: tuple[str, ...]


@dataclass(frozen=True)
class ServerFacts:
    """What one server's catalogs say about its transport security."""

    label: str
    """`host:port` of the server as the inventory names it."""
    roles: tuple[str, ...]
    """Which of the target's connections reach this server."""
    ssl: Fact[str]
    min_protocol: Fact[str]
    hba: Fact[tuple[HbaLine, ...]]
    sessions: Fact[Sessions]
    reached: tuple[str, int] | None = None
    """The TCP host and port the live connection used (libpq's defaults, `PGPORT` and the
    service file applied); None over a Unix socket or when no connection was made."""

    @property
    def resource(self) -> str:
        """The finding resource: `server:<host:port>`."""
        return f"server:{self.label}"

    @property
    def address(self) -> tuple[str, int] | None:
        """
        The server's TCP host and port; None for a Unix socket, several hosts, or a host or
        port the conninfo leaves to libpq's defaults (`?`).
        """
        host, _, port = self.label.rpartition(":")
        if not host or host == "?" or host.startswith(("/", "@")) or "," in host \
                or not port.isdigit():
            return self.reached if host in ("", "?") or port == "?" else None
        return host.strip("[]"), int(port)

    def evidence(self) -> dict[str, EvidenceValue]:
        """The server's endpoint, how it is probed, and the connections that reach it."""
        return {"connections": self.roles, "endpoints": (self.label,),
                "probe": PROBE_NOTE if self.address else NO_ADDRESS_NOTE}

    def endpoint(self, target: Target) -> list[Endpoint]:
        """The server's address, probed through STARTTLS; with `ssl = off` it is plaintext."""
        if self.address is None:
            return []
        host, port = self.address
        return [Endpoint(host, port, target.id, target.name, "PostgreSQL server", "internal",
                         tls=self.ssl != "off", starttls="postgres")]


_SETTINGS_SQL = ("SELECT name, setting FROM pg_catalog.pg_settings "
                 "WHERE name IN ('ssl', 'ssl_min_protocol_version', 'server_version_num')")
_HBA_SQL = ("SELECT line_number, type, address, netmask, auth_method, error "
            "FROM pg_catalog.pg_hba_file_rules ORDER BY line_number")
_SESSIONS_SQL = """
SELECT a.backend_type, a.client_addr::text, a.client_port, s.ssl, s.version
FROM pg_catalog.pg_stat_activity AS a
LEFT JOIN pg_catalog.pg_stat_ssl AS s ON s.pid = a.pid
WHERE a.pid <> pg_catalog.pg_backend_pid()
"""


def _server_label(conn: PostgresConnection) -> str:
    """`host:port` from the conninfo's safe label."""
    return describe(conn).split("@", 1)[-1].split("/", 1)[0]


def _settings(connection: Any) -> tuple[Fact[str], Fact[str]]:
    rows = catalog_query(connection, _SETTINGS_SQL, needs=SETTINGS_VIEW)
    if isinstance(rows, Unknown):
        return rows, rows
    values = {str(name): str(setting) for name, setting in rows}
    version = int(values.get("server_version_num", "0") or 0)
    # The TLS settings but `ssl` are hidden from roles without pg_read_all_settings; before
    # PostgreSQL 12 the minimum version did not exist (and TLS 1.0 was accepted).
    missing = Unknown(UnknownReason.ACCESS_DENIED, "ssl_min_protocol_version is hidden from the "
                      "scanning role", needs=SETTINGS_NEEDS) if version >= 120000 else Unknown(
        UnknownReason.NOT_SUPPORTED, "the server predates ssl_min_protocol_version "
        "(PostgreSQL before 12 accepts TLS 1.0)")
    return (values.get("ssl", Unknown(UnknownReason.NOT_VISIBLE, "pg_settings lists no ssl")),
            values.get("ssl_min_protocol_version", missing))


def _hba(connection: Any) -> Fact[tuple[HbaLine, ...]]:
    rows = catalog_query(connection, _HBA_SQL, needs=HBA_NEEDS)
    if isinstance(rows, Unknown):
        return rows
    return tuple(HbaLine(int(r[0]), str(r[1] or ""), r[2], r[3], r[4], r[5]) for r in rows)


def _is_local_address(text: str | None) -> bool:
    try:
        return ipaddress.ip_address(text or "").is_loopback
    except ValueError:
        return False


def _sessions(connection: Any) -> Fact[Sessions]:
    rows = catalog_query(connection, _SESSIONS_SQL,
                         needs=f"{ACTIVITY_VIEW} and {SSL_VIEW}")
    if isinstance(rows, Unknown):
        return rows
    tls = remote = local = hidden = weak = 0
    versions: set[str] = set()
    for backend_type, address, port, ssl, version in rows:
        if backend_type is None:
            hidden += 1
        elif backend_type != "client backend":
            continue
        elif ssl:
            tls += 1
            versions.add(str(version))
            weak += version in WEAK_PROTOCOLS
        elif address is None or port == -1 or _is_local_address(address.split("/")[0]):
            local += 1
        else:
            remote += 1
    return Sessions(tls, remote, local, hidden, weak, tuple(sorted(versions)))


def _reached(connection: Any) -> tuple[str, int] | None:
    """The TCP address a live psycopg connection reached; None over a Unix socket."""
    host, port = connection.info.host, connection.info.port
    if not host or str(host).startswith("/") or not port:
        return None
    return str(host), int(port)


def read_server(ctx: CheckContext, conn: PostgresConnection, roles: tuple[str, ...]
                ) -> ServerFacts:
    """One server's settings, pg_hba.conf lines and live sessions, once per scan."""
    label = _server_label(conn)

    def compute() -> ServerFacts:
        try:
            with ctx.clients.postgres(conn) as connection:
                ssl, minimum = _settings(connection)
                return ServerFacts(label, roles, ssl, minimum, _hba(connection),
                                   _sessions(connection), _reached(connection))
        except PostgresUnavailable as exc:
            return ServerFacts(label, roles, exc.unknown, exc.unknown, exc.unknown, exc.unknown)

    return ctx.memo.get(("postgres.transit", describe(conn), roles), compute)


def servers(ctx: CheckContext, target: Target) -> tuple[ServerFacts, ...]:
    """The distinct servers a target's connections reach (the audit store's when elsewhere)."""
    config = _postgres_config(target)
    if config.audit is None or same_server(config.application, config.audit) is True:
        roles: tuple[str, ...] = ("application", "audit") if config.audit else ("application",)
        return (read_server(ctx, config.application, roles),)
    return (read_server(ctx, config.application, ("application",)),
            read_server(ctx, config.audit, ("audit",)))


SERVER_OPERATIONS = (
    Operation(System.POSTGRES, SETTINGS_VIEW, "read ssl and ssl_min_protocol_version"),
    Operation(System.POSTGRES, HBA_VIEW, "read pg_hba.conf lines"),
    Operation(System.POSTGRES, ACTIVITY_VIEW, "list live client sessions"),
    Operation(System.POSTGRES, SSL_VIEW, "see which sessions use TLS"),
)


class _ServerCheck(Check[tuple[ServerFacts, ...]]):
    """A check judging each distinct server of a target; subclasses judge one server."""

    def collect(self, ctx: CheckContext, target: Target) -> tuple[ServerFacts, ...]:
        """Read each distinct server's catalogs (shared by every server check)."""
        return servers(ctx, target)

    def evaluate(self, obs: tuple[ServerFacts, ...], target: Target,
                 policy: Policy) -> Sequence[Finding]:
        """One finding per server."""
        make = self.findings(target)
        return [replace(finding, evidence={**server.evidence(), **finding.evidence})
                for server in obs for finding in [self.judge(make, server)]]

    def judge(self, make: FindingBuilder[Any], server: ServerFacts) -> Finding:
        """The finding for one server."""
        raise NotImplementedError


class ServerTls(_ServerCheck):
    """
    The PostgreSQL server offers TLS (`ssl = on`) with TLS 1.2 as its minimum version.
    """

    meta = _meta(
        "postgres.transit.server_tls", "PostgreSQL serves TLS 1.2 or later", Severity.HIGH,
        "Reads ssl and ssl_min_protocol_version from pg_settings on each distinct server of "
        "the target. ssl off (every connection is plaintext) fails, as does a minimum protocol "
        "of TLSv1 or TLSv1.1. The server's endpoint is listed, and probed live (STARTTLS) "
        "when the inventory sets `probe_endpoints` for the source.",
        "Set ssl = on with a certificate from a CA the clients trust (ssl_cert_file, "
        "ssl_key_file) and ssl_min_protocol_version = 'TLSv1.2' in postgresql.conf, then "
        "reload.",
        *SERVER_OPERATIONS[:1])

    def judge(self, make: FindingBuilder[Any], server: ServerFacts) -> Finding:
        """The finding for one server's ssl settings."""
        if isinstance(server.ssl, Unknown):
            return make.unverified(server.resource, server.ssl, "the ssl setting")
        evidence: dict[str, EvidenceValue] = {"ssl": server.ssl, "ssl_min_protocol_version": (
            None if isinstance(server.min_protocol, Unknown) else server.min_protocol)}
        if server.ssl != "on":
            return make.failed(server.resource, f"Server {server.label} has ssl = "
                               f"{server.ssl}: every connection is plaintext.", evidence=evidence)
        if isinstance(server.min_protocol, Unknown):
            return replace(make.unverified(server.resource, server.min_protocol,
                                           "the minimum TLS version"), evidence=evidence)
        if server.min_protocol in WEAK_PROTOCOLS:
            return make.failed(server.resource, f"Server {server.label} accepts "
                               f"{server.min_protocol} (ssl_min_protocol_version).",
                               evidence=evidence)
        return make.passed(server.resource, f"Server {server.label} offers TLS with minimum "
                           f"{server.min_protocol}.", evidence=evidence)

    def endpoints(self, obs: tuple[ServerFacts, ...], target: Target) -> Sequence[Endpoint]:
        """Each distinct server's address; this check alone offers it."""
        return [endpoint for server in obs for endpoint in server.endpoint(target)]


def _non_local(line: HbaLine) -> bool:
    """Whether a host line's address admits clients from other hosts (a host name may)."""
    address = (line.address or "all").lower()
    if address in ("samehost", "localhost"):
        return False
    if address in ("all", "samenet"):
        return True
    try:
        prefix = int(ipaddress.ip_address(line.netmask)).bit_count() if line.netmask \
            else None
        network = ipaddress.ip_network(address if prefix is None else f"{address}/{prefix}",
                                       strict=False)
    except ValueError:
        return True
    return not network.is_loopback


PLAINTEXT_HBA_TYPES = frozenset({"host", "hostnossl", "hostnogssenc"})
"""Line types that match connections without TLS: `host` matches both, `hostnossl` only
plaintext, `hostnogssenc` anything not GSSAPI-encrypted."""


class HbaPlaintext(_ServerCheck):
    """
    pg_hba.conf admits clients from other hosts only over TLS (`hostssl`), never over `host` or
    `hostnossl` lines.
    """

    meta = _meta(
        "postgres.transit.hba_plaintext", "pg_hba.conf admits remote clients over TLS only",
        Severity.HIGH,
        "Reads pg_hba_file_rules on each distinct server: a host, hostnossl or hostnogssenc "
        "line for addresses beyond loopback whose method is not reject admits plaintext "
        "connections from the network and fails. The view shows pg_hba.conf as it is on disk, "
        "which is what the server loads at its next reload. Reading it needs superuser or "
        "explicit grants; without them the check is UNVERIFIED.",
        "Replace host lines for remote addresses with hostssl lines (and add hostnossl ... "
        "reject before them), then reload; keep host lines for 127.0.0.1/32 and ::1/128 only.",
        *SERVER_OPERATIONS[1:2])

    def judge(self, make: FindingBuilder[Any], server: ServerFacts) -> Finding:
        """The finding for one server's pg_hba.conf."""
        if isinstance(server.hba, Unknown):
            return make.unverified(server.resource, server.hba, "pg_hba.conf")
        plain = [line for line in server.hba if line.type in PLAINTEXT_HBA_TYPES
                 and (line.method or "") != "reject" and _non_local(line)]
        errors = [line.line for line in server.hba if line.error]
        evidence: dict[str, EvidenceValue] = {
            "lines": len(server.hba), "plaintext_remote_lines": tuple(
                f"{line.line}: {line.type} {line.address or 'all'}" for line in plain),
            "lines_with_errors": tuple(errors)}
        if plain:
            return make.failed(server.resource, f"Server {server.label}'s pg_hba.conf admits "
                               f"plaintext from other hosts on lines "
                               f"{', '.join(str(line.line) for line in plain)}.",
                               evidence=evidence)
        if errors:
            unknown = Unknown(UnknownReason.UNPARSEABLE, f"pg_hba.conf lines "
                              f"{', '.join(map(str, errors))} have errors the server reports")
            return replace(make.unverified(server.resource, unknown, "pg_hba.conf"),
                           evidence=evidence)
        return make.passed(server.resource, f"Server {server.label}'s pg_hba.conf admits other "
                           "hosts over TLS only.", evidence=evidence)


class PlaintextSessions(_ServerCheck):
    """
    No live session reaches the PostgreSQL server from another host without TLS, or on TLS 1.0
    or 1.1.
    """

    meta = _meta(
        "postgres.transit.plaintext_sessions", "No live remote session is plaintext",
        Severity.HIGH,
        "Joins pg_stat_activity with pg_stat_ssl on each distinct server and counts the client "
        "sessions other than hipaacheck's own: a plaintext session from an address beyond "
        "loopback, or a session on TLS 1.0 or 1.1, fails. Sessions over a unix socket or "
        "loopback never leave the host and are counted, not judged. Other roles' sessions are "
        "hidden from a role without pg_read_all_stats: then the check is UNVERIFIED.",
        "Find the clients (pg_stat_activity.client_addr, application_name) and make them "
        "connect with sslmode=verify-full; then refuse plaintext in pg_hba.conf.",
        *SERVER_OPERATIONS[2:])

    def judge(self, make: FindingBuilder[Any], server: ServerFacts) -> Finding:
        """The finding for one server's live sessions."""
        sessions = server.sessions
        if isinstance(sessions, Unknown):
            return make.unverified(server.resource, sessions, "the live sessions")
        evidence: dict[str, EvidenceValue] = {
            "tls_sessions": sessions.tls, "plaintext_remote_sessions": sessions.plaintext_remote,
            "plaintext_local_sessions": sessions.plaintext_local,
            "hidden_sessions": sessions.hidden, "weak_tls_sessions": sessions.weak_tls,
            "tls_versions": sessions.versions}
        if sessions.plaintext_remote or sessions.weak_tls:
            return make.failed(server.resource, f"Server {server.label} has "
                               f"{sessions.plaintext_remote} plaintext remote sessions and "
                               f"{sessions.weak_tls} on TLS 1.0 or 1.1.", evidence=evidence)
        if sessions.hidden:
            unknown = Unknown(UnknownReason.ACCESS_DENIED, f"{sessions.hidden} backends of other "
                              "roles are hidden from the scanning role", needs=STATS_NEEDS)
            return replace(make.unverified(server.resource, unknown, "every live session"),
                           evidence=evidence)
        return make.passed(server.resource, f"Server {server.label} has no plaintext remote "
                           "session.", evidence=evidence)


CHECKS: tuple[type[Check[Any]], ...] = (ServerTls, HbaPlaintext, PlaintextSessions,
                                        ClientSslmode)
"""Every check of this module."""
