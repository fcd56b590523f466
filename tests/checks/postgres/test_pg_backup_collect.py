"""
postgres.backup.wal_archiving against real servers: one archiving every segment (read by a role
with no predefined roles, by a pg_monitor role, through a database where the archiver's
statistics are revoked, and while its archive command fails), and the lab server, which does not
archive at all.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from psycopg import sql

from hipaacheck.check import CheckContext
from hipaacheck.checks.postgres.backup import NEEDS_ARCHIVER, WalArchiving
from hipaacheck.config import PostgresConfig, PostgresConnection
from hipaacheck.errors import ProbeUnavailable
from hipaacheck.lab.postgres import PostgresServer, SeededLab
from hipaacheck.model import Finding, Status, Target, TargetKind, UnknownReason
from hipaacheck.redact import Secret

CHECK = WalArchiving()
ARCHIVE_DIR = "wal_archive_for_tests"
GOOD_COMMAND = f"mkdir -p {ARCHIVE_DIR} && cp %p {ARCHIVE_DIR}/%f"


class ArchivingServer(PostgresServer):
    """A lab server that also archives its WAL with `command` (a relative path lands in the
    data directory, which the server account owns)."""

    def __init__(self, workdir: Path, command: str) -> None:
        super().__init__(workdir)
        self.command = command

    def _configure(self) -> None:
        super()._configure()
        with (self._data / "postgresql.conf").open("a", encoding="utf-8") as conf:
            conf.write("wal_level = replica\narchive_mode = on\n"
                       f"archive_command = '{self.command}'\n")


@dataclass(frozen=True)
class Archiving:
    """A started archiving server, and the password of its login roles."""

    server: PostgresServer
    password: str

    def target(self, user: str, dbname: str = "postgres") -> Target:
        """A postgres target whose application connection logs in as `user`."""
        conninfo = (f"host={self.server.host} port={self.server.port} dbname={dbname} "
                    f"user={user} password={self.password} sslmode=disable")
        config = PostgresConfig(name=user, application=PostgresConnection(
            conninfo=Secret(conninfo)))
        return Target(TargetKind.POSTGRES, f"postgres:{user}", user, config)


def _archiver_counts(server: PostgresServer) -> tuple[int, int]:
    with server.admin_connect() as conn:
        row = conn.execute("SELECT archived_count, failed_count FROM pg_stat_archiver").fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


def _switch(server: PostgresServer) -> None:
    with server.admin_connect() as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS wal_filler (n int)")
        conn.execute("INSERT INTO wal_filler SELECT generate_series(1, 100)")
        conn.execute("SELECT pg_switch_wal()")


def _switch_and_wait(server: PostgresServer, done: Any, timeout: float = 20.0) -> None:
    """Write some WAL and switch segments, again each second (the archiver may still be
    reloading its configuration), until the archiver's counts satisfy `done`."""
    deadline = time.monotonic() + timeout
    switched = 0.0
    while not done(*_archiver_counts(server)):
        if time.monotonic() > deadline:
            raise AssertionError("the archiver did not react in time")
        if time.monotonic() - switched > 1.0:
            _switch(server)
            switched = time.monotonic()
        time.sleep(0.05)


def _set_archive_command(server: PostgresServer, command: str) -> None:
    with server.admin_connect() as conn:
        conn.execute(sql.SQL("ALTER SYSTEM SET archive_command = {}").format(command))
        conn.execute("SELECT pg_reload_conf()")


def _start(workdir: Path, command: str) -> tuple[PostgresServer, str]:
    server = ArchivingServer(workdir, command).start()
    password = secrets.token_urlsafe(18)
    with server.admin_connect() as conn:
        conn.execute(sql.SQL("CREATE ROLE plain LOGIN PASSWORD {}").format(password))
        conn.execute(sql.SQL("CREATE ROLE monitor LOGIN PASSWORD {} IN ROLE pg_monitor").format(
            password))
    return server, password


@pytest.fixture(scope="module")
def archiving(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Archiving]:
    """A server that archives every segment into its data directory, with one segment done,
    and a database `hardened` where EXECUTE on the archiver's statistics is revoked."""
    server, password = _start(tmp_path_factory.mktemp("pg-archiving"), GOOD_COMMAND)
    try:
        with server.admin_connect() as conn:
            conn.execute("CREATE DATABASE hardened")
        with server.admin_connect("hardened") as conn:
            conn.execute("REVOKE EXECUTE ON FUNCTION pg_catalog.pg_stat_get_archiver() "
                         "FROM PUBLIC")
        _switch_and_wait(server, lambda archived, failed: archived >= 1)
        yield Archiving(server, password)
    finally:
        server.stop()


@pytest.fixture
def failing(archiving: Archiving) -> Iterator[Archiving]:
    """The archiving server with a failing archive command, after its first failure; restored
    (command, then statistics reset and one segment archived) when the test ends."""
    _set_archive_command(archiving.server, "false %p")
    _switch_and_wait(archiving.server, lambda archived, failed: failed >= 1)
    try:
        yield archiving
    finally:
        _set_archive_command(archiving.server, GOOD_COMMAND)
        with archiving.server.admin_connect() as conn:
            conn.execute("SELECT pg_stat_reset_shared('archiver')")
        _switch_and_wait(archiving.server, lambda archived, failed: archived >= 1)


def _run(ctx: CheckContext, target: Target) -> Finding:
    findings = CHECK.evaluate(CHECK.collect(ctx, target), target, ctx.policy)
    assert len(findings) == 1
    return findings[0]


@pytest.mark.parametrize("role", ["plain", "monitor"])
def test_archiving_server_passes_for_any_role(role: str, archiving: Archiving,
                                              pg_ctx: CheckContext) -> None:
    finding = _run(pg_ctx, archiving.target(role))

    assert finding.status == Status.PASS
    assert (finding.evidence["archive_mode"], finding.evidence["archive_tool"]) == ("on", "cp")
    assert isinstance(finding.evidence["archived_count"], int)
    assert finding.evidence["archived_count"] >= 1
    # On PostgreSQL 15 the archive settings are not superuser-only: even a role without
    # pg_read_all_settings sees them, so nothing is left unknown.
    assert "settings_not_visible" not in finding.evidence
    assert finding.evidence["segments_waiting"] is not None


def test_the_archive_command_text_is_never_reported(archiving: Archiving,
                                                    pg_ctx: CheckContext) -> None:
    obs = CHECK.collect(pg_ctx, archiving.target("plain"))
    findings = CHECK.evaluate(obs, archiving.target("plain"), pg_ctx.policy)

    assert ARCHIVE_DIR not in repr(obs) + repr(findings)
    assert archiving.password not in repr(obs) + repr(findings)


def test_revoked_archiver_statistics_are_unverified(archiving: Archiving,
                                                    pg_ctx: CheckContext) -> None:
    finding = _run(pg_ctx, archiving.target("plain", dbname="hardened"))

    assert (finding.status, finding.unknown_reason, finding.needs) == (
        Status.UNVERIFIED, UnknownReason.ACCESS_DENIED, NEEDS_ARCHIVER)


def test_failing_archive_command_fails(failing: Archiving, pg_ctx: CheckContext) -> None:
    finding = _run(pg_ctx, failing.target("plain"))

    assert finding.status == Status.FAIL
    assert "failing" in finding.reason
    assert isinstance(finding.evidence["failed_count"], int)
    assert finding.evidence["failed_count"] >= 1
    assert finding.evidence["last_failed_age_hours"] is not None


def test_lab_server_without_archiving_fails(pg_lab: SeededLab, pg_ctx: CheckContext) -> None:
    # The application role holds no predefined role at all.
    finding = _run(pg_ctx, pg_lab.lab_target("clinic-sound"))

    assert finding.status == Status.FAIL
    assert (finding.evidence["archive_mode"], finding.evidence["archive_command_set"]) == (
        "off", False)


def test_unreachable_server_raises_probe_unavailable(closed_port: int,
                                                     pg_ctx: CheckContext) -> None:
    conninfo = f"host=127.0.0.1 port={closed_port} dbname=x user=x password=x connect_timeout=2"
    target = Target(TargetKind.POSTGRES, "postgres:gone", "gone", PostgresConfig(
        name="gone", application=PostgresConnection(conninfo=Secret(conninfo))))

    with pytest.raises(ProbeUnavailable) as raised:
        CHECK.collect(pg_ctx, target)

    assert raised.value.unknown.reason == UnknownReason.UNREACHABLE
