"""`logs.files.phi` against real log files on disk: one finding per file, nothing leaked."""

from __future__ import annotations

import gzip
import os
from collections.abc import Callable
from pathlib import Path

from hipaacheck.check import CheckContext, Policy
from hipaacheck.checks.logs.files import PhiInLogFiles, scan_files
from hipaacheck.config import AwsAccountConfig, LogSinkConfig, S3LogSinkConfig
from hipaacheck.detectors.phi import PhiDetector
from hipaacheck.model import Finding, Status, Target, TargetKind, Unknown, UnknownReason

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


def test_a_budget_samples_the_tail_where_a_leak_at_the_end_is_found(
        ctx: CheckContext, sink_target: Callable[..., Target], tmp_path: Path) -> None:
    (tmp_path / "big.log").write_bytes(CLEAN * 2000 + LEAKING)
    findings = run(ctx, sink_target(str(tmp_path / "big.log"), max_bytes_per_file=10_000))
    big = findings["big.log"]
    assert big.status == Status.FAIL and big.evidence["read"] == "sampled"
    assert big.evidence["first_lines"] == () and big.evidence["first_offsets"]
    assert big.evidence["file_bytes"] == (tmp_path / "big.log").stat().st_size


def test_a_clean_sample_is_unverified_and_says_how_it_was_sampled(
        ctx: CheckContext, sink_target: Callable[..., Target], tmp_path: Path) -> None:
    (tmp_path / "big.log").write_bytes(CLEAN * 20_000)
    findings = run(ctx, sink_target(str(tmp_path / "big.log"), max_bytes_per_file=400_000))
    big = findings["big.log"]
    assert big.status == Status.UNVERIFIED and big.evidence["read"] == "sampled"
    assert "random offsets" in str(big.evidence["sampling"])


def test_the_sink_budget_is_shared_newest_first_and_the_rest_is_unverified(
        ctx: CheckContext, tmp_path: Path) -> None:
    for age, name in enumerate(("new.log", "mid.log", "old.log")):
        path = tmp_path / name
        path.write_bytes(CLEAN * 2000)
        os.utime(path, (1_700_000_000 - age * 3600, 1_700_000_000 - age * 3600))
    def scan(budget: int) -> dict[str, Finding]:
        config = LogSinkConfig(name="app", paths=[str(tmp_path / "*.log")],
                               max_bytes_per_sink=budget)
        return run(ctx, Target(TargetKind.LOG_SINK, "logs:app", "app", config))

    tight = scan(100 * 1024)
    assert tight["new.log"].status == Status.UNVERIFIED
    assert tight["new.log"].evidence["read"] == "sampled"
    for name in ("mid.log", "old.log"):
        assert tight[name].status == Status.UNVERIFIED
        assert tight[name].unknown_reason == UnknownReason.NOT_VISIBLE
    ample = scan(3 * len(CLEAN) * 2000)
    assert {f.evidence["read"] for f in ample.values()} == {"complete"}
    shared = scan(3 * len(CLEAN) * 1000)
    assert {f.evidence["read"] for f in shared.values()} == {"sampled"}


def test_other_sink_kinds_are_not_for_this_check(sink_target: Callable[..., Target]) -> None:
    assert CHECK.applies_to(sink_target("/var/log/app.log"))
    s3 = S3LogSinkConfig(kind="s3", name="b", bucket="log-bucket",
                         account=AwsAccountConfig(name="a", regions=["us-east-1"]))
    assert not CHECK.applies_to(Target(TargetKind.LOG_SINK, "logs:b", "b", s3))


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


def test_bad_input_is_unverified_or_partial_never_a_crash_or_a_hang(
        ctx: CheckContext, sink_target: Callable[..., Target], tmp_path: Path) -> None:
    logs = tmp_path / "bad"
    logs.mkdir()
    (logs / "long.log").write_bytes(b"y" * (10 << 20) + b' "ssn": "219-45-6781"\n')
    (logs / "no-newline.log").write_bytes(CLEAN + b"last line without a newline")
    (logs / "latin1.log").write_bytes(b"caf\xe9 \xff\xfe ssn=219-45-6781 \x00\x00 ok\n" + CLEAN)
    truncated = gzip.compress(CLEAN * 5000)
    (logs / "cut.log.1.gz").write_bytes(truncated[: len(truncated) // 2])
    (logs / "bomb.log.2.gz").write_bytes(gzip.compress(b"a" * (64 << 20), compresslevel=9))
    (logs / "loop").symlink_to(logs)
    os.symlink("self.log", logs / "self.log")
    os.mkfifo(logs / "pipe.log")
    config = LogSinkConfig(name="bad", paths=[str(logs / "**" / "*.log")],
                           max_bytes_per_file=4 << 20)
    findings = run(ctx, Target(TargetKind.LOG_SINK, "logs:bad", "bad", config))
    status = {name: (f.status, f.evidence.get("read")) for name, f in findings.items()}
    assert status["long.log"] == (Status.FAIL, "sampled")
    assert status["no-newline.log"] == (Status.PASS, "complete")
    assert status["latin1.log"] == (Status.FAIL, "complete")
    assert status["cut.log.1.gz"][0] == Status.UNVERIFIED
    assert status["bomb.log.2.gz"] == (Status.UNVERIFIED, "sampled")
    assert status["self.log"][0] == Status.UNVERIFIED
    assert status["pipe.log"][0] == Status.UNVERIFIED
    assert findings["cut.log.1.gz"].unknown_reason == UnknownReason.UNPARSEABLE
    assert int(findings["bomb.log.2.gz"].evidence["bytes_read"]) <= 4 << 20  # type: ignore


def test_a_file_that_vanishes_before_it_is_read_is_unverified(
        ctx: CheckContext, tmp_path: Path) -> None:
    config = LogSinkConfig(name="app", paths=[str(tmp_path / "*.log")])
    (tmp_path / "a.log").write_bytes(LEAKING)
    (tmp_path / "gone.log").write_bytes(CLEAN)
    observed = scan_files(PhiDetector(), [str(tmp_path / "a.log"), str(tmp_path / "x.log")],
                          config.max_bytes_per_file, config.max_bytes_per_sink)
    by_name = {Path(o.path).name: o.scan for o in observed}
    assert isinstance(by_name["x.log"], Unknown)
    assert by_name["x.log"].reason == UnknownReason.NOT_VISIBLE
