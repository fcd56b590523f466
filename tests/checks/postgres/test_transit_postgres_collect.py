"""
Transmission-security checks of PostgreSQL against real servers: one with TLS on (a certificate
minted at start) and one with TLS off whose pg_hba.conf admits the network in plaintext, read by
a monitoring role with the grants the checks document and by an application role without them;
then an unreachable server, and the inventory's connection strings.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from hipaacheck.check import Check, CheckContext
from hipaacheck.checks.postgres import transit
from hipaacheck.checks.postgres.transit import (
    HBA_NEEDS,
    NO_ADDRESS_NOTE,
    PROBE_NOTE,
    SETTINGS_NEEDS,
    STATS_NEEDS,
    ClientSslmode,
    HbaPlaintext,
    PlaintextSessions,
    ServerTls,
)
from hipaacheck.checks.tls.endpoint import ProtocolVersions
from hipaacheck.clients.postgres import check_read_only_statement
from hipaacheck.config import PostgresConfig, PostgresConnection, ProbeEndpointsConfig
from hipaacheck.discovery import ProbeRequest, plan_probes
from hipaacheck.lab.postgres import PostgresServer
from hipaacheck.model import Endpoint, Finding, Status, Target, TargetKind, UnknownReason
from hipaacheck.redact import Secret

REMOTE_HBA = (
    "\n# added by the transmission tests: never loaded, the server listens on loopback only\n"
    "host all all 10.0.0.0/8 scram-sha-256\n"
    "hostnossl all all 0.0.0.0/0 scram-sha-256\n"
    "host all all 192.168.0.0/16 reject\n"
    "hostssl all all 172.16.0.0/12 scram-sha-256\n")


@dataclass(frozen=True)
class Lab:
    """A started server and conninfos for its monitoring and application roles."""

    server: PostgresServer
    passwords: dict[str, str]

    def conn(self, role: str, sslmode: str | None = None, **extra: str) -> PostgresConnection:
        mode = sslmode or ("verify-full" if self.server.ssl else "disable")
        params = {"host": self.server.host, "port": str(self.server.port), "dbname": "postgres",
                  "user": role, "password": self.passwords[role], "sslmode": mode, **extra}
        if self.server.ssl and mode.startswith("verify") and "sslrootcert" not in extra:
            params["sslrootcert"] = str(self.server.cert_path)
        return PostgresConnection(conninfo=Secret(" ".join(f"{k}={v}" for k, v in
                                                            params.items())))


def _start(workdir: Path, *, ssl: bool) -> Lab:
    server = PostgresServer(workdir, ssl=ssl).start()
    passwords = {role: secrets.token_urlsafe(18) for role in ("auditor", "app")}
    with server.admin_connect() as conn:
        for role, password in passwords.items():
            conn.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
                sql.Identifier(role), password))
        # The grants the checks' metadata documents for the monitoring role.
        conn.execute("GRANT pg_monitor TO auditor")
        conn.execute("GRANT SELECT ON pg_catalog.pg_hba_file_rules TO auditor")
        conn.execute("GRANT EXECUTE ON FUNCTION pg_catalog.pg_hba_file_rules() TO auditor")
        if not ssl:
            [hba_file] = conn.execute("SHOW hba_file").fetchone() or [None]
            with open(str(hba_file), "a", encoding="utf-8") as hba:
                hba.write(REMOTE_HBA)
    return Lab(server, passwords)


@pytest.fixture(scope="module")
def tls_on(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    lab = _start(tmp_path_factory.mktemp("pg-tls-on"), ssl=True)
    yield lab
    lab.server.stop()


@pytest.fixture(scope="module")
def tls_off(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    lab = _start(tmp_path_factory.mktemp("pg-tls-off"), ssl=False)
    yield lab
    lab.server.stop()


def target(application: PostgresConnection, audit: PostgresConnection | None = None) -> Target:
    config = PostgresConfig(name="clinic", application=application, audit=audit)
    return Target(TargetKind.POSTGRES, "postgres:clinic", "clinic", config)


def run(check: Check[object], ctx: CheckContext, where: Target) -> list[Finding]:
    return list(check.evaluate(check.collect(ctx, where), where, ctx.policy))


def test_tls_on_server_passes_every_server_check(tls_on: Lab, pg_ctx: CheckContext) -> None:
    plaintext = psycopg.connect(tls_on.conn("app", "disable").libpq_conninfo())
    try:
        where = target(tls_on.conn("auditor"))
        [server_tls] = run(ServerTls(), pg_ctx, where)
        [hba] = run(HbaPlaintext(), pg_ctx, where)
        [sessions] = run(PlaintextSessions(), pg_ctx, where)
    finally:
        plaintext.close()

    assert (server_tls.status, server_tls.evidence["ssl_min_protocol_version"]) == (
        Status.PASS, "TLSv1.2")
    assert hba.status == Status.PASS
    assert sessions.status == Status.PASS
    # The plaintext session above arrives over loopback: counted, never leaving the host.
    assert sessions.evidence["plaintext_local_sessions"] >= 1
    assert sessions.evidence["hidden_sessions"] == 0
    assert server_tls.evidence["endpoints"] == (f"127.0.0.1:{tls_on.server.port}",)
    assert server_tls.evidence["probe"] == PROBE_NOTE


def test_tls_off_server_fails_and_names_the_plaintext_lines(tls_off: Lab,
                                                            pg_ctx: CheckContext) -> None:
    where = target(tls_off.conn("auditor"))
    [server_tls] = run(ServerTls(), pg_ctx, where)
    [hba] = run(HbaPlaintext(), pg_ctx, where)
    [sessions] = run(PlaintextSessions(), pg_ctx, where)

    assert (server_tls.status, server_tls.evidence["ssl"]) == (Status.FAIL, "off")
    assert hba.status == Status.FAIL
    lines = hba.evidence["plaintext_remote_lines"]
    assert [line.split(": ", 1)[1] for line in lines] == ["host 10.0.0.0", "hostnossl 0.0.0.0"]
    assert sessions.status == Status.PASS  # every session is on loopback


def test_without_the_documented_grants_the_server_checks_are_unverified(
        tls_on: Lab, pg_ctx: CheckContext) -> None:
    where = target(tls_on.conn("app"))
    [hba] = run(HbaPlaintext(), pg_ctx, where)
    [sessions] = run(PlaintextSessions(), pg_ctx, where)
    [server_tls] = run(ServerTls(), pg_ctx, where)

    assert (hba.status, hba.unknown_reason, hba.needs) == (
        Status.UNVERIFIED, UnknownReason.ACCESS_DENIED, HBA_NEEDS)
    assert (sessions.status, sessions.needs) == (Status.UNVERIFIED, STATS_NEEDS)
    # Every role sees `ssl`; only pg_read_all_settings shows the minimum protocol version.
    assert (server_tls.status, server_tls.needs) == (Status.UNVERIFIED, SETTINGS_NEEDS)


def test_an_unreachable_server_is_unverified_not_failed(closed_port: int,
                                                        pg_ctx: CheckContext) -> None:
    conn = PostgresConnection(conninfo=Secret(
        f"host=127.0.0.1 port={closed_port} dbname=x user=y password=never-sent-1 "
        "sslmode=disable connect_timeout=1"))
    for kind in (ServerTls, HbaPlaintext, PlaintextSessions):
        [finding] = run(kind(), pg_ctx, target(conn))
        assert (finding.status, finding.unknown_reason) == (Status.UNVERIFIED,
                                                            UnknownReason.UNREACHABLE)
        assert "never-sent-1" not in repr(finding)


def test_two_servers_of_one_target_are_judged_apart(tls_on: Lab, tls_off: Lab,
                                                    pg_ctx: CheckContext) -> None:
    where = target(tls_on.conn("auditor"), tls_off.conn("auditor"))

    found = {f.evidence["connections"]: f.status for f in run(ServerTls(), pg_ctx, where)}

    assert found == {("application",): Status.PASS, ("audit",): Status.FAIL}


def test_one_server_is_read_once_for_every_check(tls_on: Lab, pg_ctx: CheckContext) -> None:
    where = target(tls_on.conn("auditor"), tls_on.conn("auditor"))
    for kind in (ServerTls, HbaPlaintext, PlaintextSessions):
        [finding] = run(kind(), pg_ctx, where)
        assert finding.evidence["connections"] == ("application", "audit")


@pytest.mark.parametrize(("mode", "extra", "expected"), [
    ("verify-full", {}, Status.PASS),
    ("verify-ca", {}, Status.WARN),
    ("require", {}, Status.FAIL),
    ("prefer", {}, Status.FAIL),
])
def test_client_sslmode_of_the_inventory(tls_on: Lab, pg_ctx: CheckContext, mode: str,
                                         extra: dict[str, str], expected: Status) -> None:
    app = tls_on.conn("app", mode, **extra)

    [finding] = run(ClientSslmode(), pg_ctx, target(app))

    assert finding.status == expected
    assert finding.evidence["connection"] == f"app@127.0.0.1:{tls_on.server.port}/postgres"
    assert tls_on.passwords["app"] not in repr(finding)
    # The verdict is about the conninfo, and the conninfo does connect as configured.
    psycopg.connect(app.libpq_conninfo()).close()


def test_client_sslmode_judges_each_connection(tls_on: Lab, pg_ctx: CheckContext) -> None:
    where = target(tls_on.conn("app"), PostgresConnection(conninfo=Secret(
        "host=audit.internal dbname=audit user=writer")))

    found = {f.resource: f for f in run(ClientSslmode(), pg_ctx, where)}

    assert found["connection:application"].status == Status.PASS
    assert (found["connection:audit"].status, found["connection:audit"].unknown_reason) == (
        Status.UNVERIFIED, UnknownReason.NOT_VISIBLE)


def test_every_statement_is_a_plain_read() -> None:
    for text in (transit._SETTINGS_SQL, transit._HBA_SQL, transit._SESSIONS_SQL):
        check_read_only_statement(text)


# --- the server endpoint, offered for live probing --------------------------------------------

def offered(check: Check[object], ctx: CheckContext, where: Target) -> list[Endpoint]:
    return list(check.endpoints(check.collect(ctx, where), where))


def test_each_server_is_offered_for_a_starttls_probe(tls_on: Lab, tls_off: Lab,
                                                     pg_ctx: CheckContext) -> None:
    where = target(tls_on.conn("auditor"), tls_off.conn("auditor"))

    found = offered(ServerTls(), pg_ctx, where)

    assert [(e.host, e.port, e.tls) for e in found] == [
        ("127.0.0.1", tls_on.server.port, True),
        ("127.0.0.1", tls_off.server.port, False)]  # ssl = off: listed, never probed
    assert {(e.source, e.origin, e.via, e.zone, e.starttls, e.unprobeable) for e in found} == {
        ("postgres:clinic", "clinic", "PostgreSQL server", "internal", "postgres", None)}
    # The other checks judge the same servers and leave the offering to the server check.
    for kind in (HbaPlaintext, PlaintextSessions, ClientSslmode):
        assert offered(kind(), pg_ctx, where) == [], kind.meta.id


def test_an_unreachable_server_is_still_offered(closed_port: int, pg_ctx: CheckContext) -> None:
    conn = PostgresConnection(conninfo=Secret(
        f"host=127.0.0.1 port={closed_port} dbname=x user=y password=never-sent-2 "
        "connect_timeout=1"))

    [endpoint] = offered(ServerTls(), pg_ctx, target(conn))

    # The address is the inventory's; whether it speaks TLS is for the probe to tell.
    assert (endpoint.port, endpoint.tls) == (closed_port, True)


def test_a_unix_socket_offers_nothing(tls_on: Lab, pg_ctx: CheckContext) -> None:
    with tls_on.server.admin_connect() as conn:
        [directory] = conn.execute("SHOW unix_socket_directories").fetchone() or [""]
    where = target(tls_on.conn("auditor", "disable", host=str(directory).split(",")[0]))
    check = ServerTls()
    obs = check.collect(pg_ctx, where)

    [finding] = check.evaluate(obs, where, pg_ctx.policy)

    assert finding.status == Status.PASS  # read over the socket
    assert finding.evidence["probe"] == NO_ADDRESS_NOTE
    assert check.endpoints(obs, where) == []


def test_the_offered_endpoint_is_probed_through_starttls(tls_on: Lab,
                                                         pg_ctx: CheckContext) -> None:
    where = target(tls_on.conn("auditor"))
    found = offered(ServerTls(), pg_ctx, where)
    setting = ProbeEndpointsConfig(ca_bundle=tls_on.server.cert_path)

    records, [probe] = plan_probes(found, ProbeRequest({where.id: setting}))
    check = ProtocolVersions()
    findings = check.evaluate(check.collect(pg_ctx, probe), probe, pg_ctx.policy)

    assert [r.note for r in records] == ["probed"]
    assert probe.name == f"127.0.0.1:{tls_on.server.port}"
    # The probe spoke PostgreSQL's SSLRequest first, then TLS: the server's own versions.
    assert [(f.status, f.evidence["accepted_versions"]) for f in findings] == [
        (Status.PASS, ("TLS 1.2", "TLS 1.3"))]


def test_a_port_left_to_libpq_is_offered_at_the_port_the_connection_used(
        tls_on: Lab, pg_ctx: CheckContext, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a conninfo without a port: libpq takes it from PGPORT
    monkeypatch.setenv("PGPORT", str(tls_on.server.port))
    conn = tls_on.conn("auditor")
    text = conn.conninfo.reveal().replace(f"port={tls_on.server.port} ", "")
    assert "port=" not in text
    where = target(PostgresConnection(conninfo=Secret(text)))

    [endpoint] = offered(ServerTls(), pg_ctx, where)

    assert (endpoint.host, endpoint.port, endpoint.tls) == ("127.0.0.1", tls_on.server.port, True)
