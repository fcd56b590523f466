"""
Canary secrets and a canary SSN go in; none of them comes out anywhere.

A canary password reaches a real PostgreSQL server (it is the role's real password, so it flows
through the comparison code), a canary AWS secret key signs real requests to moto, and a canary
SSN sits in a scanned log file. The scan runs at the most verbose log level with --debug.
"""

from __future__ import annotations

import logging
import sqlite3

import pytest
from typer.testing import CliRunner

from hipaacheck.cli import app
from hipaacheck.lab.aws import start_moto_server
from hipaacheck.lab.postgres import PostgresServer

CANARY_PASSWORD = "canaryPw-Zq81xWv3"
CANARY_AWS_SECRET = "canaryAwsSecret-Lk27Pp93Rt"
CANARY_SSN = "431-27-8765"
CANARIES = (CANARY_PASSWORD, CANARY_AWS_SECRET, CANARY_SSN, CANARY_SSN.replace("-", ""))


@pytest.fixture(scope="module")
def postgres(tmp_path_factory):
    with PostgresServer(tmp_path_factory.mktemp("pg")) as server:
        with server.admin_connect() as conn:
            conn.execute(f"CREATE ROLE leaky LOGIN PASSWORD '{CANARY_PASSWORD}'")
        yield server


@pytest.fixture(scope="module")
def moto_url():
    server, url = start_moto_server()
    yield url
    server.stop()


def test_canaries_never_leave_the_scan(tmp_path, postgres, moto_url, monkeypatch, caplog):
    # Given credentials that carry the canaries and a log file with a canary SSN
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", CANARY_AWS_SECRET)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("LEAK_PG_PASSWORD", CANARY_PASSWORD)
    log = tmp_path / "app.log"
    log.write_text(f'2026-12-03T10:00:00Z INFO patient lookup {{"ssn": "{CANARY_SSN}"}}\n')
    dsn = (f"host=127.0.0.1 port={postgres.port} dbname=postgres user=leaky "
           "password=${LEAK_PG_PASSWORD} sslmode=disable")
    config = tmp_path / "hipaacheck.yaml"
    config.write_text(
        f"aws: {{accounts: [{{name: lab, regions: [us-east-1], endpoint_url: '{moto_url}'}}]}}\n"
        f"postgres:\n  - name: leaky\n    application: {{conninfo: '{dsn}'}}\n"
        f"    audit: {{conninfo: '{dsn}'}}\n    audit_tables: [public.nope]\n"
        f"logs: {{sinks: [{{name: app, paths: ['{log}']}}]}}\n")
    out = tmp_path / "out"
    caplog.set_level(logging.DEBUG)

    # When the scan runs with every debug switch on
    result = CliRunner().invoke(app, ["-vv", "--debug", "scan", "-c", str(config), "--out",
                                      str(out), "--format", "text,json,html,md,sarif,csv",
                                      "--history", str(tmp_path / "history.sqlite")])

    # Then it did real work (the shared password was detected, the SSN was found) ...
    assert result.exit_code in (1, 3), result.output
    report = (out / "report.json").read_text()
    assert '"postgres.audit.shared_credentials"' in report and '"FAIL"' in report
    assert "ssn" in report
    # ... and no canary appears in any output, log, report file or the history
    outputs = {"stdout": result.stdout, "stderr": result.stderr, "logs": caplog.text}
    for path in out.iterdir():
        outputs[path.name] = path.read_text(errors="replace")
    with sqlite3.connect(tmp_path / "history.sqlite") as db:
        outputs["history"] = "\n".join(
            repr(row) for table, in db.execute("SELECT name FROM sqlite_master WHERE type='table'")
            for row in db.execute(f"SELECT * FROM {table}"))
    for name, text in outputs.items():
        for canary in CANARIES:
            assert canary not in text, f"{canary[:6]}... leaked into {name}"
