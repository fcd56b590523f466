"""
Read-only PostgreSQL sessions for the checks, and catalog queries that fail into `Unknown`.

Read-only is enforced in three layers, so a slip in one is caught by the next:

1. the session starts with `default_transaction_read_only=on` and psycopg opens every
   transaction with `BEGIN READ ONLY` (`read_only = True`); the server refuses any write;
2. the connection refuses to be switched to autocommit or out of read-only mode;
3. its cursors refuse any statement that does not start with SELECT, WITH, SHOW, VALUES or
   TABLE, any multi-statement string, and calls of the few functions that change server
   state even inside a read-only transaction (`set_config`, `pg_terminate_backend`, ...).

Connection failures become `PostgresUnavailable` (a `ProbeUnavailable`) whose message is written
here, never copied from libpq or the server: it names the role, host, port and database, never
the conninfo or a password.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from enum import Enum
from typing import Any, Self

import psycopg
from psycopg import errors as pg_errors
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from hipaacheck.config import PostgresConnection
from hipaacheck.errors import ProbeUnavailable, ReadOnlyViolation
from hipaacheck.model import Fact, Unknown, UnknownReason
from hipaacheck.redact import Secret

logger = logging.getLogger(__name__)

APPLICATION_NAME = "hipaacheck"
_ALLOWED_VERBS = frozenset({"select", "with", "show", "values", "table"})
_LEADING_COMMENTS = re.compile(r"\A(?:\s+|--[^\n]*(?:\n|\Z)|/\*.*?\*/)+", re.DOTALL)
_STATE_CHANGING_CALLS = re.compile(
    r"\b(?:set_config|pg_terminate_backend|pg_cancel_backend|pg_reload_conf|pg_rotate_logfile"
    r"|pg_promote|pg_switch_wal|pg_create_restore_point|pg_notify|pg_stat_reset\w*"
    r"|pg_advisory\w*|pg_log_backend_memory_contexts|dblink\w*)\s*\(", re.IGNORECASE)
_LOCATION_KEYS = ("host", "hostaddr", "port", "dbname", "service")
CatalogQuery = str | sql.SQL | sql.Composed


class ConnectFailure(str, Enum):
    """
    Why a connection attempt failed, as far as libpq's message tells.

    libpq reports connection failures without a SQLSTATE, so this is read from the message
    text. Only English messages are recognised; anything else is `OTHER`, which callers treat
    as "could not look", never as a fact about access.
    """

    AUTHENTICATION = "authentication"
    NO_PASSWORD = "no_password"
    NO_HBA_ENTRY = "no_hba_entry"
    CONNECT_DENIED = "connect_denied"
    NO_DATABASE = "no_database"
    TIMEOUT = "timeout"
    TLS = "tls"
    TOO_MANY_CONNECTIONS = "too_many_connections"
    INVALID_CONNINFO = "invalid_conninfo"
    OTHER = "other"


_FAILURE_PATTERNS: tuple[tuple[ConnectFailure, re.Pattern[str]], ...] = (
    (ConnectFailure.CONNECT_DENIED, re.compile(r"does not have connect privilege", re.IGNORECASE)),
    (ConnectFailure.NO_PASSWORD, re.compile(r"no password supplied", re.IGNORECASE)),
    (ConnectFailure.AUTHENTICATION,
     re.compile(r"authentication failed for user|role \".*\" does not exist"
                r"|password authentication failed|not permitted to log in", re.IGNORECASE)),
    (ConnectFailure.NO_HBA_ENTRY,
     re.compile(r"no pg_hba\.conf entry|pg_hba\.conf rejects connection", re.IGNORECASE)),
    (ConnectFailure.NO_DATABASE, re.compile(r"database \".*\" does not exist", re.IGNORECASE)),
    (ConnectFailure.TIMEOUT, re.compile(r"timeout expired|timed out", re.IGNORECASE)),
    (ConnectFailure.TOO_MANY_CONNECTIONS,
     re.compile(r"too many clients|remaining connection slots", re.IGNORECASE)),
    (ConnectFailure.TLS, re.compile(r"\bSSL\b|\bTLS\b|certificate", re.IGNORECASE)),
)


class PostgresUnavailable(ProbeUnavailable):
    """
    A connection attempt failed. `failure` says why; `unknown` carries a safe sentence.
    """

    def __init__(self, failure: ConnectFailure, reason: UnknownReason, detail: str,
                 needs: str | None = None) -> None:
        super().__init__(reason, detail, needs)
        self.failure = failure


def classify_connect_error(message: str) -> ConnectFailure:
    """The `ConnectFailure` a libpq connection error message describes."""
    for failure, pattern in _FAILURE_PATTERNS:
        if pattern.search(message):
            return failure
    return ConnectFailure.OTHER


def _params(conn: PostgresConnection) -> dict[str, str] | None:
    """The conninfo's keywords without the password, or None when it does not parse."""
    try:
        params = conninfo_to_dict(conn.libpq_conninfo())
    except psycopg.Error:
        return None
    params.pop("password", None)
    return {key: str(value) for key, value in params.items()}


def describe(conn: PostgresConnection) -> str:
    """
    A label safe for logs and evidence: `user@host:port/dbname`, never the password.

    Parts the conninfo leaves to libpq's defaults (environment, service file) show as `?`.
    """
    params = _params(conn)
    if params is None:
        return "(unparseable conninfo)"
    host = params.get("host") or params.get("hostaddr") or "?"
    user, port, dbname = (params.get(key, "?") for key in ("user", "port", "dbname"))
    label = f"{user}@{host}:{port}/{dbname}"
    if "service" in params:
        label += f" (service {params['service']})"
    return label


def _endpoint(conn: PostgresConnection) -> str:
    params = _params(conn) or {}
    host = params.get("host") or params.get("hostaddr") or "the default host"
    return f"{host}:{params['port']}" if "port" in params else host


def _unavailable(failure: ConnectFailure, conn: PostgresConnection,
                 timeout: float) -> PostgresUnavailable:
    """The safe, explained form of a connection failure."""
    label, endpoint = describe(conn), _endpoint(conn)
    dbname = (_params(conn) or {}).get("dbname", "the configured database")
    denied = UnknownReason.ACCESS_DENIED
    table: dict[ConnectFailure, tuple[UnknownReason, str, str | None]] = {
        ConnectFailure.AUTHENTICATION: (
            denied, f"authentication failed for the configured role ({label})",
            "valid credentials for the configured role"),
        ConnectFailure.NO_PASSWORD: (
            denied, f"no password was available for the configured role ({label})",
            "a password in the conninfo, PGPASSWORD or a passfile"),
        ConnectFailure.NO_HBA_ENTRY: (
            denied, f"the server's pg_hba.conf does not admit this connection ({label})",
            "a pg_hba.conf entry admitting the scanner's address"),
        ConnectFailure.CONNECT_DENIED: (
            denied, f"the configured role may not connect to database {dbname} ({label})",
            f"CONNECT on database {dbname}"),
        ConnectFailure.NO_DATABASE: (
            UnknownReason.NOT_VISIBLE, f"database {dbname} does not exist ({label})", None),
        ConnectFailure.TIMEOUT: (
            UnknownReason.TIMEOUT, f"connecting to {endpoint} timed out after {timeout:g} s",
            f"network reachability of {endpoint}"),
        ConnectFailure.TLS: (
            UnknownReason.UNREACHABLE, f"could not negotiate TLS with {endpoint}", None),
        ConnectFailure.TOO_MANY_CONNECTIONS: (
            UnknownReason.UNREACHABLE, f"{endpoint} refused the connection: no free slots", None),
        ConnectFailure.INVALID_CONNINFO: (
            UnknownReason.UNPARSEABLE, "the configured conninfo could not be parsed", None),
    }
    reason, detail, needs = table.get(failure, (
        UnknownReason.UNREACHABLE, f"could not connect to {endpoint}",
        f"network reachability of {endpoint}"))
    return PostgresUnavailable(failure, reason, detail, needs)


def _statement_text(query: object, context: Any) -> str:
    """The SQL text of a psycopg query object, for the statement guard."""
    if isinstance(query, sql.Composable):
        return query.as_string(context)
    if isinstance(query, bytes):
        return query.decode("utf-8", errors="replace")
    if isinstance(query, str):
        return query
    raise ReadOnlyViolation(f"refused a query of unrecognised type {type(query).__name__}")


def check_read_only_statement(text: str) -> None:
    """
    Raise `ReadOnlyViolation` unless `text` is one plain reading statement.

    The message names the statement's first word only, never its text.
    """
    body = _LEADING_COMMENTS.sub("", text).rstrip().rstrip(";")
    verb = body.split(None, 1)[0].lower() if body else ""
    if verb not in _ALLOWED_VERBS:
        raise ReadOnlyViolation(f"refused a {verb.upper() or 'empty'} statement: "
                                "the PostgreSQL client only reads")
    if ";" in body:
        raise ReadOnlyViolation("refused a multi-statement query: the PostgreSQL client only reads")
    if _STATE_CHANGING_CALLS.search(body):
        raise ReadOnlyViolation("refused a call of a state-changing server function")


class _GuardedCursor(psycopg.Cursor[Any]):
    """A client-side cursor that only runs reading statements."""

    def execute(self, query: Any, params: Any = None, **kwargs: Any) -> Self:
        check_read_only_statement(_statement_text(query, self))
        return super().execute(query, params, **kwargs)

    def executemany(self, query: Any, params_seq: Any, **kwargs: Any) -> None:
        check_read_only_statement(_statement_text(query, self))
        super().executemany(query, params_seq, **kwargs)

    def stream(self, query: Any, params: Any = None, **kwargs: Any) -> Iterator[Any]:
        check_read_only_statement(_statement_text(query, self))
        return super().stream(query, params, **kwargs)

    def copy(self, statement: Any, params: Any = None, **kwargs: Any) -> Any:
        check_read_only_statement(_statement_text(statement, self))
        return super().copy(statement, params, **kwargs)


class _GuardedServerCursor(psycopg.ServerCursor[Any]):
    """A named (server-side) cursor that only declares reading statements."""

    def execute(self, query: Any, params: Any = None, **kwargs: Any) -> Self:
        check_read_only_statement(_statement_text(query, self))
        return super().execute(query, params, **kwargs)


class ReadOnlyConnection(psycopg.Connection[Any]):
    """
    A psycopg connection that cannot leave read-only mode or switch to autocommit.
    """

    def set_read_only(self, value: bool | None) -> None:
        """Allow only `True`: every transaction on this connection is read-only."""
        if value is not True:
            raise ReadOnlyViolation("refused to make a hipaacheck session read-write")
        super().set_read_only(value)

    def set_autocommit(self, value: bool) -> None:
        """Refuse autocommit, which would skip `BEGIN READ ONLY`."""
        if value:
            raise ReadOnlyViolation("refused autocommit on a hipaacheck session")
        super().set_autocommit(value)


def session_options(timeout: float) -> str:
    """The libpq `options` that make a session read-only and bound every statement."""
    millis = max(1, int(timeout * 1000))
    return f"-c default_transaction_read_only=on -c statement_timeout={millis}"


@contextmanager
def connect_read_only(conn: PostgresConnection, *,
                      timeout: float) -> Iterator[psycopg.Connection[Any]]:
    """
    A read-only session on `conn`, closed (its transaction discarded) when the block ends.

    Raises `PostgresUnavailable` when the connection cannot be made; its message never holds
    the conninfo or anything the server said.
    """
    logger.debug("connecting read-only to %s", describe(conn))
    try:
        connection = ReadOnlyConnection.connect(
            conn.libpq_conninfo(), connect_timeout=max(1, math.ceil(timeout)),
            options=session_options(timeout), application_name=APPLICATION_NAME,
            autocommit=False, cursor_factory=_GuardedCursor)
    except psycopg.OperationalError as exc:
        failure = classify_connect_error(str(exc))
        logger.debug("connection to %s failed: %s", describe(conn), failure.value)
        raise _unavailable(failure, conn, timeout) from None
    except psycopg.ProgrammingError:
        raise _unavailable(ConnectFailure.INVALID_CONNINFO, conn, timeout) from None
    try:
        connection.read_only = True
        connection.server_cursor_factory = _GuardedServerCursor
        yield connection
    finally:
        connection.close()


def same_location(a: PostgresConnection, b: PostgresConnection) -> bool | None:
    """
    Whether two connections name the same host, port, database and service in their conninfo;
    None when either does not parse. Defaults left to libpq count as equal only if both omit them.
    """
    pa, pb = _params(a), _params(b)
    if pa is None or pb is None:
        return None
    return all(pa.get(key) == pb.get(key) for key in _LOCATION_KEYS)


def same_server(a: PostgresConnection, b: PostgresConnection) -> bool | None:
    """Like `same_location`, but ignoring the database name."""
    pa, pb = _params(a), _params(b)
    if pa is None or pb is None:
        return None
    return all(pa.get(key) == pb.get(key) for key in _LOCATION_KEYS if key != "dbname")


def database_name(conn: PostgresConnection) -> str | None:
    """The `dbname` the conninfo names, or None when it leaves it to libpq's defaults."""
    return (_params(conn) or {}).get("dbname")


def retarget(credentials: PostgresConnection, location: PostgresConnection) -> PostgresConnection:
    """
    `credentials`' role, password and options, pointed at the host, port, database and service
    that `location` names. Raises `PostgresUnavailable` when either conninfo does not parse.
    """
    where = _params(location)
    if where is None or _params(credentials) is None:
        raise _unavailable(ConnectFailure.INVALID_CONNINFO, location, 0)
    overrides = {key: where[key] for key in _LOCATION_KEYS if key in where}
    merged = make_conninfo(credentials.libpq_conninfo(), **overrides)
    return PostgresConnection(conninfo=Secret(merged))


def _rollback(connection: psycopg.Connection[Any]) -> None:
    """End a failed transaction so the session can run the next query."""
    try:
        connection.rollback()
    except psycopg.Error:
        logger.debug("rollback after a failed catalog query failed too")


def catalog_query(connection: psycopg.Connection[Any], query: CatalogQuery,
                  params: Sequence[Any] | dict[str, Any] | None = None, *,
                  needs: str) -> Fact[list[tuple[Any, ...]]]:
    """
    Run one catalog query and return its rows, or `Unknown` with why it could not run.

    `needs` names what lets the query run: a predefined role (`pg_read_all_settings`), a view
    (`pg_catalog.pg_stat_activity`) or a function's EXECUTE privilege; it becomes the `needs`
    of an access-denied `Unknown`. Errors other than denial, timeout, a missing object or a
    lost connection are bugs of the caller and propagate.
    """
    try:
        with connection.cursor() as cursor:
            cursor.execute(query, params)
            return list(cursor.fetchall())
    except pg_errors.InsufficientPrivilege:
        _rollback(connection)
        return Unknown(UnknownReason.ACCESS_DENIED, f"permission denied reading {needs}", needs)
    except pg_errors.QueryCanceled:
        _rollback(connection)
        return Unknown(UnknownReason.TIMEOUT, f"the query on {needs} timed out")
    except (pg_errors.UndefinedFunction, pg_errors.UndefinedTable, pg_errors.UndefinedObject,
            pg_errors.FeatureNotSupported):
        _rollback(connection)
        return Unknown(UnknownReason.NOT_SUPPORTED, f"{needs} is not available on this server")
    except psycopg.OperationalError:
        return Unknown(UnknownReason.UNREACHABLE, f"the connection was lost reading {needs}")


def catalog_row(connection: psycopg.Connection[Any], query: CatalogQuery,
                params: Sequence[Any] | dict[str, Any] | None = None, *,
                needs: str) -> Fact[tuple[Any, ...] | None]:
    """The first row of `catalog_query`, None when it returned none, or its `Unknown`."""
    rows = catalog_query(connection, query, params, needs=needs)
    if isinstance(rows, Unknown):
        return rows
    return rows[0] if rows else None
