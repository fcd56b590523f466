"""
Transmission-security checks of PostgreSQL judged on hand-built observations: server settings,
pg_hba.conf lines, live sessions and client sslmodes; PASS, FAIL and UNVERIFIED for each
unknown fact.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from hipaacheck.check import Policy
from hipaacheck.checks.postgres.transit import (
    CHECKS,
    PROBE_NOTE,
    ClientConnection,
    ClientSslmode,
    HbaLine,
    HbaPlaintext,
    PlaintextSessions,
    ServerFacts,
    ServerTls,
    Sessions,
    client_connection,
    judge_sslmode,
)
from hipaacheck.config import PostgresConnection
from hipaacheck.model import Family, Finding, Standard, Status, Target, TargetKind, Unknown
from hipaacheck.model import UnknownReason as R
from hipaacheck.permissions import postgres_role_sql
from hipaacheck.redact import Secret
from hipaacheck.registry import Registry

TARGET = Target(TargetKind.POSTGRES, "postgres:clinic", "clinic")
DENIED = Unknown(R.ACCESS_DENIED, "permission denied reading x", needs="x")
LOCAL = HbaLine(2, "host", "127.0.0.1", "255.255.255.255", "scram-sha-256", None)
QUIET = Sessions(tls=3, plaintext_remote=0, plaintext_local=1, hidden=0, weak_tls=0,
                 versions=("TLSv1.3",))
SOUND = ServerFacts("db.internal:5432", ("application",), "on", "TLSv1.2", (LOCAL,), QUIET)


def one(check: Any, obs: Any) -> Finding:
    [finding] = check.evaluate(obs, TARGET, Policy())
    assert finding.check_id == check.meta.id
    return finding


def server(**changes: Any) -> tuple[ServerFacts, ...]:
    return (replace(SOUND, **changes),)


def test_metadata_and_the_monitoring_role() -> None:
    registry = Registry.from_checks(kind() for kind in CHECKS)
    for check in registry.checks.values():
        assert (check.meta.family, check.meta.standard) == (Family.TRANSMISSION,
                                                            Standard.TRANSMISSION)
    assert "pg_catalog.pg_hba_file_rules" in postgres_role_sql(registry.metas())


@pytest.mark.parametrize(("changes", "expected", "reason"), [
    ({}, Status.PASS, None),
    ({"min_protocol": "TLSv1.3"}, Status.PASS, None),
    ({"ssl": "off"}, Status.FAIL, None),
    ({"ssl": "off", "min_protocol": DENIED}, Status.FAIL, None),
    ({"min_protocol": "TLSv1.1"}, Status.FAIL, None),
    ({"min_protocol": DENIED}, Status.UNVERIFIED, R.ACCESS_DENIED),
    ({"ssl": DENIED}, Status.UNVERIFIED, R.ACCESS_DENIED),
])
def test_server_tls_verdicts(changes: dict[str, Any], expected: Status, reason: R | None) -> None:
    finding = one(ServerTls(), server(**changes))
    assert (finding.status, finding.unknown_reason) == (expected, reason)
    assert finding.evidence["probe"] == PROBE_NOTE
    assert finding.evidence["endpoints"] == ("db.internal:5432",)


def hba(kind: str, address: str | None, netmask: str | None = None, method: str = "md5",
        error: str | None = None) -> HbaLine:
    return HbaLine(9, kind, address, netmask, method, error)


@pytest.mark.parametrize(("line", "expected"), [
    (hba("hostssl", "0.0.0.0", "0.0.0.0"), Status.PASS),
    (hba("host", "::1", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"), Status.PASS),
    (hba("host", "samehost"), Status.PASS),
    (hba("host", "10.0.0.0", "255.0.0.0", "reject"), Status.PASS),
    (hba("local", None), Status.PASS),
    (hba("host", "10.0.0.0", "255.0.0.0"), Status.FAIL),
    (hba("hostnossl", "0.0.0.0", "0.0.0.0"), Status.FAIL),
    (hba("hostnogssenc", "all"), Status.FAIL),
    (hba("host", "samenet"), Status.FAIL),
    (hba("host", "app.internal.example"), Status.FAIL),
    (hba("hostssl", "10.0.0.0", "255.0.0.0", error="invalid auth method"), Status.UNVERIFIED),
])
def test_hba_verdicts(line: HbaLine, expected: Status) -> None:
    assert one(HbaPlaintext(), server(hba=(LOCAL, line))).status == expected


def test_hba_unreadable_names_the_grant() -> None:
    finding = one(HbaPlaintext(), server(hba=DENIED))
    assert (finding.status, finding.needs) == (Status.UNVERIFIED, "x")


@pytest.mark.parametrize(("sessions", "expected"), [
    (QUIET, Status.PASS),
    (replace(QUIET, plaintext_remote=2), Status.FAIL),
    (replace(QUIET, weak_tls=1, versions=("TLSv1.1", "TLSv1.3")), Status.FAIL),
    (replace(QUIET, hidden=4), Status.UNVERIFIED),
    (replace(QUIET, hidden=4, plaintext_remote=1), Status.FAIL),
    (DENIED, Status.UNVERIFIED),
])
def test_session_verdicts(sessions: Any, expected: Status) -> None:
    assert one(PlaintextSessions(), server(sessions=sessions)).status == expected


@pytest.mark.parametrize(("sslmode", "root", "expected"), [
    ("verify-full", True, Status.PASS),
    ("verify-full", False, Status.PASS),  # libpq then requires ~/.postgresql/root.crt
    ("verify-ca", True, Status.WARN),
    ("require", True, Status.WARN),  # a root certificate makes require behave as verify-ca
    ("require", False, Status.FAIL),
    ("prefer", True, Status.FAIL),
    ("allow", False, Status.FAIL),
    ("disable", False, Status.FAIL),
    (None, False, Status.UNVERIFIED),
    ("VERIFY-FULL", False, Status.PASS),
    ("paranoid", False, Status.UNVERIFIED),
])
def test_sslmode_verdicts(sslmode: str | None, root: bool, expected: Status) -> None:
    assert judge_sslmode(sslmode, root)[0] == expected


def conn(conninfo: str, service: str | None = None) -> PostgresConnection:
    return PostgresConnection(conninfo=Secret(conninfo), service=service)


@pytest.mark.parametrize(("connection", "expected", "reason"), [
    (conn("host=db user=app password=hunter2-x sslmode=verify-full sslrootcert=/ca.pem"),
     Status.PASS, None),
    (conn("postgresql://app:hunter2-x@db/records?sslmode=require"), Status.FAIL, None),
    (conn("host=db user=app password=hunter2-x"), Status.UNVERIFIED, R.NOT_VISIBLE),
    (conn("", service="clinic"), Status.UNVERIFIED, R.NOT_VISIBLE),
    (conn("host=db password='hunter2-x"), Status.UNVERIFIED, R.UNPARSEABLE),
])
def test_client_connection_verdicts(connection: PostgresConnection, expected: Status,
                                    reason: R | None) -> None:
    obs = (client_connection("application", connection),)
    finding = one(ClientSslmode(), obs)
    assert (finding.status, finding.unknown_reason) == (expected, reason)
    assert "hunter2" not in repr(finding) and "hunter2" not in repr(obs)


def test_client_evidence_is_the_safe_label() -> None:
    obs = (ClientConnection("audit", "writer@db:5432/audit", "verify-full", True, False),)
    finding = one(ClientSslmode(), obs)
    assert (finding.resource, finding.evidence["connection"]) == ("connection:audit",
                                                                 "writer@db:5432/audit")
