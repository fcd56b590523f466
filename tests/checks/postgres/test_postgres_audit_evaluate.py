"""
The audit-isolation checks' judgement, on hand-built observations: every PASS, FAIL and
UNVERIFIED branch, without a server.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from hipaacheck.check import Policy
from hipaacheck.checks.postgres.audit import (
    AppCanModifyAudit,
    AppCanModifyObservation,
    AuditTable,
    Grant,
    RoleFacts,
    SharedCredentials,
    SharedCredentialsObservation,
    modification_routes,
    split_qualified,
)
from hipaacheck.config import PostgresConfig, PostgresConnection
from hipaacheck.model import Finding, Status, Target, TargetKind, Unknown, UnknownReason
from hipaacheck.redact import Secret

TARGET = Target(TargetKind.POSTGRES, "postgres:clinic", "clinic", PostgresConfig(
    name="clinic", application=PostgresConnection(conninfo=Secret("host=db user=app"))))
DENIED = Unknown(UnknownReason.ACCESS_DENIED, "authentication failed for the configured role",
                 "valid credentials for the configured role")


def shared(**changes: object) -> list[Finding]:
    """Evaluate SharedCredentials on the sound observation with `changes` applied."""
    sound = SharedCredentialsObservation(
        application="app@db:5432/clinic", audit="audit_writer@db:5432/audit",
        application_role="app", audit_role="audit_writer", same_server=True,
        same_password=False, server_basis="system_identifier")
    return list(SharedCredentials().evaluate(replace(sound, **changes), TARGET, Policy()))


def test_shared_credentials_pass_when_role_and_password_differ() -> None:
    [finding] = shared()
    assert (finding.check_id, finding.status) == ("postgres.audit.shared_credentials",
                                                  Status.PASS)
    assert finding.evidence["same_password"] is False


@pytest.mark.parametrize("changes", [
    {"audit_role": "app"},
    {"same_password": True},
    {"same_password": True, "same_server": False},
    {"audit_role": "app", "same_password": Unknown(UnknownReason.NOT_VISIBLE, "peer auth")},
])
def test_shared_credentials_fail_on_same_role_same_server_or_same_password(
        changes: dict[str, object]) -> None:
    [finding] = shared(**changes)
    assert finding.status is Status.FAIL


def test_shared_credentials_same_role_on_another_server_with_other_password_passes() -> None:
    [finding] = shared(audit_role="app", same_server=False)
    assert finding.status is Status.PASS
    assert finding.evidence["same_role"] is True


def test_shared_credentials_unknown_password_is_unverified() -> None:
    peer = Unknown(UnknownReason.NOT_VISIBLE, "the audit connection used no password")
    [finding] = shared(same_password=peer)
    assert (finding.status, finding.unknown_reason) == (Status.UNVERIFIED,
                                                        UnknownReason.NOT_VISIBLE)


def test_shared_credentials_same_role_unknown_server_is_unverified() -> None:
    unsure = Unknown(UnknownReason.NOT_VISIBLE, "different addresses",
                     "EXECUTE on pg_control_system() for both roles")
    [finding] = shared(audit_role="app", same_server=unsure)
    assert finding.status is Status.UNVERIFIED
    assert finding.needs == "EXECUTE on pg_control_system() for both roles"


def test_shared_credentials_audit_unreachable_is_unverified() -> None:
    [finding] = shared(audit_role=DENIED, same_server=DENIED, same_password=DENIED)
    assert (finding.status, finding.unknown_reason) == (Status.UNVERIFIED,
                                                        UnknownReason.ACCESS_DENIED)
    assert finding.needs == "valid credentials for the configured role"


def test_shared_credentials_without_audit_connection_is_unverified() -> None:
    none = Unknown(UnknownReason.NOT_VISIBLE, "no audit connection")
    [finding] = shared(audit=None, audit_role=none, same_server=none, same_password=none)
    assert (finding.status, finding.unknown_reason) == (Status.UNVERIFIED,
                                                        UnknownReason.NOT_VISIBLE)
    assert "no audit connection is configured" in finding.reason


APP = RoleFacts("app", superuser=False, bypass_rls=False)
SOUND_TABLE = AuditTable(
    name="audit.access_log", owner="audit_owner", owner_held=False, schema_owner="audit_owner",
    schema_owner_held=False,
    grants=(Grant("UPDATE", "audit_owner", held=False), Grant("DELETE", "audit_owner", False)),
    effective=(), guard_triggers=("append_only (DELETE, UPDATE)",))


def modify(table: AuditTable | Unknown = SOUND_TABLE, **changes: object) -> list[Finding]:
    """Evaluate AppCanModifyAudit on one table in the application database."""
    obs = AppCanModifyObservation(configured=("audit.access_log",), database="clinic", role=APP,
                                  store="application_database",
                                  tables={"audit.access_log": table})
    return list(AppCanModifyAudit().evaluate(replace(obs, **changes), TARGET, Policy()))


def test_app_can_modify_pass_when_no_route_exists() -> None:
    [finding] = modify()
    assert (finding.check_id, finding.status) == ("postgres.audit.app_can_modify", Status.PASS)
    assert finding.resource == "audit.access_log"
    assert finding.evidence["guard_triggers"] == ("append_only (DELETE, UPDATE)",)


def test_app_can_modify_pass_when_connect_is_denied() -> None:
    [finding] = modify(store="connect_denied", tables={})
    assert finding.status is Status.PASS
    assert finding.evidence["audit_store"] == "connect_denied"


@pytest.mark.parametrize(("table_changes", "role", "route"), [
    ({"grants": (Grant("UPDATE", "app", True),), "effective": ("UPDATE",)}, APP,
     "UPDATE: direct grant"),
    ({"grants": (Grant("DELETE", "writers", True),), "effective": ("DELETE",)}, APP,
     "DELETE: via membership in writers"),
    ({"grants": (Grant("TRUNCATE", "PUBLIC", True),), "effective": ("TRUNCATE",)}, APP,
     "TRUNCATE: granted to PUBLIC"),
    ({"grants": (Grant("UPDATE", "app", True, column=True),),
      "effective": ("UPDATE (columns)",)}, APP, "UPDATE on columns: direct grant"),
    ({"owner": "app", "owner_held": True}, APP, "owns the table"),
    ({"owner_held": True}, APP, "member of the owning role audit_owner"),
    ({"schema_owner": "app", "schema_owner_held": True}, APP,
     "owns the schema (can drop the table)"),
    ({"schema_owner_held": True}, APP, "member of the schema-owning role audit_owner"),
    ({}, RoleFacts("app", superuser=True, bypass_rls=True), "superuser"),
    ({"effective": ("DELETE",)}, APP, "DELETE: effective privilege"),
])
def test_app_can_modify_fails_and_names_the_route(table_changes: dict[str, object],
                                                   role: RoleFacts, route: str) -> None:
    [finding] = modify(replace(SOUND_TABLE, **table_changes), role=role)
    assert finding.status is Status.FAIL
    assert route in finding.evidence["routes"]  # type: ignore[operator]


def test_owner_default_grants_are_not_reported_as_direct_grants() -> None:
    owned = replace(SOUND_TABLE, owner="app", owner_held=True,
                    grants=(Grant("UPDATE", "app", True),), effective=("UPDATE",))
    assert modification_routes(APP, owned) == ("owns the table",)


@pytest.mark.parametrize(("changes", "reason"), [
    ({"store": DENIED}, UnknownReason.ACCESS_DENIED),
    ({"role": Unknown(UnknownReason.NOT_VISIBLE, "role not in pg_roles")},
     UnknownReason.NOT_VISIBLE),
    ({"tables": {}}, UnknownReason.NOT_VISIBLE),
    ({"tables": {"audit.access_log": Unknown(UnknownReason.NOT_VISIBLE, "table not found")}},
     UnknownReason.NOT_VISIBLE),
    ({"tables": {"audit.access_log": Unknown(UnknownReason.ACCESS_DENIED, "denied",
                                             "pg_catalog.pg_class")}},
     UnknownReason.ACCESS_DENIED),
])
def test_app_can_modify_unknowns_are_unverified(changes: dict[str, object],
                                               reason: UnknownReason) -> None:
    [finding] = modify(**changes)
    assert (finding.status, finding.unknown_reason) == (Status.UNVERIFIED, reason)


def test_app_can_modify_unknown_triggers_do_not_hide_a_grant() -> None:
    table = replace(SOUND_TABLE, grants=(Grant("UPDATE", "app", True),), effective=("UPDATE",),
                    guard_triggers=Unknown(UnknownReason.ACCESS_DENIED, "denied"))
    [finding] = modify(table)
    assert finding.status is Status.FAIL
    assert finding.evidence["guard_triggers"] == "unknown"


def test_app_can_modify_with_no_tables_configured_is_unverified() -> None:
    [finding] = modify(configured=(), tables={})
    assert (finding.status, finding.resource) == (Status.UNVERIFIED, "audit-tables")


def test_one_finding_per_configured_table() -> None:
    open_table = replace(SOUND_TABLE, name="public.audit_log",
                         grants=(Grant("DELETE", "app", True),), effective=("DELETE",))
    findings = modify(configured=("audit.access_log", "public.audit_log"),
                      tables={"audit.access_log": SOUND_TABLE, "public.audit_log": open_table})
    assert [(f.resource, f.status) for f in findings] == [("audit.access_log", Status.PASS),
                                                          ("public.audit_log", Status.FAIL)]


@pytest.mark.parametrize(("name", "parsed"), [
    ("audit.access_log", ("audit", "access_log")),
    ("Audit.Access_Log", ("audit", "access_log")),
    ('"Audit"."Log.2024"', ("Audit", "Log.2024")),
    ('"we""ird".t', ('we"ird', "t")),
    ("access_log", (None, "access_log")),
    ("a.b.c", None),
    ("audit.", None),
    ('"open.t', None),
    ('x"y.t', None),
])
def test_split_qualified(name: str, parsed: tuple[str | None, str] | None) -> None:
    assert split_qualified(name) == parsed
