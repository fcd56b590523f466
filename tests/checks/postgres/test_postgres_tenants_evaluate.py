"""
Tenant isolation's judgement on hand-built observations: every way row-level security falls
short, the application role that bypasses it, and unknowns as UNVERIFIED.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
from pydantic import Field

from hipaacheck.check import Policy
from hipaacheck.checks.postgres.tenants import (
    DEFAULT_TENANT_COLUMNS,
    BypassRole,
    TenantIsolation,
    TenantObservation,
    TenantTable,
    tenant_columns,
    tenant_gaps,
)
from hipaacheck.config import PostgresConfig, PostgresConnection
from hipaacheck.model import Finding, Status, Target, TargetKind, Unknown, UnknownReason
from hipaacheck.redact import Secret

CONFIG = PostgresConfig(name="clinic",
                        application=PostgresConnection(conninfo=Secret("host=db user=app")))
TARGET = Target(TargetKind.POSTGRES, "postgres:clinic", "clinic", CONFIG)
ISOLATED = TenantTable("public.patients", ("tenant_id",), row_security=True, forced=True,
                       owner="migrator", app_owns=False, policies=1, admit_all_policies=0)
DENIED = Unknown(UnknownReason.ACCESS_DENIED, "denied", "pg_catalog.pg_policy")


def judge(tables: tuple[TenantTable, ...] | Unknown = (ISOLATED,),
          bypass: tuple[BypassRole, ...] | Unknown = ()) -> list[Finding]:
    obs = TenantObservation("app", DEFAULT_TENANT_COLUMNS, tables, bypass)
    return list(TenantIsolation().evaluate(obs, TARGET, Policy()))


def test_forced_rls_with_a_policy_and_a_plain_role_pass() -> None:
    role, table = judge()
    assert (role.resource, role.status) == ("role:app", Status.PASS)
    assert (table.check_id, table.resource, table.status) == (
        "postgres.access.tenant_isolation", "public.patients", Status.PASS)


@pytest.mark.parametrize(("changes", "gap"), [
    ({"row_security": False, "forced": False}, "row-level security is not enabled"),
    ({"forced": False}, "row-level security is not forced"),
    ({"policies": 0}, "no policy is defined"),
    ({"admit_all_policies": 1}, "a permissive policy admits every row"),
])
def test_each_rls_gap_fails(changes: dict[str, object], gap: str) -> None:
    _role, table = judge((replace(ISOLATED, **changes),))
    assert table.status is Status.FAIL
    assert any(g.startswith(gap) for g in table.evidence["gaps"])  # type: ignore[union-attr]


def test_unforced_rls_names_the_application_as_owner() -> None:
    gaps = tenant_gaps(replace(ISOLATED, forced=False, owner="app", app_owns=True))
    assert "(the application role)" in gaps[0]


@pytest.mark.parametrize("bypass", [
    (BypassRole("app", superuser=False, bypass_rls=True),),
    (BypassRole("rls_admin", superuser=False, bypass_rls=True),),
    (BypassRole("app", superuser=True, bypass_rls=False),),
])
def test_a_role_that_bypasses_rls_fails(bypass: tuple[BypassRole, ...]) -> None:
    role, table = judge(bypass=bypass)
    assert (role.status, table.status) == (Status.FAIL, Status.PASS)
    assert role.evidence["bypass_roles"] == tuple(r.name for r in bypass)


def test_no_tenant_table_passes_only_because_the_listing_succeeded() -> None:
    _role, listing = judge(())
    assert (listing.resource, listing.status) == ("tenant-tables", Status.PASS)
    assert listing.evidence["tenant_tables"] == 0


def test_unknowns_are_unverified() -> None:
    role, listing = judge(DENIED, DENIED)
    assert [f.status for f in (role, listing)] == [Status.UNVERIFIED, Status.UNVERIFIED]
    assert listing.needs == "pg_catalog.pg_policy"


def test_tenant_columns_default_and_configured() -> None:
    assert tenant_columns(CONFIG) == DEFAULT_TENANT_COLUMNS

    class WithColumns(PostgresConfig):
        tenant_columns: list[str] = Field(default_factory=list)

    custom = WithColumns(name="c", application=CONFIG.application, tenant_columns=["Clinic_Key"])
    assert tenant_columns(custom) == ("clinic_key",)
