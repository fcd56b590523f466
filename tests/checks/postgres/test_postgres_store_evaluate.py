"""
The append-only guard and store-location checks' judgement on hand-built observations: PASS,
FAIL, WARN and every unknown fact as UNVERIFIED, without a server.
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
    modification_routes,
)
from hipaacheck.checks.postgres.store import (
    AppendOnlyGuard,
    AppendOnlyObservation,
    AuditStoreLocation,
    Guard,
    GuardedTable,
    LocationObservation,
    SessionPlace,
    TablePlace,
    trigger_refuses,
)
from hipaacheck.config import PostgresConfig, PostgresConnection
from hipaacheck.model import Finding, Status, Target, TargetKind, Unknown, UnknownReason
from hipaacheck.redact import Secret

TARGET = Target(TargetKind.POSTGRES, "postgres:clinic", "clinic", PostgresConfig(
    name="clinic", application=PostgresConnection(conninfo=Secret("host=db user=app"))))
DENIED = Unknown(UnknownReason.ACCESS_DENIED, "permission denied", "pg_catalog.pg_trigger")
ROW_BEFORE_UPDATE = 1 | 2 | 16


def guarded(*guards: Guard) -> GuardedTable:
    return GuardedTable("audit.log", guards, owner="audit_owner", schema_owner="audit_owner",
                        writers=("audit_writer", "audit_owner"),
                        modifiers=("audit_owner", "postgres"))


FULL = (Guard("no_change", "trigger", ("DELETE", "UPDATE"), True),
        Guard("no_truncate", "trigger", ("TRUNCATE",), True))


def judge_guard(table: GuardedTable | Unknown) -> Finding:
    obs = AppendOnlyObservation("audit", {"audit.log": table})
    [finding] = AppendOnlyGuard().evaluate(obs, TARGET, Policy())
    return finding


def test_guards_refusing_every_change_pass_and_carry_the_report_keys() -> None:
    finding = judge_guard(guarded(*FULL))
    assert (finding.check_id, finding.status) == ("postgres.audit.append_only", Status.PASS)
    assert finding.evidence["trail"] == "audit.log"
    assert finding.evidence["trail_writers"] == ("audit_writer", "audit_owner")
    assert finding.evidence["trail_modifiers"] == ("audit_owner", "postgres")
    assert finding.evidence["truncate_guard"] == "refuses"


def test_rules_guard_update_and_delete() -> None:
    rules = (Guard("no_update", "rule", ("UPDATE",), True),
             Guard("no_delete", "rule", ("DELETE",), True), FULL[1])
    assert judge_guard(guarded(*rules)).status is Status.PASS


@pytest.mark.parametrize(("guards", "open_events"), [
    ((), ("UPDATE", "DELETE", "TRUNCATE")),
    ((FULL[0],), ("TRUNCATE",)),
    ((FULL[1], Guard("r", "rule", ("UPDATE",), True)), ("DELETE",)),
])
def test_an_unguarded_event_fails(guards: tuple[Guard, ...], open_events: tuple[str, ...]) -> None:
    finding = judge_guard(guarded(*guards))
    assert finding.status is Status.FAIL
    assert all(finding.evidence[f"{e.lower()}_guard"] == "none" for e in open_events)


def test_a_trigger_not_seen_to_refuse_is_unverified() -> None:
    weak = (Guard("notify", "trigger", ("DELETE", "UPDATE", "TRUNCATE"), False),)
    finding = judge_guard(guarded(*weak))
    assert (finding.status, finding.unknown_reason) == (Status.UNVERIFIED,
                                                        UnknownReason.NOT_VISIBLE)
    assert finding.evidence["update_guard"] == "fires"


def test_unreadable_guards_and_listing_are_unverified() -> None:
    assert judge_guard(DENIED).unknown_reason is UnknownReason.ACCESS_DENIED
    [finding] = AppendOnlyGuard().evaluate(AppendOnlyObservation("audit", DENIED), TARGET,
                                           Policy())
    assert (finding.resource, finding.status) == ("audit-tables", Status.UNVERIFIED)


@pytest.mark.parametrize(("tgtype", "language", "source", "refuses"), [
    (ROW_BEFORE_UPDATE, "plpgsql", "BEGIN RAISE EXCEPTION 'no'; END", True),
    (ROW_BEFORE_UPDATE, "plpgsql", "BEGIN RAISE 'no'; END", True),
    (ROW_BEFORE_UPDATE, "plpgsql", "BEGIN RAISE NOTICE 'x'; RETURN NEW; END", False),
    (ROW_BEFORE_UPDATE, "plpgsql", "BEGIN -- RAISE EXCEPTION\n RETURN NEW; END", False),
    (ROW_BEFORE_UPDATE, "plpgsql", "BEGIN RETURN NULL; END", True),
    (2 | 32, "plpgsql", "BEGIN RETURN NULL; END", False),
    (ROW_BEFORE_UPDATE, "c", "refuse_change", False),
])
def test_trigger_refuses(tgtype: int, language: str, source: str, refuses: bool) -> None:
    assert trigger_refuses(tgtype, language, source) is refuses


# --- store location ---

APP = SessionPlace("sysid:1", "clinic")


def judge_place(trail: SessionPlace | Unknown = APP, count: int | Unknown = 3,
                **changes: object) -> Finding:
    obs = LocationObservation(APP, trail, "audit",
                              {"audit.log": TablePlace("audit.log", "audit", count)})
    [finding] = AuditStoreLocation().evaluate(replace(obs, **changes), TARGET, Policy())
    return finding


@pytest.mark.parametrize(("trail", "count", "status", "placement"), [
    (APP, 3, Status.FAIL, "same_schema"),
    (APP, 0, Status.WARN, "same_database"),
    (SessionPlace("sysid:1", "audit"), Unknown(UnknownReason.NOT_VISIBLE, "n/a"), Status.PASS,
     "separate_database"),
    (SessionPlace("sysid:2", "clinic"), Unknown(UnknownReason.NOT_VISIBLE, "n/a"), Status.PASS,
     "separate_server"),
])
def test_placement_decides_the_status(trail: SessionPlace, count: int | Unknown, status: Status,
                                      placement: str) -> None:
    finding = judge_place(trail, count)
    assert (finding.check_id, finding.status) == ("postgres.audit.store_location", status)
    assert finding.evidence["placement"] == placement
    assert isinstance(finding.evidence["trail_location"], str)


@pytest.mark.parametrize("changes", [
    {"application": DENIED}, {"trail": DENIED}, {"tables": DENIED},
    {"tables": {"audit.log": DENIED}},
])
def test_location_unknowns_are_unverified(changes: dict[str, object]) -> None:
    assert judge_place(**changes).status is Status.UNVERIFIED


def test_different_addresses_without_cluster_identifiers_are_unverified() -> None:
    finding = judge_place(count=0, application=SessionPlace("addr:10.0.0.1:5432", "clinic"),
                          trail=SessionPlace("addr:10.0.0.2:5432", "audit"))
    assert (finding.status, finding.needs) == (Status.UNVERIFIED,
                                               "EXECUTE on pg_control_system()")


def test_same_database_with_uncounted_schema_is_unverified() -> None:
    finding = judge_place(count=Unknown(UnknownReason.ACCESS_DENIED, "denied", "x"))
    assert (finding.status, finding.unknown_reason) == (Status.UNVERIFIED,
                                                        UnknownReason.ACCESS_DENIED)


# --- BYPASSRLS as a route to modification (audit.py) ---

RLS_TABLE = AuditTable(
    name="audit.access_log", owner="audit_owner", owner_held=False, schema_owner="audit_owner",
    schema_owner_held=False, grants=(Grant("UPDATE", "app", True),), effective=("UPDATE",),
    guard_triggers=(), row_security=True)


def test_bypassrls_is_named_when_row_security_guards_a_granted_table() -> None:
    routes = modification_routes(RoleFacts("app", superuser=False, bypass_rls=True), RLS_TABLE)
    assert "BYPASSRLS: the table's row-level security does not bind it" in routes


def test_bypassrls_alone_is_no_route() -> None:
    bare = replace(RLS_TABLE, grants=(), effective=())
    assert modification_routes(RoleFacts("app", False, True), bare) == ()


def test_app_can_modify_carries_report_keys() -> None:
    obs = AppCanModifyObservation(("audit.access_log",), "clinic", RoleFacts("app", False, True),
                                  "application_database", {"audit.access_log": RLS_TABLE})
    [finding] = AppCanModifyAudit().evaluate(obs, TARGET, Policy())
    assert finding.status is Status.FAIL
    assert (finding.evidence["trail"], finding.evidence["trail_app_can_modify"]) == (
        "audit.access_log", True)
