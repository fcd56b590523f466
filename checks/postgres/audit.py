"""
Audit store isolation on PostgreSQL: can the application's own credentials change the trail?

Two controls, both under 164.312(b) (audit controls) and 164.312(c)(1) (integrity):

- `SharedCredentials` connects with the application's and the audit store's credentials and
  asks whether they are the same role on the same server, or share a password. Passwords are
  compared as keyed hashes in memory; only the yes or no survives the comparison.
- `AppCanModifyAudit` asks the catalog, with the application's credentials only, whether the
  application role can UPDATE, DELETE or TRUNCATE each configured audit table, or owns it (or
  its schema) and could therefore grant itself that or drop it; as superuser, or past the
  table's row-level security with BYPASSRLS.

Both read catalogs and session functions only; no audit row is ever read. Their evidence
carries the `trail_*` keys of the report's "Audit controls" table (see `store.py`). The audit
store's other properties are judged in `store.py` (append-only guards, location), `breach.py`
(shape, reads captured, queryability) and, for tenant isolation, `tenants.py`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, cast

import psycopg

from hipaacheck.check import Check, CheckContext, Policy
from hipaacheck.clients.postgres import (
    ConnectFailure,
    PostgresUnavailable,
    catalog_query,
    catalog_row,
    database_name,
    describe,
    retarget,
    same_location,
    same_server,
)
from hipaacheck.config import PostgresConfig, PostgresConnection
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
    known,
)
from hipaacheck.redact import Fingerprinter

_CITATIONS = ("164.312(b)", "164.312(c)(1)")
_NO_AUDIT_CONNECTION = Unknown(
    UnknownReason.NOT_VISIBLE, "no audit connection is configured for this database",
    "an `audit` connection in this postgres entry of the inventory")


def _pg(action: str, why: str) -> Operation:
    return Operation(System.POSTGRES, action, why)


def _config(target: Target) -> PostgresConfig:
    if not isinstance(target.config, PostgresConfig):
        raise TypeError("a postgres check needs a PostgresConfig target")
    return target.config


# --- postgres.audit.shared_credentials ---------------------------------------------------------


@dataclass(frozen=True)
class SessionIdentity:
    """
    Who and where one session is: its role, server identity and a keyed password digest.

    `password_digest` is an HMAC under a key that lives only for one collect step; it never
    leaves `SharedCredentials.collect`.
    """

    role: str
    system_identifier: Fact[int]
    address: tuple[str, int]
    password_digest: str | None


@dataclass(frozen=True)
class SharedCredentialsObservation:
    """
    What the two connections have in common. Only booleans about the passwords survive.

    `audit` is None when the inventory configures no audit connection.
    """

    application: str
    audit: str | None
    application_role: Fact[str]
    audit_role: Fact[str]
    same_server: Fact[bool]
    same_password: Fact[bool]
    server_basis: str = ""


_IDENTITY_SQL = "SELECT current_user, pg_catalog.host(inet_server_addr()), inet_server_port()"
_SYSID_SQL = "SELECT system_identifier FROM pg_catalog.pg_control_system()"


def _identify(connection: psycopg.Connection[Any], digests: Fingerprinter) -> Fact[SessionIdentity]:
    """The session's identity; the raw password is hashed and dropped at once."""
    row = catalog_row(connection, _IDENTITY_SQL, needs="current_user and inet_server_addr()")
    if isinstance(row, Unknown) or row is None:
        return row or Unknown(UnknownReason.UNPARSEABLE, "the session identity query was empty")
    sysid = catalog_row(connection, _SYSID_SQL, needs="EXECUTE on pg_control_system()")
    system_identifier: Fact[int] = (
        sysid if isinstance(sysid, Unknown) else
        int(sysid[0]) if sysid else Unknown(UnknownReason.UNPARSEABLE, "pg_control_system empty"))
    address = (row[1] or connection.info.host, int(row[2] or connection.info.port))
    password = connection.info.password
    digest = digests.digest(password) if password else None
    del password
    return SessionIdentity(str(row[0]), system_identifier, address, digest)


def _compare_servers(a: SessionIdentity, b: SessionIdentity) -> tuple[Fact[bool], str]:
    """Same server? By system identifier when both are readable, else by address."""
    if isinstance(a.system_identifier, int) and isinstance(b.system_identifier, int):
        return a.system_identifier == b.system_identifier, "system_identifier"
    if a.address == b.address:
        return True, "server address"
    return Unknown(UnknownReason.NOT_VISIBLE,
                   "the connections reach different addresses, and the server's system "
                   "identifier was not readable to confirm they are different servers",
                   "EXECUTE on pg_control_system() for both roles"), "server address"


def _compare_passwords(a: SessionIdentity, b: SessionIdentity) -> Fact[bool]:
    """Same password? Unknown when either session authenticated without one."""
    if a.password_digest is None or b.password_digest is None:
        side = "application" if a.password_digest is None else "audit"
        return Unknown(UnknownReason.NOT_VISIBLE,
                       f"the {side} connection used no password (peer, certificate or trust "
                       "authentication), so password reuse cannot be compared")
    return a.password_digest == b.password_digest


class SharedCredentials(Check[SharedCredentialsObservation]):
    """
    Whether the audit store is reached with the application's own role or password.
    """

    meta = CheckMeta(
        id="postgres.audit.shared_credentials",
        title="Audit store credentials are separate from the application's",
        family=Family.AUDIT,
        standard=Standard.AUDIT_CONTROLS,
        citations=_CITATIONS,
        severity=Severity.HIGH,
        target_kind=TargetKind.POSTGRES,
        description=(
            "Connects with the application's credentials and with the audit store's, and "
            "compares the server (system identifier, else address), the role and the password. "
            "When the application can log in to the audit store as the audit writer, anyone "
            "holding the application's secret can rewrite the record of what they did. "
            "The passwords each connection used (libpq's PQpass, on the client side) are "
            "compared as keyed hashes in memory; neither is stored or reported."),
        remediation=(
            "Give the audit store its own login role with its own password (ideally its own "
            "server or database), grant that role INSERT only on the audit tables, and keep its "
            "secret out of the application's configuration."),
        operations=(
            _pg("current_user", "the role each connection logs in as"),
            _pg("inet_server_addr()", "the server address each connection reaches"),
            _pg("inet_server_port()", "the server port each connection reaches"),
            _pg("pg_catalog.pg_control_system()", "the cluster's system identifier"),
        ),
    )

    def collect(self, ctx: CheckContext, target: Target) -> SharedCredentialsObservation:
        """Connect with both credentials and compare them; raises if the app cannot connect."""
        config = _config(target)
        app_label = describe(config.application)
        if config.audit is None:
            return SharedCredentialsObservation(app_label, None, _NO_AUDIT_CONNECTION,
                                                _NO_AUDIT_CONNECTION, _NO_AUDIT_CONNECTION,
                                                _NO_AUDIT_CONNECTION)
        digests = Fingerprinter()
        with ctx.clients.postgres(config.application) as connection:
            app = _identify(connection, digests)
        audit: Fact[SessionIdentity]
        try:
            with ctx.clients.postgres(config.audit) as connection:
                audit = _identify(connection, digests)
        except PostgresUnavailable as exc:
            audit = exc.unknown
        return _compare(app_label, describe(config.audit), app, audit)

    def evaluate(self, obs: SharedCredentialsObservation, target: Target,
                 policy: Policy) -> Sequence[Finding]:
        """
        FAIL on a shared password or the same role on the same server; PASS only when the
        roles (or servers) and the passwords are known to differ.
        """
        f = self.findings(target)
        resource = "audit-connection"
        evidence = _shared_evidence(obs)
        if obs.audit is None:
            return [f.unverified(resource, _NO_AUDIT_CONNECTION, "the audit store's credentials")]
        for fact, what in ((obs.application_role, "the application connection"),
                           (obs.audit_role, "the audit connection")):
            if isinstance(fact, Unknown):
                return [f.unverified(resource, fact, what)]
        same_role = obs.application_role == obs.audit_role
        shared = []
        if same_role and obs.same_server is True:
            shared.append(f"the application's own role {obs.audit_role} on the same server")
        if obs.same_password is True:
            shared.append("the application's password")
        if shared:
            return [f.failed(resource, f"The audit store is reached with {' and '.join(shared)}.",
                             evidence=evidence)]
        return [_shared_open_question(f, resource, obs, same_role) or
                f.passed(resource, "The audit store uses a different role and a different "
                         "password from the application.", evidence=evidence)]


def _compare(app_label: str, audit_label: str, app: Fact[SessionIdentity],
             audit: Fact[SessionIdentity]) -> SharedCredentialsObservation:
    """Reduce two identities to the booleans the observation keeps."""
    if isinstance(app, Unknown) or isinstance(audit, Unknown):
        unknown = app if isinstance(app, Unknown) else audit
        assert isinstance(unknown, Unknown)
        roles = (app.role if isinstance(app, SessionIdentity) else unknown,
                 audit.role if isinstance(audit, SessionIdentity) else unknown)
        return SharedCredentialsObservation(app_label, audit_label, roles[0], roles[1],
                                            unknown, unknown)
    same, basis = _compare_servers(app, audit)
    return SharedCredentialsObservation(app_label, audit_label, app.role, audit.role, same,
                                        _compare_passwords(app, audit), basis)


def _shared_open_question(f: FindingBuilder[Any], resource: str,
                          obs: SharedCredentialsObservation, same_role: bool) -> Finding | None:
    """The UNVERIFIED finding when something that could still fail the control is unknown."""
    if isinstance(obs.same_password, Unknown):
        return f.unverified(resource, obs.same_password, "whether the passwords differ")
    if same_role and isinstance(obs.same_server, Unknown):
        return f.unverified(resource, obs.same_server,
                            "whether the shared role is on the same server")
    return None


def _shares(obs: SharedCredentialsObservation) -> EvidenceValue:
    """Whether the audit store is reached with the application's credentials, as evaluated."""
    if obs.same_password is True:
        return True
    if isinstance(obs.application_role, Unknown) or isinstance(obs.audit_role, Unknown):
        return "unknown"
    same_role = obs.application_role == obs.audit_role
    if same_role and obs.same_server is True:
        return True
    if isinstance(obs.same_password, Unknown) or (same_role and isinstance(obs.same_server,
                                                                            Unknown)):
        return "unknown"
    return False


def _shared_evidence(obs: SharedCredentialsObservation) -> dict[str, EvidenceValue]:
    def plain(fact: Fact[Any]) -> EvidenceValue:
        return "unknown" if isinstance(fact, Unknown) else cast(EvidenceValue, fact)

    return {"application": obs.application, "audit": obs.audit,
            "trail_kind": "postgres_table", "trail_shares_app_credentials": _shares(obs),
            "application_role": plain(obs.application_role), "audit_role": plain(obs.audit_role),
            "same_server": plain(obs.same_server), "server_basis": obs.server_basis,
            "same_role": (obs.application_role == obs.audit_role
                          if known(obs.application_role) and known(obs.audit_role)
                          else "unknown"),
            "same_password": plain(obs.same_password)}


# --- postgres.audit.app_can_modify -------------------------------------------------------------

StoreAccess = Literal["application_database", "separate_database", "connect_denied"]


@dataclass(frozen=True)
class RoleFacts:
    """The application role's attributes that override table privileges."""

    name: str
    superuser: bool
    bypass_rls: bool


@dataclass(frozen=True, order=True)
class Grant:
    """One UPDATE, DELETE or TRUNCATE grant on an audit table (or UPDATE on a column)."""

    privilege: str
    grantee: str
    held: bool
    """Whether the application role is the grantee, a member of it, or it is PUBLIC."""
    column: bool = False


@dataclass(frozen=True)
class AuditTable:
    """What the catalog says about one audit table, from the application role's view."""

    name: str
    owner: str
    owner_held: bool
    """The application role owns the table or is a member of the owning role."""
    schema_owner: str
    schema_owner_held: bool
    grants: tuple[Grant, ...]
    effective: tuple[str, ...]
    """Modifying privileges `has_table_privilege` and `has_any_column_privilege` report."""
    guard_triggers: Fact[tuple[str, ...]]
    """Enabled BEFORE UPDATE/DELETE/TRUNCATE triggers, as `name (EVENTS)`."""
    row_security: bool = False


@dataclass(frozen=True)
class AppCanModifyObservation:
    """
    The application role's power over each configured audit table.

    `store` says where the tables live and whether the role could reach them; `tables` maps
    each configured name to what was found (empty when the role may not even connect).
    """

    configured: tuple[str, ...]
    database: str
    role: Fact[RoleFacts]
    store: Fact[StoreAccess]
    tables: Mapping[str, Fact[AuditTable]]


_ROLE_SQL = ("SELECT r.rolname, r.rolsuper, r.rolbypassrls FROM pg_catalog.pg_roles r "
             "WHERE r.rolname = session_user")
_TABLE_SQL = """
SELECT c.oid, pg_catalog.pg_get_userbyid(c.relowner), pg_catalog.pg_has_role(c.relowner, 'MEMBER'),
       pg_catalog.pg_get_userbyid(n.nspowner), pg_catalog.pg_has_role(n.nspowner, 'MEMBER'),
       c.relrowsecurity,
       pg_catalog.has_table_privilege(c.oid, 'UPDATE'),
       pg_catalog.has_table_privilege(c.oid, 'DELETE'),
       pg_catalog.has_table_privilege(c.oid, 'TRUNCATE'),
       pg_catalog.has_any_column_privilege(c.oid, 'UPDATE')
FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE c.relname = %(table)s::text AND c.relkind IN ('r', 'p', 'v', 'f', 'm')
  AND (n.nspname = %(schema)s::text
       OR (%(schema)s::text IS NULL AND pg_catalog.pg_table_is_visible(c.oid)))
"""
_GRANTS_SQL = """
SELECT a.privilege_type, false,
       CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE pg_catalog.pg_get_userbyid(a.grantee) END,
       CASE WHEN a.grantee = 0 THEN true ELSE pg_catalog.pg_has_role(a.grantee, 'MEMBER') END
FROM pg_catalog.pg_class c,
     LATERAL pg_catalog.aclexplode(COALESCE(c.relacl, pg_catalog.acldefault('r', c.relowner))) a
WHERE c.oid = %(oid)s AND a.privilege_type IN ('UPDATE', 'DELETE', 'TRUNCATE')
UNION
SELECT a.privilege_type, true,
       CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE pg_catalog.pg_get_userbyid(a.grantee) END,
       CASE WHEN a.grantee = 0 THEN true ELSE pg_catalog.pg_has_role(a.grantee, 'MEMBER') END
FROM pg_catalog.pg_attribute att, LATERAL pg_catalog.aclexplode(att.attacl) a
WHERE att.attrelid = %(oid)s AND att.attacl IS NOT NULL AND a.privilege_type = 'UPDATE'
"""
_TRIGGERS_SQL = """
SELECT t.tgname, t.tgtype::integer FROM pg_catalog.pg_trigger t
WHERE t.tgrelid = %(oid)s AND NOT t.tgisinternal AND t.tgenabled IN ('O', 'A')
  AND (t.tgtype::integer & 2) <> 0 AND (t.tgtype::integer & 56) <> 0
ORDER BY t.tgname
"""
_TRIGGER_EVENTS = ((8, "DELETE"), (16, "UPDATE"), (32, "TRUNCATE"))


def split_qualified(name: str) -> tuple[str | None, str] | None:
    """
    `schema.table` split the way PostgreSQL reads it (unquoted parts fold to lower case);
    `(None, table)` for an unqualified name; None when the name is malformed.
    """
    parts: list[str] = []
    i = 0
    while i <= len(name):
        if name.startswith('"', i):
            end = i + 1
            while True:
                end = name.find('"', end)
                if end < 0:
                    return None
                if name.startswith('""', end):
                    end += 2
                    continue
                break
            parts.append(name[i + 1:end].replace('""', '"'))
            i = end + 1
        else:
            end = name.find(".", i)
            end = len(name) if end < 0 else end
            part = name[i:end].strip()
            if not part or '"' in part:
                return None
            parts.append(part.lower())
            i = end
        if i < len(name) and name[i] != ".":
            return None
        i += 1
    if len(parts) == 1:
        return None, parts[0]
    if len(parts) == 2:
        return parts[0], parts[1]
    return None


def _read_role(connection: psycopg.Connection[Any]) -> Fact[RoleFacts]:
    row = catalog_row(connection, _ROLE_SQL, needs="pg_catalog.pg_roles")
    if isinstance(row, Unknown) or row is None:
        return row or Unknown(UnknownReason.NOT_VISIBLE, "the session's role is not in pg_roles")
    return RoleFacts(str(row[0]), bool(row[1]), bool(row[2]))


def _read_triggers(connection: psycopg.Connection[Any], oid: int) -> Fact[tuple[str, ...]]:
    rows = catalog_query(connection, _TRIGGERS_SQL, {"oid": oid}, needs="pg_catalog.pg_trigger")
    if isinstance(rows, Unknown):
        return rows
    return tuple(f"{name} ({', '.join(e for bit, e in _TRIGGER_EVENTS if tgtype & bit)})"
                 for name, tgtype in rows)


def _read_table(connection: psycopg.Connection[Any], name: str, database: str) -> Fact[AuditTable]:
    """The catalog's facts about one configured audit table, or why they are unknown."""
    parsed = split_qualified(name)
    if parsed is None:
        return Unknown(UnknownReason.UNPARSEABLE, f"{name!r} is not a valid table name")
    schema, table = parsed
    row = catalog_row(connection, _TABLE_SQL, {"schema": schema, "table": table},
                      needs="pg_catalog.pg_class")
    if isinstance(row, Unknown):
        return row
    if row is None:
        return Unknown(UnknownReason.NOT_VISIBLE, f"table {name} was not found in database "
                       f"{database}", f"the audit table {name} in database {database}")
    grant_rows = catalog_query(connection, _GRANTS_SQL, {"oid": row[0]}, needs="aclexplode()")
    if isinstance(grant_rows, Unknown):
        return grant_rows
    grants = tuple(sorted(Grant(str(p), str(g), bool(h), bool(col))
                          for p, col, g, h in grant_rows))
    effective = tuple(p for p, held in zip(("UPDATE", "DELETE", "TRUNCATE"), row[6:9]) if held)
    if row[9] and "UPDATE" not in effective:
        effective += ("UPDATE (columns)",)
    return AuditTable(name, str(row[1]), bool(row[2]), str(row[3]), bool(row[4]), grants,
                      effective, _read_triggers(connection, int(row[0])), bool(row[5]))


def _read_tables(connection: psycopg.Connection[Any], names: tuple[str, ...],
                 database: str) -> dict[str, Fact[AuditTable]]:
    return {name: _read_table(connection, name, database) for name in names}


class AppCanModifyAudit(Check[AppCanModifyObservation]):
    """
    Whether the application role can update, delete, truncate, or take over an audit table.
    """

    meta = CheckMeta(
        id="postgres.audit.app_can_modify",
        title="The application role cannot modify the audit trail",
        family=Family.AUDIT,
        standard=Standard.AUDIT_CONTROLS,
        citations=_CITATIONS,
        severity=Severity.HIGH,
        target_kind=TargetKind.POSTGRES,
        description=(
            "With the application's credentials only, reads the catalog for each configured "
            "audit table: UPDATE, DELETE and TRUNCATE privileges (direct, through PUBLIC, "
            "through role membership, or on columns), ownership of the table or its schema "
            "(which lets a role grant itself anything or drop the table), superuser status, and "
            "BYPASSRLS where the table relies on row-level security. "
            "When the audit tables live in another database on the same server, it first asks "
            "whether the application role may connect there at all. It also records whether a "
            "BEFORE UPDATE/DELETE/TRUNCATE trigger guards the table."),
        remediation=(
            "Keep the audit trail in its own database (or server) owned by a role that cannot "
            "log in; revoke UPDATE, DELETE and TRUNCATE on it from the application role, from "
            "PUBLIC and from every role the application belongs to; revoke CONNECT on that "
            "database from PUBLIC; and add a trigger that rejects UPDATE, DELETE and TRUNCATE."),
        operations=(
            _pg("pg_catalog.pg_roles", "superuser and BYPASSRLS of the application role"),
            _pg("pg_catalog.pg_class", "the audit table, its owner, ACL and row security"),
            _pg("pg_catalog.pg_namespace", "the owner of the audit table's schema"),
            _pg("pg_catalog.pg_attribute", "column-level UPDATE grants"),
            _pg("pg_catalog.pg_trigger", "triggers guarding UPDATE, DELETE and TRUNCATE"),
            _pg("has_table_privilege()", "effective UPDATE, DELETE and TRUNCATE"),
            _pg("has_any_column_privilege()", "effective column UPDATE"),
            _pg("pg_has_role()", "membership in owning and grantee roles"),
            _pg("aclexplode()", "who holds each grant"),
            _pg("has_database_privilege()", "CONNECT on a separate audit database"),
        ),
    )

    def collect(self, ctx: CheckContext, target: Target) -> AppCanModifyObservation:
        """Read the catalog as the application role, in the database holding the tables."""
        config = _config(target)
        names = tuple(config.audit_tables)
        audit = config.audit
        if audit is None or same_location(config.application, audit):
            with ctx.clients.postgres(config.application) as connection:
                database = connection.info.dbname
                return AppCanModifyObservation(names, database, _read_role(connection),
                                               "application_database",
                                               _read_tables(connection, names, database))
        return self._collect_separate(ctx, config, audit, names)

    def _collect_separate(self, ctx: CheckContext, config: PostgresConfig,
                          audit: PostgresConnection,
                          names: tuple[str, ...]) -> AppCanModifyObservation:
        """The audit tables live elsewhere: may the application role even connect there?"""
        database = database_name(audit) or "(default database)"
        with ctx.clients.postgres(config.application) as connection:
            role = _read_role(connection)
            may_connect = _may_connect(connection, database) if same_server(
                config.application, audit) and database_name(audit) else None
        if may_connect is False:
            return AppCanModifyObservation(names, database, role, "connect_denied", {})
        try:
            with ctx.clients.postgres(retarget(config.application, audit)) as connection:
                there = _read_role(connection)
                if isinstance(role, RoleFacts) and isinstance(there, RoleFacts) and \
                        there.name != role.name:
                    wrong = Unknown(UnknownReason.NOT_VISIBLE, "the application's credentials "
                                    "logged in to the audit database as a different role")
                    return AppCanModifyObservation(names, database, role, wrong, {})
                tables = _read_tables(connection, names, database)
        except PostgresUnavailable as exc:
            store: Fact[StoreAccess] = (
                "connect_denied" if exc.failure is ConnectFailure.CONNECT_DENIED else exc.unknown)
            return AppCanModifyObservation(names, database, role, store, {})
        return AppCanModifyObservation(names, database, there, "separate_database", tables)

    def evaluate(self, obs: AppCanModifyObservation, target: Target,
                 policy: Policy) -> Sequence[Finding]:
        """One finding per configured audit table; none configured is UNVERIFIED."""
        f = self.findings(target)
        if not obs.configured:
            return [f.unverified("audit-tables", Unknown(
                UnknownReason.NOT_VISIBLE, "no audit tables are configured for this database",
                "`audit_tables` in this postgres entry of the inventory"), "the audit tables")]
        return [_judge_table(f, obs, name) for name in obs.configured]


def _may_connect(connection: psycopg.Connection[Any], database: str) -> Fact[bool]:
    row = catalog_row(connection, "SELECT pg_catalog.has_database_privilege(d.oid, 'CONNECT') "
                      "FROM pg_catalog.pg_database d WHERE d.datname = %s", [database],
                      needs="pg_catalog.pg_database")
    if isinstance(row, Unknown):
        return row
    if row is None:
        return Unknown(UnknownReason.NOT_VISIBLE, f"database {database} does not exist")
    return bool(row[0])


def modification_routes(role: RoleFacts, table: AuditTable) -> tuple[str, ...]:
    """
    Every way `role` can change or destroy `table`'s rows, in words; empty when there is none.
    """
    routes: list[str] = []
    if role.superuser:
        routes.append("superuser")
    if role.bypass_rls and table.row_security and not role.superuser and (
            table.effective or any(g.held for g in table.grants)):
        routes.append("BYPASSRLS: the table's row-level security does not bind it")
    if table.owner_held:
        routes.append("owns the table" if table.owner == role.name
                      else f"member of the owning role {table.owner}")
    if table.schema_owner_held:
        routes.append("owns the schema (can drop the table)" if table.schema_owner == role.name
                      else f"member of the schema-owning role {table.schema_owner}")
    for grant in table.grants:
        if not grant.held or (table.owner_held and grant.grantee == table.owner):
            continue
        what = f"{grant.privilege} on columns" if grant.column else grant.privilege
        how = ("direct grant" if grant.grantee == role.name else "granted to PUBLIC"
               if grant.grantee == "PUBLIC" else f"via membership in {grant.grantee}")
        routes.append(f"{what}: {how}")
    explained = {g.privilege for g in table.grants if g.held}
    for privilege in table.effective:
        if privilege.split(" ")[0] not in explained and not (
                role.superuser or table.owner_held):
            routes.append(f"{privilege}: effective privilege")
    return tuple(dict.fromkeys(routes))


def _table_evidence(obs: AppCanModifyObservation, table: AuditTable | None,
                    role: RoleFacts | None) -> dict[str, EvidenceValue]:
    evidence: dict[str, EvidenceValue] = {"database": obs.database,
                                          "audit_store": str(obs.store) if known(obs.store)
                                          else "unknown"}
    if role is not None:
        evidence.update(role=role.name, superuser=role.superuser, bypass_rls=role.bypass_rls)
    if table is not None:
        triggers = table.guard_triggers
        evidence.update(owner=table.owner, privileges=table.effective,
                        row_security=table.row_security,
                        guard_triggers=triggers if isinstance(triggers, tuple) else "unknown")
    return evidence


def _trail_keys(name: str, app_can_modify: bool) -> dict[str, EvidenceValue]:
    """The "Audit controls" report keys this check contributes for one audit table."""
    return {"trail": name, "trail_kind": "postgres_table", "trail_app_can_modify": app_can_modify}


def _judge_table(f: FindingBuilder[Any], obs: AppCanModifyObservation, name: str) -> Finding:
    """The verdict on one audit table."""
    if isinstance(obs.store, Unknown):
        return f.unverified(name, obs.store, "whether the application role can reach the table")
    if obs.store == "connect_denied":
        evidence = _table_evidence(obs, None, obs.role if isinstance(obs.role, RoleFacts)
                                   else None)
        return f.passed(name, f"The application role may not connect to the audit database "
                        f"{obs.database}, so it cannot modify {name}.",
                        evidence={**evidence, **_trail_keys(name, False)})
    if isinstance(obs.role, Unknown):
        return f.unverified(name, obs.role, "the application role's attributes")
    table = obs.tables.get(name, Unknown(UnknownReason.NOT_VISIBLE, f"{name} was not inspected"))
    if isinstance(table, Unknown):
        return f.unverified(name, table, f"the privileges on {name}")
    evidence = _table_evidence(obs, table, obs.role)
    routes = modification_routes(obs.role, table)
    evidence.update(_trail_keys(name, bool(routes)))
    if routes:
        evidence["routes"] = routes
        return f.failed(name, f"The application role {obs.role.name} can modify the audit "
                        f"table {name}: {'; '.join(routes)}.", evidence=evidence)
    return f.passed(name, f"The application role {obs.role.name} cannot update, delete, "
                    f"truncate or take over the audit table {name}.", evidence=evidence)
