"""Failures a new user meets first: a bad report folder, a closed pipe, a JSON array."""

from __future__ import annotations

import subprocess
import sys

from typer.testing import CliRunner

from hipaacheck.cli import app

runner = CliRunner()


def _config(tmp_path):
    log = tmp_path / "app.log"
    log.write_text("2026-12-03T10:00:00Z INFO request served status=200\n")
    config = tmp_path / "hipaacheck.yaml"
    config.write_text(f"logs: {{sinks: [{{name: app, paths: ['{log}']}}]}}\n")
    return config


def test_an_unusable_report_folder_is_refused_before_scanning(tmp_path):
    blocker = tmp_path / "afile"
    blocker.write_text("")
    result = runner.invoke(app, ["scan", "-c", str(_config(tmp_path)), "--no-history",
                                 "--out", str(blocker)])
    assert result.exit_code == 2
    assert "report folder" in result.stderr or "writable" in result.stderr


def test_a_report_folder_is_created_owner_only(tmp_path):
    out = tmp_path / "new" / "out"
    result = runner.invoke(app, ["scan", "-c", str(_config(tmp_path)), "--no-history",
                                 "--out", str(out), "-f", "json"])
    assert result.exit_code == 0, result.output
    assert out.stat().st_mode & 0o777 == 0o700


def test_a_closed_pipe_keeps_the_exit_code_and_the_history(tmp_path):
    # Given a scan whose summary goes to a reader that stops after one line
    history = tmp_path / "h.sqlite"
    scan = subprocess.Popen(
        [sys.executable, "-m", "hipaacheck", "scan", "-c", str(_config(tmp_path)), "--out",
         str(tmp_path / "out"), "--history", str(history)],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    assert scan.stdout is not None
    scan.stdout.readline()
    scan.stdout.close()
    # Then the exit code is the scan's own and the scan is recorded
    assert scan.wait(timeout=120) == 0
    listed = runner.invoke(app, ["history", "list", "--history", str(history)])
    assert listed.exit_code == 0 and "1" in listed.stdout


def test_json_that_is_not_a_result_is_a_usage_error(tmp_path):
    array = tmp_path / "arr.json"
    array.write_text("[1, 2]")
    out = str(tmp_path / "out")
    for args in (["report", str(array), "--out", out],
                 ["merge", str(array), "--no-history", "--out", out],
                 ["diff", str(array), str(array), "--no-history"]):
        result = runner.invoke(app, args)
        assert result.exit_code == 2, (args, result.output)
