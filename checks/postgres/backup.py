"""
Continuous archiving on PostgreSQL: is every WAL segment copied somewhere, and recently?

Point-in-time recovery of a self-managed server needs a base backup and every WAL segment
since. The check reads, over the application's read-only session:

- `pg_settings`: `archive_mode`, `archive_command` / `archive_library`, `archive_timeout` and
  `wal_segment_size`. The command is reduced at once to a few facts (set, references the
  segment, a no-op, which known tool it runs); its text never leaves the collect step, because
  archive commands often carry credentials;
- `pg_stat_archiver`: when the last segment was archived, and whether the last attempt failed;
- the current WAL file (`pg_walfile_name(pg_current_wal_lsn())`), to count the segments
  waiting to be archived, so that an idle server is told apart from a stuck archiver.

Archiving off, no command, a command that discards WAL, a failing archiver, or a last archived
segment older than a day with segments waiting: FAIL. Older than an hour with segments waiting:
WARN. A setting the role cannot see is unknown, naming `pg_read_all_settings`; ages are measured
with the server's own clock.
"""

from __future__ import annotations

import re
import string
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import psycopg

from hipaacheck.check import Check, CheckContext, Policy
from hipaacheck.clients.postgres import catalog_query, catalog_row, describe
from hipaacheck.config import PostgresConfig
from hipaacheck.model import (
    CheckMeta,
    EvidenceValue,
    Fact,
    Family,
    Finding,
    FindingBuilder,
    Operation,
    Severity,
    Standard,
    Status,
    System,
    Target,
    TargetKind,
    Unknown,
    UnknownReason,
)

RESOURCE = "wal-archiving"
WARN_AGE = timedelta(hours=1)
"""A last archived segment older than this, with segments waiting, is WARN."""
FAIL_AGE = timedelta(days=1)
"""Older than this, with segments waiting (or their number unknown), is FAIL."""
NEEDS_SETTINGS = "pg_read_all_settings"
NEEDS_SETTINGS_VIEW = "pg_catalog.pg_settings"
NEEDS_ARCHIVER = "pg_catalog.pg_stat_archiver"
NEEDS_POSITION = "pg_current_wal_lsn() and pg_walfile_name()"
SETTING_NAMES = ("archive_mode", "archive_command", "archive_library", "archive_timeout",
                 "wal_segment_size", "server_version_num")
ARCHIVING_TOOLS = frozenset({
    "pgbackrest", "wal-g", "wal-e", "barman-wal-archive", "barman-cloud-wal-archive",
    "pg_probackup", "cp", "rsync", "scp", "aws", "gsutil", "azcopy", "rclone"})
"""Tools an archive command is named by in evidence; anything else is `other`."""
_NO_OPS = frozenset({"true", ":"})
_SHELL_SPLIT = re.compile(r"\s+|&&|\|\||[;|()]")
_UNIT_BYTES = {"B": 1, "kB": 1024, "8kB": 8192, "MB": 1024 ** 2, "16MB": 16 * 1024 ** 2}

_SETTINGS_SQL = ("SELECT name, setting, unit FROM pg_catalog.pg_settings "
                 "WHERE name = ANY(%s)")
_ARCHIVER_SQL = ("SELECT archived_count, last_archived_wal, last_archived_time, failed_count, "
                 "last_failed_time, stats_reset, pg_catalog.now() "
                 "FROM pg_catalog.pg_stat_archiver")
_POSITION_SQL = ("SELECT pg_catalog.pg_is_in_recovery(), CASE WHEN pg_catalog.pg_is_in_recovery()"
                 " THEN NULL ELSE pg_catalog.pg_walfile_name(pg_catalog.pg_current_wal_lsn()) "
                 "END")


@dataclass(frozen=True)
class ArchiveCommand:
    """
    What an `archive_command` amounts to. The command text itself is never kept.
    """

    set: bool
    references_segment: bool
    """Whether it names the segment (`%p` or `%f`); without that it cannot copy it."""
    no_op: bool
    """Whether it is `true`, `:` or `exit 0`: reports success and copies nothing."""
    tool: str | None
    """The first known archiving tool it runs (`pgbackrest`, `wal-g`, `cp`...), or `other`."""


def archive_command_facts(command: str) -> ArchiveCommand:
    """
    Reduce an archive command to `ArchiveCommand` facts; the text is not kept. PostgreSQL
    shows `(disabled)` while archive_mode is off, which counts as unset.
    """
    text = command.strip()
    if text == "(disabled)":
        text = ""
    tokens = [t for t in _SHELL_SPLIT.split(text) if t and "=" not in t.split("/")[0]]
    names = [t.rsplit("/", 1)[-1] for t in tokens]
    tool = next((n for n in names if n in ARCHIVING_TOOLS), "other" if text else None)
    compound = bool(re.search(r"&&|\|\||[;|]", text))
    no_op = bool(text) and ((bool(names) and names[0] in _NO_OPS and not compound)
                            or re.fullmatch(r"exit(\s+0)?", text) is not None)
    return ArchiveCommand(set=bool(text), references_segment="%p" in text or "%f" in text,
                          no_op=no_op, tool=tool)


@dataclass(frozen=True)
class ArchiveSettings:
    """The archiving settings as the scan's role sees them."""

    mode: Fact[str]
    command: Fact[ArchiveCommand]
    library: Fact[str]
    """Empty when unset, and on servers older than 15, which have no archive modules."""
    timeout_seconds: Fact[int]
    segment_bytes: Fact[int]


@dataclass(frozen=True)
class ArchiverStats:
    """`pg_stat_archiver`, with the server's clock at the moment it was read."""

    archived_count: int
    last_archived_wal: str | None
    last_archived_at: datetime | None
    failed_count: int
    last_failed_at: datetime | None
    stats_reset: datetime | None
    server_now: datetime


@dataclass(frozen=True)
class WalPosition:
    """Whether the server is a standby, and (on a primary) its current WAL file."""

    in_recovery: bool
    current_wal: str | None


@dataclass(frozen=True)
class WalArchivingObservation:
    """Everything the check judges, for one server."""

    server: str
    settings: ArchiveSettings
    archiver: Fact[ArchiverStats]
    position: Fact[WalPosition]


def _hidden(name: str) -> Unknown:
    return Unknown(UnknownReason.ACCESS_DENIED,
                   f"the setting {name} is hidden from the scan's role", needs=NEEDS_SETTINGS)


def _integer(values: dict[str, tuple[str, str | None]], name: str, scale: bool = False
             ) -> Fact[int]:
    if name not in values:
        return _hidden(name)
    setting, unit = values[name]
    try:
        number = int(setting)
    except ValueError:
        return Unknown(UnknownReason.UNPARSEABLE, f"the setting {name} is not a number")
    if not scale:
        return number
    if unit not in _UNIT_BYTES and unit is not None:
        return Unknown(UnknownReason.UNPARSEABLE, f"the setting {name} has an unknown unit")
    return number * _UNIT_BYTES.get(unit or "B", 1)


def archive_settings(rows: Fact[list[tuple[Any, ...]]]) -> ArchiveSettings:
    """
    The settings from `pg_settings` rows (name, setting, unit). A row the role cannot see is
    unknown, naming `pg_read_all_settings`; `archive_library` is empty before PostgreSQL 15.
    """
    if isinstance(rows, Unknown):
        return ArchiveSettings(rows, rows, rows, rows, rows)
    values = {str(name): (str(setting or ""), unit) for name, setting, unit in rows}
    version = _integer(values, "server_version_num")
    library: Fact[str]
    if "archive_library" in values:
        library = values["archive_library"][0]
    elif isinstance(version, int) and version < 150000:
        library = ""
    else:
        library = _hidden("archive_library")
    return ArchiveSettings(
        mode=values["archive_mode"][0] if "archive_mode" in values else _hidden("archive_mode"),
        command=(archive_command_facts(values["archive_command"][0])
                 if "archive_command" in values else _hidden("archive_command")),
        library=library, timeout_seconds=_integer(values, "archive_timeout"),
        segment_bytes=_integer(values, "wal_segment_size", scale=True))


def _archiver(connection: psycopg.Connection[Any]) -> Fact[ArchiverStats]:
    row = catalog_row(connection, _ARCHIVER_SQL, needs=NEEDS_ARCHIVER)
    if isinstance(row, Unknown):
        return row
    if row is None:
        return Unknown(UnknownReason.UNPARSEABLE, "pg_stat_archiver returned no row")
    archived, last_wal, last_at, failed, failed_at, reset, now = row
    return ArchiverStats(int(archived or 0), last_wal, last_at, int(failed or 0), failed_at,
                         reset, now)


def _position(connection: psycopg.Connection[Any]) -> Fact[WalPosition]:
    row = catalog_row(connection, _POSITION_SQL, needs=NEEDS_POSITION)
    if isinstance(row, Unknown):
        return row
    if row is None:
        return Unknown(UnknownReason.UNPARSEABLE, "the WAL position query returned no row")
    return WalPosition(bool(row[0]), row[1])


def segment_number(wal_file: str, segment_bytes: int) -> tuple[int, int] | None:
    """
    (timeline, segment number) of a WAL file name such as `000000010000000A000000FF`, or of a
    `.partial` or `.backup` file named after one; None for history files and anything else.
    """
    name, rest = wal_file[:24], wal_file[24:]
    if len(name) != 24 or any(c not in string.hexdigits for c in name) or (
            rest and not rest.startswith(".")) or segment_bytes <= 0:
        return None
    per_log = 0x100000000 // segment_bytes
    return int(name[:8], 16), int(name[8:16], 16) * per_log + int(name[16:], 16)


def segments_waiting(stats: ArchiverStats, position: Fact[WalPosition],
                     segment_bytes: Fact[int]) -> int | None:
    """
    How many completed segments wait between the last archived one and the current one;
    None when that cannot be told (standby, unknown position, timeline switch).
    """
    if (isinstance(position, Unknown) or isinstance(segment_bytes, Unknown)
            or position.current_wal is None or stats.last_archived_wal is None):
        return None
    last = segment_number(stats.last_archived_wal, segment_bytes)
    current = segment_number(position.current_wal, segment_bytes)
    if last is None or current is None or last[0] != current[0]:
        return None
    return max(current[1] - last[1] - 1, 0)


def _config(target: Target) -> PostgresConfig:
    if not isinstance(target.config, PostgresConfig):
        raise TypeError("a postgres check needs a PostgresConfig target")
    return target.config


def _pg(action: str, why: str) -> Operation:
    return Operation(System.POSTGRES, action, why)


class WalArchiving(Check[WalArchivingObservation]):
    """
    Continuous archiving is on, archives every segment, and archived one recently.
    """

    meta = CheckMeta(
        id="postgres.backup.wal_archiving",
        title="PostgreSQL archives its WAL continuously",
        family=Family.BACKUP,
        standard=Standard.CONTINGENCY,
        citations=("164.308(a)(7)(ii)(A)", "164.310(d)(2)(iv)"),
        severity=Severity.HIGH,
        target_kind=TargetKind.POSTGRES,
        description=(
            "Point-in-time recovery needs every WAL segment since the last base backup. Reads "
            "archive_mode, archive_command or archive_library from pg_settings, the last "
            "archived and last failed segment from pg_stat_archiver, and the current WAL file. "
            "Fails when archiving is off, has nothing to archive with, runs a command that "
            "copies nothing (true, or no %p or %f), when its last attempt failed, or when the "
            "last archived segment is more than a day old while segments wait; warns after an "
            "hour. The command's text is never reported: it can hold credentials."),
        remediation=(
            "Set archive_mode = on (a restart) and an archive_command or archive_library that "
            "copies each segment off the server (pgBackRest, WAL-G, Barman); fix what makes "
            "the archiver fail (the server log names it); set archive_timeout so a quiet "
            "server still ships its changes; and test a point-in-time restore."),
        operations=(
            _pg("pg_catalog.pg_settings", "archive_mode, archive_command, archive_library, "
                "archive_timeout and wal_segment_size"),
            _pg("pg_catalog.pg_stat_archiver", "the last archived and last failed segment"),
            _pg("pg_is_in_recovery()", "whether the server is a standby"),
            _pg("pg_current_wal_lsn()", "the current WAL position"),
            _pg("pg_walfile_name()", "the current WAL file, to count segments waiting"),
            _pg("now()", "the server's clock, to measure ages"),
        ),
    )

    def collect(self, ctx: CheckContext, target: Target) -> WalArchivingObservation:
        """Read settings, archiver statistics and the WAL position in one read-only session."""
        config = _config(target)
        with ctx.clients.postgres(config.application) as connection:
            rows = catalog_query(connection, _SETTINGS_SQL, [list(SETTING_NAMES)],
                                 needs=NEEDS_SETTINGS_VIEW)
            settings = archive_settings(rows)
            archiver = _archiver(connection)
            position = _position(connection)
        return WalArchivingObservation(describe(config.application), settings, archiver,
                                       position)

    def evaluate(self, obs: WalArchivingObservation, target: Target,
                 policy: Policy) -> Sequence[Finding]:
        """One finding for the server's archiving."""
        build = self.findings(target)
        evidence = _evidence(obs)
        settings = obs.settings
        if isinstance(settings.mode, Unknown):
            return [_unverified(build, settings.mode, "archive_mode", evidence)]
        if settings.mode == "off":
            return [build.failed(RESOURCE, "WAL archiving is off (archive_mode = off): changes "
                                 "since the last base backup cannot be recovered",
                                 evidence=evidence)]
        position = obs.position
        if not isinstance(position, Unknown) and position.in_recovery and settings.mode == "on":
            unknown = Unknown(UnknownReason.NOT_VISIBLE,
                              "the server is a standby with archive_mode = on, so its primary "
                              "archives the WAL", needs="a scan of the primary server")
            return [_unverified(build, unknown, "WAL archiving", evidence)]
        method = _method_verdict(build, settings, evidence)
        if method is not None:
            return [method]
        if isinstance(obs.archiver, Unknown):
            return [_unverified(build, obs.archiver, "the archiver's progress", evidence)]
        return [_judge_progress(build, obs, obs.archiver, evidence)]


def _unverified(build: FindingBuilder[WalArchivingObservation], unknown: Unknown, what: str,
                evidence: dict[str, EvidenceValue]) -> Finding:
    return build.make(Status.UNVERIFIED, RESOURCE, f"Could not observe {what}: {unknown.detail}",
                      evidence=evidence, needs=unknown.needs, unknown_reason=unknown.reason)


def _method_verdict(build: FindingBuilder[WalArchivingObservation], settings: ArchiveSettings,
                    evidence: dict[str, EvidenceValue]) -> Finding | None:
    """FAIL or UNVERIFIED when nothing (or nothing real) archives; None when something does."""
    library, command = settings.library, settings.command
    if isinstance(library, str) and library:
        return None
    if isinstance(command, Unknown):
        return _unverified(build, command, "archive_command", evidence)
    if not command.set:
        if isinstance(library, Unknown):
            return _unverified(build, library, "archive_library", evidence)
        return build.failed(RESOURCE, f"archive_mode is {settings.mode} but neither "
                            "archive_command nor archive_library is set: WAL piles up on the "
                            "server and nothing is archived", evidence=evidence)
    if command.no_op or not command.references_segment:
        why = "is a no-op" if command.no_op else "never names the segment (%p or %f)"
        return build.failed(RESOURCE, f"archive_command {why}: it reports success and copies "
                            "nothing, so WAL is discarded", evidence=evidence)
    return None


def _age(delta: timedelta) -> str:
    hours = delta.total_seconds() / 3600
    if hours < 1:
        return f"{max(round(hours * 60), 0)} minutes"
    return f"{round(hours / 24, 1):g} days" if hours >= 48 else f"{round(hours, 1):g} hours"


def _judge_progress(build: FindingBuilder[WalArchivingObservation], obs: WalArchivingObservation,
                    stats: ArchiverStats, evidence: dict[str, EvidenceValue]) -> Finding:
    """Judge the archiver's last success and failure, and the segments waiting."""
    now, last = stats.server_now, stats.last_archived_at
    if stats.last_failed_at is not None and (last is None or stats.last_failed_at > last):
        return build.failed(RESOURCE, f"WAL archiving is failing: the latest attempt failed "
                            f"({stats.failed_count} failure(s) since the statistics were reset)",
                            evidence=evidence)
    if last is None:
        since = None if stats.stats_reset is None else now - stats.stats_reset
        if since is not None and since <= FAIL_AGE:
            return build.warned(RESOURCE, "No WAL segment has been archived yet since the "
                                f"statistics were reset {_age(since)} ago", evidence=evidence)
        return build.failed(RESOURCE, "No WAL segment has been archived since the statistics "
                            "were reset" + (f" {_age(since)} ago" if since else ""),
                            evidence=evidence)
    age = now - last
    waiting = segments_waiting(stats, obs.position, obs.settings.segment_bytes)
    if age <= WARN_AGE:
        return build.passed(RESOURCE, f"WAL is archived continuously: the last segment was "
                            f"archived {_age(age)} ago", evidence=evidence)
    if waiting == 0:
        return _judge_idle(build, obs.settings, age, evidence)
    backlog = "an unknown number of" if waiting is None else str(waiting)
    text = f"the last WAL segment was archived {_age(age)} ago, and {backlog} segment(s) wait"
    if age > FAIL_AGE:
        return build.failed(RESOURCE, f"WAL archiving has stalled: {text}", evidence=evidence)
    return build.warned(RESOURCE, f"WAL archiving lags: {text}", evidence=evidence)


def _judge_idle(build: FindingBuilder[WalArchivingObservation], settings: ArchiveSettings,
                age: timedelta, evidence: dict[str, EvidenceValue]) -> Finding:
    """Nothing waits: the server is quiet. Without archive_timeout, a day's changes may too."""
    if age > FAIL_AGE and settings.timeout_seconds == 0:
        return build.warned(RESOURCE, f"No WAL segment has filled for {_age(age)}, and "
                            "archive_timeout is 0: changes since then sit un-archived in the "
                            "current segment", evidence=evidence)
    return build.passed(RESOURCE, f"WAL archiving is caught up: the server is quiet (the last "
                        f"segment was archived {_age(age)} ago and none waits)",
                        evidence=evidence)


def _fact_value(fact: object) -> EvidenceValue:
    if isinstance(fact, Unknown):
        return None
    return fact if isinstance(fact, (str, int, float, bool)) else None


def _evidence(obs: WalArchivingObservation) -> dict[str, EvidenceValue]:
    """Non-sensitive facts: modes, tool names, counts and ages; never the command text."""
    settings, stats = obs.settings, obs.archiver
    command = settings.command
    library = settings.library
    evidence: dict[str, EvidenceValue] = {
        "server": obs.server,
        "archive_mode": _fact_value(settings.mode),
        "archive_library": library[:64] if isinstance(library, str) else None,
        "archive_command_set": None if isinstance(command, Unknown) else command.set,
        "archive_tool": None if isinstance(command, Unknown) else command.tool,
        "archive_timeout_seconds": _fact_value(settings.timeout_seconds),
    }
    hidden = [name for name, fact in (("archive_mode", settings.mode),
                                      ("archive_command", command), ("archive_library", library))
              if isinstance(fact, Unknown)]
    if hidden:
        evidence["settings_not_visible"] = tuple(hidden)
    if not isinstance(stats, Unknown):
        evidence.update(_stats_evidence(obs, stats))
    return evidence


def _hours(later: datetime, earlier: datetime | None) -> float | None:
    return None if earlier is None else round((later - earlier).total_seconds() / 3600, 2)


def _stats_evidence(obs: WalArchivingObservation,
                    stats: ArchiverStats) -> dict[str, EvidenceValue]:
    position = obs.position
    return {
        "archived_count": stats.archived_count,
        "failed_count": stats.failed_count,
        "last_archived_wal": stats.last_archived_wal,
        "last_archived_age_hours": _hours(stats.server_now, stats.last_archived_at),
        "last_failed_age_hours": _hours(stats.server_now, stats.last_failed_at),
        "segments_waiting": segments_waiting(stats, position, obs.settings.segment_bytes),
        "standby": None if isinstance(position, Unknown) else position.in_recovery,
    }
