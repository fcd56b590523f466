"""
Breach readiness of a PostgreSQL audit trail: can it answer "what did this user access, and
who accessed this patient's record, between these two dates"?

Three controls, each judged per audit table (configured in `audit_tables`, or found by name):

- `TrailShape`: columns for the acting identity, the time, the action and the record or patient
  affected (names from `trail.py`, or the inventory's `audit_columns`).
- `ReadsCaptured`: the trail records reads, not only writes: the action column of a bounded
  sample of the most recent rows (1,000 at most, read through an index) includes read actions,
  or pgaudit is loaded with read logging. Only the action column is read; the values stay in
  memory and only counts and words of a fixed vocabulary reach the evidence.
- `BreachQueryable`: an index serves "by user, by time range" and "by patient, by time range",
  and `EXPLAIN` (never `EXPLAIN ANALYZE`) of both queries over a 90-day window gives the plan's
  estimated cost and whether it uses an index.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import psycopg
from psycopg import errors as pg_errors
from psycopg import sql

from hipaacheck.check import Check, CheckContext, Policy
from hipaacheck.checks.postgres.trail import (
    BREACH_CITATIONS,
    CATALOG_OPERATIONS,
    COLUMN_OPERATIONS,
    TRAIL_KIND,
    Column,
    TableRef,
    TrailColumns,
    classify_columns,
    column_overrides,
    no_trail_found,
    postgres_config,
    read_columns,
    resolve_table,
    trail_names,
    trail_session,
    unverified_with,
)
from hipaacheck.clients.postgres import catalog_query, check_read_only_statement
from hipaacheck.errors import ReadOnlyViolation
from hipaacheck.model import (
    CheckMeta,
    EvidenceValue,
    Fact,
    Family,
    Finding,
    FindingBuilder,
    Operation,
    Severity,
    Standard,
    System,
    Target,
    TargetKind,
    Unknown,
    UnknownReason,
)

logger = logging.getLogger(__name__)

SAMPLE_ROWS = 1000
"""The most rows `ReadsCaptured` reads, action column only."""
WINDOW_DAYS = 90
"""The window of the breach queries `BreachQueryable` plans."""
LARGE_TABLE_ROWS = 100_000
"""From this estimated size, a plan that ignores a serving index is worth a warning."""

READ_WORDS = frozenset({
    "read", "reads", "select", "view", "viewed", "views", "access", "accessed", "get", "open",
    "opened", "query", "queried", "search", "searched", "export", "exported", "download",
    "downloaded", "print", "printed", "lookup", "fetch", "fetched", "display", "displayed",
    "retrieve", "retrieved", "disclose", "disclosed",
})
"""Words that mark an action value as a read (matched word by word, case-insensitively)."""
_WORDS = re.compile(r"[a-z]+")


def _pg(action: str, why: str) -> Operation:
    return Operation(System.POSTGRES, action, why)


@dataclass(frozen=True)
class Index:
    """One index of an audit table: name, access method, usable, key columns in order."""

    name: str
    method: str
    usable: bool
    """Valid, ready and not partial."""
    keys: tuple[str, ...]
    """Key column names; an expression key is `""`."""
    primary: bool = False

    def serves(self, column: str) -> bool:
        """Whether an equality lookup on `column` can start with this index."""
        return self.usable and self.method in ("btree", "hash") and bool(self.keys) \
            and self.keys[0] == column

    def covers_range(self, column: str, time: str | None) -> bool:
        """Whether it serves `column` and then a range over `time` (a btree on both)."""
        return self.serves(column) and self.method == "btree" and time is not None \
            and len(self.keys) > 1 and self.keys[1] == time


@dataclass(frozen=True)
class TrailTable:
    """An audit table as its session sees it: relation, columns, their roles, its indexes."""

    ref: TableRef
    columns: tuple[Column, ...]
    roles: TrailColumns
    indexes: Fact[tuple[Index, ...]]


_INDEXES_SQL = """
SELECT ic.relname, am.amname,
       i.indisvalid AND i.indisready AND i.indpred IS NULL,
       ARRAY(SELECT COALESCE(a.attname::text, '')
             FROM pg_catalog.generate_series(0, i.indnkeyatts - 1) AS k(n)
             LEFT JOIN pg_catalog.pg_attribute a
               ON a.attrelid = i.indrelid AND a.attnum = i.indkey[k.n] AND a.attnum > 0
             ORDER BY k.n),
       i.indisprimary
FROM pg_catalog.pg_index i
JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid
JOIN pg_catalog.pg_am am ON am.oid = ic.relam
WHERE i.indrelid = %(oid)s
ORDER BY ic.relname
"""

INDEX_OPERATIONS = (
    _pg("pg_catalog.pg_index", "the audit tables' indexes"),
    _pg("pg_catalog.pg_am", "each index's access method"),
)


def _read_indexes(connection: psycopg.Connection[Any], oid: int) -> Fact[tuple[Index, ...]]:
    rows = catalog_query(connection, _INDEXES_SQL, {"oid": oid}, needs="pg_catalog.pg_index")
    if isinstance(rows, Unknown):
        return rows
    return tuple(Index(str(n), str(m), bool(u), tuple(str(k) for k in keys), bool(p))
                 for n, m, u, keys, p in rows)


def _inspect(connection: psycopg.Connection[Any], name: str,
             overrides: Mapping[str, str]) -> Fact[TrailTable]:
    ref = resolve_table(connection, name)
    if isinstance(ref, Unknown):
        return ref
    columns = read_columns(connection, ref.oid)
    if isinstance(columns, Unknown):
        return columns
    return TrailTable(ref, columns, classify_columns(columns, overrides),
                      _read_indexes(connection, ref.oid))


@dataclass(frozen=True)
class TrailSet:
    """The audit tables of one entry through the trail's session, with what each check adds."""

    session: str
    tables: Fact[Mapping[str, Fact[TrailTable]]]
    discovered: bool = False


def _inspect_all(connection: psycopg.Connection[Any], target: Target,
                 session: str) -> TrailSet:
    config = postgres_config(target)
    names = trail_names(connection, config)
    if isinstance(names, Unknown):
        return TrailSet(session, names)
    found, discovered = names
    if not found:
        return TrailSet(session, no_trail_found(config, session), True)
    overrides = column_overrides(config)
    return TrailSet(session, {n: _inspect(connection, n, overrides) for n in found}, discovered)


def _trail_evidence(trails: TrailSet, name: str) -> dict[str, EvidenceValue]:
    return {"session": trails.session, "discovered": trails.discovered, "trail": name,
            "trail_kind": TRAIL_KIND}


def _role_evidence(roles: TrailColumns) -> dict[str, EvidenceValue]:
    return {f"{role}_column": getattr(roles, role) for role in ("actor", "time", "action",
                                                                "record")}


def _each_table(f: FindingBuilder[Any], trails: TrailSet, what: str) -> list[Finding] | None:
    """The single UNVERIFIED finding when the tables could not be listed at all."""
    if isinstance(trails.tables, Unknown):
        return [f.unverified("audit-tables", trails.tables, what)]
    return None


# --- postgres.audit.trail_shape ----------------------------------------------------------------


class TrailShape(Check[TrailSet]):
    """
    Each audit table records who acted, when, what they did and to which record or patient.
    """

    meta = CheckMeta(
        id="postgres.audit.trail_shape",
        family=Family.AUDIT,
        standard=Standard.AUDIT_CONTROLS,
        citations=BREACH_CITATIONS,
        target_kind=TargetKind.POSTGRES,
        title="Audit tables record actor, time, action and record",
        severity=Severity.HIGH,
        description=(
            "Reads each audit table's columns from the catalog and looks for the four a breach "
            "investigation needs: the acting identity (actor, user_id, username...), the time "
            "(at, occurred_at, created_at..., or any date/time column), the action (action, "
            "operation, event...) and the record or patient affected (patient_id, mrn, "
            "record_id, object...). Names can be set per entry with `audit_columns`. A table "
            "missing one cannot say who accessed what, and when."),
        remediation=(
            "Record, for every access to PHI, the authenticated end user (not only the "
            "database role), a timestamptz, the action (read, create, update, delete, export) "
            "and the patient or record identifier; name the columns in `audit_columns` if they "
            "are called something else."),
        operations=(*CATALOG_OPERATIONS, *COLUMN_OPERATIONS),
    )

    def collect(self, ctx: CheckContext, target: Target) -> TrailSet:
        """Read the columns of every audit table through the trail's session."""
        connection_config, session = trail_session(postgres_config(target))
        with ctx.clients.postgres(connection_config) as connection:
            return _inspect_all(connection, target, session)

    def evaluate(self, obs: TrailSet, target: Target, policy: Policy) -> Sequence[Finding]:
        """FAIL when any of the four roles has no column."""
        f = self.findings(target)
        early = _each_table(f, obs, "the audit tables")
        if early is not None:
            return early
        assert isinstance(obs.tables, Mapping)
        return [_judge_shape(f, obs, name, table) for name, table in obs.tables.items()]


_ROLE_WORDS = {"actor": "the acting user", "time": "the time", "action": "the action",
               "record": "the record or patient"}


def _judge_shape(f: FindingBuilder[Any], trails: TrailSet, name: str,
                 table: Fact[TrailTable]) -> Finding:
    if isinstance(table, Unknown):
        return f.unverified(name, table, f"the columns of {name}")
    evidence = {**_trail_evidence(trails, name), **_role_evidence(table.roles)}
    missing = table.roles.missing()
    if missing:
        evidence["missing"] = missing
        evidence["trail_breach_query"] = "not answerable: no column for " + ", ".join(missing)
        return f.failed(name, f"The audit table {name} has no column for "
                        f"{', '.join(_ROLE_WORDS[m] for m in missing)}.", evidence=evidence)
    return f.passed(name, f"The audit table {name} records the actor, time, action and record.",
                    evidence=evidence)


# --- postgres.audit.reads_captured -------------------------------------------------------------


@dataclass(frozen=True)
class ActionSample:
    """What the most recent rows' action values say, reduced to counts and known words."""

    rows: int
    read_rows: int
    read_words: tuple[str, ...]
    """Words of `READ_WORDS` seen in the sample."""
    distinct: int
    order: Literal["time", "primary_key", "heap"]
    """How "most recent" was found: an index on the time column, the primary key, or none
    (the sample is then the first rows in storage order)."""


@dataclass(frozen=True)
class PgAudit:
    """Whether pgaudit is loaded and logs reads, and how that was seen."""

    loaded: bool
    logs_reads: bool
    basis: str


@dataclass(frozen=True)
class ReadsObservation:
    """The trail's tables, a sample of each one's action column, and pgaudit's settings."""

    trails: TrailSet
    samples: Mapping[str, Fact[ActionSample]]
    pgaudit: Fact[PgAudit]


_SETTINGS_SQL = ("SELECT name, setting FROM pg_catalog.pg_settings "
                 "WHERE name IN ('shared_preload_libraries', 'pgaudit.log')")
_ROLE_SETTINGS_SQL = ("SELECT s.setconfig FROM pg_catalog.pg_db_role_setting s "
                      "WHERE s.setconfig::text ~* 'pgaudit\\.log'")
_PGAUDIT_CLASSES = ("read", "write", "function", "role", "ddl", "misc", "misc_set")


def pgaudit_logs_reads(setting: str) -> bool:
    """Whether a `pgaudit.log` value (`'read, write'`, `'all, -misc'`) includes READ."""
    classes: set[str] = set()
    for item in (part.strip().lower() for part in setting.split(",")):
        drop = item.startswith("-")
        name = item.lstrip("-").strip()
        names = set(_PGAUDIT_CLASSES) if name == "all" else {name}
        classes = classes - names if drop else classes | names
    return "read" in classes


def _read_pgaudit(connection: psycopg.Connection[Any]) -> Fact[PgAudit]:
    rows = catalog_query(connection, _SETTINGS_SQL, needs="pg_catalog.pg_settings")
    if isinstance(rows, Unknown):
        return rows
    settings = {str(name): str(value) for name, value in rows}
    role_rows = catalog_query(connection, _ROLE_SETTINGS_SQL,
                              needs="pg_catalog.pg_db_role_setting")
    per_role = [] if isinstance(role_rows, Unknown) else [
        item.split("=", 1)[1] for (config,) in role_rows for item in config or ()
        if item.lower().startswith("pgaudit.log=")]
    if "pgaudit.log" in settings:
        if pgaudit_logs_reads(settings["pgaudit.log"]):
            return PgAudit(True, True, "pgaudit.log of this session")
        if any(pgaudit_logs_reads(value) for value in per_role):
            return PgAudit(True, True, "pgaudit.log set for a role or database")
        return PgAudit(True, False, "pgaudit.log of this session and per-role settings")
    libraries = settings.get("shared_preload_libraries")
    if libraries is not None:
        loaded = "pgaudit" in (lib.strip() for lib in libraries.split(","))
        return PgAudit(loaded, False, "shared_preload_libraries")
    return PgAudit(False, False, "no pgaudit setting is defined in this session")


def sample_query(table: TrailTable) -> tuple[sql.Composed, str] | None:
    """
    The bounded query over the most recent action values and how it orders rows; None when
    the table has no readable action column.
    """
    action = table.roles.action
    readable = {c.name for c in table.columns if c.selectable}
    if action is None or action not in readable:
        return None
    indexes = table.indexes if isinstance(table.indexes, tuple) else ()
    time, order = table.roles.time, "heap"
    order_by: sql.Composable = sql.SQL("")
    if time in readable and any(i.usable and i.method == "btree" and i.keys[:1] == (time,)
                                for i in indexes):
        order, order_by = "time", sql.SQL(" ORDER BY {} DESC").format(sql.Identifier(time))
    else:
        pk = next((i for i in indexes if i.primary and len(i.keys) == 1 and i.keys[0]), None)
        if pk is not None and pk.keys[0] in readable:
            order = "primary_key"
            order_by = sql.SQL(" ORDER BY {} DESC").format(sql.Identifier(pk.keys[0]))
    query = sql.SQL("SELECT s.v, count(*) FROM (SELECT {action}::text AS v FROM {table}{order} "
                    "LIMIT {limit}) s GROUP BY s.v").format(
        action=sql.Identifier(action), order=order_by, limit=sql.Literal(SAMPLE_ROWS),
        table=sql.Identifier(table.ref.schema, table.ref.table))
    return query, order


def reduce_sample(counts: Sequence[tuple[str | None, int]],
                  order: Literal["time", "primary_key", "heap"]) -> ActionSample:
    """Counts of action values reduced to what may leave memory: totals and known words."""
    rows = read_rows = 0
    words: set[str] = set()
    for value, count in counts:
        rows += int(count)
        seen = READ_WORDS.intersection(_WORDS.findall((value or "").lower()))
        if seen:
            read_rows += int(count)
            words |= seen
    return ActionSample(rows, read_rows, tuple(sorted(words)), len(counts), order)


def _sample(connection: psycopg.Connection[Any], table: Fact[TrailTable]) -> Fact[ActionSample]:
    if isinstance(table, Unknown):
        return table
    built = sample_query(table)
    if built is None:
        action = table.roles.action
        if action is None:
            return Unknown(UnknownReason.NOT_VISIBLE, f"{table.ref.name} has no action column",
                           "an action column, or `audit_columns.action` in the inventory")
        return Unknown(UnknownReason.ACCESS_DENIED,
                       f"the session may not read the action column of {table.ref.name}",
                       f"SELECT ({action}) on {table.ref.name}")
    query, order = built
    rows = catalog_query(connection, query, needs=f"SELECT on {table.ref.name}")
    if isinstance(rows, Unknown):
        return rows
    return reduce_sample([(None if v is None else str(v), int(c)) for v, c in rows],
                         order)  # type: ignore[arg-type]


class ReadsCaptured(Check[ReadsObservation]):
    """
    The audit trail records reads of PHI, not only changes.
    """

    meta = CheckMeta(
        id="postgres.audit.reads_captured",
        family=Family.AUDIT,
        standard=Standard.AUDIT_CONTROLS,
        citations=BREACH_CITATIONS,
        target_kind=TargetKind.POSTGRES,
        title="The audit trail records reads, not only writes",
        severity=Severity.HIGH,
        description=(
            f"Reads the action column, and only that column, of at most {SAMPLE_ROWS} of each "
            "audit table's most recent rows (ordered through an index on the time column or "
            "the primary key, so the read stays cheap) and counts the values that name a read "
            "(read, select, view, access, export...). The values never leave memory: evidence "
            "holds counts and the matched words only. Also reads pgaudit's settings (the "
            "session's `pgaudit.log` and per-role or per-database settings): pgaudit with READ "
            "logging captures reads whatever the table holds. A trail that records only "
            "writes cannot say who looked at a record, which is what a breach review asks."),
        remediation=(
            "Write an audit row for every read of PHI (the application's data access layer, "
            "or views and functions that log), or load pgaudit with `pgaudit.log = 'read, "
            "write'` (or object auditing through `pgaudit.role`) and ship its log to the audit "
            "store. Grant the scanning role SELECT on the action and time columns."),
        operations=(
            *CATALOG_OPERATIONS, *COLUMN_OPERATIONS, *INDEX_OPERATIONS,
            _pg("SELECT <action column> FROM <audit table> LIMIT 1000",
                "a bounded sample of the most recent action values"),
            _pg("pg_catalog.pg_settings", "shared_preload_libraries and pgaudit.log"),
            _pg("pg_catalog.pg_db_role_setting", "pgaudit.log set per role or database"),
        ),
    )

    def collect(self, ctx: CheckContext, target: Target) -> ReadsObservation:
        """Sample each table's action column and read pgaudit's settings."""
        connection_config, session = trail_session(postgres_config(target))
        with ctx.clients.postgres(connection_config) as connection:
            trails = _inspect_all(connection, target, session)
            tables = trails.tables if isinstance(trails.tables, Mapping) else {}
            samples = {name: _sample(connection, table) for name, table in tables.items()}
            return ReadsObservation(trails, samples, _read_pgaudit(connection))

    def evaluate(self, obs: ReadsObservation, target: Target,
                 policy: Policy) -> Sequence[Finding]:
        """PASS on read rows or pgaudit read logging; FAIL on a sample of writes only."""
        f = self.findings(target)
        early = _each_table(f, obs.trails, "the audit tables")
        if early is not None:
            return early
        assert isinstance(obs.trails.tables, Mapping)
        return [_judge_reads(f, obs, name) for name in obs.trails.tables]


def _pgaudit_evidence(pgaudit: Fact[PgAudit]) -> dict[str, EvidenceValue]:
    if isinstance(pgaudit, Unknown):
        return {"pgaudit_loaded": "unknown", "pgaudit_logs_reads": "unknown"}
    return {"pgaudit_loaded": pgaudit.loaded, "pgaudit_logs_reads": pgaudit.logs_reads,
            "pgaudit_basis": pgaudit.basis}


def _judge_reads(f: FindingBuilder[Any], obs: ReadsObservation, name: str) -> Finding:
    evidence = {**_trail_evidence(obs.trails, name), **_pgaudit_evidence(obs.pgaudit)}
    pgaudit = obs.pgaudit
    if isinstance(pgaudit, PgAudit) and pgaudit.logs_reads:
        evidence["reads_source"] = "pgaudit"
        return f.passed(name, "pgaudit is loaded with READ logging, so reads are captured "
                        f"whatever {name} holds.", evidence=evidence)
    sample = obs.samples.get(name, Unknown(UnknownReason.NOT_VISIBLE, f"{name} was not sampled"))
    if isinstance(sample, Unknown):
        return unverified_with(f, name, sample, f"the actions recorded in {name}", evidence)
    evidence.update(sampled_rows=sample.rows, read_rows=sample.read_rows,
                    read_actions=sample.read_words, distinct_actions=sample.distinct,
                    sample_order=sample.order)
    rows = (f"{sample.rows} most recent rows" if sample.order != "heap"
            else f"{sample.rows} sampled rows (no index gives the most recent)")
    if sample.read_rows:
        evidence["reads_source"] = "trail rows"
        return f.passed(name, f"{sample.read_rows} of the {rows} of {name} record reads.",
                        evidence=evidence)
    if sample.rows == 0:
        empty = Unknown(UnknownReason.NOT_VISIBLE, f"{name} holds no rows to sample")
        return unverified_with(f, name, empty, "whether the trail records reads", evidence)
    if isinstance(pgaudit, Unknown):
        return unverified_with(f, name, pgaudit, "whether pgaudit logs reads", evidence)
    evidence["trail_breach_query"] = "not answerable: reads are not recorded"
    return f.failed(name, f"None of the {rows} of {name} records a read, "
                    "and pgaudit does not log reads: the trail records writes only.",
                    evidence=evidence)


# --- postgres.audit.breach_queryable -----------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    """What `EXPLAIN` says of one breach query: estimated cost and rows, index use."""

    total_cost: float
    rows: int
    indexes_used: tuple[str, ...]
    root: str


@dataclass(frozen=True)
class QueryabilityObservation:
    """The trail's tables and, per table, the plans of the by-user and by-patient queries."""

    trails: TrailSet
    plans: Mapping[str, Mapping[str, Fact[Plan]]]
    """Table name to `{"by_user": plan, "by_patient": plan}`."""


def breach_query(table: TrailTable, key: str) -> Fact[sql.Composed]:
    """
    The 90-day lookup by `key` (`"actor"` or `"record"`): `SELECT time FROM t WHERE key = ...
    AND time in the last 90 days`. The looked-up value is an empty subquery of the column
    itself, so the plan is the generic one for any value and no literal of its type is needed.
    """
    column, time = getattr(table.roles, key), table.roles.time
    if column is None or time is None:
        missing = "the time" if column is not None else _ROLE_WORDS[key]
        return Unknown(UnknownReason.NOT_VISIBLE,
                       f"{table.ref.name} has no column for {missing}")
    if next(c for c in table.columns if c.name == time).category != "D":
        return Unknown(UnknownReason.UNPARSEABLE,
                       f"the time column {time} of {table.ref.name} is not a date/time type")
    ident = sql.Identifier(table.ref.schema, table.ref.table)
    return sql.SQL(
        "SELECT {time} FROM {table} WHERE {key} = (SELECT {key} FROM {table} LIMIT 0) "
        "AND {time} >= now() - {window}::interval AND {time} < now()").format(
        time=sql.Identifier(time), key=sql.Identifier(column), table=ident,
        window=sql.Literal(f"{WINDOW_DAYS} days"))


def explain(connection: psycopg.Connection[Any], query: sql.Composed, *,
            needs: str) -> Fact[dict[str, Any]]:
    """
    The JSON plan of one SELECT, planned but never executed (`EXPLAIN`, no `ANALYZE`).

    The client's statement guard admits only statements that start with SELECT, so this runs
    on a plain cursor of the same read-only session after checking, itself, that the inner
    statement is one plain SELECT and that the session is read-only.
    """
    inner = query.as_string(connection)
    check_read_only_statement(inner)
    if connection.read_only is not True:
        raise ReadOnlyViolation("refused to EXPLAIN outside a read-only session")
    statement = sql.SQL("EXPLAIN (FORMAT JSON, COSTS TRUE) ") + query
    try:
        # NOTE: a plain psycopg.Cursor, not the session's guarded cursor factory, because the
        # guard does not admit EXPLAIN; the checks above stand in for it, and ANALYZE can never
        # be added since the options are fixed here.
        with psycopg.Cursor(connection) as cursor:
            cursor.execute(statement)
            row = cursor.fetchone()
    except pg_errors.InsufficientPrivilege:
        connection.rollback()
        return Unknown(UnknownReason.ACCESS_DENIED, f"permission denied planning over {needs}",
                       needs)
    except pg_errors.QueryCanceled:
        connection.rollback()
        return Unknown(UnknownReason.TIMEOUT, f"planning over {needs} timed out")
    except (pg_errors.UndefinedFunction, pg_errors.DatatypeMismatch) as exc:
        connection.rollback()
        return Unknown(UnknownReason.UNPARSEABLE,
                       f"the breach query over {needs} could not be planned "
                       f"({type(exc).__name__})")
    except psycopg.OperationalError:
        return Unknown(UnknownReason.UNREACHABLE, f"the connection was lost planning {needs}")
    document = row[0] if row else None
    if isinstance(document, str):
        document = json.loads(document)
    if not isinstance(document, list) or not document or "Plan" not in document[0]:
        return Unknown(UnknownReason.UNPARSEABLE, "EXPLAIN returned no plan")
    return dict(document[0]["Plan"])


def summarise_plan(plan: Mapping[str, Any]) -> Plan:
    """Cost, rows and the indexes the plan scans, leaving out InitPlan subtrees."""
    used: list[str] = []

    def walk(node: Mapping[str, Any]) -> None:
        if node.get("Parent Relationship") == "InitPlan":
            return
        if "Index Name" in node:
            used.append(str(node["Index Name"]))
        for child in node.get("Plans", ()):
            walk(child)

    walk(plan)
    return Plan(float(plan.get("Total Cost", 0.0)), int(plan.get("Plan Rows", 0)),
                tuple(dict.fromkeys(used)), str(plan.get("Node Type", "")))


def _plan(connection: psycopg.Connection[Any], table: TrailTable, key: str) -> Fact[Plan]:
    query = breach_query(table, key)
    if isinstance(query, Unknown):
        return query
    plan = explain(connection, query, needs=f"SELECT on {table.ref.name}")
    return plan if isinstance(plan, Unknown) else summarise_plan(plan)


class BreachQueryable(Check[QueryabilityObservation]):
    """
    The trail can answer "by user, by time range" and "by patient, by time range" quickly.
    """

    meta = CheckMeta(
        id="postgres.audit.breach_queryable",
        family=Family.AUDIT,
        standard=Standard.AUDIT_CONTROLS,
        citations=BREACH_CITATIONS,
        target_kind=TargetKind.POSTGRES,
        title="The audit trail answers breach queries by user and by patient",
        severity=Severity.MEDIUM,
        description=(
            "For each audit table, looks for an index that serves a lookup by the actor column "
            "and one that serves a lookup by the record or patient column (a btree or hash "
            "index leading with that column; a btree whose second key is the time column "
            "serves the time range too), and plans both breach queries over a "
            f"{WINDOW_DAYS}-day window with EXPLAIN, never EXPLAIN ANALYZE, so nothing is "
            "executed: the evidence holds each plan's estimated cost and rows and the indexes "
            "it uses. A trail without those indexes answers a breach review only by reading "
            "every row, which on years of audit data is not an answer in time for the "
            "breach notification rule's deadlines."),
        remediation=(
            "Create btree indexes on (actor, time) and (patient or record, time) of each audit "
            "table (CREATE INDEX CONCURRENTLY), or partition the trail by time and index each "
            "partition; grant the scanning role SELECT on those columns so the plans can be "
            "checked."),
        operations=(
            *CATALOG_OPERATIONS, *COLUMN_OPERATIONS, *INDEX_OPERATIONS,
            _pg("EXPLAIN (FORMAT JSON) SELECT ... (never ANALYZE)",
                "the estimated plans of the by-user and by-patient breach queries"),
        ),
    )

    def collect(self, ctx: CheckContext, target: Target) -> QueryabilityObservation:
        """Find each table's indexes and plan both breach queries."""
        connection_config, session = trail_session(postgres_config(target))
        with ctx.clients.postgres(connection_config) as connection:
            trails = _inspect_all(connection, target, session)
            tables = trails.tables if isinstance(trails.tables, Mapping) else {}
            plans = {name: {} if isinstance(table, Unknown) else {
                "by_user": _plan(connection, table, "actor"),
                "by_patient": _plan(connection, table, "record")}
                for name, table in tables.items()}
            return QueryabilityObservation(trails, plans)

    def evaluate(self, obs: QueryabilityObservation, target: Target,
                 policy: Policy) -> Sequence[Finding]:
        """PASS when both lookups have a serving index and plan; FAIL when one has none."""
        f = self.findings(target)
        early = _each_table(f, obs.trails, "the audit tables")
        if early is not None:
            return early
        assert isinstance(obs.trails.tables, Mapping)
        return [_judge_queryable(f, obs, name, table)
                for name, table in obs.trails.tables.items()]


_QUERIES = (("by_user", "actor", "user"), ("by_patient", "record", "patient or record"))


def _query_evidence(table: TrailTable, plans: Mapping[str, Fact[Plan]],
                    indexes: tuple[Index, ...]) -> dict[str, EvidenceValue]:
    evidence: dict[str, EvidenceValue] = {"window_days": WINDOW_DAYS,
                                          "estimated_table_rows": table.ref.estimated_rows}
    for query, key, _words in _QUERIES:
        column = getattr(table.roles, key)
        serving = [i for i in indexes if column is not None and i.serves(column)]
        evidence[f"{query}_index"] = serving[0].name if serving else None
        evidence[f"{query}_index_covers_time"] = any(
            i.covers_range(column, table.roles.time) for i in serving) if column else False
        plan = plans.get(query)
        if isinstance(plan, Plan):
            evidence.update({f"{query}_estimated_cost": plan.total_cost,
                             f"{query}_estimated_rows": plan.rows,
                             f"{query}_plan_uses_index": bool(plan.indexes_used),
                             f"{query}_plan_indexes": plan.indexes_used,
                             f"{query}_plan_root": plan.root})
    return evidence


def _judge_queryable(f: FindingBuilder[Any], obs: QueryabilityObservation, name: str,
                     table: Fact[TrailTable]) -> Finding:
    if isinstance(table, Unknown):
        return f.unverified(name, table, f"the columns and indexes of {name}")
    if isinstance(table.indexes, Unknown):
        return f.unverified(name, table.indexes, f"the indexes of {name}")
    plans = obs.plans.get(name, {})
    evidence = {**_trail_evidence(obs.trails, name), **_role_evidence(table.roles),
                **_query_evidence(table, plans, table.indexes)}
    unanswerable = [words for query, key, words in _QUERIES
                    if getattr(table.roles, key) is None or table.roles.time is None]
    unindexed = [words for query, key, words in _QUERIES
                 if evidence.get(f"{query}_index") is None]
    if unanswerable or unindexed:
        gaps = ([f"no column to look up by {w} over time" for w in unanswerable]
                + [f"no index serves the lookup by {w}" for w in unindexed if w not in
                   unanswerable])
        evidence["trail_breach_query"] = "not answerable in time: " + "; ".join(gaps)
        return f.failed(name, f"The audit table {name} cannot answer breach queries quickly: "
                        + "; ".join(gaps) + ".", evidence=evidence)
    for query, _key, words in _QUERIES:
        plan = plans.get(query, Unknown(UnknownReason.NOT_VISIBLE, "not planned"))
        if isinstance(plan, Unknown):
            return unverified_with(f, name, plan, f"the plan of the lookup by {words} in {name}",
                                   evidence)
    evidence["trail_breach_query"] = "answerable: indexed by user and by patient"
    ignored = [w for q, _k, w in _QUERIES if not evidence[f"{q}_plan_uses_index"]]
    if ignored and table.ref.estimated_rows >= LARGE_TABLE_ROWS:
        return f.warned(name, f"Indexes serve both breach queries on {name}, but the planner "
                        f"estimates a scan for the lookup by {' and '.join(ignored)}.",
                        evidence=evidence)
    return f.passed(name, f"Indexes serve the {WINDOW_DAYS}-day breach queries by user and by "
                    f"patient on {name}.", evidence=evidence)
