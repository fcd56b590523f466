"""`logs.files.phi` against real log files on disk: one finding per file, nothing leaked."""

from __future__ import annotations

import gzip
import os
from collections.abc import Callable
from pathlib import Path

from hipaacheck.check import CheckContext, Policy
from hipaacheck.checks.logs.files import PhiInLogFiles
from hipaacheck.model import Finding, Status, Target, UnknownReason

CHECK = PhiInLogFiles()
SSN, EMAIL, DOB = b"219-45-6781", b"amara.brennan12@gmail.com", b"1957-03-14"
LEAKING = (b'{"ts":1733212345678,"level":"info","msg":"request completed"}\n'
           b'{"level":"debug","msg":"request body","body":{"ssn":"' + SSN + b'","dob":"' + DOB
           + b'","email":"' + EMAIL + b'"}}\n' + b'{"level":"info","msg":"ok"}\n')
CLEAN = b'{"ts":1733212345678,"level":"info","request_id":"6f1c2f3a-9b4e-4c1d-8f2e-0a1b2c3d4e5f"}\n'


def run(ctx: CheckContext, target: Target) -> dict[str, Finding]:
    findings = CHECK.evaluate(CHECK.collect(ctx, target), target, Policy())
    return {Path(f.resource).name: f for f in findings}


def test_leaking_clean_rotated_and_broken_files(
        ctx: CheckContext, sink_target: Callable[..., Target], tmp_path: Path) -> None:
    logs = tmp_path / "app"
    logs.mkdir()
    (logs / "api.log").write_bytes(CLEAN * 50 + LEAKING)
    (logs / "worker.log").write_bytes(CLEAN * 50)
    (logs / "api.log.1.gz").write_bytes(gzip.compress(LEAKING * 3))
    truncated = gzip.compress(CLEAN * 5000)
    (logs / "api.log.2.gz").write_bytes(truncated[: len(truncated) // 3])
    (logs / "core.log").write_bytes(os.urandom(9000))
    os.symlink(tmp_path / "nowhere.log", logs / "dangling.log")
    findings = run(ctx, sink_target(str(logs / "*.log"), str(tmp_path / "missing" / "*.log")))
    status = {name: f.status for name, f in findings.items()}
    assert status == {
        "api.log": Status.FAIL, "worker.log": Status.PASS, "api.log.1.gz": Status.FAIL,
        "api.log.2.gz": Status.UNVERIFIED, "core.log": Status.UNVERIFIED,
        "dangling.log": Status.UNVERIFIED, "*.log": Status.UNVERIFIED}
    assert findings["api.log.2.gz"].unknown_reason == UnknownReason.UNPARSEABLE
    assert findings["core.log"].unknown_reason == UnknownReason.NOT_SUPPORTED
    assert findings["*.log"].unknown_reason == UnknownReason.NOT_VISIBLE
    fail = findings["api.log"]
    assert fail.check_id == "logs.files.phi" and fail.target == "logs:app"
    assert set(fail.evidence["identifier_kinds"]) == {"ssn", "date_of_birth", "email"}
    assert fail.evidence["first_lines"] == (52,)
    assert findings["api.log.1.gz"].evidence["compression"] == "gzip"
    assert findings["api.log.1.gz"].evidence["identifier_counts"] == (3, 3, 3)
    assert findings["api.log.1.gz"].evidence["distinct_values"] == (1, 1, 1)


def test_no_value_reaches_a_finding(
        ctx: CheckContext, sink_target: Callable[..., Target], tmp_path: Path) -> None:
    (tmp_path / "api.log").write_bytes(LEAKING)
    findings = run(ctx, sink_target(str(tmp_path / "api.log")))
    rendered = repr(list(findings.values())).encode()
    for value in (SSN, SSN.replace(b"-", b""), EMAIL, b"amara", b"gmail", DOB):
        assert value not in rendered


def test_a_budget_gives_a_sampled_pass(
        ctx: CheckContext, sink_target: Callable[..., Target], tmp_path: Path) -> None:
    (tmp_path / "big.log").write_bytes(CLEAN * 2000 + LEAKING)
    findings = run(ctx, sink_target(str(tmp_path / "big.log"), max_bytes_per_file=10_000))
    assert findings["big.log"].status == Status.PASS
    assert findings["big.log"].evidence["read"] == "sampled"


def test_a_link_out_of_the_sink_is_unverified_not_read(
        ctx: CheckContext, sink_target: Callable[..., Target], tmp_path: Path) -> None:
    (tmp_path / "logs").mkdir()
    (tmp_path / "private").mkdir()
    (tmp_path / "private" / "db.log").write_bytes(LEAKING)
    os.symlink(tmp_path / "private" / "db.log", tmp_path / "logs" / "db.log")
    findings = run(ctx, sink_target(str(tmp_path / "logs")))
    assert findings["db.log"].status == Status.UNVERIFIED
    assert findings["db.log"].unknown_reason == UnknownReason.NOT_SUPPORTED


def test_collect_changes_nothing_it_reads(
        ctx: CheckContext, sink_target: Callable[..., Target], tmp_path: Path) -> None:
    path = tmp_path / "api.log"
    path.write_bytes(LEAKING)
    before = (path.stat().st_mtime_ns, sorted(os.listdir(tmp_path)))
    run(ctx, sink_target(str(path)))
    assert (path.stat().st_mtime_ns, sorted(os.listdir(tmp_path))) == before
    assert path.read_bytes() == LEAKING
