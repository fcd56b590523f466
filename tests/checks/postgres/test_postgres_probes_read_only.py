"""
Every PostgreSQL audit, breach-readiness and tenant probe runs in read-only sessions and changes
nothing: each session handed to a check is shown to be read-only while the check holds it, a
catalog and row snapshot of every lab database is identical before and after, EXPLAIN refuses
anything but a plain SELECT, and no password reaches an observation, a finding or a log line.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
import pytest
from psycopg import sql

from hipaacheck.check import Check, CheckContext
from hipaacheck.checks.postgres.audit import AppCanModifyAudit, SharedCredentials
from hipaacheck.checks.postgres.breach import (
    BreachQueryable,
    ReadsCaptured,
    TrailShape,
    explain,
)
from hipaacheck.checks.postgres.store import AppendOnlyGuard, AuditStoreLocation
from hipaacheck.checks.postgres.tenants import TenantIsolation
from hipaacheck.clients import Clients
from hipaacheck.config import PostgresConnection
from hipaacheck.errors import ReadOnlyViolation
from hipaacheck.lab.postgres import SeededLab

CHECKS: tuple[Check[Any], ...] = (
    SharedCredentials(), AppCanModifyAudit(), AppendOnlyGuard(), AuditStoreLocation(),
    TrailShape(), ReadsCaptured(), BreachQueryable(), TenantIsolation())
ENTRIES = ("clinic-broken", "clinic-sound", "clinic-member")
DATABASES = ("clinic", "audit", "audit_member", "audit_open")


class RecordingClients(Clients):
    """
    The real client factory, which also asks each session, before the check gets it back and
    again when the check is done with it, whether it is read-only.
    """

    def __init__(self) -> None:
        super().__init__(timeout=5)
        self.sessions: list[tuple[str, str, bool]] = []

    @contextmanager
    def postgres(self, conn: PostgresConnection) -> Iterator[Any]:
        """A read-only session whose mode is recorded on entry and on exit."""
        with super().postgres(conn) as connection:
            self.sessions.append(self._mode(connection))
            yield connection
            self.sessions.append(self._mode(connection))

    @staticmethod
    def _mode(connection: psycopg.Connection[Any]) -> tuple[str, str, bool]:
        with connection.cursor() as cursor:
            cursor.execute("SHOW transaction_read_only")
            in_transaction = str(cursor.fetchone()[0])  # type: ignore[index]
            cursor.execute("SHOW default_transaction_read_only")
            default = str(cursor.fetchone()[0])  # type: ignore[index]
        return in_transaction, default, connection.read_only is True


_SNAPSHOT_QUERIES = {
    "relations": "SELECT c.oid, c.relname, c.relowner, c.relacl::text, c.relrowsecurity, "
                 "c.relforcerowsecurity, c.relkind FROM pg_class c ORDER BY c.oid",
    "columns": "SELECT attrelid, attname, attacl::text FROM pg_attribute "
               "WHERE attacl IS NOT NULL ORDER BY 1, 2",
    "roles": "SELECT rolname, rolsuper, rolbypassrls, rolcanlogin, rolpassword FROM pg_authid "
             "ORDER BY 1",
    "memberships": "SELECT roleid, member FROM pg_auth_members ORDER BY 1, 2",
    "databases": "SELECT datname, datdba, datacl::text FROM pg_database ORDER BY 1",
    "triggers": "SELECT tgrelid, tgname, tgenabled FROM pg_trigger ORDER BY 1, 2",
    "rules": "SELECT ev_class, rulename, ev_enabled FROM pg_rewrite ORDER BY 1, 2",
    "policies": "SELECT polrelid, polname, polcmd, polpermissive FROM pg_policy ORDER BY 1, 2",
    "indexes": "SELECT indexrelid, indrelid, indisvalid FROM pg_index ORDER BY 1",
    "settings": "SELECT setdatabase, setrole, setconfig::text FROM pg_db_role_setting "
                "ORDER BY 1, 2",
}
_TRAILS = ("public.audit_log", "audit.access_log", "audit.trail", "public.trail")


def _snapshot(pg_lab: SeededLab) -> dict[str, Any]:
    snapshot: dict[str, Any] = {}
    for dbname in DATABASES:
        with pg_lab.server.admin_connect(dbname) as conn:
            for name, query in _SNAPSHOT_QUERIES.items():
                snapshot[f"{dbname}:{name}"] = conn.execute(query).fetchall()
            for table in _TRAILS:
                exists = conn.execute("SELECT to_regclass(%s)", [table]).fetchone()
                if exists and exists[0]:
                    snapshot[f"{dbname}:{table}"] = conn.execute(
                        sql.SQL("SELECT * FROM {} ORDER BY 1").format(
                            sql.Identifier(*table.split(".")))).fetchall()
    return snapshot


def _targets(pg_lab: SeededLab) -> list[Any]:
    extra = pg_lab.target("extras", pg_lab.app(), None,
                          ["public.audit_guarded", "public.audit_ruled", "public.audit_hidden"])
    return [*(pg_lab.lab_target(entry) for entry in ENTRIES), extra]


def test_every_probe_runs_read_only_and_changes_nothing(pg_lab: SeededLab,
                                                        pg_ctx: CheckContext) -> None:
    clients = RecordingClients()
    pg_ctx.clients = clients
    before = _snapshot(pg_lab)
    for target in _targets(pg_lab):
        for check in CHECKS:
            check.evaluate(check.collect(pg_ctx, target), target, pg_ctx.policy)
    assert _snapshot(pg_lab) == before
    assert len(clients.sessions) >= 2 * len(CHECKS) * len(ENTRIES)
    assert set(clients.sessions) == {("on", "on", True)}


@pytest.mark.parametrize("statement", [
    "ANALYZE public.audit_log",
    "DELETE FROM public.audit_log",
    "SELECT 1; DELETE FROM public.audit_log",
    "SELECT pg_catalog.set_config('default_transaction_read_only', 'off', false)",
])
def test_explain_refuses_anything_but_one_plain_select(pg_lab: SeededLab, pg_ctx: CheckContext,
                                                       statement: str) -> None:
    with pg_ctx.clients.postgres(pg_lab.app()) as connection, pytest.raises(ReadOnlyViolation):
        explain(connection, sql.Composed([sql.SQL(statement)]), needs="x")


def test_explain_refuses_a_writable_session(pg_lab: SeededLab) -> None:
    with pg_lab.server.admin_connect("clinic") as connection, \
            pytest.raises(ReadOnlyViolation, match="read-only session"):
        explain(connection, sql.Composed([sql.SQL("SELECT 1")]), needs="x")


def test_explain_plans_without_executing(pg_lab: SeededLab, pg_ctx: CheckContext) -> None:
    # A query that would fail if executed (division by zero) still plans.
    query = sql.Composed([sql.SQL("SELECT 1 / (SELECT count(*) - count(*) FROM public.audit_log)")])
    with pg_ctx.clients.postgres(pg_lab.app()) as connection:
        plan = explain(connection, query, needs="public.audit_log")
    assert isinstance(plan, dict) and plan["Node Type"] == "Result"


def test_no_password_reaches_observations_findings_or_logs(pg_lab: SeededLab,
                                                           pg_ctx: CheckContext,
                                                           caplog: pytest.LogCaptureFixture
                                                           ) -> None:
    caplog.set_level(logging.DEBUG)
    outputs: list[str] = []
    for target in _targets(pg_lab):
        for check in CHECKS:
            obs = check.collect(pg_ctx, target)
            outputs += [repr(obs), *map(repr, check.evaluate(obs, target, pg_ctx.policy))]
    outputs.append(caplog.text)
    for secret in (pg_lab.app_password, pg_lab.audit_password):
        assert all(secret not in text for text in outputs)
