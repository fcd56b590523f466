"""The runner isolates checks, enforces deadlines and never turns a failure into a pass."""

from __future__ import annotations

import logging
import threading
import time
from datetime import UTC, datetime

import pytest
from fakes import Behaving, Discovering, Probing, target

from hipaacheck.check import CheckContext, Memo, Policy
from hipaacheck.model import Endpoint, Status, Target, TargetKind, UnknownReason
from hipaacheck.registry import Registry
from hipaacheck.runner import scan


def _ctx() -> CheckContext:
    return CheckContext(clients=None, policy=Policy(), logger=logging.getLogger("t"),
                        clock=lambda: datetime.now(UTC))


def _scan(*checks, targets=None, deadline=30.0):
    return scan(Registry.from_checks(checks), targets or [target()], _ctx(),
                organization="o", config_fingerprint="f", workers=4, deadline=deadline)


def test_each_behaviour_maps_to_its_status():
    # Given checks that pass, fail, cannot look, crash and try to write
    result = _scan(Behaving("f.pass", "pass"), Behaving("f.fail", "fail"),
                   Behaving("f.unavailable", "unavailable"), Behaving("f.crash", "crash"),
                   Behaving("f.write", "write"))
    # Then each gets its honest status and the scan finishes
    by_id = {f.check_id: f for f in result.findings}
    assert by_id["f.pass"].status is Status.PASS
    assert by_id["f.fail"].status is Status.FAIL
    assert by_id["f.unavailable"].status is Status.UNVERIFIED
    assert by_id["f.unavailable"].needs == "logs:Read"
    assert by_id["f.unavailable"].unknown_reason is UnknownReason.ACCESS_DENIED
    assert by_id["f.crash"].status is Status.ERROR
    assert by_id["f.write"].status is Status.ERROR
    assert result.complete and result.tasks == 5


def test_exception_message_stays_out_of_findings_and_logs(caplog):
    caplog.set_level(logging.DEBUG, logger="hipaacheck")
    result = _scan(Behaving("f.crash", "crash"))
    assert "canary-secret" not in repr(result.findings)
    assert "canary-secret" not in caplog.text
    assert "RuntimeError" in result.findings[0].reason


def test_hung_check_costs_only_its_deadline():
    # Given one check that hangs and one that answers, on one worker each
    release = threading.Event()
    try:
        start = time.monotonic()
        result = _scan(Behaving("f.hang", "hang", release), Behaving("f.pass", "pass"),
                       deadline=0.5)
        elapsed = time.monotonic() - start
    finally:
        release.set()
    by_id = {f.check_id: f for f in result.findings}
    assert by_id["f.hang"].status is Status.UNVERIFIED
    assert by_id["f.hang"].unknown_reason is UnknownReason.TIMEOUT
    assert by_id["f.pass"].status is Status.PASS
    assert elapsed < 5


def test_checks_run_concurrently():
    checks = [Behaving(f"f.c{i}", "pass") for i in range(40)]
    result = _scan(*checks, targets=[target("a"), target("b")])
    assert len(result.findings) == 80
    assert {f.status for f in result.findings} == {Status.PASS}


def test_load_failure_becomes_error_finding():
    from hipaacheck.registry import LoadFailure

    registry = Registry.from_checks([Behaving("f.pass", "pass")], [LoadFailure("x.broken", "E")])
    result = scan(registry, [target()], _ctx(), organization="o", config_fingerprint="f")
    broken = [f for f in result.findings if f.check_id == "x.broken"]
    assert broken and broken[0].status is Status.ERROR


def test_memo_computes_once_and_caches_failures():
    memo = Memo()
    calls = []

    def compute():
        calls.append(1)
        raise PermissionError("denied")

    for _ in range(3):
        with pytest.raises(PermissionError):
            memo.get("k", compute)
    assert len(calls) == 1
    assert memo.get("v", lambda: 5) == 5 and memo.get("v", lambda: 6) == 5


def test_a_follow_up_phase_probes_what_the_first_phase_found():
    # Given a control-plane check that finds two endpoints and a TLS check
    found = [Endpoint("a.example.org", 443, "logs:t1", "lb/a", "test"),
             Endpoint("b.example.org", 443, "logs:t1", "lb/b", "test")]
    probing = Probing("f.tls")
    handed: list[Endpoint] = []
    totals: list[int] = []

    class Totals:
        def on_start(self, total):
            totals.append(total)

        def on_task_done(self, check_id, target_id, findings):
            pass

    def follow_up(endpoints, interrupted):
        assert not interrupted
        handed.extend(endpoints)
        return [Target(TargetKind.TLS_ENDPOINT, f"tls:x/{e.address}", e.address)
                for e in endpoints if e.host.startswith("a.")]

    # When the scan runs with a follow-up
    result = scan(Registry.from_checks([Discovering("f.find", found), probing]), [target()],
                  _ctx(), organization="o", config_fingerprint="f", observer=Totals(),
                  follow_up=follow_up)
    # Then the follow-up saw every endpoint, and the second phase probed what it chose
    assert sorted(e.host for e in handed) == ["a.example.org", "b.example.org"]
    assert probing.seen == ["tls:x/a.example.org:443"]
    assert [t.id for t in result.targets] == ["logs:t1", "tls:x/a.example.org:443"]
    assert {f.target for f in result.findings} == {"logs:t1", "tls:x/a.example.org:443"}
    assert result.tasks == 2 and result.complete
    # And the progress total grew with the second phase
    assert totals == [1, 2]


def test_without_a_follow_up_found_endpoints_change_nothing():
    probing = Probing("f.tls")
    result = _scan(Discovering("f.find", [Endpoint("a.example.org", 443, "logs:t1", "lb/a",
                                                   "test")]), probing)
    assert probing.seen == [] and result.tasks == 1


def test_an_interrupted_scan_still_hands_over_what_it_found_and_probes_nothing():
    # Given a scan whose first finished task is followed by Ctrl-C
    found = [Endpoint("a.example.org", 443, "logs:t1", "lb/a", "test")]
    probing = Probing("f.tls")
    calls: list[tuple[int, bool]] = []

    class CtrlC:
        def on_start(self, total):
            pass

        def on_task_done(self, check_id, target_id, findings):
            raise KeyboardInterrupt

    def follow_up(endpoints, interrupted):
        calls.append((len(endpoints), interrupted))
        return [Target(TargetKind.TLS_ENDPOINT, "tls:x/a.example.org:443", "a.example.org:443")]

    result = scan(Registry.from_checks([Discovering("f.find", found), probing]), [target()],
                  _ctx(), organization="o", config_fingerprint="f", observer=CtrlC(),
                  follow_up=follow_up)
    # Then the follow-up heard of the endpoint and of the interruption, and nothing was probed
    assert calls == [(1, True)]
    assert probing.seen == [] and result.interrupted
