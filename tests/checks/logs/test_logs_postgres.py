"""
`logs.postgres.statement_logging`: collect against a real PostgreSQL server whose settings the
test changes with ALTER SYSTEM and ALTER ROLE, and evaluate on hand-built observations.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from hipaacheck.check import CheckContext, Policy
from hipaacheck.checks.logs.postgres import (
    Override,
    PostgresLogObservation,
    PostgresStatementLogging,
    problems_of,
)
from hipaacheck.errors import ProbeUnavailable
from hipaacheck.lab.postgres import SeededLab
from hipaacheck.model import Finding, Status, System, Target, TargetKind, Unknown
from hipaacheck.model import UnknownReason as R

CHECK = PostgresStatementLogging()


def apply(lab: SeededLab, *statements: str, expect: tuple[str, str]) -> None:
    """Run admin statements, reload, and wait until a new session sees `expect`."""
    with lab.server.admin_connect() as conn:
        for statement in statements:
            conn.execute(statement)
        conn.execute("SELECT pg_reload_conf()")
    name, value = expect
    for _ in range(100):
        with lab.server.admin_connect() as conn:
            row = conn.execute("SELECT setting FROM pg_settings WHERE name = %s",
                               [name]).fetchone()
        if row is not None and row[0] == value:
            return
        time.sleep(0.02)
    raise AssertionError(f"{name} never became {value}")


@pytest.fixture
def lab(pg_lab: SeededLab) -> Iterator[SeededLab]:
    yield pg_lab
    apply(pg_lab, "ALTER SYSTEM RESET ALL", "ALTER ROLE audit_writer RESET ALL",
          "ALTER ROLE clinic_app RESET ALL", expect=("log_statement", "none"))


def run(ctx: CheckContext, target: Target) -> Finding:
    [finding] = CHECK.evaluate(CHECK.collect(ctx, target), target, Policy())
    return finding


def test_default_settings_pass(ctx: CheckContext, lab: SeededLab) -> None:
    finding = run(ctx, lab.lab_target("clinic-sound"))
    assert (finding.check_id, finding.status) == ("logs.postgres.statement_logging",
                                                  Status.PASS)
    assert "log_statement=none" in finding.evidence["settings"]  # type: ignore[operator]
    assert finding.evidence["overrides"] == ()


def test_statement_logging_for_everyone_fails(ctx: CheckContext, lab: SeededLab) -> None:
    apply(lab, "ALTER SYSTEM SET log_statement = 'mod'", expect=("log_statement", "mod"))
    finding = run(ctx, lab.lab_target("clinic-sound"))
    assert finding.status == Status.FAIL and finding.reason.startswith("log_statement = mod")
    assert finding.evidence["bind_parameters_logged"] is True


def test_a_role_override_the_server_default_hides_fails(ctx: CheckContext,
                                                       lab: SeededLab) -> None:
    apply(lab, "ALTER ROLE audit_writer SET log_min_duration_statement = 0",
          expect=("log_statement", "none"))
    finding = run(ctx, lab.lab_target("clinic-sound"))
    assert finding.status == Status.FAIL
    assert finding.evidence["overrides"] == ("role audit_writer: log_min_duration_statement=0",)


def test_auto_explain_with_analyze_fails_and_slow_statements_warn(
        ctx: CheckContext, lab: SeededLab) -> None:
    apply(lab, "ALTER SYSTEM SET log_min_duration_statement = 500",
          expect=("log_min_duration_statement", "500"))
    assert run(ctx, lab.lab_target("clinic-sound")).status == Status.WARN
    with lab.server.admin_connect() as conn:
        conn.execute("LOAD 'auto_explain'")  # lets ALTER SYSTEM know the module's settings
        conn.execute("ALTER SYSTEM SET session_preload_libraries = 'auto_explain'")
        conn.execute("ALTER SYSTEM SET auto_explain.log_min_duration = 1000")
        conn.execute("ALTER SYSTEM SET auto_explain.log_analyze = on")
    apply(lab, expect=("session_preload_libraries", "auto_explain"))
    finding = run(ctx, lab.lab_target("clinic-sound"))
    assert finding.status == Status.FAIL and finding.evidence["auto_explain_loaded"] is True
    assert finding.reason.startswith("auto_explain.log_analyze = on")


def test_the_check_reads_through_a_session_it_closes(ctx: CheckContext,
                                                     lab: SeededLab) -> None:
    run(ctx, lab.lab_target("clinic-sound"))
    with lab.server.admin_connect("clinic") as conn:
        rows = conn.execute("SELECT query FROM pg_stat_activity WHERE application_name = "
                            "'hipaacheck'").fetchall()
    assert rows == []  # the session is closed when collect returns
    assert [(o.system, o.action) for o in CHECK.meta.operations] == [
        (System.POSTGRES, "pg_catalog.pg_settings"),
        (System.POSTGRES, "pg_catalog.pg_db_role_setting")]


def test_a_refused_connection_is_unavailable_without_the_password(
        ctx: CheckContext, lab: SeededLab) -> None:
    target = lab.target("nowhere", lab.app(password="wrong-password"))
    with pytest.raises(ProbeUnavailable) as raised:
        CHECK.collect(ctx, target)
    assert raised.value.unknown.reason == R.ACCESS_DENIED
    assert "wrong-password" not in str(raised.value)


# --------------------------------------------------------------------------------------------
# Judgement on hand-built observations.

TARGET = Target(TargetKind.POSTGRES, "postgres:clinic", "clinic")
QUIET = {"log_statement": "none", "log_min_duration_statement": "-1",
         "log_parameter_max_length": "-1", "log_min_duration_sample": "-1",
         "log_transaction_sample_rate": "0", "log_parameter_max_length_on_error": "0"}


def judge(settings: Any, overrides: Any = ()) -> Finding:
    obs = PostgresLogObservation("app@db:5432/clinic", settings, overrides)
    [finding] = CHECK.evaluate(obs, TARGET, Policy())
    return finding


@pytest.mark.parametrize(("changes", "status"), [
    ({}, Status.PASS),
    ({"log_statement": "all"}, Status.FAIL),
    ({"log_statement": "mod"}, Status.FAIL),
    ({"log_statement": "ddl"}, Status.PASS),
    ({"log_min_duration_statement": "0"}, Status.FAIL),
    ({"log_min_duration_statement": "250"}, Status.WARN),
    ({"log_min_duration_sample": "0", "log_statement_sample_rate": "0.1"}, Status.FAIL),
    ({"log_transaction_sample_rate": "0.01"}, Status.FAIL),
    ({"debug_print_plan": "on"}, Status.FAIL),
    ({"log_parameter_max_length_on_error": "-1"}, Status.WARN),
    ({"auto_explain.log_min_duration": "0", "auto_explain.log_analyze": "off"}, Status.FAIL),
    ({"auto_explain.log_min_duration": "900", "auto_explain.log_analyze": "on"}, Status.FAIL),
    ({"auto_explain.log_min_duration": "900", "auto_explain.log_analyze": "off"}, Status.WARN),
    ({"auto_explain.log_min_duration": "-1", "auto_explain.log_analyze": "on"}, Status.PASS),
])
def test_each_setting(changes: dict[str, str], status: Status) -> None:
    assert judge({**QUIET, **changes}).status == status


def test_bind_parameters_are_named_when_statements_are_logged() -> None:
    logged = judge({**QUIET, "log_statement": "all"})
    assert "bind parameters included" in logged.reason
    dropped = judge({**QUIET, "log_statement": "all", "log_parameter_max_length": "0"})
    assert "bind parameters" not in dropped.reason
    assert dropped.evidence["bind_parameters_logged"] is False


def test_overrides_fail_for_their_scope_only() -> None:
    finding = judge(QUIET, (Override("clinic", "reporting", "log_statement", "all"),
                            Override("", "app", "log_statement", "none")))
    assert finding.status == Status.FAIL
    assert finding.evidence["problems"] == (
        "FAIL role reporting in database clinic: log_statement=all",)


def test_unknown_settings_and_overrides_are_unverified() -> None:
    hidden = Unknown(R.NOT_VISIBLE, "the role cannot see log_statement",
                     needs="pg_read_all_settings")
    finding = judge(hidden)
    assert (finding.status, finding.needs) == (Status.UNVERIFIED, "pg_read_all_settings")
    denied = Unknown(R.ACCESS_DENIED, "permission denied reading pg_catalog.pg_db_role_setting",
                     needs="pg_catalog.pg_db_role_setting")
    assert judge(QUIET, denied).status == Status.UNVERIFIED
    assert judge({**QUIET, "log_statement": "all"}, denied).status == Status.FAIL


def test_problems_are_worst_first() -> None:
    found = problems_of({**QUIET, "log_min_duration_statement": "100", "log_statement": "all"})
    assert [p.status for p in found] == [Status.FAIL, Status.WARN]
