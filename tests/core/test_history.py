"""The history store: real SQLite files across nights, retention, partial and killed scans."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import sqlite3
import stat
import subprocess
import sys
import textwrap
import time
import zlib
from pathlib import Path

import pytest
from core.scan_builders import finding, meta, nightly, result

from hipaacheck.diff import diff
from hipaacheck.history import History, HistoryError, Retention, default_path, scope_of
from hipaacheck.model import Status
from hipaacheck.result import ScanResult, Shard

CHECK = meta("fake.file")


def _night(day: int, status: Status = Status.PASS, scope: str = "scope-a", **kw) -> ScanResult:
    return result([finding(CHECK, "logs:a", "a.log", status)], ["logs:a"], [CHECK],
                  started=f"2026-12-{day:02d}T02:00:00+00:00", scope=scope, **kw)


def test_nightly_scans_round_trip_and_diff_from_the_store(tmp_path):
    # Given two real scans a night apart recorded in a real SQLite file
    first, second = nightly(tmp_path)
    path = tmp_path / "history.sqlite"
    with History(path) as store:
        one, two = store.record(first), store.record(second)
    # When the store is reopened
    with History(path, create=False) as store:
        records = store.scans()
        previous = store.previous(second, before=two)
        loaded_first, loaded_second = store.load(one), store.load(two)
        rows = store.finding_rows(two)
    # Then both scans come back whole, newest first, filed under one scope
    assert [r.id for r in records] == [two, one]
    assert loaded_first == first and loaded_second == second
    assert previous is not None and previous.id == one
    assert records[0].scope == records[1].scope == first.scope
    assert records[0].counts["FAIL"] == 2 and records[0].counts["UNVERIFIED"] == 1
    # The finding rows are keyed by check id, target id and resource
    assert {(c, t, s) for c, t, _, s in rows} == {
        (f.check_id, f.target, f.status.value) for f in second.findings}
    # And the diff from stored scans is the diff of the scans
    assert diff(loaded_first, loaded_second) == diff(first, second)


def test_store_holds_what_the_json_holds_and_nothing_else(tmp_path):
    scan = _night(1, Status.FAIL)
    with History(tmp_path / "h.sqlite") as store:
        scan_id = store.record(scan)
    db = sqlite3.connect(tmp_path / "h.sqlite")
    blob = db.execute("SELECT document FROM scans WHERE id = ?", (scan_id,)).fetchone()[0]
    assert json.loads(zlib.decompress(blob)) == json.loads(json.dumps(scan.to_json()))
    columns = {row[1] for row in db.execute("PRAGMA table_info(findings)")}
    assert columns == {"scan_id", "check_id", "target", "resource", "status", "severity",
                       "standard", "unknown_reason", "waiver"}
    db.close()


def test_history_file_is_owner_only_and_refuses_strangers(tmp_path):
    path = tmp_path / "deep" / "h.sqlite"
    History(path).close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    with pytest.raises(HistoryError):
        History(tmp_path / "absent.sqlite", create=False)
    stranger = tmp_path / "other.sqlite"
    with sqlite3.connect(stranger) as db:
        db.execute("CREATE TABLE t (x)")
    with pytest.raises(HistoryError):
        History(stranger)
    (tmp_path / "text.sqlite").write_text("not a database at all, just text" * 40)
    with pytest.raises(HistoryError):
        History(tmp_path / "text.sqlite")
    newer = tmp_path / "newer.sqlite"
    with sqlite3.connect(newer) as db:
        db.execute("PRAGMA user_version = 99")
    with pytest.raises(HistoryError):
        History(newer)


def test_default_path_is_in_the_user_data_folder(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    assert default_path() == tmp_path / "hipaacheck" / "history.sqlite"


def test_partial_scan_is_stored_marked_partial(tmp_path):
    with History(tmp_path / "h.sqlite") as store:
        scan_id = store.record(_night(1, Status.UNVERIFIED, complete=False))
        record = store.get(scan_id)
    assert record.partial and record.interrupted


def test_retention_keeps_the_last_n_of_each_scope_and_shard(tmp_path):
    with History(tmp_path / "h.sqlite") as store:
        kept = Retention(keep_last=3)
        a = [store.record(_night(d), kept) for d in range(1, 7)]
        b = [store.record(_night(d, scope="scope-b"), kept) for d in range(1, 3)]
        shard = dataclasses.replace(_night(7), shard=Shard(1, 2))
        s = store.record(shard, kept)
        assert [r.id for r in store.scans(scope="scope-a", shard="")] == a[:2:-1]
        assert [r.id for r in store.scans(scope="scope-b")] == b[::-1]
        assert [r.id for r in store.scans(shard="1/2")] == [s]
        # findings of pruned scans go with them
        assert store.finding_rows(a[0]) == []
        with pytest.raises(HistoryError):
            store.load(a[0])


def test_retention_by_age(tmp_path):
    path = tmp_path / "h.sqlite"
    with History(path) as store:
        old = store.record(_night(1))
    with sqlite3.connect(path) as db:
        db.execute("UPDATE scans SET recorded = '2020-01-01T00:00:00+00:00' WHERE id = ?", (old,))
    with History(path) as store:
        new = store.record(_night(2), Retention(keep_last=None, keep_days=30))
        assert [r.id for r in store.scans()] == [new]
        assert store.prune(Retention(keep_last=1)) == 0


def test_retention_refuses_keeping_nothing():
    with pytest.raises(HistoryError):
        Retention(keep_last=0)
    with pytest.raises(HistoryError):
        Retention(keep_days=0)


def test_scope_of_old_documents_without_one_is_stable():
    legacy = dataclasses.replace(_night(1), scope="")
    assert scope_of(legacy) == scope_of(dataclasses.replace(_night(2), scope=""))


_WRITER = textwrap.dedent("""
    import sys
    sys.path.insert(0, sys.argv[2])
    from pathlib import Path
    from core.scan_builders import finding, meta, result
    from hipaacheck.history import History, Retention
    from hipaacheck.model import Status
    m = meta("fake.file")
    scan = result([finding(m, f"logs:t{i % 50}", f"r{i}.log", Status.FAIL)
                   for i in range(8000)], [f"logs:t{i}" for i in range(50)], [m])
    with History(Path(sys.argv[1])) as store:
        while True:
            store.record(scan, Retention(keep_last=None))
            print("recorded", flush=True)
""")


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT])
def test_killed_while_recording_leaves_the_store_consistent(tmp_path, sig):
    # Given a process recording a large scan over and over
    path = tmp_path / "h.sqlite"
    tests = str(Path(__file__).parents[1])
    proc = subprocess.Popen([sys.executable, "-c", _WRITER, str(path), tests],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline() == "recorded\n"
        # When it is killed in the middle of the next write transaction (the rollback journal
        # exists exactly while one is open)
        journal = path.with_name(path.name + "-journal")
        deadline = time.monotonic() + 30
        while not journal.exists() and time.monotonic() < deadline:
            time.sleep(0.002)
        assert journal.exists()
        os.kill(proc.pid, sig)
        proc.wait(timeout=30)
    finally:
        proc.kill()
    # Then every stored scan is whole and the database is intact
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    counts = db.execute("SELECT scans.id, count(findings.scan_id) FROM scans LEFT JOIN findings "
                        "ON findings.scan_id = scans.id GROUP BY scans.id").fetchall()
    db.close()
    assert counts and all(n == 8000 for _, n in counts)
    with History(path) as store:
        assert all(store.load(r.id).findings for r in store.scans())
