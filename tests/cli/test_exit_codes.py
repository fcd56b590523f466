"""Every exit code of `hipaacheck scan`, through Typer's test runner against real files."""

from __future__ import annotations

import json
import logging
import socket
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fakes import Behaving, target
from typer.testing import CliRunner

from hipaacheck.check import CheckContext, Policy
from hipaacheck.cli import app
from hipaacheck.exitcodes import FailOn, exit_code
from hipaacheck.registry import Registry
from hipaacheck.runner import scan

runner = CliRunner()

CLEAN = "2026-12-03T10:00:00Z INFO request served status=200 duration_ms=12\n"
LEAKY = '2026-12-03T10:00:01Z INFO patient lookup {"ssn": "431-27-8765"}\n'


def _write_config(tmp_path: Path, body: str) -> Path:
    config = tmp_path / "hipaacheck.yaml"
    config.write_text(body)
    return config


def _sink(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / f"{name}.log"
    path.write_text(text * 20)
    return f"logs: {{sinks: [{{name: {name}, paths: ['{path}']}}]}}\n"


def _scan(tmp_path: Path, config: Path, *extra: str):
    out = tmp_path / "out"
    result = runner.invoke(app, ["scan", "-c", str(config), "--out", str(out), *extra])
    return result, out


def test_exit_0_when_every_control_passes(tmp_path):
    config = _write_config(tmp_path, _sink(tmp_path, "clean", CLEAN))
    result, out = _scan(tmp_path, config)
    assert result.exit_code == 0, result.output
    doc = json.loads((out / "report.json").read_text())
    assert doc["summary"]["PASS"] >= 1 and doc["summary"]["FAIL"] == 0


def test_exit_1_when_a_control_fails(tmp_path):
    config = _write_config(tmp_path, _sink(tmp_path, "leaky", LEAKY))
    result, out = _scan(tmp_path, config)
    assert result.exit_code == 1, result.output
    doc = json.loads((out / "report.json").read_text())
    assert any(f["status"] == "FAIL" and f["check_id"] == "logs.files.phi"
               for f in doc["findings"])


def test_exit_2_on_config_error_naming_the_key(tmp_path):
    config = _write_config(tmp_path, "logs: {sinks: [{name: a, paths: [x], colour: red}]}\n")
    result, _ = _scan(tmp_path, config)
    assert result.exit_code == 2
    assert "logs.sinks[0].colour" in result.stderr


def test_exit_2_on_missing_config_and_unknown_check(tmp_path):
    result, _ = _scan(tmp_path, tmp_path / "absent.yaml")
    assert result.exit_code == 2
    config = _write_config(tmp_path, _sink(tmp_path, "clean", CLEAN))
    result, _ = _scan(tmp_path, config, "--only", "no.such.check")
    assert result.exit_code == 2


def test_exit_3_when_nothing_is_selected(tmp_path):
    config = _write_config(tmp_path, "organization: Empty\n")
    result, out = _scan(tmp_path, config)
    assert result.exit_code == 3
    assert json.loads((out / "report.json").read_text())["scan"]["tasks"] == 0


def test_exit_3_when_a_target_is_unreachable(tmp_path):
    with socket.socket() as sock:  # a port that was free a moment ago is closed now
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    config = _write_config(
        tmp_path, f"tls: {{endpoints: [{{name: closed, host: 127.0.0.1, port: {port}}}]}}\n"
                  "scan: {probe_timeout_seconds: 2}\n")
    result, out = _scan(tmp_path, config)
    assert result.exit_code == 3
    statuses = {f["status"] for f in json.loads((out / "report.json").read_text())["findings"]}
    assert statuses == {"UNVERIFIED"}


def test_exit_3_when_a_log_path_matches_nothing(tmp_path):
    config = _write_config(tmp_path, f"logs: {{sinks: [{{name: gone, paths: ['{tmp_path}/none/*.log']}}]}}\n")
    result, _ = _scan(tmp_path, config)
    assert result.exit_code == 3


def test_fail_on_warn_turns_warnings_into_exit_1():
    # Given a complete scan whose worst finding is a WARN
    only_warn = scan(Registry.from_checks([Behaving("f.warn", "warn"), Behaving("f.ok", "pass")]),
                     [target()], CheckContext(None, Policy(), logging.getLogger("t"),
                                              lambda: datetime.now(UTC)),
                     organization="o", config_fingerprint="f")
    assert exit_code(only_warn) == 0
    assert exit_code(only_warn, FailOn.WARN) == 1


@pytest.mark.parametrize("fmt", ["html", "md"])
def test_report_command_rebuilds_from_json(tmp_path, fmt):
    config = _write_config(tmp_path, _sink(tmp_path, "leaky", LEAKY))
    _, out = _scan(tmp_path, config, "--format", "json")
    again = tmp_path / "again"
    result = runner.invoke(app, ["report", str(out / "report.json"), "--format", fmt,
                                 "--out", str(again)])
    assert result.exit_code == 0, result.output
    assert (again / f"report.{fmt}").stat().st_size > 1000


def test_report_command_refuses_other_json(tmp_path):
    bogus = tmp_path / "x.json"
    bogus.write_text('{"schema": "other/9"}')
    result = runner.invoke(app, ["report", str(bogus)])
    assert result.exit_code == 2


def test_checks_list_and_show():
    listing = runner.invoke(app, ["checks", "list"])
    assert listing.exit_code == 0 and "logs.files.phi" in listing.stdout
    shown = runner.invoke(app, ["checks", "show", "aws.rds.storage_encrypted"])
    assert shown.exit_code == 0 and "rds:DescribeDBInstances" in shown.stdout
    assert runner.invoke(app, ["checks", "show", "nope"]).exit_code == 2


def test_config_init_and_schema(tmp_path):
    path = tmp_path / "hipaacheck.yaml"
    assert runner.invoke(app, ["config", "init", str(path)]).exit_code == 0
    assert runner.invoke(app, ["config", "init", str(path)]).exit_code == 2
    schema = runner.invoke(app, ["config", "schema"])
    assert json.loads(schema.stdout)["title"] == "hipaacheck inventory"
