"""
The PostgreSQL lab server: it starts quickly, listens only on loopback, runs unprivileged, seeds
both audit layouts as staged (shown by actually writing as each role), speaks TLS when asked,
hands its passwords out only through `env`, and leaves nothing behind when stopped.
"""

from __future__ import annotations

import gc
import os
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import yaml
from psycopg import errors as pg_errors

from hipaacheck.config import Inventory
from hipaacheck.errors import LabError
from hipaacheck.lab.base import LabPart
from hipaacheck.lab.postgres import (
    APP_PASSWORD_ENV,
    AUDIT_PASSWORD_ENV,
    PostgresServer,
    SeededLab,
    lab_configs,
    seeded_server,
    start_postgres_lab,
)


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeededLab]:
    """A seeded lab server, started once for this module."""
    with seeded_server(tmp_path_factory.mktemp("pg-lab")) as lab:
        yield lab


@pytest.fixture(scope="module")
def part(lab: SeededLab) -> LabPart:
    """The lab part the server was seeded into."""
    return lab.part


def _connect(part: LabPart, entry: str, side: str) -> psycopg.Connection:
    """A plain (writable) connection with one side's lab credentials."""
    config = getattr(lab_configs(part)[entry], side)
    return psycopg.connect(config.libpq_conninfo(), autocommit=True)


def test_inventory_fragment_validates_and_holds_no_password(part: LabPart) -> None:
    text = yaml.safe_dump(part.inventory)
    assert set(part.env) == {APP_PASSWORD_ENV, AUDIT_PASSWORD_ENV}
    assert all(secret not in text for secret in part.env.values())
    assert "${HIPAACHECK_LAB_PG_APP_PASSWORD}" in text
    Inventory.model_validate(part.inventory)
    entries = {e["name"]: e for e in part.inventory["postgres"]}
    assert entries["clinic-broken"]["audit_tables"] == ["public.audit_log"]
    assert entries["clinic-sound"]["audit_tables"] == ["audit.access_log"]
    assert "user=audit_writer" in entries["clinic-sound"]["audit"]["conninfo"]
    assert "sslmode=disable" in entries["clinic-sound"]["application"]["conninfo"]


def test_server_listens_on_loopback_and_runs_unprivileged(part: LabPart) -> None:
    with _connect(part, "clinic-broken", "application") as conn:
        assert conn.info.host == "127.0.0.1"
        backend = conn.execute("SELECT pg_backend_pid()").fetchone()[0]  # type: ignore[index]
        status = Path(f"/proc/{backend}/status").read_text().splitlines()
        settings: dict[str, str] = dict(conn.execute(
            "SELECT name, setting FROM pg_settings WHERE name IN "
            "('listen_addresses', 'fsync', 'password_encryption', 'ssl')").fetchall())
    assert settings == {"listen_addresses": "127.0.0.1", "fsync": "off",
                        "password_encryption": "scram-sha-256", "ssl": "off"}
    uid = int(next(line for line in status if line.startswith("Uid:")).split()[1])
    assert uid != 0 or os.geteuid() != 0


def test_broken_layout_lets_the_application_rewrite_its_audit_table(part: LabPart) -> None:
    with _connect(part, "clinic-broken", "audit") as conn:
        assert conn.execute("SELECT current_user").fetchone() == ("clinic_app",)
        conn.execute("UPDATE public.audit_log SET actor = actor WHERE false")
        conn.execute("DELETE FROM public.audit_log WHERE false")


def test_sound_layout_is_append_only(part: LabPart) -> None:
    with _connect(part, "clinic-sound", "audit") as conn:
        assert conn.execute("SELECT current_user").fetchone() == ("audit_writer",)
        conn.execute("INSERT INTO audit.access_log (actor, action, object) "
                     "VALUES ('test', 'read', 'appointments/2')")
        for statement in ("UPDATE audit.access_log SET actor = 'x'", "DELETE FROM audit.access_log",
                          "TRUNCATE audit.access_log", "SELECT * FROM audit.access_log"):
            with pytest.raises(pg_errors.InsufficientPrivilege):
                conn.execute(statement)


def test_sound_layout_trigger_stops_even_the_superuser(lab: SeededLab) -> None:
    # Privileges would allow the superuser anything; the append-only trigger still refuses.
    with lab.server.admin_connect("audit") as conn:
        for statement in ("UPDATE audit.access_log SET actor = 'x'", "DELETE FROM audit.access_log",
                          "TRUNCATE audit.access_log"):
            with pytest.raises(pg_errors.RaiseException, match="append-only"):
                conn.execute(statement)


def test_application_role_may_not_connect_to_the_audit_database(part: LabPart) -> None:
    app = lab_configs(part)["clinic-sound"].application.libpq_conninfo()
    with pytest.raises(psycopg.OperationalError, match="CONNECT privilege"):
        psycopg.connect(app.replace("dbname=clinic", "dbname=audit"))


def test_start_postgres_lab_seeds_fresh_passwords(part: LabPart, tmp_path: Path) -> None:
    started = time.monotonic()
    other = start_postgres_lab(tmp_path / "second")
    try:
        # Start and seed together; the bound is loose so a loaded machine does not flake.
        assert time.monotonic() - started < 20
        assert other.inventory["postgres"][0]["name"] == "clinic-broken"
        assert other.env[APP_PASSWORD_ENV] != part.env[APP_PASSWORD_ENV]
        assert other.env[AUDIT_PASSWORD_ENV] != part.env[AUDIT_PASSWORD_ENV]
        with _connect(other, "clinic-sound", "audit") as conn:
            assert conn.execute("SELECT current_user").fetchone() == ("audit_writer",)
    finally:
        other.stop()
        other.stop()


def test_stop_removes_everything_and_is_idempotent(tmp_path: Path) -> None:
    server = PostgresServer(tmp_path)
    with pytest.raises(LabError):
        server.port  # noqa: B018 - not started yet
    started = time.monotonic()
    with server:
        elapsed = time.monotonic() - started
        runtime = Path(server.admin_connect().execute(
            "SHOW data_directory").fetchone()[0]).parent  # type: ignore[index]
        port = server.port
        assert server.running
    assert not server.running and not runtime.exists()
    server.stop()
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(f"host=127.0.0.1 port={port} user=postgres connect_timeout=2")
    assert elapsed < 15


def test_server_log_holds_no_password(lab: SeededLab) -> None:
    log = lab.server.log_path.read_text()
    assert "database system is ready" in log
    assert lab.app_password not in log and lab.audit_password not in log


def test_ssl_server_verifies_against_its_certificate(tmp_path: Path) -> None:
    with PostgresServer(tmp_path, ssl=True) as server:
        assert server.cert_path is not None and server.cert_path.exists()
        conninfo = server.admin_conninfo().replace("sslmode=require", "sslmode=verify-full")
        with psycopg.connect(f"{conninfo} sslrootcert={server.cert_path}") as conn:
            assert conn.pgconn.ssl_in_use
            assert conn.execute("SHOW ssl").fetchone() == ("on",)


def test_a_server_never_stopped_is_cleaned_up_when_collected(tmp_path: Path) -> None:
    server = PostgresServer(tmp_path).start()
    with server.admin_connect() as conn:
        row = conn.execute("SHOW data_directory").fetchone()
    assert row is not None
    runtime, port = Path(row[0]).parent, server.port
    del server
    gc.collect()
    assert not runtime.exists()
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(f"host=127.0.0.1 port={port} user=postgres connect_timeout=2")
