"""
The server endpoint the PostgreSQL server check offers for a live STARTTLS probe, from
hand-built observations: a TCP address is offered, a Unix socket or an address left to libpq's
defaults is not, and `ssl = off` is plaintext by configuration. (The same against real servers,
through the planner and the TLS probe, is in test_transit_postgres_collect.py.)
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from hipaacheck.check import Check, Policy
from hipaacheck.checks.postgres.transit import (
    CHECKS,
    NO_ADDRESS_NOTE,
    PROBE_NOTE,
    ServerFacts,
    ServerTls,
)
from hipaacheck.model import Target, TargetKind, Unknown, UnknownReason

TARGET = Target(TargetKind.POSTGRES, "postgres:clinic", "clinic")
UNREACHABLE = Unknown(UnknownReason.UNREACHABLE, "connection refused")
SERVER = ServerFacts("db.internal:5432", ("application",), "on", "TLSv1.2", (), UNREACHABLE)


@pytest.mark.parametrize(("label", "address"), [
    ("db.internal:5432", "db.internal:5432"),
    ("10.0.4.7:6432", "10.0.4.7:6432"),
    ("::1:5432", "[::1]:5432"),
])
def test_a_tcp_address_is_offered_for_a_starttls_probe(label: str, address: str) -> None:
    server = replace(SERVER, label=label)

    [endpoint] = ServerTls().endpoints((server,), TARGET)
    [finding] = ServerTls().evaluate((server,), TARGET, Policy())

    assert (endpoint.address, endpoint.tls, endpoint.zone, endpoint.starttls) == (
        address, True, "internal", "postgres")
    assert (endpoint.source, endpoint.origin, endpoint.via) == (
        "postgres:clinic", "clinic", "PostgreSQL server")
    assert (finding.evidence["endpoints"], finding.evidence["probe"]) == ((label,), PROBE_NOTE)


@pytest.mark.parametrize("label", [
    "/var/run/postgresql:5432",  # a Unix socket directory
    "@pg-abstract:5432",  # an abstract Unix socket
    "?:5432",  # the host is left to PGHOST or the service file
    "db.internal:?",  # the port is left to PGPORT
    "db-a,db-b:5432,5433",  # several hosts: libpq picks one at connect time
    "(unparseable conninfo)",
])
def test_no_tcp_address_offers_nothing(label: str) -> None:
    server = replace(SERVER, label=label)

    [finding] = ServerTls().evaluate((server,), TARGET, Policy())

    assert list(ServerTls().endpoints((server,), TARGET)) == []
    assert finding.evidence["probe"] == NO_ADDRESS_NOTE


@pytest.mark.parametrize(("ssl", "tls"), [
    ("on", True),
    ("off", False),  # plaintext by configuration: listed, never probed
    (Unknown(UnknownReason.ACCESS_DENIED, "hidden", needs="pg_read_all_settings"), True),
    (UNREACHABLE, True),  # the probe will tell
])
def test_ssl_off_is_plaintext_by_configuration(ssl: str | Unknown, tls: bool) -> None:
    [endpoint] = ServerTls().endpoints((replace(SERVER, ssl=ssl),), TARGET)
    assert endpoint.tls is tls


def test_every_distinct_server_is_offered_once_by_the_server_check_alone() -> None:
    servers = (SERVER, replace(SERVER, label="audit.internal:5432", roles=("audit",)))

    found = ServerTls().endpoints(servers, TARGET)

    assert [e.host for e in found] == ["db.internal", "audit.internal"]
    # The pg_hba.conf and session checks judge the same servers and offer nothing.
    assert [kind for kind in CHECKS if kind.endpoints is not Check.endpoints] == [ServerTls]


def test_an_address_left_to_libpq_is_offered_where_the_connection_went() -> None:
    server = replace(SERVER, label="db.internal:?", reached=("db.internal", 6432))

    [endpoint] = ServerTls().endpoints((server,), TARGET)

    assert endpoint.address == "db.internal:6432"
