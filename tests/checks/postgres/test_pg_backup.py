"""
postgres.backup.wal_archiving: the settings and WAL-name readers, and evaluate with hand-built
observations (every unknown fact, every threshold).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from hipaacheck.check import Policy
from hipaacheck.checks.postgres.backup import (
    NEEDS_ARCHIVER,
    NEEDS_SETTINGS,
    ArchiveCommand,
    ArchiverStats,
    ArchiveSettings,
    WalArchiving,
    WalArchivingObservation,
    WalPosition,
    archive_command_facts,
    archive_settings,
    segment_number,
    segments_waiting,
)
from hipaacheck.model import Status, System, Target, TargetKind, Unknown, UnknownReason

TARGET = Target(TargetKind.POSTGRES, "postgres:clinic", "clinic")
CHECK = WalArchiving()
NOW = datetime(2024, 7, 2, 12, 0, tzinfo=UTC)
MIB = 1024 * 1024
HIDDEN = Unknown(UnknownReason.ACCESS_DENIED, "hidden", needs=NEEDS_SETTINGS)
CP = archive_command_facts("test ! -f /archive/%f && cp %p /archive/%f")


def _settings(**changes: Any) -> ArchiveSettings:
    base = ArchiveSettings(mode="on", command=CP, library="", timeout_seconds=60,
                           segment_bytes=16 * MIB)
    return replace(base, **changes)


def _stats(age: timedelta | None = timedelta(minutes=5), *, wal: str = "000000010000000000000010",
           failed_age: timedelta | None = None, reset_age: timedelta = timedelta(days=90)
           ) -> ArchiverStats:
    return ArchiverStats(
        archived_count=0 if age is None else 120, last_archived_wal=None if age is None else wal,
        last_archived_at=None if age is None else NOW - age,
        failed_count=0 if failed_age is None else 4,
        last_failed_at=None if failed_age is None else NOW - failed_age,
        stats_reset=NOW - reset_age, server_now=NOW)


def _at(segment: int, *, standby: bool = False) -> WalPosition:
    return WalPosition(standby, None if standby else f"0000000100000000{segment:08X}")


def _judge(settings: ArchiveSettings | None = None, archiver: Any = None,
           position: Any = None) -> Any:
    obs = WalArchivingObservation(
        server="monitor@db:5432/clinic", settings=settings or _settings(),
        archiver=_stats() if archiver is None else archiver,
        position=_at(0x11) if position is None else position)
    findings = CHECK.evaluate(obs, TARGET, Policy())
    assert [f.resource for f in findings] == ["wal-archiving"]
    return findings[0]


# --- metadata and readers ---------------------------------------------------------------------

def test_metadata_is_complete() -> None:
    meta = WalArchiving.meta

    assert meta.problems() == []
    assert meta.citations == ("164.308(a)(7)(ii)(A)", "164.310(d)(2)(iv)")
    assert all(o.system is System.POSTGRES for o in meta.operations)
    assert {"pg_catalog.pg_settings", "pg_catalog.pg_stat_archiver"} <= {
        o.action for o in meta.operations}


@pytest.mark.parametrize(("command", "expected"), [
    ("pgbackrest --stanza=main archive-push %p", ArchiveCommand(True, True, False, "pgbackrest")),
    ("envdir /etc/wal-e.d/env wal-e wal-push %p", ArchiveCommand(True, True, False, "wal-e")),
    ("test ! -f /mnt/arch/%f && cp %p /mnt/arch/%f", ArchiveCommand(True, True, False, "cp")),
    ("/usr/local/bin/ship-wal.sh %p %f", ArchiveCommand(True, True, False, "other")),
    ("/bin/true", ArchiveCommand(True, False, True, "other")),
    ("true %p", ArchiveCommand(True, True, True, "other")),
    (":", ArchiveCommand(True, False, True, "other")),
    ("exit 0", ArchiveCommand(True, False, True, "other")),
    ("cp /dev/null /tmp/x", ArchiveCommand(True, False, False, "cp")),
    ("(disabled)", ArchiveCommand(False, False, False, None)),
    ("", ArchiveCommand(False, False, False, None))])
def test_archive_command_facts(command: str, expected: ArchiveCommand) -> None:
    assert archive_command_facts(command) == expected


def test_archive_command_facts_keep_no_part_of_the_text() -> None:
    facts = archive_command_facts("AWS_SECRET_ACCESS_KEY=s3cr3tValue aws s3 cp %p s3://b/%f")

    assert facts.tool == "aws"
    assert "s3cr3tValue" not in repr(facts)


def test_archive_settings_hidden_rows_name_pg_read_all_settings() -> None:
    rows = [("archive_mode", "on", None), ("server_version_num", "150018", None),
            ("wal_segment_size", "2048", "8kB"), ("archive_timeout", "60", "s")]

    settings = archive_settings(rows)

    assert settings.mode == "on"
    assert settings.segment_bytes == 16 * MIB
    assert settings.timeout_seconds == 60
    for fact in (settings.command, settings.library):
        assert isinstance(fact, Unknown)
        assert (fact.reason, fact.needs) == (UnknownReason.ACCESS_DENIED, NEEDS_SETTINGS)


def test_archive_settings_before_15_have_no_archive_library() -> None:
    rows = [("archive_mode", "on", None), ("archive_command", "cp %p /a/%f", None),
            ("server_version_num", "140011", None)]

    assert archive_settings(rows).library == ""


def test_archive_settings_of_a_denied_view_are_all_unknown() -> None:
    denied = Unknown(UnknownReason.ACCESS_DENIED, "denied", needs="pg_catalog.pg_settings")

    settings = archive_settings(denied)

    assert {settings.mode, settings.command, settings.library} == {denied}


@pytest.mark.parametrize(("name", "size", "expected"), [
    ("000000010000000A000000FF", 16 * MIB, (1, 10 * 256 + 255)),
    ("000000020000000000000003", MIB, (2, 3)),
    ("000000010000000100000001", MIB, (1, 4096 + 1)),
    ("000000010000000000000005.partial", 16 * MIB, (1, 5)),
    ("000000010000000000000002.00000028.backup", 16 * MIB, (1, 2)),
    ("00000002.history", 16 * MIB, None), ("not-a-wal-file-name-at-all", MIB, None)])
def test_segment_number(name: str, size: int, expected: tuple[int, int] | None) -> None:
    assert segment_number(name, size) == expected


def test_segments_waiting() -> None:
    stats = _stats(wal="000000010000000000000010")

    assert segments_waiting(stats, _at(0x11), 16 * MIB) == 0
    assert segments_waiting(stats, _at(0x15), 16 * MIB) == 4
    assert segments_waiting(stats, _at(0x11, standby=True), 16 * MIB) is None
    assert segments_waiting(stats, WalPosition(False, "000000020000000000000011"),
                            16 * MIB) is None
    assert segments_waiting(stats, _at(0x11), HIDDEN) is None


# --- evaluate: settings -----------------------------------------------------------------------

def test_pass_when_archiving_is_on_and_recent() -> None:
    finding = _judge()

    assert finding.status == Status.PASS
    assert (finding.evidence["archive_tool"], finding.evidence["segments_waiting"]) == ("cp", 0)
    assert finding.evidence["last_archived_age_hours"] == pytest.approx(5 / 60, abs=0.01)


def test_fail_when_archiving_is_off() -> None:
    finding = _judge(_settings(mode="off", command=archive_command_facts("(disabled)")))

    assert finding.status == Status.FAIL
    assert finding.evidence["archive_command_set"] is False


def test_unknown_archive_mode_is_unverified() -> None:
    finding = _judge(_settings(mode=HIDDEN))

    assert (finding.status, finding.unknown_reason, finding.needs) == (
        Status.UNVERIFIED, UnknownReason.ACCESS_DENIED, NEEDS_SETTINGS)


def test_hidden_command_is_unverified_unless_a_library_archives() -> None:
    hidden = _judge(_settings(command=HIDDEN))
    library = _judge(_settings(command=HIDDEN, library="basic_archive"))

    assert (hidden.status, hidden.needs) == (Status.UNVERIFIED, NEEDS_SETTINGS)
    assert hidden.evidence["settings_not_visible"] == ("archive_command",)
    assert library.status == Status.PASS
    assert library.evidence["archive_library"] == "basic_archive"


def test_nothing_to_archive_with() -> None:
    unset = archive_command_facts("")

    assert _judge(_settings(command=unset)).status == Status.FAIL
    hidden_library = _judge(_settings(command=unset, library=HIDDEN))
    assert (hidden_library.status, hidden_library.needs) == (Status.UNVERIFIED, NEEDS_SETTINGS)


@pytest.mark.parametrize("command", ["/bin/true", "exit 0", "cp /dev/null /tmp/x"])
def test_fail_when_the_command_copies_nothing(command: str) -> None:
    assert _judge(_settings(command=archive_command_facts(command))).status == Status.FAIL


def test_standby_is_judged_only_with_archive_mode_always() -> None:
    standby = _at(0, standby=True)

    on = _judge(_settings(command=archive_command_facts("")), position=standby)
    always = _judge(_settings(mode="always"), position=standby)

    assert (on.status, on.unknown_reason) == (Status.UNVERIFIED, UnknownReason.NOT_VISIBLE)
    assert always.status == Status.PASS
    assert always.evidence["standby"] is True


def test_unreadable_archiver_is_unverified() -> None:
    denied = Unknown(UnknownReason.ACCESS_DENIED, "denied", needs=NEEDS_ARCHIVER)

    finding = _judge(archiver=denied)

    assert (finding.status, finding.unknown_reason, finding.needs) == (
        Status.UNVERIFIED, UnknownReason.ACCESS_DENIED, NEEDS_ARCHIVER)


# --- evaluate: progress -----------------------------------------------------------------------

def test_fail_when_the_latest_attempt_failed() -> None:
    failing = _judge(archiver=_stats(timedelta(hours=2), failed_age=timedelta(minutes=1)))
    recovered = _judge(archiver=_stats(timedelta(minutes=1), failed_age=timedelta(hours=2)))
    never = _judge(archiver=_stats(None, failed_age=timedelta(minutes=1)))

    assert (failing.status, never.status) == (Status.FAIL, Status.FAIL)
    assert recovered.status == Status.PASS
    assert recovered.evidence["failed_count"] == 4


def test_never_archived_warns_only_just_after_a_reset() -> None:
    fresh = _judge(archiver=_stats(None, reset_age=timedelta(hours=3)))
    old = _judge(archiver=_stats(None, reset_age=timedelta(days=3)))

    assert (fresh.status, old.status) == (Status.WARN, Status.FAIL)


@pytest.mark.parametrize(("age", "current", "timeout", "status"), [
    (timedelta(minutes=30), 0x30, 60, Status.PASS),     # recent, whatever waits
    (timedelta(hours=3), 0x11, 60, Status.PASS),        # quiet server, nothing waits
    (timedelta(hours=3), 0x16, 60, Status.WARN),        # lagging: five segments wait
    (timedelta(days=2), 0x16, 60, Status.FAIL),         # stalled
    (timedelta(days=2), 0x11, 60, Status.PASS),         # idle for days, archive_timeout set
    (timedelta(days=2), 0x11, 0, Status.WARN),          # idle, but nothing forces a switch
])
def test_age_and_segments_waiting(age: timedelta, current: int, timeout: int,
                                  status: Status) -> None:
    finding = _judge(_settings(timeout_seconds=timeout), _stats(age), _at(current))

    assert finding.status == status


@pytest.mark.parametrize(("age", "status"), [(timedelta(hours=3), Status.WARN),
                                             (timedelta(days=2), Status.FAIL)])
def test_unknown_backlog_is_judged_by_age(age: timedelta, status: Status) -> None:
    position = Unknown(UnknownReason.ACCESS_DENIED, "denied", needs="pg_current_wal_lsn()")

    finding = _judge(archiver=_stats(age), position=position)

    assert finding.status == status
    assert finding.evidence["segments_waiting"] is None
