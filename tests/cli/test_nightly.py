"""Nightly scans through the CLI: history, --since-last, diff, waivers and the exit policy."""

from __future__ import annotations

import json
import sqlite3
import zlib

import pytest
from cli.nightly_lab import CLEAN, LEAKED_VALUE, LEAKY, invoke, write_lab

from hipaacheck.exitcodes import FailOn, exit_code
from hipaacheck.model import Severity, Status

FAR = "2099-12-31"


def _waivers(tmp_path, expires: str, target: str = "logs:batch"):
    path = tmp_path / "waivers.yaml"
    path.write_text(
        "waivers:\n"
        "  - id: batch-accepted\n"
        "    check: logs.files.phi\n"
        f"    target: '{target}'\n"
        "    justification: Batch host retires next month; its volume is encrypted.\n"
        "    approver: Jane Roe, CISO\n"
        f"    expires: {expires}\n")
    return path


def _scan(tmp_path, config, night: str, *extra: str):
    out = tmp_path / night
    result = invoke("scan", "-c", str(config), "--out", str(out), "--format", "json", *extra)
    doc = json.loads((out / "report.json").read_text()) if (out / "report.json").exists() else None
    return result, doc


def _odd(doc) -> list[tuple[str, str, str]]:
    """The findings that are neither PASS nor FAIL, for assertion messages."""
    return [(f["target"], f["status"], f["reason"]) for f in (doc or {}).get("findings", ())
            if f["status"] not in ("PASS", "FAIL")]


def _status(doc, target: str) -> set[str]:
    return {f["status"] for f in doc["findings"] if f["target"] == target}


def test_two_nights_recorded_then_diffed(tmp_path, _private_history):
    # Given night 1: api and batch leak (batch under a waiver), web, gone and audit are clean
    night1 = {"api": LEAKY, "batch": LEAKY, "web": CLEAN, "gone": CLEAN, "audit": CLEAN}
    config = write_lab(tmp_path, night1)
    first, doc1 = _scan(tmp_path, config, "n1", "--waivers", str(_waivers(tmp_path, FAR)))
    assert first.exit_code == 1, _odd(doc1)
    assert _status(doc1, "logs:api") == {"FAIL"}
    batch = [f for f in doc1["findings"] if f["target"] == "logs:batch"]
    assert {f["status"] for f in batch} == {"FAIL"}
    assert all(f["waiver"]["id"] == "batch-accepted" for f in batch)
    # When night 2 fixes api, breaks web, lets the waiver expire, drops gone, loses audit's file
    night2 = {"api": CLEAN, "batch": LEAKY, "web": LEAKY, "audit": None, "fresh": CLEAN}
    config = write_lab(tmp_path, night2)
    second, doc2 = _scan(tmp_path, config, "n2", "--since-last",
                         "--waivers", str(_waivers(tmp_path, "2020-01-01")))
    assert second.exit_code == 3, second.output  # audit could not be read
    assert any("expired on 2020-01-01" in n for n in doc2["scan"]["notes"])
    assert all(f["waiver"] is None for f in doc2["findings"])
    assert "New failures" in second.stdout  # --since-last printed the diff after the scan
    # Then `diff` (defaults: the last two scans of the scope) reports each change
    changes = json.loads(invoke("diff", "--format", "json").stdout)
    keyed = {k: {(c["target"], c["old"], c["new"]) for c in changes[k]}
             for k in ("new_failures", "resolved", "waivers_lapsed", "became_unverified")}
    assert ("logs:web", "PASS", "FAIL") in keyed["new_failures"]
    assert ("logs:api", "FAIL", "PASS") in keyed["resolved"]
    assert {t for t, _, _ in keyed["waivers_lapsed"]} == {"logs:batch"}
    assert {t for t, _, _ in keyed["became_unverified"]} == {"logs:audit"}
    assert changes["targets_vanished"] == ["logs:gone"]
    assert changes["targets_appeared"] == ["logs:fresh"]
    # And history lists both; `history show` gives back the stored JSON
    listing = invoke("history", "list")
    assert listing.exit_code == 0
    with sqlite3.connect(_private_history) as db:
        ids = [r[0] for r in db.execute("SELECT id FROM scans ORDER BY id")]
    assert len(ids) == 2
    shown = json.loads(invoke("history", "show", str(ids[1])).stdout)
    assert shown == doc2
    # Explicit ids and JSON files give the same diff
    by_id = json.loads(invoke("diff", str(ids[0]), str(ids[1]), "-f", "json").stdout)
    by_file = json.loads(invoke("diff", str(tmp_path / "n1" / "report.json"),
                                str(tmp_path / "n2" / "report.json"), "-f", "json").stdout)
    one_arg = json.loads(invoke("diff", str(ids[0]), "-f", "json").stdout)
    for other in (by_id, by_file, one_arg):
        assert {k: v for k, v in other.items() if "label" not in k} == {
            k: v for k, v in changes.items() if "label" not in k}


def test_history_holds_no_identifier_value(tmp_path, _private_history):
    config = write_lab(tmp_path, {"api": LEAKY})
    result, doc = _scan(tmp_path, config, "n1")
    assert result.exit_code == 1, _odd(doc)
    raw = _private_history.read_bytes()
    with sqlite3.connect(_private_history) as db:
        docs = [zlib.decompress(b).decode() for (b,) in db.execute("SELECT document FROM scans")]
        rows = repr(db.execute("SELECT * FROM findings").fetchall())
    assert docs and all(LEAKED_VALUE not in d for d in docs)
    assert LEAKED_VALUE not in rows and LEAKED_VALUE.encode() not in raw


def test_no_history_records_nothing(tmp_path, _private_history):
    config = write_lab(tmp_path, {"api": CLEAN})
    result, _ = _scan(tmp_path, config, "n1", "--no-history", "--since-last")
    assert result.exit_code == 0, result.output
    assert not _private_history.exists()
    assert invoke("history", "list").exit_code == 2


def test_explicit_history_path_and_retention(tmp_path):
    config = write_lab(tmp_path, {"api": CLEAN})
    path = tmp_path / "elsewhere.sqlite"
    for night in ("n1", "n2", "n3"):
        result, _ = _scan(tmp_path, config, night, "--history", str(path), "--history-keep", "2")
        assert result.exit_code == 0, result.output
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT count(*) FROM scans").fetchone() == (2,)


def test_waiver_covering_the_only_failure_exits_0(tmp_path):
    config = write_lab(tmp_path, {"batch": LEAKY, "web": CLEAN})
    result, doc = _scan(tmp_path, config, "n1", "--waivers", str(_waivers(tmp_path, FAR)))
    assert result.exit_code == 0, result.output
    assert _status(doc, "logs:batch") == {"FAIL"}
    assert [w["state"] for w in doc["waivers"]] == ["active"]


def test_waiver_matching_nothing_is_reported(tmp_path):
    config = write_lab(tmp_path, {"web": CLEAN})
    waivers = _waivers(tmp_path, FAR, target="logs:decommissioned")
    result, doc = _scan(tmp_path, config, "n1", "--waivers", str(waivers))
    assert result.exit_code == 0, result.output
    assert [w["state"] for w in doc["waivers"]] == ["unmatched"]
    assert any("batch-accepted" in n for n in doc["scan"]["notes"])


@pytest.mark.parametrize("body", [
    "waivers: [{check: logs.files.phi, target: 'logs:a', justification: j, approver: a}]",
    ("waivers: [{check: no.such.check, target: 'logs:a', justification: j, approver: a, "
    "expires: 2099-01-01}]"),
])
def test_invalid_waiver_file_exits_2_before_scanning(tmp_path, body):
    config = write_lab(tmp_path, {"web": CLEAN})
    (tmp_path / "w.yaml").write_text(body)
    result, doc = _scan(tmp_path, config, "n1", "--waivers", str(tmp_path / "w.yaml"))
    assert result.exit_code == 2 and doc is None


def test_fail_on_and_severity_threshold(tmp_path):
    # logs.files.phi is a high-severity check
    config = write_lab(tmp_path, {"api": LEAKY})
    assert _scan(tmp_path, config, "a")[0].exit_code == 1
    assert _scan(tmp_path, config, "b", "--severity-threshold", "high")[0].exit_code == 1
    # Nothing at or above the threshold was checked: that is never a pass
    assert _scan(tmp_path, config, "c", "--severity-threshold", "critical")[0].exit_code == 3
    blind = write_lab(tmp_path, {"api": None})
    assert _scan(tmp_path, blind, "d", "--fail-on", "unverified")[0].exit_code == 3


def test_exit_policy_threshold_waivers_and_unverified_level():
    # Given hand-built findings of a low and a high check
    from dataclasses import replace

    from core.scan_builders import finding, meta, result

    low, high = meta("c.low", severity=Severity.LOW), meta("c.high", severity=Severity.HIGH)
    scan = result([finding(low, "logs:a", "x", Status.UNVERIFIED),
                   finding(high, "logs:a", "y", Status.WARN)], ["logs:a"], [low, high])
    # The low UNVERIFIED counts by default, not above a threshold, and always at `unverified`
    assert exit_code(scan) == 3
    assert exit_code(scan, threshold=Severity.MEDIUM) == 0
    assert exit_code(scan, FailOn.WARN, Severity.MEDIUM) == 1
    assert exit_code(scan, FailOn.UNVERIFIED, Severity.MEDIUM) == 3
    partial = replace(scan, complete=False)
    assert exit_code(partial, threshold=Severity.CRITICAL) == 3


@pytest.mark.parametrize("args", [
    ["--shard", "0/3"], ["--shard", "x"], ["--history-keep", "0"],
    ["--history", "/dev/null/not-a-folder/h.sqlite"],
])
def test_bad_flags_exit_2(tmp_path, args):
    config = write_lab(tmp_path, {"web": CLEAN})
    assert _scan(tmp_path, config, "n1", *args)[0].exit_code == 2


def test_diff_needs_two_scans(tmp_path):
    assert invoke("diff").exit_code == 2  # no history yet
    config = write_lab(tmp_path, {"web": CLEAN})
    _scan(tmp_path, config, "n1")
    assert invoke("diff").exit_code == 2  # only one scan of the scope
    assert invoke("diff", "nonsense").exit_code == 2
    assert invoke("history", "show", "999").exit_code == 2
