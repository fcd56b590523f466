"""
The read-only PostgreSQL client against a real server: sessions that cannot write, connection
failures explained without the conninfo, and catalog queries that fail into `Unknown`.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator

import psycopg
import pytest
from psycopg import errors as pg_errors

from hipaacheck.clients.postgres import (
    ConnectFailure,
    PostgresUnavailable,
    catalog_query,
    catalog_row,
    check_read_only_statement,
    classify_connect_error,
    connect_read_only,
    database_name,
    describe,
    retarget,
    same_location,
    same_server,
)
from hipaacheck.config import PostgresConnection
from hipaacheck.errors import ReadOnlyViolation
from hipaacheck.lab.postgres import SeededLab, seeded_server
from hipaacheck.model import Unknown, UnknownReason
from hipaacheck.redact import Secret

SENTINEL = "Sentinel-Password-7f3a"


def _conn(conninfo: str) -> PostgresConnection:
    """An inventory connection from a conninfo string."""
    return PostgresConnection(conninfo=Secret(conninfo))


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeededLab]:
    """A seeded server for this module."""
    with seeded_server(tmp_path_factory.mktemp("pg-client")) as lab:
        yield lab


@pytest.fixture()
def session(lab: SeededLab) -> Iterator[psycopg.Connection]:
    """A read-only session as the application role, with a 2 s statement timeout."""
    with connect_read_only(lab.app(), timeout=2) as connection:
        yield connection


def test_session_is_read_only_and_bounded(session: psycopg.Connection) -> None:
    assert session.read_only is True and session.autocommit is False
    settings: dict[str, str] = dict(session.execute(
        "SELECT name, setting FROM pg_settings WHERE name IN "
        "('default_transaction_read_only', 'statement_timeout', 'transaction_read_only', "
        "'application_name')").fetchall())
    assert settings == {"default_transaction_read_only": "on", "transaction_read_only": "on",
                        "statement_timeout": "2000", "application_name": "hipaacheck"}


def test_writes_refused_by_the_server(session: psycopg.Connection) -> None:
    # A data-modifying CTE passes the statement guard, and the server refuses it.
    with pytest.raises(pg_errors.ReadOnlySqlTransaction):
        session.execute("WITH w AS (INSERT INTO public.audit_log (actor, action, object) "
                        "VALUES ('x', 'y', 'z') RETURNING 1) SELECT * FROM w")


def test_plain_insert_refused_by_the_server_even_past_the_guard(
        session: psycopg.Connection) -> None:
    # An unguarded cursor, and the session default switched off inside the transaction:
    # psycopg's BEGIN READ ONLY still holds.
    raw = psycopg.Cursor(session)
    raw.execute("SET default_transaction_read_only = off")
    with pytest.raises(pg_errors.ReadOnlySqlTransaction):
        raw.execute("INSERT INTO public.audit_log (actor, action, object) VALUES ('x', 'y', 'z')")


@pytest.mark.parametrize("statement", [
    "INSERT INTO public.audit_log (actor, action, object) VALUES ('x', 'y', 'z')",
    "  -- comment\n  update public.audit_log SET actor = 'x'",
    "DELETE FROM public.audit_log",
    "SET default_transaction_read_only = off",
    "SELECT 1; DELETE FROM public.audit_log",
    "SELECT set_config('default_transaction_read_only', 'off', false)",
    "SELECT pg_terminate_backend(1)",
    "COPY public.audit_log FROM STDIN",
    "",
])
def test_statement_guard_refuses(session: psycopg.Connection, statement: str) -> None:
    with pytest.raises(ReadOnlyViolation):
        session.execute(statement)


def test_statement_guard_allows_reading_statements() -> None:
    for statement in ("SELECT 1", "/* c */ WITH x AS (SELECT 1) SELECT * FROM x", "SHOW port",
                      "VALUES (1)", "TABLE pg_catalog.pg_am", "select 1;"):
        check_read_only_statement(statement)


def test_session_cannot_leave_read_only_mode(session: psycopg.Connection) -> None:
    session.rollback()
    with pytest.raises(ReadOnlyViolation):
        session.read_only = False
    with pytest.raises(ReadOnlyViolation):
        session.autocommit = True
    with pytest.raises(ReadOnlyViolation):
        session.cursor(name="named").execute("DELETE FROM public.audit_log")
    assert session.read_only is True and session.autocommit is False


def _assert_safe(exc: PostgresUnavailable) -> None:
    text = f"{exc} {exc.unknown}"
    assert SENTINEL not in text
    assert "FATAL" not in text and "password=" not in text


@pytest.mark.parametrize(("dbname", "user", "password", "failure", "reason"), [
    ("clinic", "clinic_app", SENTINEL, ConnectFailure.AUTHENTICATION,
     UnknownReason.ACCESS_DENIED),
    ("clinic", "nobody_here", SENTINEL, ConnectFailure.AUTHENTICATION,
     UnknownReason.ACCESS_DENIED),
    ("audit", "clinic_app", None, ConnectFailure.CONNECT_DENIED, UnknownReason.ACCESS_DENIED),
    ("no_such_db", "clinic_app", None, ConnectFailure.NO_DATABASE, UnknownReason.NOT_VISIBLE),
])
def test_connection_failures_are_explained_safely(lab: SeededLab, dbname: str, user: str,
                                                  password: str | None,
                                                  failure: ConnectFailure,
                                                  reason: UnknownReason) -> None:
    conn = lab.connection(dbname, user, password or lab.app_password)
    with pytest.raises(PostgresUnavailable) as raised, connect_read_only(conn, timeout=2):
        pass
    assert (raised.value.failure, raised.value.unknown.reason) == (failure, reason)
    _assert_safe(raised.value)


def test_missing_password(lab: SeededLab, tmp_path: object) -> None:
    conn = lab.connection("clinic", "clinic_app", None, passfile="/nonexistent/pgpass")
    with pytest.raises(PostgresUnavailable) as raised, connect_read_only(conn, timeout=2):
        pass
    assert raised.value.failure is ConnectFailure.NO_PASSWORD
    assert raised.value.unknown.needs


def test_closed_port_is_unreachable(lab: SeededLab) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    conn = _conn(f"host=127.0.0.1 port={port} user=u password={SENTINEL}")
    with pytest.raises(PostgresUnavailable) as raised, connect_read_only(conn, timeout=2):
        pass
    assert raised.value.unknown.reason is UnknownReason.UNREACHABLE
    assert f"127.0.0.1:{port}" in raised.value.unknown.detail
    _assert_safe(raised.value)


def test_silent_server_times_out() -> None:
    # A listener whose backlog completes the TCP handshake but which never answers.
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(4)
        port = listener.getsockname()[1]
        conn = _conn(f"host=127.0.0.1 port={port} user=u "
                                           f"password={SENTINEL} sslmode=disable")
        with pytest.raises(PostgresUnavailable) as raised, connect_read_only(conn, timeout=1):
            pass
    assert raised.value.unknown.reason is UnknownReason.TIMEOUT
    _assert_safe(raised.value)


def test_invalid_conninfo_is_unparseable() -> None:
    conn = _conn(f"host=127.0.0.1 password={SENTINEL} 'broken")
    with pytest.raises(PostgresUnavailable) as raised, connect_read_only(conn, timeout=1):
        pass
    assert raised.value.unknown.reason is UnknownReason.UNPARSEABLE
    _assert_safe(raised.value)
    assert describe(conn) == "(unparseable conninfo)"


def test_catalog_query_returns_rows(session: psycopg.Connection) -> None:
    assert catalog_query(session, "SELECT 1 AS one", needs="nothing") == [(1,)]
    assert catalog_row(session, "SELECT 1 WHERE false", needs="nothing") is None


def test_catalog_query_denied_names_what_is_needed(session: psycopg.Connection) -> None:
    denied = catalog_query(session, "SELECT pg_catalog.pg_ls_dir('.')",
                           needs="pg_read_server_files")
    assert isinstance(denied, Unknown)
    assert (denied.reason, denied.needs) == (UnknownReason.ACCESS_DENIED, "pg_read_server_files")
    # The session is usable again after the failed transaction.
    assert catalog_row(session, "SELECT 2", needs="nothing") == (2,)


def test_catalog_query_timeout_and_missing_object(lab: SeededLab,
                                                  session: psycopg.Connection) -> None:
    with connect_read_only(lab.app(), timeout=0.3) as quick:
        slow = catalog_query(quick, "SELECT pg_catalog.pg_sleep(5)", needs="pg_sleep()")
    assert isinstance(slow, Unknown) and slow.reason is UnknownReason.TIMEOUT
    missing = catalog_query(session, "SELECT * FROM pg_catalog.pg_no_such_view",
                            needs="pg_no_such_view")
    assert isinstance(missing, Unknown) and missing.reason is UnknownReason.NOT_SUPPORTED


def test_describe_drops_the_password() -> None:
    conn = _conn(f"host=db.internal port=5433 dbname=clinic "
                                       f"user=clinic_app password={SENTINEL}")
    assert describe(conn) == "clinic_app@db.internal:5433/clinic"
    assert describe(PostgresConnection(service="audit")) == "?@?:?/? (service audit)"


def test_location_helpers() -> None:
    app = _conn(f"host=db port=5432 dbname=clinic user=app "
                                      f"password={SENTINEL}")
    audit = _conn("host=db port=5432 dbname=audit user=writer")
    assert (same_location(app, app), same_location(app, audit)) == (True, False)
    assert same_server(app, audit) is True
    assert database_name(audit) == "audit"
    moved = psycopg.conninfo.conninfo_to_dict(retarget(app, audit).libpq_conninfo())
    assert moved == {"host": "db", "port": "5432", "dbname": "audit", "user": "app",
                     "password": SENTINEL}


@pytest.mark.parametrize(("message", "failure"), [
    ('FATAL:  password authentication failed for user "a"', ConnectFailure.AUTHENTICATION),
    ("fe_sendauth: no password supplied", ConnectFailure.NO_PASSWORD),
    ('FATAL:  no pg_hba.conf entry for host "1.2.3.4"', ConnectFailure.NO_HBA_ENTRY),
    ("DETAIL:  User does not have CONNECT privilege.", ConnectFailure.CONNECT_DENIED),
    ('FATAL:  database "x" does not exist', ConnectFailure.NO_DATABASE),
    ("connection timeout expired", ConnectFailure.TIMEOUT),
    ("server does not support SSL, but SSL was required", ConnectFailure.TLS),
    ("FATAL:  sorry, too many clients already", ConnectFailure.TOO_MANY_CONNECTIONS),
    ("Connection refused", ConnectFailure.OTHER),
    ("FATAL:  Passwort-Authentifizierung fehlgeschlagen", ConnectFailure.OTHER),
])
def test_classify_connect_error(message: str, failure: ConnectFailure) -> None:
    assert classify_connect_error(message) is failure
