"""
Tenant isolation enforced by the database (164.312(a)(1)): row-level security on every table
that carries a tenant column, and no application role that bypasses it.

A multi-tenant application that isolates tenants only in its own WHERE clauses leaks a whole
tenant's records through one forgotten filter. `TenantIsolation` reads, through the
application's own session, every table with a tenant column (`tenant_id`, `org_id`,
`organization_id`, `practice_id`... or the inventory's `tenant_columns`): row-level security off,
on but not forced (so the table's owner, often the application's migration role, bypasses it),
or on without a policy (or only with a policy that admits every row) is FAIL. So is an
application role that is superuser or BYPASSRLS, or may become one (role membership): row-level
security does not bind it at all. Catalogs only; no row is read.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import psycopg

from hipaacheck.check import Check, CheckContext, Policy
from hipaacheck.checks.postgres.trail import postgres_config
from hipaacheck.clients.postgres import catalog_query
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
)

DEFAULT_TENANT_COLUMNS = ("tenant_id", "org_id", "organization_id", "organisation_id",
                          "practice_id", "clinic_id", "customer_id", "account_id", "facility_id",
                          "hospital_id", "provider_org_id")
"""Column names that mark a table as holding several tenants' rows."""
ROLE_RESOURCE_PREFIX = "role:"


def tenant_columns(config: PostgresConfig) -> tuple[str, ...]:
    """The inventory's `tenant_columns` when set, else `DEFAULT_TENANT_COLUMNS`."""
    configured = getattr(config, "tenant_columns", None)
    if isinstance(configured, (list, tuple)) and configured:
        return tuple(str(c).lower() for c in configured)
    return DEFAULT_TENANT_COLUMNS


@dataclass(frozen=True)
class TenantTable:
    """One table with a tenant column, and its row-level security."""

    name: str
    tenant_columns: tuple[str, ...]
    row_security: bool
    forced: bool
    owner: str
    app_owns: bool
    """The application role owns the table or is a member of its owner."""
    policies: int
    admit_all_policies: int
    """Permissive SELECT or ALL policies whose USING clause is absent or `true`."""


@dataclass(frozen=True)
class BypassRole:
    """A role the application's session is or may become, with the power to bypass RLS."""

    name: str
    superuser: bool
    bypass_rls: bool


@dataclass(frozen=True)
class TenantObservation:
    """The tenant tables and the application role's RLS-bypassing roles, as catalog facts."""

    role: Fact[str]
    columns: tuple[str, ...]
    tables: Fact[tuple[TenantTable, ...]]
    bypass: Fact[tuple[BypassRole, ...]]


_TABLES_SQL = """
SELECT pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(c.relname),
       ARRAY(SELECT a.attname::text FROM pg_catalog.pg_attribute a
             WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
               AND lower(a.attname) = ANY(%(columns)s::text[]) ORDER BY a.attnum),
       c.relrowsecurity, c.relforcerowsecurity, pg_catalog.pg_get_userbyid(c.relowner),
       pg_catalog.pg_has_role(c.relowner, 'MEMBER'),
       (SELECT count(*) FROM pg_catalog.pg_policy p WHERE p.polrelid = c.oid),
       (SELECT count(*) FROM pg_catalog.pg_policy p
        WHERE p.polrelid = c.oid AND p.polpermissive AND p.polcmd IN ('*', 'r')
          AND (p.polqual IS NULL
               OR pg_catalog.pg_get_expr(p.polqual, p.polrelid) IN ('true', '(true)')))
FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition
  AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%%'
  AND EXISTS (SELECT 1 FROM pg_catalog.pg_attribute a
              WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
                AND lower(a.attname) = ANY(%(columns)s::text[]))
ORDER BY 1
"""
_BYPASS_SQL = """
SELECT r.rolname, r.rolsuper, r.rolbypassrls FROM pg_catalog.pg_roles r
WHERE pg_catalog.pg_has_role(session_user, r.oid, 'MEMBER') AND (r.rolsuper OR r.rolbypassrls)
ORDER BY r.rolname
"""


def _read_tables(connection: psycopg.Connection[Any],
                 columns: tuple[str, ...]) -> Fact[tuple[TenantTable, ...]]:
    rows = catalog_query(connection, _TABLES_SQL, {"columns": list(columns)},
                         needs="pg_catalog.pg_class and pg_catalog.pg_policy")
    if isinstance(rows, Unknown):
        return rows
    return tuple(TenantTable(str(name), tuple(cols), bool(rls), bool(forced), str(owner),
                             bool(owns), int(policies), int(admit_all))
                 for name, cols, rls, forced, owner, owns, policies, admit_all in rows)


def _read_bypass(connection: psycopg.Connection[Any]) -> Fact[tuple[BypassRole, ...]]:
    rows = catalog_query(connection, _BYPASS_SQL, needs="pg_catalog.pg_roles")
    if isinstance(rows, Unknown):
        return rows
    return tuple(BypassRole(str(n), bool(s), bool(b)) for n, s, b in rows)


class TenantIsolation(Check[TenantObservation]):
    """
    Tables holding several tenants' rows are isolated by forced row-level security.
    """

    meta = CheckMeta(
        id="postgres.access.tenant_isolation",
        title="Tenant tables are isolated by forced row-level security",
        family=Family.ACCESS,
        standard=Standard.ACCESS_CONTROL,
        citations=("164.312(a)(1)",),
        severity=Severity.HIGH,
        target_kind=TargetKind.POSTGRES,
        description=(
            "Through the application's own session, lists every table with a tenant column "
            "(tenant_id, org_id, organization_id, practice_id and the like, or `tenant_columns` "
            "of the entry) and reads its row-level security: off, on but not forced for the "
            "table owner, and on with no policy (or only a permissive policy that admits every "
            "row) are FAIL, since isolation then rests on the application's own WHERE clauses. "
            "Also FAIL: the application's role is a superuser or has BYPASSRLS, or may become "
            "such a role through membership, so no policy binds it."),
        remediation=(
            "ALTER TABLE ... ENABLE ROW LEVEL SECURITY and FORCE ROW LEVEL SECURITY on every "
            "tenant table, with a policy such as USING (tenant_id = current_setting("
            "'app.tenant_id')::int); run the application as a role that does not own the "
            "tables and has neither SUPERUSER nor BYPASSRLS, nor membership in such a role."),
        operations=(
            Operation(System.POSTGRES, "pg_catalog.pg_class", "tables and their RLS flags"),
            Operation(System.POSTGRES, "pg_catalog.pg_attribute", "tables with tenant columns"),
            Operation(System.POSTGRES, "pg_catalog.pg_policy", "row-level security policies"),
            Operation(System.POSTGRES, "pg_catalog.pg_roles", "roles that bypass RLS"),
            Operation(System.POSTGRES, "pg_has_role()", "ownership and role membership"),
        ),
    )

    def collect(self, ctx: CheckContext, target: Target) -> TenantObservation:
        """Read the tenant tables and the RLS-bypassing roles through the app's session."""
        config = postgres_config(target)
        columns = tenant_columns(config)
        with ctx.clients.postgres(config.application) as connection:
            role = str(connection.info.user or "")
            return TenantObservation(role or "(unknown role)", columns,
                                     _read_tables(connection, columns),
                                     _read_bypass(connection))

    def evaluate(self, obs: TenantObservation, target: Target,
                 policy: Policy) -> Sequence[Finding]:
        """One finding per tenant table, and one on the application role."""
        f = self.findings(target)
        findings = [_judge_role(f, obs)]
        if isinstance(obs.tables, Unknown):
            return [*findings, f.unverified("tenant-tables", obs.tables, "the tenant tables")]
        if not obs.tables:
            return [*findings, f.passed(
                "tenant-tables", "No table in the application database has a tenant column "
                f"({', '.join(obs.columns)}).", evidence={"tenant_tables": 0,
                                                          "tenant_column_names": obs.columns})]
        return [*findings, *(_judge_tenant_table(f, table) for table in obs.tables)]


def _judge_role(f: FindingBuilder[Any], obs: TenantObservation) -> Finding:
    resource = f"{ROLE_RESOURCE_PREFIX}{obs.role}"
    if isinstance(obs.bypass, Unknown):
        return f.unverified(resource, obs.bypass, "whether the application role bypasses RLS")
    evidence: dict[str, EvidenceValue] = {
        "role": str(obs.role), "bypass_roles": tuple(r.name for r in obs.bypass),
        "superuser": any(r.superuser for r in obs.bypass),
        "bypass_rls": any(r.bypass_rls for r in obs.bypass)}
    if obs.bypass:
        how = "; ".join(f"{r.name} ({'superuser' if r.superuser else 'BYPASSRLS'})"
                        + ("" if r.name == obs.role else ", through membership")
                        for r in obs.bypass)
        return f.failed(resource, f"The application role {obs.role} bypasses row-level "
                        f"security: {how}.", evidence=evidence)
    return f.passed(resource, f"The application role {obs.role} is not a superuser, has no "
                    "BYPASSRLS and belongs to no role that has.", evidence=evidence)


def tenant_gaps(table: TenantTable) -> tuple[str, ...]:
    """Every way `table`'s row-level security fails to isolate tenants; empty when none."""
    if not table.row_security:
        return ("row-level security is not enabled",)
    gaps = []
    if not table.forced:
        gaps.append("row-level security is not forced, so the owner "
                    f"{table.owner}{' (the application role)' if table.app_owns else ''} "
                    "bypasses it")
    if table.policies == 0:
        gaps.append("no policy is defined")
    elif table.admit_all_policies:
        gaps.append("a permissive policy admits every row")
    return tuple(gaps)


def _judge_tenant_table(f: FindingBuilder[Any], table: TenantTable) -> Finding:
    evidence: dict[str, EvidenceValue] = {
        "tenant_columns": table.tenant_columns, "row_security": table.row_security,
        "forced": table.forced, "owner": table.owner, "app_owns": table.app_owns,
        "policies": table.policies, "admit_all_policies": table.admit_all_policies}
    gaps = tenant_gaps(table)
    if gaps:
        evidence["gaps"] = gaps
        return f.failed(table.name, f"Tenant table {table.name} is not isolated by the "
                        f"database: {'; '.join(gaps)}.", evidence=evidence)
    return f.passed(table.name, f"Tenant table {table.name} has forced row-level security and "
                    "a restricting policy.", evidence=evidence)
