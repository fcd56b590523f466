"""
Shared fixtures for the PostgreSQL checks: one real server per test session (per xdist worker),
seeded with the lab's layouts plus one extra table per route by which an application role can
come to modify an audit table, tables guarded (or not) in other ways, a tenant table with an
admit-all policy, and login roles that bypass row-level security (the collect tests name them).
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from psycopg import sql

from hipaacheck.check import CheckContext, Policy
from hipaacheck.clients import Clients
from hipaacheck.lab.postgres import SeededLab, seeded_server

_EXTRA_CLINIC = """
-- DELETE through membership in a role.
CREATE ROLE clinic_rw NOLOGIN;
GRANT clinic_rw TO clinic_app;
CREATE TABLE public.audit_via_role (id int, action text);
GRANT SELECT, DELETE ON public.audit_via_role TO clinic_rw;
-- Owned by the application role.
CREATE TABLE public.audit_owned (id int, action text);
ALTER TABLE public.audit_owned OWNER TO clinic_app;
-- TRUNCATE for everyone.
CREATE TABLE public.audit_public (id int, action text);
GRANT TRUNCATE ON public.audit_public TO PUBLIC;
-- UPDATE on one column.
CREATE TABLE public.audit_column (id int, action text);
GRANT UPDATE (action) ON public.audit_column TO clinic_app;
-- In a schema the application role owns.
CREATE SCHEMA owned_schema AUTHORIZATION clinic_app;
CREATE TABLE owned_schema.audit_log (id int, action text);
-- Append-only for the application, with one enabled and one disabled guard trigger.
CREATE TABLE public.audit_guarded (id int, action text);
GRANT SELECT, INSERT ON public.audit_guarded TO clinic_app;
CREATE FUNCTION public.refuse() RETURNS trigger LANGUAGE plpgsql AS
    $$ BEGIN RAISE EXCEPTION 'append-only'; END $$;
CREATE TRIGGER guarded_no_change BEFORE UPDATE OR DELETE ON public.audit_guarded
    FOR EACH ROW EXECUTE FUNCTION public.refuse();
CREATE TRIGGER guarded_disabled BEFORE TRUNCATE ON public.audit_guarded
    FOR EACH STATEMENT EXECUTE FUNCTION public.refuse();
ALTER TABLE public.audit_guarded DISABLE TRIGGER guarded_disabled;
-- Triggers that fire on every change but let it through.
CREATE TABLE public.audit_notified (id int, action text);
CREATE FUNCTION public.let_through() RETURNS trigger LANGUAGE plpgsql AS
    $$ BEGIN RETURN COALESCE(NEW, OLD); END $$;
CREATE TRIGGER notified_change BEFORE UPDATE OR DELETE ON public.audit_notified
    FOR EACH ROW EXECUTE FUNCTION public.let_through();
CREATE TRIGGER notified_truncate BEFORE TRUNCATE ON public.audit_notified
    FOR EACH STATEMENT EXECUTE FUNCTION public.let_through();
-- Guarded by DO INSTEAD rules, and a trigger for TRUNCATE, which no rule can stop.
CREATE TABLE public.audit_ruled (id int, action text);
CREATE RULE ruled_no_update AS ON UPDATE TO public.audit_ruled DO INSTEAD NOTHING;
CREATE RULE ruled_no_delete AS ON DELETE TO public.audit_ruled DO INSTEAD NOTHING;
CREATE TRIGGER ruled_no_truncate BEFORE TRUNCATE ON public.audit_ruled
    FOR EACH STATEMENT EXECUTE FUNCTION public.refuse();
-- A tenant table whose only policy admits every row.
CREATE TABLE public.visits (id int, tenant_id int);
ALTER TABLE public.visits ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.visits FORCE ROW LEVEL SECURITY;
CREATE POLICY visits_everyone ON public.visits USING (true);
-- A role with BYPASSRLS that a second login role may become.
CREATE ROLE rls_admin NOLOGIN BYPASSRLS;
-- A well-shaped, indexed trail the application may not read.
CREATE TABLE public.audit_hidden (
    id int, at timestamptz, actor text, action text, patient_id int);
CREATE INDEX audit_hidden_by_actor ON public.audit_hidden (actor, at);
CREATE INDEX audit_hidden_by_patient ON public.audit_hidden (patient_id, at);
"""


def _seed_extras(lab: SeededLab) -> None:
    with lab.server.admin_connect("clinic") as conn:
        conn.execute(_EXTRA_CLINIC)
    with lab.server.admin_connect() as conn:
        # A separate database the application may enter, holding a table it may rewrite, and
        # a second login role that reuses the application's password.
        conn.execute("CREATE DATABASE audit_open")
        conn.execute(sql.SQL("CREATE ROLE audit_same_pw LOGIN PASSWORD {}").format(
            lab.app_password))
        # Login roles (reusing the application's password) that bypass row-level security:
        # one directly, one through membership.
        conn.execute(sql.SQL("CREATE ROLE clinic_bypass LOGIN BYPASSRLS PASSWORD {}").format(
            lab.app_password))
        conn.execute(sql.SQL("CREATE ROLE clinic_ops LOGIN PASSWORD {}").format(
            lab.app_password))
        conn.execute("GRANT rls_admin TO clinic_ops")
    with lab.server.admin_connect("audit_open") as conn:
        conn.execute("CREATE TABLE public.trail (id int, action text)")
        conn.execute("GRANT UPDATE ON public.trail TO clinic_app")


@pytest.fixture(scope="session")
def pg_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeededLab]:
    """A seeded PostgreSQL server shared by the whole session (one per xdist worker)."""
    with seeded_server(tmp_path_factory.mktemp("postgres-lab")) as lab:
        _seed_extras(lab)
        yield lab


@pytest.fixture()
def pg_ctx() -> CheckContext:
    """One scan's context with short timeouts."""
    return CheckContext(clients=Clients(timeout=5), policy=Policy(),
                        logger=logging.getLogger("test.postgres"),
                        clock=lambda: datetime.now(UTC), timeout=5)


@pytest.fixture(scope="session")
def closed_port() -> int:
    """A loopback port that nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
