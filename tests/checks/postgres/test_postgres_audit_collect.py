"""
The audit-isolation checks end to end against a real PostgreSQL server: the lab's broken and
sound layouts, one table per route to modification, unreachable and denied connections, a
catalog snapshot that the probes must leave untouched, and no password anywhere in the output.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest
from psycopg.conninfo import make_conninfo

from hipaacheck.check import Check, CheckContext
from hipaacheck.checks.postgres.audit import AppCanModifyAudit, SharedCredentials
from hipaacheck.config import PostgresConnection
from hipaacheck.errors import ProbeUnavailable
from hipaacheck.lab.postgres import SeededLab
from hipaacheck.model import Finding, Status, Target, UnknownReason
from hipaacheck.redact import Secret

# The extra tables the conftest creates in `clinic`, and the route each must be found by.
ROUTE_TABLES = {
    "public.audit_via_role": "DELETE: via membership in clinic_rw",
    "public.audit_owned": "owns the table",
    "public.audit_public": "TRUNCATE: granted to PUBLIC",
    "public.audit_column": "UPDATE on columns: direct grant",
    "owned_schema.audit_log": "owns the schema (can drop the table)",
}
GUARDED_TABLE = "public.audit_guarded"


def _conn(conninfo: str) -> PostgresConnection:
    """An inventory connection from a conninfo string."""
    return PostgresConnection(conninfo=Secret(conninfo))


def run(check: Check[Any], ctx: CheckContext, target: Target) -> list[Finding]:
    """Collect and evaluate one check against one target, as the runner does."""
    findings = list(check.evaluate(check.collect(ctx, target), target, ctx.policy))
    assert all(f.target == target.id and f.check_id == check.meta.id for f in findings)
    return findings


@pytest.mark.parametrize(("entry", "shared", "modify"), [
    ("clinic-broken", Status.FAIL, Status.FAIL),
    ("clinic-sound", Status.PASS, Status.PASS),
])
def test_lab_layouts(pg_lab: SeededLab, pg_ctx: CheckContext, entry: str, shared: Status,
                     modify: Status) -> None:
    target = pg_lab.lab_target(entry)
    [credentials] = run(SharedCredentials(), pg_ctx, target)
    [table] = run(AppCanModifyAudit(), pg_ctx, target)
    assert (credentials.status, table.status) == (shared, modify)


def test_broken_layout_evidence(pg_lab: SeededLab, pg_ctx: CheckContext) -> None:
    target = pg_lab.lab_target("clinic-broken")
    [credentials] = run(SharedCredentials(), pg_ctx, target)
    assert credentials.evidence["same_role"] is True
    assert credentials.evidence["same_password"] is True
    assert credentials.evidence["server_basis"] == "system_identifier"
    [table] = run(AppCanModifyAudit(), pg_ctx, target)
    assert table.evidence["routes"] == ("DELETE: direct grant", "UPDATE: direct grant")
    assert table.evidence["guard_triggers"] == ()


def test_sound_layout_is_denied_connect(pg_lab: SeededLab, pg_ctx: CheckContext) -> None:
    [table] = run(AppCanModifyAudit(), pg_ctx, pg_lab.lab_target("clinic-sound"))
    assert table.evidence["audit_store"] == "connect_denied"


@pytest.mark.parametrize(("table", "route"), sorted(ROUTE_TABLES.items()))
def test_each_route_to_modification_is_found(pg_lab: SeededLab, pg_ctx: CheckContext, table: str,
                                             route: str) -> None:
    target = pg_lab.target("routes", pg_lab.app(), None, [table])
    [finding] = run(AppCanModifyAudit(), pg_ctx, target)
    assert finding.status is Status.FAIL
    assert route in finding.evidence["routes"]  # type: ignore[operator]


def test_guarded_table_passes_and_reports_only_enabled_triggers(pg_lab: SeededLab,
                                                              pg_ctx: CheckContext) -> None:
    target = pg_lab.target("guarded", pg_lab.app(), None, [GUARDED_TABLE])
    [finding] = run(AppCanModifyAudit(), pg_ctx, target)
    assert finding.status is Status.PASS
    assert finding.evidence["guard_triggers"] == ("guarded_no_change (DELETE, UPDATE)",)


def test_superuser_as_application_fails(pg_lab: SeededLab, pg_ctx: CheckContext) -> None:
    admin = _conn(pg_lab.server.admin_conninfo("clinic"))
    target = pg_lab.target("super", admin, None, ["public.audit_log"])
    [finding] = run(AppCanModifyAudit(), pg_ctx, target)
    assert finding.status is Status.FAIL
    assert "superuser" in finding.evidence["routes"]  # type: ignore[operator]


def test_separate_database_the_app_may_enter_is_inspected_there(pg_lab: SeededLab,
                                                                pg_ctx: CheckContext) -> None:
    audit = _conn(pg_lab.conninfo("audit_open", "audit_writer",
                                                        pg_lab.audit_password))
    target = pg_lab.target("open", pg_lab.app(), audit, ["public.trail", "public.missing"])
    trail, missing = run(AppCanModifyAudit(), pg_ctx, target)
    assert trail.status is Status.FAIL
    assert trail.evidence["audit_store"] == "separate_database"
    assert trail.evidence["routes"] == ("UPDATE: direct grant",)
    assert (missing.status, missing.unknown_reason) == (Status.UNVERIFIED,
                                                        UnknownReason.NOT_VISIBLE)


def test_audit_store_on_unreachable_server_is_unverified(pg_lab: SeededLab, pg_ctx: CheckContext,
                                                         closed_port: int) -> None:
    audit = _conn(pg_lab.conninfo("audit", "audit_writer", "x")
                               .replace(f"port={pg_lab.server.port}", f"port={closed_port}"))
    target = pg_lab.target("far", pg_lab.app(), audit, ["audit.access_log"])
    [table] = run(AppCanModifyAudit(), pg_ctx, target)
    assert (table.status, table.unknown_reason) == (Status.UNVERIFIED, UnknownReason.UNREACHABLE)
    [credentials] = run(SharedCredentials(), pg_ctx, target)
    assert (credentials.status, credentials.unknown_reason) == (Status.UNVERIFIED,
                                                                UnknownReason.UNREACHABLE)


def test_missing_table_is_unverified(pg_lab: SeededLab, pg_ctx: CheckContext) -> None:
    target = pg_lab.target("missing", pg_lab.app(), None, ["audit.nowhere", "bad..name"])
    findings = run(AppCanModifyAudit(), pg_ctx, target)
    assert [(f.status, f.unknown_reason) for f in findings] == [
        (Status.UNVERIFIED, UnknownReason.NOT_VISIBLE),
        (Status.UNVERIFIED, UnknownReason.UNPARSEABLE)]


def test_shared_password_under_another_role_fails(pg_lab: SeededLab, pg_ctx: CheckContext) -> None:
    audit = _conn(pg_lab.conninfo("clinic", "audit_same_pw",
                                                        pg_lab.app_password))
    target = pg_lab.target("same-pw", pg_lab.app(), audit, [])
    [finding] = run(SharedCredentials(), pg_ctx, target)
    assert finding.status is Status.FAIL
    assert (finding.evidence["same_role"], finding.evidence["same_password"]) == (False, True)


def test_audit_credentials_rejected_is_unverified(pg_lab: SeededLab, pg_ctx: CheckContext) -> None:
    audit = _conn(pg_lab.conninfo("audit", "audit_writer", "wrong"))
    target = pg_lab.target("rejected", pg_lab.app(), audit, [])
    [finding] = run(SharedCredentials(), pg_ctx, target)
    assert (finding.status, finding.unknown_reason) == (Status.UNVERIFIED,
                                                        UnknownReason.ACCESS_DENIED)


def test_no_audit_connection_is_unverified_without_connecting(pg_ctx: CheckContext,
                                                              pg_lab: SeededLab,
                                                              closed_port: int) -> None:
    nowhere = _conn(make_conninfo(pg_lab.app().libpq_conninfo(),
                                                        port=str(closed_port)))
    target = pg_lab.target("no-audit", nowhere, None, [])
    [finding] = run(SharedCredentials(), pg_ctx, target)
    assert (finding.status, finding.unknown_reason) == (Status.UNVERIFIED,
                                                        UnknownReason.NOT_VISIBLE)


@pytest.mark.parametrize("check", [SharedCredentials(), AppCanModifyAudit()])
def test_application_rejected_raises_probe_unavailable(pg_lab: SeededLab, pg_ctx: CheckContext,
                                                       check: Check[Any]) -> None:
    config = pg_lab.configs["clinic-sound"]
    target = pg_lab.target("bad-app", pg_lab.app(password="wrong"), config.audit,
                           ["audit.access_log"])
    with pytest.raises(ProbeUnavailable) as raised:
        check.collect(pg_ctx, target)
    assert raised.value.unknown.reason is UnknownReason.ACCESS_DENIED
    assert "wrong" not in str(raised.value)


_SNAPSHOT_QUERIES = {
    "relations": "SELECT c.oid, c.relname, c.relowner, c.relacl::text, c.relrowsecurity "
                 "FROM pg_class c ORDER BY c.oid",
    "columns": "SELECT attrelid, attname, attacl::text FROM pg_attribute "
               "WHERE attacl IS NOT NULL ORDER BY 1, 2",
    "roles": "SELECT rolname, rolsuper, rolcanlogin, rolpassword FROM pg_authid ORDER BY 1",
    "memberships": "SELECT roleid, member FROM pg_auth_members ORDER BY 1, 2",
    "databases": "SELECT datname, datdba, datacl::text FROM pg_database ORDER BY 1",
    "triggers": "SELECT tgrelid, tgname, tgenabled FROM pg_trigger ORDER BY 1, 2",
    "settings": "SELECT setdatabase, setrole, setconfig::text FROM pg_db_role_setting "
                "ORDER BY 1, 2",
}


def _snapshot(pg_lab: SeededLab) -> dict[str, Any]:
    snapshot: dict[str, Any] = {}
    for dbname in ("clinic", "audit", "audit_open"):
        with pg_lab.server.admin_connect(dbname) as conn:
            for name, query in _SNAPSHOT_QUERIES.items():
                snapshot[f"{dbname}:{name}"] = conn.execute(query).fetchall()
            for table in ("public.audit_log", "audit.access_log", "public.trail"):
                exists = conn.execute("SELECT to_regclass(%s)", [table]).fetchone()
                if exists and exists[0]:
                    snapshot[f"{dbname}:{table}"] = conn.execute(
                        f"SELECT * FROM {table} ORDER BY 1").fetchall()
    return snapshot


def test_probes_leave_the_catalog_and_audit_rows_unchanged(pg_lab: SeededLab,
                                                           pg_ctx: CheckContext) -> None:
    before = _snapshot(pg_lab)
    for entry in ("clinic-broken", "clinic-sound"):
        for check in (SharedCredentials(), AppCanModifyAudit()):
            run(check, pg_ctx, pg_lab.lab_target(entry))
    audit = _conn(pg_lab.conninfo("audit_open", "audit_writer",
                                                        pg_lab.audit_password))
    run(AppCanModifyAudit(), pg_ctx, pg_lab.target("open", pg_lab.app(), audit,
                                                   ["public.trail", *ROUTE_TABLES]))
    assert _snapshot(pg_lab) == before


def test_no_password_reaches_findings_or_logs(pg_lab: SeededLab, pg_ctx: CheckContext,
                                              caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    outputs: list[str] = []
    for entry in ("clinic-broken", "clinic-sound"):
        target = pg_lab.lab_target(entry)
        for check in (SharedCredentials(), AppCanModifyAudit()):
            obs = check.collect(pg_ctx, target)
            outputs += [repr(obs), *map(repr, check.evaluate(obs, target, pg_ctx.policy))]
    outputs.append(caplog.text)
    for secret in (pg_lab.app_password, pg_lab.audit_password):
        assert all(secret not in text for text in outputs)
