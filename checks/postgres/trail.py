"""
What the PostgreSQL audit-trail checks share: which session reads the trail, which tables are
the trail (configured, or found by name), and which columns say who, when, what and whom.

The trail is read through the inventory's `audit_reader` connection when one is configured,
else the `audit` connection, else the application's own (the trail then lives in the
application database). Only catalogs are read here; the checks that sample rows or plan queries
say so in their own metadata.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import psycopg

from hipaacheck.checks.postgres.audit import split_qualified
from hipaacheck.clients.postgres import catalog_query, catalog_row, describe
from hipaacheck.config import PostgresConfig, PostgresConnection
from hipaacheck.model import (
    EvidenceValue,
    Fact,
    Finding,
    FindingBuilder,
    Operation,
    Status,
    System,
    Target,
    Unknown,
    UnknownReason,
)

BREACH_CITATIONS = ("164.312(b)", "164.308(a)(1)(ii)(D)", "164.400-414")
"""Audit controls, information system activity review, breach notification."""

TRAIL_KIND = "postgres_table"
"""The `trail_kind` evidence value of every PostgreSQL audit-store finding."""

ACTOR_NAMES = ("actor", "actor_id", "user_id", "userid", "username", "user_name", "usename",
               "db_user", "login", "principal", "performed_by", "changed_by", "accessed_by",
               "staff_id", "clinician_id", "session_user_name", "who", "user")
TIME_NAMES = ("at", "occurred_at", "event_time", "event_ts", "logged_at", "accessed_at",
              "recorded_at", "created_at", "action_tstamp_clk", "action_tstamp_tx", "ts",
              "timestamp", "time", "when")
ACTION_NAMES = ("action", "operation", "op", "verb", "event", "event_type", "activity",
                "access_type", "command", "command_tag", "statement_type", "action_type")
RECORD_NAMES = ("patient_id", "patient", "mrn", "subject_id", "record_id", "record",
                "object", "object_id", "resource", "resource_id", "entity_id", "row_id",
                "target", "target_id", "row_data")
"""Column names that play each role in a trail, most specific first (override per inventory
with `audit_columns`)."""

_DISCOVER_SQL = """
SELECT pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(c.relname)
FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition
  AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%'
  AND (n.nspname ~* '^audit' OR c.relname ~* '(audit|access_log|activity_log)')
ORDER BY 1
"""
_RESOLVE_SQL = """
SELECT c.oid, n.nspname, c.relname, c.relkind, c.reltuples::bigint
FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE c.relname = %(table)s::text AND c.relkind IN ('r', 'p', 'v', 'f', 'm')
  AND (n.nspname = %(schema)s::text
       OR (%(schema)s::text IS NULL AND pg_catalog.pg_table_is_visible(c.oid)))
"""
_COLUMNS_SQL = """
SELECT a.attname, pg_catalog.format_type(a.atttypid, a.atttypmod), t.typcategory,
       pg_catalog.has_column_privilege(a.attrelid, a.attnum, 'SELECT')
FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
WHERE a.attrelid = %(oid)s AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attnum
"""

CATALOG_OPERATIONS = (
    Operation(System.POSTGRES, "pg_catalog.pg_class", "find the audit tables"),
    Operation(System.POSTGRES, "pg_catalog.pg_namespace", "the audit tables' schemas"),
)
COLUMN_OPERATIONS = (
    Operation(System.POSTGRES, "pg_catalog.pg_attribute", "the audit tables' columns"),
    Operation(System.POSTGRES, "pg_catalog.pg_type", "the columns' types"),
    Operation(System.POSTGRES, "has_column_privilege()", "which columns the session may read"),
)


def postgres_config(target: Target) -> PostgresConfig:
    """The postgres entry a target carries."""
    if not isinstance(target.config, PostgresConfig):
        raise TypeError("a postgres check needs a PostgresConfig target")
    return target.config


def trail_session(config: PostgresConfig) -> tuple[PostgresConnection, str]:
    """
    The connection that reads the trail and which one it is: `audit_reader`, `audit` or
    `application`.
    """
    reader = getattr(config, "audit_reader", None)
    if isinstance(reader, PostgresConnection):
        return reader, "audit_reader"
    if config.audit is not None:
        return config.audit, "audit"
    return config.application, "application"


def column_overrides(config: PostgresConfig) -> Mapping[str, str]:
    """The inventory's `audit_columns` (role to column name), empty when not configured."""
    overrides = getattr(config, "audit_columns", None)
    if not isinstance(overrides, Mapping):
        return {}
    return {str(k): str(v) for k, v in overrides.items()}


@dataclass(frozen=True)
class TableRef:
    """A resolved audit relation: the configured name, its oid, schema, name and kind."""

    name: str
    oid: int
    schema: str
    table: str
    kind: str
    estimated_rows: int
    """`pg_class.reltuples`; -1 when the table was never analysed."""


def resolve_table(connection: psycopg.Connection[Any], name: str) -> Fact[TableRef]:
    """The relation a configured name denotes in the session's database, or why not."""
    parsed = split_qualified(name)
    if parsed is None:
        return Unknown(UnknownReason.UNPARSEABLE, f"{name!r} is not a valid table name")
    schema, table = parsed
    row = catalog_row(connection, _RESOLVE_SQL, {"schema": schema, "table": table},
                      needs="pg_catalog.pg_class")
    if isinstance(row, Unknown):
        return row
    if row is None:
        database = connection.info.dbname
        return Unknown(UnknownReason.NOT_VISIBLE,
                       f"table {name} was not found in database {database}",
                       f"the audit table {name} in database {database}")
    return TableRef(name, int(row[0]), str(row[1]), str(row[2]), str(row[3]), int(row[4]))


def trail_names(connection: psycopg.Connection[Any],
                config: PostgresConfig) -> Fact[tuple[tuple[str, ...], bool]]:
    """
    The audit tables to judge and whether they were found rather than configured: the
    configured `audit_tables`, else tables whose schema or name says audit.
    """
    if config.audit_tables:
        return tuple(config.audit_tables), False
    rows = catalog_query(connection, _DISCOVER_SQL, needs="pg_catalog.pg_class")
    if isinstance(rows, Unknown):
        return rows
    return tuple(str(row[0]) for row in rows), True


def no_trail_found(config: PostgresConfig, session: str) -> Unknown:
    """The unknown for a database where no audit table is configured or found."""
    return Unknown(UnknownReason.NOT_VISIBLE,
                   f"no audit table is configured, and none was found by name through the "
                   f"{session} connection ({describe(trail_session(config)[0])})",
                   "`audit_tables` in this postgres entry of the inventory")


@dataclass(frozen=True)
class Column:
    """One column of an audit table: name, SQL type, type category, readable by the session."""

    name: str
    type: str
    category: str
    """`pg_type.typcategory`: `D` date/time, `S` string, `N` numeric, `U` user-defined..."""
    selectable: bool


def read_columns(connection: psycopg.Connection[Any], oid: int) -> Fact[tuple[Column, ...]]:
    """The table's live columns in order, or why they could not be read."""
    rows = catalog_query(connection, _COLUMNS_SQL, {"oid": oid}, needs="pg_catalog.pg_attribute")
    if isinstance(rows, Unknown):
        return rows
    return tuple(Column(str(n), str(t), str(c), bool(s)) for n, t, c, s in rows)


@dataclass(frozen=True)
class TrailColumns:
    """Which column answers each question a breach investigation asks; None when none does."""

    actor: str | None
    time: str | None
    action: str | None
    record: str | None

    def missing(self) -> tuple[str, ...]:
        """The roles no column plays, in the order actor, time, action, record."""
        return tuple(role for role in ("actor", "time", "action", "record")
                     if getattr(self, role) is None)


_ROLE_NAMES = {"actor": ACTOR_NAMES, "time": TIME_NAMES, "action": ACTION_NAMES,
               "record": RECORD_NAMES}
_PATIENTISH = re.compile(r"patient|mrn|member_id|subject", re.IGNORECASE)


def classify_columns(columns: Sequence[Column],
                     overrides: Mapping[str, str] | None = None) -> TrailColumns:
    """
    Which column plays each role: an override names it; else the first name of the role's list
    that is present; for time, else the first date/time column; for the record, else a column
    whose name mentions a patient.
    """
    present = {c.name.lower(): c.name for c in columns}
    chosen: dict[str, str | None] = {}
    for role, names in _ROLE_NAMES.items():
        wanted = (overrides or {}).get(role)
        if wanted is not None:
            chosen[role] = present.get(wanted.lower())
            continue
        chosen[role] = next((present[n] for n in names if n in present), None)
    taken = {v for v in chosen.values() if v}
    if chosen["time"] is None:
        chosen["time"] = next((c.name for c in columns if c.category == "D"
                               and c.name not in taken), None)
    if chosen["record"] is None:
        chosen["record"] = next((c.name for c in columns if _PATIENTISH.search(c.name)
                                 and c.name not in taken), None)
    return TrailColumns(**chosen)


def unverified_with(f: FindingBuilder[Any], resource: str, unknown: Unknown, what: str,
                    evidence: Mapping[str, EvidenceValue]) -> Finding:
    """`FindingBuilder.unverified`, keeping the evidence that was observed around the gap."""
    return f.make(Status.UNVERIFIED, resource, f"Could not observe {what}: {unknown.detail}",
                  evidence=evidence, needs=unknown.needs, unknown_reason=unknown.reason)
