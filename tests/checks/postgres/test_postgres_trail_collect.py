"""
The audit-store, breach-readiness and tenant-isolation checks end to end against a real
PostgreSQL server: the lab's three layouts, the extra tables of the conftest, discovery of
unconfigured trails, and roles that bypass row-level security.
"""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from hipaacheck.check import Check, CheckContext
from hipaacheck.checks.postgres.audit import AppCanModifyAudit, SharedCredentials
from hipaacheck.checks.postgres.breach import BreachQueryable, ReadsCaptured, TrailShape
from hipaacheck.checks.postgres.store import AppendOnlyGuard, AuditStoreLocation
from hipaacheck.checks.postgres.tenants import TenantIsolation
from hipaacheck.config import PostgresConfig, PostgresConnection
from hipaacheck.lab.postgres import SeededLab
from hipaacheck.model import Finding, Status, Target, TargetKind, UnknownReason

FAIL, PASS = Status.FAIL, Status.PASS
TRAIL_CHECKS: tuple[Check[Any], ...] = (
    SharedCredentials(), AppCanModifyAudit(), AppendOnlyGuard(), AuditStoreLocation(),
    TrailShape(), ReadsCaptured(), BreachQueryable())

# Each lab layout, and the status every audit-trail check must give its one audit table.
LAYOUTS = {
    "clinic-broken": {"postgres.audit.shared_credentials": FAIL,
                      "postgres.audit.app_can_modify": FAIL,
                      "postgres.audit.append_only": FAIL,
                      "postgres.audit.store_location": FAIL,
                      "postgres.audit.trail_shape": PASS,
                      "postgres.audit.reads_captured": PASS,
                      "postgres.audit.breach_queryable": FAIL},
    "clinic-sound": {"postgres.audit.shared_credentials": PASS,
                     "postgres.audit.app_can_modify": PASS,
                     "postgres.audit.append_only": PASS,
                     "postgres.audit.store_location": PASS,
                     "postgres.audit.trail_shape": PASS,
                     "postgres.audit.reads_captured": PASS,
                     "postgres.audit.breach_queryable": PASS},
    "clinic-member": {"postgres.audit.shared_credentials": PASS,
                      "postgres.audit.app_can_modify": FAIL,
                      "postgres.audit.append_only": FAIL,
                      "postgres.audit.store_location": PASS,
                      "postgres.audit.trail_shape": PASS,
                      "postgres.audit.reads_captured": FAIL,
                      "postgres.audit.breach_queryable": FAIL},
}


def run(check: Check[Any], ctx: CheckContext, target: Target) -> list[Finding]:
    """Collect and evaluate one check against one target, as the runner does."""
    findings = list(check.evaluate(check.collect(ctx, target), target, ctx.policy))
    assert all(f.target == target.id and f.check_id == check.meta.id for f in findings)
    return findings


def one(check: Check[Any], ctx: CheckContext, target: Target) -> Finding:
    [finding] = run(check, ctx, target)
    return finding


@pytest.mark.parametrize("entry", sorted(LAYOUTS))
def test_lab_layouts(pg_lab: SeededLab, pg_ctx: CheckContext, entry: str) -> None:
    target = pg_lab.lab_target(entry)
    statuses = {check.meta.id: one(check, pg_ctx, target).status for check in TRAIL_CHECKS}
    assert statuses == LAYOUTS[entry]


def test_member_of_the_audit_owner_is_found(pg_lab: SeededLab, pg_ctx: CheckContext) -> None:
    finding = one(AppCanModifyAudit(), pg_ctx, pg_lab.lab_target("clinic-member"))
    assert "member of the owning role trail_owner" in finding.evidence["routes"]  # type: ignore
    assert finding.evidence["trail_app_can_modify"] is True


def test_sound_store_report_keys(pg_lab: SeededLab, pg_ctx: CheckContext) -> None:
    target = pg_lab.lab_target("clinic-sound")
    guard = one(AppendOnlyGuard(), pg_ctx, target)
    assert guard.evidence["trail_writers"] == ("audit_owner", "audit_writer")
    assert "clinic_app" not in guard.evidence["trail_modifiers"]  # type: ignore[operator]
    assert "postgres" in guard.evidence["trail_modifiers"]  # type: ignore[operator]
    location = one(AuditStoreLocation(), pg_ctx, target)
    assert location.evidence["placement"] == "separate_database"
    query = one(BreachQueryable(), pg_ctx, target)
    assert query.evidence["by_user_index"] == "access_log_by_actor"
    assert query.evidence["by_patient_index"] == "access_log_by_object"
    assert isinstance(query.evidence["by_user_estimated_cost"], float)
    assert query.evidence["by_user_plan_uses_index"] is True
    reads = one(ReadsCaptured(), pg_ctx, target)
    assert (reads.evidence["sample_order"], reads.evidence["sampled_rows"]) == ("time", 1000)


@pytest.mark.parametrize(("table", "status", "states"), [
    ("public.audit_guarded", FAIL, ("refuses", "refuses", "none")),
    ("public.audit_ruled", PASS, ("refuses", "refuses", "refuses")),
    ("public.audit_notified", Status.UNVERIFIED, ("fires", "fires", "fires")),
    ("public.audit_owned", FAIL, ("none", "none", "none")),
])
def test_guards_on_the_conftest_tables(pg_lab: SeededLab, pg_ctx: CheckContext, table: str,
                                       status: Status, states: tuple[str, ...]) -> None:
    finding = one(AppendOnlyGuard(), pg_ctx, pg_lab.target("guards", pg_lab.app(), None, [table]))
    assert finding.status is status
    assert tuple(finding.evidence[f"{e}_guard"] for e in ("update", "delete", "truncate")) == \
        states


def test_audit_schema_of_its_own_in_the_app_database_warns(pg_lab: SeededLab,
                                                           pg_ctx: CheckContext) -> None:
    target = pg_lab.target("schema", pg_lab.app(), None, ["owned_schema.audit_log"])
    finding = one(AuditStoreLocation(), pg_ctx, target)
    assert (finding.status, finding.evidence["placement"]) == (Status.WARN, "same_database")


def test_unconfigured_trails_are_found_by_name(pg_lab: SeededLab, pg_ctx: CheckContext) -> None:
    sound = pg_lab.configs["clinic-sound"]
    found = run(TrailShape(), pg_ctx, pg_lab.target("found", pg_lab.app(), sound.audit, []))
    assert [(f.resource, f.status, f.evidence["discovered"]) for f in found] == [
        ("audit.access_log", PASS, True)]
    in_app = {f.resource for f in run(AppendOnlyGuard(), pg_ctx,
                                      pg_lab.target("found", pg_lab.app(), None, []))}
    assert {"public.audit_log", "public.audit_ruled", "owned_schema.audit_log"} <= in_app


def test_a_trail_the_session_may_not_read_is_unverified(pg_lab: SeededLab,
                                                        pg_ctx: CheckContext) -> None:
    target = pg_lab.target("hidden", pg_lab.app(), None, ["public.audit_hidden"])
    assert one(TrailShape(), pg_ctx, target).status is PASS
    for check in (ReadsCaptured(), BreachQueryable()):
        finding = one(check, pg_ctx, target)
        assert (finding.status, finding.unknown_reason) == (Status.UNVERIFIED,
                                                            UnknownReason.ACCESS_DENIED)
        assert "public.audit_hidden" in str(finding.needs)


def test_an_empty_trail_is_unverified_for_reads(pg_lab: SeededLab, pg_ctx: CheckContext) -> None:
    target = pg_lab.target("empty", pg_lab.app(), None, ["public.audit_via_role"])
    finding = one(ReadsCaptured(), pg_ctx, target)
    assert (finding.status, finding.unknown_reason) == (Status.UNVERIFIED,
                                                        UnknownReason.NOT_VISIBLE)
    assert finding.evidence["pgaudit_loaded"] is False


def test_missing_table_is_unverified_for_every_check(pg_lab: SeededLab,
                                                     pg_ctx: CheckContext) -> None:
    target = pg_lab.target("missing", pg_lab.app(), None, ["audit.nowhere"])
    for check in TRAIL_CHECKS[2:]:
        finding = one(check, pg_ctx, target)
        assert (finding.status, finding.unknown_reason) == (Status.UNVERIFIED,
                                                            UnknownReason.NOT_VISIBLE)


class _WithReader(PostgresConfig):
    """The inventory entry as it will look with the proposed `audit_reader` knob."""

    audit_reader: PostgresConnection | None = None


def test_audit_reader_connection_is_preferred(pg_lab: SeededLab, pg_ctx: CheckContext) -> None:
    sound = pg_lab.configs["clinic-sound"]
    config = _WithReader(name="reader", application=pg_lab.app(), audit=pg_lab.app(),
                         audit_reader=sound.audit, audit_tables=["audit.access_log"])
    target = Target(TargetKind.POSTGRES, "postgres:reader", "reader", config)
    finding = one(BreachQueryable(), pg_ctx, target)
    assert (finding.status, finding.evidence["session"]) == (PASS, "audit_reader")


# --- tenant isolation ---

TENANT_TABLES = {"public.patients": PASS, "public.encounters": FAIL, "public.invoices": FAIL,
                 "public.documents": FAIL, "public.visits": FAIL}


def test_tenant_tables_of_the_lab(pg_lab: SeededLab, pg_ctx: CheckContext) -> None:
    findings = {f.resource: f for f in run(TenantIsolation(), pg_ctx,
                                           pg_lab.lab_target("clinic-sound"))}
    assert {name: findings[name].status for name in TENANT_TABLES} == TENANT_TABLES
    assert findings["role:clinic_app"].status is PASS
    assert findings["public.invoices"].evidence["app_owns"] is True
    assert findings["public.visits"].evidence["admit_all_policies"] == 1
    assert findings["public.encounters"].evidence["tenant_columns"] == ("practice_id",)


@pytest.mark.parametrize(("role", "bypass"), [("clinic_bypass", ("clinic_bypass",)),
                                              ("clinic_ops", ("rls_admin",))])
def test_application_roles_that_bypass_rls_fail(pg_lab: SeededLab, pg_ctx: CheckContext,
                                                role: str, bypass: tuple[str, ...]) -> None:
    app = pg_lab.connection("clinic", role, pg_lab.app_password)
    findings = {f.resource: f for f in run(TenantIsolation(), pg_ctx,
                                           pg_lab.target("bypass", app))}
    assert findings[f"role:{role}"].status is FAIL
    assert findings[f"role:{role}"].evidence["bypass_roles"] == bypass


def test_member_layout_really_lets_the_application_rewrite_its_trail(pg_lab: SeededLab) -> None:
    # A plain, writable session as the application: the statements match no row, so nothing
    # changes, but the server accepts them, which is what the FAIL findings claim.
    conninfo = pg_lab.conninfo("audit_member", "clinic_app", pg_lab.app_password)
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute("UPDATE audit.trail SET actor = actor WHERE false")
        conn.execute("DELETE FROM audit.trail WHERE false")
