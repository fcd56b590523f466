"""
The scan history: every recorded scan in one SQLite file, for diffs and trends.

The store holds exactly what the JSON report holds and nothing more: the `hipaacheck.scan/1`
document (compressed) and, for queries, one row per finding keyed by check id, target id and
resource. It lives in the user's data directory (`platformdirs`) unless a path is given, and is
created owner-only, like the reports.

Each scan is written in one transaction together with the retention pruning, so a scan that is
interrupted or killed while recording leaves the store as it was; a scan that was interrupted
before recording is stored marked partial. Scans are grouped by scope (see
`hipaacheck.sharding.scope_id`) and shard: "the previous scan" always means the previous one
of the same scope and shard.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import zlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Self

import platformdirs

from hipaacheck.errors import HipaacheckError
from hipaacheck.result import ScanResult
from hipaacheck.sharding import scope_id

logger = logging.getLogger(__name__)

SCHEMA_VERSION = 1
DEFAULT_KEEP = 365

_SCHEMA = """
CREATE TABLE scans (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    recorded TEXT NOT NULL,
    scope TEXT NOT NULL,
    shard TEXT NOT NULL DEFAULT '',
    started TEXT NOT NULL,
    finished TEXT NOT NULL,
    tool_version TEXT NOT NULL,
    config_fingerprint TEXT NOT NULL,
    organization TEXT NOT NULL,
    complete INTEGER NOT NULL,
    interrupted INTEGER NOT NULL,
    tasks INTEGER NOT NULL,
    counts TEXT NOT NULL,
    document BLOB NOT NULL
);
CREATE INDEX scans_scope ON scans (scope, shard, id);
CREATE TABLE findings (
    scan_id INTEGER NOT NULL REFERENCES scans (id) ON DELETE CASCADE,
    check_id TEXT NOT NULL,
    target TEXT NOT NULL,
    resource TEXT NOT NULL,
    status TEXT NOT NULL,
    severity TEXT NOT NULL,
    standard TEXT NOT NULL,
    unknown_reason TEXT,
    waiver TEXT
);
CREATE INDEX findings_scan ON findings (scan_id);
CREATE INDEX findings_key ON findings (check_id, target, resource);
"""


_COLUMNS = ("id, recorded, scope, shard, started, finished, tool_version, config_fingerprint, "
            "organization, complete, interrupted, tasks, counts")


class HistoryError(HipaacheckError):
    """The history store cannot be opened or does not hold what was asked for."""


def default_path() -> Path:
    """Where history lives unless `--history PATH` says otherwise."""
    return Path(platformdirs.user_data_dir("hipaacheck")) / "history.sqlite"


@dataclass(frozen=True)
class Retention:
    """
    How much history to keep: the last `keep_last` scans of each scope and shard, and
    nothing recorded more than `keep_days` days ago. None means no limit of that kind.
    """

    keep_last: int | None = DEFAULT_KEEP
    keep_days: int | None = None

    def __post_init__(self) -> None:
        if self.keep_last is not None and self.keep_last < 1:
            raise HistoryError("history retention must keep at least one scan")
        if self.keep_days is not None and self.keep_days < 1:
            raise HistoryError("history retention must keep at least one day")


@dataclass(frozen=True)
class ScanRecord:
    """One stored scan as `history list` shows it."""

    id: int
    recorded: str
    scope: str
    shard: str
    """`K/N` for a shard's result, empty for a whole or merged scan."""
    started: str
    finished: str
    tool_version: str
    config_fingerprint: str
    organization: str
    complete: bool
    interrupted: bool
    tasks: int
    counts: dict[str, int]

    @property
    def partial(self) -> bool:
        """True when the scan did not finish every task."""
        return not self.complete


def scope_of(result: ScanResult) -> str:
    """The scope a result is filed under (documents without one: their organization's)."""
    return result.scope or scope_id(result.organization)


def _shard_of(result: ScanResult) -> str:
    return str(result.shard) if result.shard else ""


class History:
    """
    An open history store. Use as a context manager, or call `close()`.
    """

    def __init__(self, path: Path, *, create: bool = True) -> None:
        self.path = path
        if not path.exists():
            if not create:
                raise HistoryError(f"{path}: no scan history there yet")
            _create_private(path)
        try:
            self._db = sqlite3.connect(str(path), timeout=30.0, isolation_level=None)
            self._db.execute("PRAGMA foreign_keys = ON")
            self._migrate()
        except sqlite3.DatabaseError as exc:
            raise HistoryError(f"{path}: not a usable hipaacheck history "
                               f"({type(exc).__name__})") from None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the database connection."""
        self._db.close()

    def _migrate(self) -> None:
        """Create the schema in a new file; refuse files of another program or a newer schema."""
        if self._version() == SCHEMA_VERSION:
            return
        with self._transaction():
            version = self._version()  # again, under the write lock: another process may have won
            if version == SCHEMA_VERSION:
                return
            if version > SCHEMA_VERSION:
                raise HistoryError(f"{self.path}: written by a newer hipaacheck (history schema "
                                   f"{version}); upgrade hipaacheck to read it")
            if self._db.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]:
                raise HistoryError(f"{self.path}: not a hipaacheck history file")
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    self._db.execute(statement)
            self._db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def _version(self) -> int:
        return int(self._db.execute("PRAGMA user_version").fetchone()[0])

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        """One write transaction; anything raised, Ctrl-C included, rolls it back."""
        with self._errors("write to"):
            if not self._db.in_transaction:
                self._db.execute("BEGIN IMMEDIATE")
            try:
                yield
            except BaseException:
                self._db.rollback()
                raise
            self._db.commit()

    @contextmanager
    def _errors(self, doing: str) -> Iterator[None]:
        """Turn SQLite's errors (locked, disk full, corrupt) into an explained HistoryError."""
        try:
            yield
        except sqlite3.Error as exc:
            raise HistoryError(f"{self.path}: could not {doing} the history "
                               f"({type(exc).__name__}: {exc})") from None

    def record(self, result: ScanResult, retention: Retention = Retention()) -> int:
        """Store a scan (partial ones marked so) and prune by `retention`; returns its id."""
        doc = json.dumps(result.to_json(), separators=(",", ":")).encode()
        counts = {s.value: n for s, n in result.counts().items()}
        with self._transaction():
            cursor = self._db.execute(
                "INSERT INTO scans (recorded, scope, shard, started, finished, tool_version, "
                "config_fingerprint, organization, complete, interrupted, tasks, counts, document)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (_now().isoformat(timespec="seconds"), scope_of(result), _shard_of(result),
                 result.started, result.finished, result.tool_version, result.config_fingerprint,
                 result.organization, int(result.complete), int(result.interrupted),
                 result.tasks, json.dumps(counts), zlib.compress(doc, 6)))
            scan_id = int(cursor.lastrowid or 0)
            self._db.executemany(
                "INSERT INTO findings VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                ((scan_id, f.check_id, f.target, f.resource, f.status.value, f.severity.value,
                  f.standard.value, f.unknown_reason.value if f.unknown_reason else None,
                  f.waiver.id if f.waiver else None) for f in result.findings))
            pruned = self._prune(scope_of(result), _shard_of(result), retention)
        logger.info("recorded scan %d in history (%d older scans pruned)", scan_id, pruned)
        return scan_id

    def _prune(self, scope: str, shard: str, retention: Retention) -> int:
        pruned = 0
        if retention.keep_last is not None:
            pruned += self._db.execute(
                "DELETE FROM scans WHERE scope = ? AND shard = ? AND id NOT IN (SELECT id FROM "
                "scans WHERE scope = ? AND shard = ? ORDER BY id DESC LIMIT ?)",
                (scope, shard, scope, shard, retention.keep_last)).rowcount
        if retention.keep_days is not None:
            cutoff = (_now() - timedelta(days=retention.keep_days)).isoformat(timespec="seconds")
            pruned += self._db.execute("DELETE FROM scans WHERE recorded < ?", (cutoff,)).rowcount
        return pruned

    def prune(self, retention: Retention) -> int:
        """Apply `retention` to every scope and shard; returns how many scans were removed."""
        with self._transaction():
            groups = self._db.execute("SELECT DISTINCT scope, shard FROM scans").fetchall()
            return sum(self._prune(scope, shard, retention) for scope, shard in groups)

    def scans(self, *, scope: str | None = None, shard: str | None = None,
              limit: int | None = None, before: int | None = None) -> list[ScanRecord]:
        """Stored scans, newest first, optionally of one scope and shard, older than `before`."""
        clauses, params = [], []
        for column, value in (("scope", scope), ("shard", shard)):
            if value is not None:
                clauses.append(f"{column} = ?")
                params.append(value)
        if before is not None:
            clauses.append("id < ?")
            params.append(str(before))
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        tail = f" LIMIT {int(limit)}" if limit is not None else ""
        with self._errors("read"):
            rows = self._db.execute(f"SELECT {_COLUMNS} FROM scans{where} ORDER BY id DESC{tail}",
                                    params).fetchall()
        return [_record(row) for row in rows]

    def get(self, scan_id: int) -> ScanRecord:
        """One stored scan's record; HistoryError when there is none."""
        with self._errors("read"):
            rows = self._db.execute(f"SELECT {_COLUMNS} FROM scans WHERE id = ?",
                                    (scan_id,)).fetchall()
        if not rows:
            raise HistoryError(f"no scan {scan_id} in {self.path}")
        return _record(rows[0])

    def load(self, scan_id: int) -> ScanResult:
        """The full result of a stored scan."""
        with self._errors("read"):
            row = self._db.execute("SELECT document FROM scans WHERE id = ?",
                                   (scan_id,)).fetchone()
        if row is None:
            raise HistoryError(f"no scan {scan_id} in {self.path}")
        try:
            return ScanResult.from_json(json.loads(zlib.decompress(row[0])))
        except (zlib.error, ValueError, KeyError, TypeError) as exc:
            raise HistoryError(f"{self.path}: scan {scan_id} is unreadable "
                               f"({type(exc).__name__})") from None

    def previous(self, result: ScanResult, before: int | None = None) -> ScanRecord | None:
        """The latest stored scan of the same scope and shard (older than scan `before`)."""
        found = self.scans(scope=scope_of(result), shard=_shard_of(result), limit=1,
                           before=before)
        return found[0] if found else None

    def finding_rows(self, scan_id: int) -> list[tuple[Any, ...]]:
        """(check id, target, resource, status) of every finding of a stored scan."""
        return [tuple(r) for r in self._db.execute(
            "SELECT check_id, target, resource, status FROM findings WHERE scan_id = ? "
            "ORDER BY rowid", (scan_id,))]


def _record(row: Sequence[Any]) -> ScanRecord:
    (scan_id, recorded, scope, shard, started, finished, version, fingerprint, organization,
     complete, interrupted, tasks, counts) = row
    return ScanRecord(
        id=int(scan_id), recorded=recorded, scope=scope, shard=shard, started=started,
        finished=finished, tool_version=version, config_fingerprint=fingerprint,
        organization=organization, complete=bool(complete), interrupted=bool(interrupted),
        tasks=int(tasks), counts=json.loads(counts))


def _now() -> datetime:
    return datetime.now(UTC)


def _create_private(path: Path) -> None:
    """Create the directory (0700 when new) and an empty database file readable by its owner."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    except OSError as exc:
        raise HistoryError(f"{path}: cannot create the history file ({exc.strerror})") from None
    os.close(fd)
