"""
The PostgreSQL audit store itself: is each trail table guarded against change, and where does
it live relative to the application's data?

- `AppendOnlyGuard` reads, through the trail's own session, the triggers and rules on each audit
  table and whether they refuse UPDATE, DELETE and TRUNCATE; and, for the report's "Audit
  controls" table, which roles may write and which may change or destroy the trail.
- `AuditStoreLocation` compares the application's session with the trail's: the same server,
  database and schema as the application's data is FAIL; another schema of the same database
  is WARN; another database or server passes.

Both read catalogs only (triggers' function source is read to see that it refuses, and never
leaves the collect step); no audit row is read.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import psycopg

from hipaacheck.check import Check, CheckContext, Policy
from hipaacheck.checks.postgres.trail import (
    CATALOG_OPERATIONS,
    TRAIL_KIND,
    TableRef,
    no_trail_found,
    postgres_config,
    resolve_table,
    trail_names,
    trail_session,
    unverified_with,
)
from hipaacheck.clients.postgres import (
    PostgresUnavailable,
    catalog_query,
    catalog_row,
    same_location,
)
from hipaacheck.config import PostgresConfig
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

_CITATIONS = ("164.312(b)", "164.312(c)(1)")
GUARDED_EVENTS = ("UPDATE", "DELETE", "TRUNCATE")
_NOT_RETAINED = "not enforced by the database (no retention period is visible in the catalog)"


def _pg(action: str, why: str) -> Operation:
    return Operation(System.POSTGRES, action, why)


# --- postgres.audit.append_only ----------------------------------------------------------------

Guarded = Literal["refuses", "fires", "none"]
"""Per event: a guard was seen to refuse it, one fires but could not be seen to refuse, none."""


@dataclass(frozen=True)
class Guard:
    """One trigger or rule on an audit table that fires on UPDATE, DELETE or TRUNCATE."""

    name: str
    kind: Literal["trigger", "rule"]
    events: tuple[str, ...]
    refuses: bool
    """Whether it visibly stops the change: an INSTEAD rule, or a trigger function that raises
    an exception (or, for BEFORE ROW triggers, returns NULL)."""


@dataclass(frozen=True)
class GuardedTable:
    """What the catalog says about one audit table's guards and who holds power over it."""

    name: str
    guards: tuple[Guard, ...]
    owner: str
    schema_owner: str
    writers: tuple[str, ...]
    """Roles granted INSERT (PUBLIC included), and the owner."""
    modifiers: tuple[str, ...]
    """Roles that can change or destroy rows: UPDATE, DELETE or TRUNCATE grantees, the table's
    and the schema's owners, and superusers (whom a trigger stops only while it is enabled)."""

    def coverage(self) -> dict[str, Guarded]:
        """For each guarded event, the strongest guard seen."""
        result: dict[str, Guarded] = {}
        for event in GUARDED_EVENTS:
            firing = [g for g in self.guards if event in g.events]
            result[event] = ("refuses" if any(g.refuses for g in firing)
                             else "fires" if firing else "none")
        return result


@dataclass(frozen=True)
class AppendOnlyObservation:
    """Every audit table of the entry, read through the trail's session."""

    session: str
    """Which connection read it: `audit_reader`, `audit` or `application`."""
    tables: Fact[Mapping[str, Fact[GuardedTable]]]
    discovered: bool = False


_TRIGGERS_SQL = """
SELECT t.tgname, t.tgtype::integer, l.lanname, p.prosrc
FROM pg_catalog.pg_trigger t
JOIN pg_catalog.pg_proc p ON p.oid = t.tgfoid
JOIN pg_catalog.pg_language l ON l.oid = p.prolang
WHERE t.tgrelid = %(oid)s AND NOT t.tgisinternal AND t.tgenabled IN ('O', 'A')
  AND (t.tgtype::integer & 56) <> 0 AND ((t.tgtype::integer & 2) <> 0
                                         OR (t.tgtype::integer & 64) <> 0)
ORDER BY t.tgname
"""
_RULES_SQL = """
SELECT r.rulename, r.ev_type FROM pg_catalog.pg_rewrite r
WHERE r.ev_class = %(oid)s AND r.rulename <> '_RETURN' AND r.is_instead
  AND r.ev_enabled IN ('O', 'A') AND r.ev_type IN ('2', '4')
ORDER BY r.rulename
"""
_POWER_SQL = """
SELECT pg_catalog.pg_get_userbyid(c.relowner), pg_catalog.pg_get_userbyid(n.nspowner),
       ARRAY(SELECT DISTINCT CASE WHEN a.grantee = 0 THEN 'PUBLIC'
                                  ELSE pg_catalog.pg_get_userbyid(a.grantee) END
             FROM pg_catalog.aclexplode(COALESCE(c.relacl,
                                                 pg_catalog.acldefault('r', c.relowner))) a
             WHERE a.privilege_type = 'INSERT' ORDER BY 1),
       ARRAY(SELECT DISTINCT CASE WHEN a.grantee = 0 THEN 'PUBLIC'
                                  ELSE pg_catalog.pg_get_userbyid(a.grantee) END
             FROM pg_catalog.aclexplode(COALESCE(c.relacl,
                                                 pg_catalog.acldefault('r', c.relowner))) a
             WHERE a.privilege_type IN ('UPDATE', 'DELETE', 'TRUNCATE') ORDER BY 1),
       ARRAY(SELECT r.rolname FROM pg_catalog.pg_roles r WHERE r.rolsuper ORDER BY 1)
FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE c.oid = %(oid)s
"""
_EVENT_BITS = ((8, "DELETE"), (16, "UPDATE"), (32, "TRUNCATE"))
_RAISES = re.compile(r"\bRAISE\b(?!\s+(?:DEBUG|LOG|INFO|NOTICE|WARNING)\b)", re.IGNORECASE)
_RETURNS_NULL = re.compile(r"\bRETURN\s+NULL\b", re.IGNORECASE)
_COMMENTS = re.compile(r"--[^\n]*|/\*.*?\*/", re.DOTALL)


def trigger_refuses(tgtype: int, language: str, source: str) -> bool:
    """
    Whether a trigger's function visibly stops the change it fires on: a PL/pgSQL body that
    raises an exception, or a BEFORE ROW trigger that returns NULL (which skips the row).
    Functions in other languages cannot be read this way and count as not seen to refuse.
    """
    if language != "plpgsql":
        return False
    body = _COMMENTS.sub(" ", source)
    if _RAISES.search(body):
        return True
    row_level, before = bool(tgtype & 1), bool(tgtype & 2)
    return row_level and before and bool(_RETURNS_NULL.search(body))


def _read_guards(connection: psycopg.Connection[Any], oid: int) -> Fact[tuple[Guard, ...]]:
    triggers = catalog_query(connection, _TRIGGERS_SQL, {"oid": oid},
                             needs="pg_catalog.pg_trigger and pg_catalog.pg_proc")
    if isinstance(triggers, Unknown):
        return triggers
    rules = catalog_query(connection, _RULES_SQL, {"oid": oid}, needs="pg_catalog.pg_rewrite")
    if isinstance(rules, Unknown):
        return rules
    guards = [Guard(str(name), "trigger",
                    tuple(e for bit, e in _EVENT_BITS if int(tgtype) & bit),
                    trigger_refuses(int(tgtype), str(language), str(source or "")))
              for name, tgtype, language, source in triggers]
    guards += [Guard(str(name), "rule", ("UPDATE",) if ev == "2" else ("DELETE",), True)
               for name, ev in rules]
    return tuple(guards)


def _read_guarded(connection: psycopg.Connection[Any], name: str) -> Fact[GuardedTable]:
    ref = resolve_table(connection, name)
    if isinstance(ref, Unknown):
        return ref
    guards = _read_guards(connection, ref.oid)
    if isinstance(guards, Unknown):
        return guards
    power = catalog_row(connection, _POWER_SQL, {"oid": ref.oid}, needs="aclexplode()")
    if isinstance(power, Unknown) or power is None:
        return power or Unknown(UnknownReason.NOT_VISIBLE, f"{name} vanished during the scan")
    owner, schema_owner, inserters, changers, superusers = power
    writers = tuple(dict.fromkeys([*inserters, owner]))
    modifiers = tuple(dict.fromkeys([*changers, owner, schema_owner, *superusers]))
    return GuardedTable(name, guards, str(owner), str(schema_owner), writers, modifiers)


class AppendOnlyGuard(Check[AppendOnlyObservation]):
    """
    Every audit table has an enabled trigger or rule that refuses UPDATE, DELETE and TRUNCATE.
    """

    meta = CheckMeta(
        id="postgres.audit.append_only",
        title="Audit tables refuse UPDATE, DELETE and TRUNCATE",
        family=Family.AUDIT,
        standard=Standard.INTEGRITY,
        citations=_CITATIONS,
        severity=Severity.HIGH,
        target_kind=TargetKind.POSTGRES,
        description=(
            "Through the audit store's own session, reads each audit table's enabled triggers "
            "and rules. A BEFORE (or INSTEAD OF) trigger whose PL/pgSQL function raises an "
            "exception (or, row by row, returns NULL), or an enabled DO INSTEAD rule, guards "
            "the events it fires on; TRUNCATE can only be guarded by a trigger. Privileges "
            "decide who may try; a guard is what still stops the owner, a role that inherits "
            "its rights, and anyone granted too much. A trigger whose function cannot be read "
            "that way (another language) is reported as unconfirmed. A superuser can still "
            "disable triggers, so the report also lists who holds power over the table."),
        remediation=(
            "Add a BEFORE UPDATE OR DELETE ... FOR EACH ROW trigger and a BEFORE TRUNCATE ... "
            "FOR EACH STATEMENT trigger whose function raises an exception, owned by a role that "
            "cannot log in, and ship audit rows to an append-only store outside the database "
            "(object-locked storage) as well."),
        operations=(
            *CATALOG_OPERATIONS,
            _pg("pg_catalog.pg_trigger", "enabled triggers on the audit tables"),
            _pg("pg_catalog.pg_proc", "whether each trigger's function refuses the change"),
            _pg("pg_catalog.pg_language", "the trigger functions' languages"),
            _pg("pg_catalog.pg_rewrite", "DO INSTEAD rules on UPDATE and DELETE"),
            _pg("aclexplode()", "who may insert, update, delete or truncate"),
            _pg("pg_catalog.pg_roles", "superusers"),
        ),
    )

    def collect(self, ctx: CheckContext, target: Target) -> AppendOnlyObservation:
        """Read the guards of every audit table through the trail's session."""
        config = postgres_config(target)
        connection_config, session = trail_session(config)
        with ctx.clients.postgres(connection_config) as connection:
            names = trail_names(connection, config)
            if isinstance(names, Unknown):
                return AppendOnlyObservation(session, names)
            found, discovered = names
            if not found:
                return AppendOnlyObservation(session, no_trail_found(config, session), True)
            return AppendOnlyObservation(
                session, {name: _read_guarded(connection, name) for name in found}, discovered)

    def evaluate(self, obs: AppendOnlyObservation, target: Target,
                 policy: Policy) -> Sequence[Finding]:
        """One finding per audit table; unreadable tables are UNVERIFIED."""
        f = self.findings(target)
        if isinstance(obs.tables, Unknown):
            return [f.unverified("audit-tables", obs.tables, "the audit tables")]
        return [_judge_guarded(f, obs, name, table) for name, table in obs.tables.items()]


def _guard_evidence(obs: AppendOnlyObservation, table: GuardedTable) -> dict[str, EvidenceValue]:
    coverage = table.coverage()
    return {"session": obs.session, "discovered": obs.discovered, "owner": table.owner,
            "guards": tuple(f"{g.kind} {g.name} ({', '.join(g.events)})" for g in table.guards),
            **{f"{event.lower()}_guard": state for event, state in coverage.items()},
            "trail": table.name, "trail_kind": TRAIL_KIND, "trail_writers": table.writers,
            "trail_modifiers": table.modifiers, "trail_retention": _NOT_RETAINED}


def _either(events: Sequence[str]) -> str:
    """`UPDATE`, `UPDATE or DELETE`, `UPDATE, DELETE or TRUNCATE`."""
    return events[0] if len(events) == 1 else f"{', '.join(events[:-1])} or {events[-1]}"


def _judge_guarded(f: FindingBuilder[Any], obs: AppendOnlyObservation, name: str,
                   table: Fact[GuardedTable]) -> Finding:
    if isinstance(table, Unknown):
        return f.unverified(name, table, f"the triggers and rules on {name}")
    evidence = _guard_evidence(obs, table)
    coverage = table.coverage()
    open_events = [e for e, state in coverage.items() if state == "none"]
    if open_events:
        return f.failed(name, f"Nothing stops {_either(open_events)} on the audit table "
                        f"{name}: no enabled trigger or rule refuses it.", evidence=evidence)
    unsure = [e for e, state in coverage.items() if state == "fires"]
    if unsure:
        unknown = Unknown(UnknownReason.NOT_VISIBLE,
                          "their functions are not PL/pgSQL that visibly raises an exception",
                          f"a trigger function on {name} that raises an exception")
        return unverified_with(f, name, unknown, f"whether the triggers on {name} refuse "
                               f"{_either(unsure)}", evidence)
    return f.passed(name, f"Enabled guards on {name} refuse UPDATE, DELETE and TRUNCATE.",
                    evidence=evidence)


# --- postgres.audit.store_location -------------------------------------------------------------

Placement = Literal["same_schema", "same_database", "separate_database", "separate_server"]


@dataclass(frozen=True)
class SessionPlace:
    """Where a session is: the cluster's system identifier (or address) and the database."""

    server: str
    """`sysid:<n>` when `pg_control_system()` is readable, else `addr:<host>:<port>`."""
    database: str


@dataclass(frozen=True)
class TablePlace:
    """One audit table's schema and how many application tables share that schema."""

    name: str
    schema: str
    app_tables_in_schema: Fact[int]
    """Tables in the schema that the application role may INSERT, UPDATE or DELETE (the
    audit tables themselves left out); only counted when the trail shares the app database."""


@dataclass(frozen=True)
class LocationObservation:
    """The application's place, the trail's place, and each audit table's schema."""

    application: Fact[SessionPlace]
    trail: Fact[SessionPlace]
    session: str
    tables: Fact[Mapping[str, Fact[TablePlace]]]
    discovered: bool = False


_PLACE_SQL = ("SELECT current_database(), pg_catalog.host(inet_server_addr()), "
              "inet_server_port()")
_SYSID_SQL = "SELECT system_identifier FROM pg_catalog.pg_control_system()"
_APP_TABLES_SQL = """
SELECT count(*) FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n
  ON n.oid = c.relnamespace
WHERE n.nspname = %(schema)s::text AND c.relkind IN ('r', 'p') AND NOT c.relispartition
  AND c.oid <> ALL(%(exclude)s::oid[])
  AND pg_catalog.has_table_privilege(c.oid, 'INSERT, UPDATE, DELETE')
"""


def _place(connection: psycopg.Connection[Any]) -> Fact[SessionPlace]:
    row = catalog_row(connection, _PLACE_SQL, needs="current_database() and inet_server_addr()")
    if isinstance(row, Unknown) or row is None:
        return row or Unknown(UnknownReason.UNPARSEABLE, "the session query returned no row")
    sysid = catalog_row(connection, _SYSID_SQL, needs="EXECUTE on pg_control_system()")
    if isinstance(sysid, tuple):
        return SessionPlace(f"sysid:{sysid[0]}", str(row[0]))
    host = row[1] or connection.info.host
    return SessionPlace(f"addr:{host}:{row[2] or connection.info.port}", str(row[0]))


def _table_places(connection: psycopg.Connection[Any], names: Sequence[str],
                  count_app_tables: bool) -> dict[str, Fact[TablePlace]]:
    refs = {name: resolve_table(connection, name) for name in names}
    exclude = [ref.oid for ref in refs.values() if isinstance(ref, TableRef)]
    places: dict[str, Fact[TablePlace]] = {}
    for name, ref in refs.items():
        if isinstance(ref, Unknown):
            places[name] = ref
            continue
        count: Fact[int] = Unknown(UnknownReason.NOT_VISIBLE,
                                   "application tables are only counted in the app database")
        if count_app_tables:
            row = catalog_row(connection, _APP_TABLES_SQL,
                              {"schema": ref.schema, "exclude": exclude},
                              needs="has_table_privilege()")
            count = row if isinstance(row, Unknown) else int(row[0]) if row else 0
        places[name] = TablePlace(name, ref.schema, count)
    return places


class AuditStoreLocation(Check[LocationObservation]):
    """
    The audit trail does not live in the application's own database and schema.
    """

    meta = CheckMeta(
        id="postgres.audit.store_location",
        title="The audit trail lives apart from the application's data",
        family=Family.AUDIT,
        standard=Standard.AUDIT_CONTROLS,
        citations=_CITATIONS,
        severity=Severity.MEDIUM,
        target_kind=TargetKind.POSTGRES,
        description=(
            "Compares where the application's session and the audit trail's session land: the "
            "cluster (system identifier, else address) and the database; and, when the trail "
            "shares the application's database, whether its schema also holds tables the "
            "application role may write. The same schema as the application's data is FAIL; "
            "another schema of the same database is WARN (one owner, one backup, one set of "
            "administrators); another database or server passes."),
        remediation=(
            "Move the audit tables into their own database, ideally on another server or "
            "managed log store, reached with credentials the application does not hold; at the "
            "least, give them a schema of their own that the application role does not own."),
        operations=(
            *CATALOG_OPERATIONS,
            _pg("current_database()", "which database each session is in"),
            _pg("inet_server_addr()", "the server address each session reaches"),
            _pg("pg_catalog.pg_control_system()", "the cluster's system identifier"),
            _pg("has_table_privilege()", "application tables sharing the audit schema"),
        ),
    )

    def collect(self, ctx: CheckContext, target: Target) -> LocationObservation:
        """Locate the application's session, then the trail's and each audit table."""
        config = postgres_config(target)
        trail_config, session = trail_session(config)
        in_app_database = config.audit is None or same_location(config.application,
                                                                 config.audit) is True
        with ctx.clients.postgres(config.application) as connection:
            app = _place(connection)
            if in_app_database:
                return self._in_app_database(connection, config, app)
        try:
            with ctx.clients.postgres(trail_config) as connection:
                trail = _place(connection)
                if trail != app or isinstance(app, Unknown):
                    return self._elsewhere(connection, config, app, trail, session)
        except PostgresUnavailable as exc:
            return LocationObservation(app, exc.unknown, session, exc.unknown)
        # The trail's connection landed in the application's database after all.
        with ctx.clients.postgres(config.application) as connection:
            return self._in_app_database(connection, config, app)

    def _in_app_database(self, connection: psycopg.Connection[Any], config: PostgresConfig,
                         app: Fact[SessionPlace]) -> LocationObservation:
        """The trail shares the application's database: count app tables in its schemas."""
        session = "application"
        names = trail_names(connection, config)
        if isinstance(names, Unknown):
            return LocationObservation(app, app, session, names)
        found, discovered = names
        if not found:
            return LocationObservation(app, app, session, no_trail_found(config, session), True)
        return LocationObservation(app, app, session, _table_places(connection, found, True),
                                   discovered)

    def _elsewhere(self, connection: psycopg.Connection[Any], config: PostgresConfig,
                   app: Fact[SessionPlace], trail: Fact[SessionPlace],
                   session: str) -> LocationObservation:
        """The trail is in another database or server: find its tables there."""
        names = trail_names(connection, config)
        if isinstance(names, Unknown):
            return LocationObservation(app, trail, session, names)
        found, discovered = names
        if not found:
            return LocationObservation(app, trail, session, no_trail_found(config, session),
                                       True)
        return LocationObservation(app, trail, session, _table_places(connection, found, False),
                                   discovered)

    def evaluate(self, obs: LocationObservation, target: Target,
                 policy: Policy) -> Sequence[Finding]:
        """One finding per audit table."""
        f = self.findings(target)
        for fact, what in ((obs.application, "where the application's session lands"),
                           (obs.trail, "where the audit trail's session lands"),
                           (obs.tables, "the audit tables")):
            if isinstance(fact, Unknown):
                return [f.unverified("audit-tables", fact, what)]
        assert isinstance(obs.tables, Mapping)
        return [_judge_place(f, obs, name, place) for name, place in obs.tables.items()]


def placement(app: SessionPlace, trail: SessionPlace, table: TablePlace) -> Fact[Placement]:
    """Where one audit table lives relative to the application's data."""
    if app.server != trail.server:
        if app.server.split(":")[0] == trail.server.split(":")[0] == "sysid":
            return "separate_server"
        return Unknown(UnknownReason.NOT_VISIBLE,
                       "the sessions reach different addresses and the cluster identifier was "
                       "not readable to confirm they are different servers",
                       "EXECUTE on pg_control_system()")
    if app.database != trail.database:
        return "separate_database"
    if isinstance(table.app_tables_in_schema, Unknown):
        return table.app_tables_in_schema
    return "same_schema" if table.app_tables_in_schema > 0 else "same_database"


_PLACEMENT_WORDS: dict[str, str] = {
    "same_schema": "in the application's own database and schema",
    "same_database": "in the application's database, in a schema of its own",
    "separate_database": "in a separate database on the application's server",
    "separate_server": "on a separate server",
}


def _judge_place(f: FindingBuilder[Any], obs: LocationObservation, name: str,
                 place: Fact[TablePlace]) -> Finding:
    if isinstance(place, Unknown):
        return f.unverified(name, place, f"where {name} lives")
    assert isinstance(obs.application, SessionPlace) and isinstance(obs.trail, SessionPlace)
    where = placement(obs.application, obs.trail, place)
    if isinstance(where, Unknown):
        return f.unverified(name, where, f"where {name} lives")
    evidence: dict[str, EvidenceValue] = {
        "session": obs.session, "discovered": obs.discovered, "schema": place.schema,
        "application_database": obs.application.database, "trail_database": obs.trail.database,
        "placement": where, "trail": name, "trail_kind": TRAIL_KIND,
        "trail_location": _PLACEMENT_WORDS[where]}
    if isinstance(place.app_tables_in_schema, int):
        evidence["app_tables_in_schema"] = place.app_tables_in_schema
    sentence = f"The audit table {name} lives {_PLACEMENT_WORDS[where]}"
    if where == "same_schema":
        return f.failed(name, sentence + ", beside tables the application role writes.",
                        evidence=evidence)
    if where == "same_database":
        return f.warned(name, sentence + "; a separate database or server would isolate it "
                        "from the application's owner, backups and administrators.",
                        evidence=evidence)
    return f.passed(name, sentence + ".", evidence=evidence)
